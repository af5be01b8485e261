"""The one reader of premem's YAML input files (specs, throughputs files): plain data and the line of every field.

It owns what any such file can do wrong before its content is judged, and refuses each with one line:
- the file: missing, a folder, not a regular file (a device, FIFO or socket could never end), larger than
  MAX_BYTES (refused from its size, before a byte is parsed; at most MAX_BYTES + 1 bytes are ever read), not
  UTF-8;
- the YAML: syntax errors and raw control characters, tags other than YAML's plain ones (no Python objects, no
  `!include`), nesting deeper than MAX_DEPTH (refused as the parser's events arrive, which premem composes in
  a loop rather than PyYAML's recursion), aliases that refer to themselves, aliases and merges that expand past
  MAX_NODES (measured on the composed graph, each shared node counted as often as it is reached, before
  anything is expanded), keys that are lists or mappings, the same key twice in one mapping, values a tag
  cannot read, a second document.

Parsing uses libyaml where PyYAML has it (a file at the size cap in seconds), else PyYAML's own parser.

Merge keys (`<<: *base`, `<<: [*a, *b]`) work as YAML 1.1 defines them: the mapping's own keys win, then the
merged mappings in order; a merged field's line is where it is written.
"""
from __future__ import annotations

import gc
import os
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 4 * 2**20  # a spec is a few KiB; the largest useful one (50,000 listed runs) about 2.5 MiB
MAX_NODES = 1_000_000  # values after aliases and merges are expanded
MAX_DEPTH = 64  # nested mappings and lists; a spec nests 6 deep

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + t for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")}
_MERGE = _TAG + "merge"


class YamlFileError(Exception):
    """A file that cannot be read as plain YAML data: `line` (1-based; None for the file as a whole), `path`
    (the field's keys and list indexes, () when none applies) and a one-line `message`."""

    def __init__(self, line: int | None, message: str, path: tuple = ()):
        self.line, self.path, self.message = line, path, message
        super().__init__(message)


def read_text(path: str | Path, what: str) -> str:
    """The text of the file at `path` (a `what` file, e.g. "spec"), or YamlFileError: no such file, a folder,
    not a regular file, more than MAX_BYTES, not UTF-8."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL byte in the path
        raise YamlFileError(None, "no such file") from None
    except OSError as e:
        raise YamlFileError(None, f"cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise YamlFileError(None, f"is a folder, not a {what} file")
    if not stat.S_ISREG(st.st_mode):
        raise YamlFileError(None, f"is not a regular file (a device, pipe or socket): give a {what} file")
    if st.st_size > MAX_BYTES:
        raise YamlFileError(None, _too_big(st.st_size, what))
    try:
        # non-blocking: if the path became a FIFO since the stat, opening it must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise YamlFileError(None, f"cannot read: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise YamlFileError(None, f"is not a regular file (a device, pipe or socket): give a {what} file")
        try:
            data = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise YamlFileError(None, f"cannot read: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:  # it grew since the stat
        raise YamlFileError(None, _too_big(len(data), what, at_least=True))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise YamlFileError(line, f"not UTF-8 text: byte 0x{data[e.start]:02x} cannot start or continue a "
                                  f"UTF-8 character; save the {what} file as UTF-8") from None


def _too_big(size: int, what: str, at_least: bool = False) -> str:
    return (f"{'more than ' if at_least else ''}{size:,} bytes: a {what} file is at most {MAX_BYTES // 2**20} MiB "
            f"({MAX_BYTES:,} bytes)")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than MAX_DEPTH as it scans: PyYAML's scanner costs time
    quadratic in the depth and its composer recurses once per level."""

    def fetch_flow_collection_start(self, TokenClass):  # `[` and `{`
        self._deeper()
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column):  # a block mapping or list indented deeper
        added = super().add_indent(column)
        if added:
            self._deeper()
        return added

    def _deeper(self) -> None:
        if self.flow_level + len(self.indents) >= MAX_DEPTH:
            raise _TooDeep(self.get_mark())


class _TooDeep(Exception):
    def __init__(self, mark):
        self.mark = mark




def _libyaml_parser():
    """libyaml's parser (about 20 times faster than PyYAML's, so a file at the size cap parses in seconds), if
    PyYAML has it in a version that stops nesting deeper than 1,000 levels (0.2.5, 2020): an older one scans
    unclosed brackets in time quadratic in their number. None otherwise."""
    try:
        from yaml._yaml import get_version
    except ImportError:
        return None
    return getattr(yaml, "CSafeLoader", None) if get_version() >= (0, 2, 5) else None


# either way premem composes the parser's events itself (below), in a loop rather than PyYAML's recursion
_PARSER = _libyaml_parser() or _Loader


def compose(text: str) -> tuple[Any, dict[tuple, int]]:
    """YAML text as plain data (None for an empty document) and {field path: 1-based line} (a key's own line
    for a mapping's field), or YamlFileError."""
    # composing allocates a few objects per value, all kept to the end (nodes, marks, data): the cycle collector
    # would scan them again and again as they are made, which doubled the time of a large file
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _compose(text)
    finally:
        if collecting:
            gc.enable()


def _compose(text: str) -> tuple[Any, dict[tuple, int]]:
    try:
        node = _compose_events(yaml.parse(text, Loader=_PARSER))
    except _TooDeep as e:
        raise YamlFileError(e.mark.line + 1, f"nested deeper than {MAX_DEPTH} levels") from None
    except yaml.reader.ReaderError as e:  # a raw control character or other unreadable character
        # libyaml counts the position in UTF-8 bytes, PyYAML in characters
        before = text.encode("utf-8")[:e.position].decode("utf-8", "replace") if _PARSER is not _Loader \
            else text[:e.position]
        ch = chr(e.character) if isinstance(e.character, int) else str(e.character)
        raise YamlFileError(before.count("\n") + 1, f"the character {ch!r} (U+{ord(ch[:1] or ' '):04X}) may not "
                            "appear raw in YAML; write it as an escape inside double quotes") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        msg = (getattr(e, "problem", None) or str(e)).replace("\n", " ")
        if "maximum nesting depth" in msg:  # libyaml's own limit (1,000 levels), met while scanning ahead
            raise YamlFileError(line, f"nested deeper than {MAX_DEPTH} levels") from None
        raise YamlFileError(line, f"YAML syntax error: {msg}") from None
    if node is None:
        return None, {}
    _measure(node)
    lines: dict[tuple, int] = {}
    return _Builder(lines).build(node, ()), lines


def _compose_events(events) -> Any:
    """The node graph of a single-document event stream (None when it has no document), as PyYAML's composer
    makes it, but in a loop: a collection nested deeper than MAX_DEPTH is refused as its start arrives."""
    resolver = yaml.SafeLoader("")  # resolves untagged values to their implicit tags (int, float, bool, ...)
    anchors: dict[str, Any] = {}
    open_: list[Any] = []  # the collections being filled, outermost first
    keys: list[Any] = []  # per open mapping, its key waiting for a value (None when none)
    root, documents = None, 0

    def add(node):
        nonlocal root
        if not open_:
            root = node
        elif isinstance(open_[-1], yaml.SequenceNode):
            open_[-1].value.append(node)
        elif keys[-1] is None:
            keys[-1] = node
        else:
            open_[-1].value.append((keys[-1], node))
            keys[-1] = None

    def anchor(event, node):
        if event.anchor is not None:
            anchors[event.anchor] = node  # a later definition of a name replaces the earlier one (YAML 1.2)

    for event in events:
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise YamlFileError(event.start_mark.line + 1, "a second YAML document (after ---): a file holds "
                                                               "one")
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise YamlFileError(event.start_mark.line + 1, f"the alias *{event.anchor} names no anchor "
                                                               f"(&{event.anchor}) defined before it")
            add(anchors[event.anchor])
        elif isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            anchor(event, node)
            add(node)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(open_) >= MAX_DEPTH:
                raise _TooDeep(event.start_mark)
            kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolver.resolve(kind, None, event.implicit)
            node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            anchor(event, node)
            add(node)
            open_.append(node)
            keys.append(None)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            open_.pop().end_mark = event.end_mark
            keys.pop()
    return root


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _measure(root) -> None:
    """Refuse a composed graph that refers to itself, nests deeper than MAX_DEPTH or expands to more than
    MAX_NODES values. Aliases make the graph share nodes: each node's expanded size and depth are computed once
    (memoized, iteratively), so a billion-value alias bomb is measured in microseconds and never expanded."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    if isinstance(root, yaml.ScalarNode):
        return
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size.get(id(k), 1) for k in kids)  # a scalar is not stored: it counts 1
            depth[key] = 1 + max((depth.get(id(k), 1) for k in kids), default=0)
            on_path.discard(key)
            line = node.start_mark.line + 1
            if size[key] > MAX_NODES:
                raise YamlFileError(line, f"this value expands to more than {MAX_NODES:,} values (aliases and "
                                          "merges count each time they are used)")
            if depth[key] > MAX_DEPTH:
                raise YamlFileError(line, f"this value nests deeper than {MAX_DEPTH} levels once its aliases "
                                          "are expanded")
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in on_path:  # an alias to a node that contains it
                raise YamlFileError(node.start_mark.line + 1, "an alias refers to a value that contains it "
                                                              "(a recursive alias): the value would be infinite")
            if id(kid) not in size and not isinstance(kid, yaml.ScalarNode):
                stack.append((kid, False))


class _Builder:
    """Plain data from a measured node graph (depth at most MAX_DEPTH, so recursion is safe), recording lines."""

    def __init__(self, lines: dict[tuple, int], constructor=None):
        self.lines = lines
        self.constructor = constructor or yaml.SafeLoader("")

    def build(self, n, path: tuple) -> Any:
        self.lines.setdefault(path, n.start_mark.line + 1)  # a key's own line wins over its value's
        self._check_tag(n, path)
        if isinstance(n, yaml.MappingNode):
            return self._mapping(n, path)
        if isinstance(n, yaml.SequenceNode):
            return [self.build(v, path + (i,)) for i, v in enumerate(n.value)]
        return self._scalar(n, path)

    def _check_tag(self, n, path: tuple) -> None:
        if n.tag not in _PLAIN_TAGS:  # `!!python/object`, `!include`, `!!binary`...: plain data, never objects
            tag = n.tag.replace(_TAG, "!!")
            raise YamlFileError(n.start_mark.line + 1, f"YAML tag {tag} is not allowed: only plain data "
                                "(mappings, lists, strings, numbers, booleans, null)", path)

    def _scalar(self, n, path: tuple) -> Any:
        try:
            return self.constructor.construct_object(n, deep=True)
        except Exception as e:  # `!!int abc`, an integer of more digits than Python reads, `!!bool maybe`...
            value = n.value if len(n.value) <= 40 else n.value[:40] + "..."
            why = str(e).splitlines()[0].split(";")[0] if str(e) else type(e).__name__
            raise YamlFileError(n.start_mark.line + 1, f"cannot read {value!r} as {n.tag.replace(_TAG, '!!')}: "
                                                       f"{why}", path) from None

    def _key(self, k, path: tuple) -> Any:
        if not isinstance(k, yaml.ScalarNode):
            raise YamlFileError(k.start_mark.line + 1, "a key must be a single value (a name), not a list or "
                                                       "a mapping", path)
        self._check_tag(k, path)
        return self._scalar(k, path)

    def _mapping(self, n, path: tuple) -> dict:
        out: dict = {}
        merges = []
        for k, v in n.value:
            if k.tag == _MERGE:
                if merges:
                    raise YamlFileError(k.start_mark.line + 1, "duplicate key <<: merge several mappings with "
                                                               "one `<<: [*a, *b]`", path)
                merges.append(v)
                continue
            key = self._key(k, path)
            if key in out:
                raise YamlFileError(k.start_mark.line + 1, "duplicate key", path + (key,))
            self.lines[path + (key,)] = k.start_mark.line + 1
            out[key] = self.build(v, path + (key,))
        for v in merges:
            sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for src in sources:  # the mapping's own keys win, then earlier merged mappings over later ones
                if not isinstance(src, yaml.MappingNode):
                    raise YamlFileError(src.start_mark.line + 1, "`<<` merges a mapping (`<<: *name`) or a list "
                                                                 "of mappings (`<<: [*a, *b]`)", path)
                sub_lines: dict[tuple, int] = {}
                merged = _Builder(sub_lines, self.constructor).build(src, path)
                taken = {key for key in merged if key not in out}
                out.update((key, merged[key]) for key in merged if key in taken)
                self.lines.update((p, line) for p, line in sub_lines.items()
                                  if len(p) > len(path) and p[len(path)] in taken)
        return out
