"""A spec file read into a validated `Spec` (`load_spec`, `parse_spec`), or `SpecError` listing every problem at
once, each a `Problem` with the file, the line and the field path it concerns (`FILE:LINE: field: message`), in
the spec's own terms rather than pydantic's.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from premem.registry import did_you_mean
from premem.safetext import escape_controls
from premem.spec import yamlfile
from premem.spec.checks import cross_field_problems
from premem.spec.schema import Spec
from premem.spec.yamlfile import YamlFileError

@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, at a place."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        """`FILE:LINE: field: message` as one printable line: a control character of a key, a value or the file
        name quoted in it is shown escaped (`\\x1b`), never sent to the terminal raw."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return escape_controls(f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}")


class SpecError(Exception):
    """A spec that cannot be used; `problems` lists everything found, in file order."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: p.line or 0)  # stable: within a line, as found
        super().__init__("\n".join(str(p) for p in self.problems))


def _compose(text: str, file: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML safely (plain data only, within premem.spec.yamlfile's limits) and return (data, {path: 1-based
    line})."""
    try:
        data, lines = yamlfile.compose(text)
    except YamlFileError as e:
        raise SpecError([Problem(file, e.line, ".".join(map(str, e.path)), e.message)]) from None
    if data is None:
        raise SpecError([Problem(file, 1, "", "the spec is empty")])
    return data, lines


def _field_errors(e: ValidationError, data: Any) -> list[tuple[tuple, dict]]:
    """(field path, error) of each of pydantic's errors, in the spec's own terms. A field that takes one of
    several types (`all` or a list of selectors, a number or a list of numbers) gets an error from every type
    it tried, each located under a tag naming the type (`metrics.runs.list[RunSelector].0`): the tags are left
    out of the path, and only the errors of the types that matched the value's shape (those that got inside it)
    are kept; `Input should be 'all'` about a list is noise."""
    out = []
    for err in e.errors():
        raw = tuple(err["loc"])
        parent = _at(data, raw[:-1]) if err["type"] == "invalid_key" and raw else None
        if isinstance(parent, dict):
            # pydantic names a key that is not text (1.5, null, a date) by its str() or repr(): find the key itself
            raw = raw[:-1] + (next((k for k in parent if str(raw[-1]) in (str(k), repr(k))), raw[-1]),)
        loc, cur, union, inside = [], data, None, False
        for i, part in enumerate(raw):
            if isinstance(cur, dict) and part in cur or isinstance(cur, list) and isinstance(part, int) and \
                    0 <= part < len(cur):
                loc.append(part)
                cur = cur[part]
                inside = union is not None
            elif isinstance(part, str) and (isinstance(cur, list) or not isinstance(cur, dict) and cur is not _GONE
                                            or isinstance(cur, dict) and (i < len(raw) - 1 or "[" in part)):
                union = union or tuple(loc)  # a union member's tag: not a place in the file
            else:  # a missing field, or a place inside one
                loc.append(part)
                cur = _GONE
                inside = union is not None
        out.append((tuple(loc), err, union, inside))
    deep = {u for _, _, u, inside in out if inside}
    return [(loc, err) for loc, err, union, inside in out if inside or union not in deep]


_GONE = object()  # where an error's location leaves the data


def _at(data: Any, loc: tuple) -> Any:
    """The value at `loc` in the data (_GONE where there is none)."""
    for part in loc:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and \
                0 <= part < len(data):
            data = data[part]
        else:
            return _GONE
    return data


def _line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of the deepest existing prefix of `loc` (a missing field points at its parent)."""
    for i in range(len(loc), -1, -1):
        if loc[:i] in lines:
            return lines[loc[:i]]
    return None


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at `loc` (for "did you mean" on unknown keys)."""
    tp: Any = Spec
    for part in loc:
        tp = _unwrap(tp, want_list=isinstance(part, int))
        if isinstance(part, int):
            continue
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)) or part not in tp.model_fields:
            return None
        tp = tp.model_fields[part].annotation
    tp = _unwrap(tp, want_list=False)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any, want_list: bool) -> Any:
    """Strip Optional/Union/Annotated/list around a type, keeping the model class inside."""
    for _ in range(6):
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            lists = [a for a in args if typing.get_origin(a) is list]
            tp = (lists or models or args)[0] if want_list else (models or lists or args)[0]
        elif origin is list and want_list:
            tp = typing.get_args(tp)[0]
            want_list = False
        else:
            break
    return tp


def _message(err: dict, loc: tuple) -> str:
    if err["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        hint = did_you_mean(str(loc[-1]), model.model_fields) if model else ""
        return f"unknown key{hint}"
    if err["type"] == "invalid_key":
        return "a key must be text (a name); a number, date, boolean or null is not one"
    if err["type"] == "finite_number":
        return "must be a finite number (NaN and infinities are not allowed)"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg


def parse_spec(text: str, file: str = "<spec>") -> Spec:
    """Validate YAML text as a Spec; raise SpecError listing every problem with file, line and field path."""
    data, lines = _compose(text, file)
    if not isinstance(data, dict):
        raise SpecError([Problem(file, 1, "", "a spec is a mapping of sections (name:, models:, ...)")])
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        problems = []
        for loc, err in _field_errors(e, data):
            problems.append(Problem(file, _line_for(lines, loc), ".".join(map(str, loc)), _message(err, loc)))
        raise SpecError(problems) from None
    sem = cross_field_problems(spec)
    if sem:
        raise SpecError([Problem(file, _line_for(lines, loc), ".".join(map(str, loc)), msg) for loc, msg in sem])
    return spec


def load_spec(path: str | Path) -> Spec:
    """Read and validate the spec at `path`; raise SpecError (with file:line) on any problem."""
    try:
        text = yamlfile.read_text(path, "spec")
    except YamlFileError as e:
        raise SpecError([Problem(str(path), e.line, "", e.message)]) from None
    return parse_spec(text, str(path))
