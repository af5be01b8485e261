"""premem's module import graph is a DAG, and no module imports another premem module's `_private` names.

A cycle makes the modules in it one lump: none can be read, tested or changed alone, and the cycle is usually
hidden behind an import inside a function or a callback passed in to dodge it. A private name imported across
modules is a shared thing that was never given a home. So the shape holds only if a test holds it: this one reads
every module of premem/ with `ast` (no import runs) and counts every import it finds, at module level and inside
functions alike, relative ones resolved. Imports under `if TYPE_CHECKING:` are left out: they never run, and they
are how a lower module annotates with a higher module's types. Importing `premem.plan.job` runs
`premem/plan/__init__.py` first, so it counts as importing the package `premem.plan` too.

When it fails: move the shared thing down into a module both sides can import (see "The modules today" in
docs/ARCHITECTURE.md), or give a private name a public one in the module that owns it.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREMEM = ROOT / "premem"


def module_names(root: Path) -> dict[str, tuple[Path, bool]]:
    """Every module of the package at `root`: dotted name -> (file, whether it is a package's __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import and ImportFrom node of `tree`, wherever it is, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the `else:` branch does run
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """The import graph of the package at `root` ({module: modules it imports}, the package's own modules only)
    and its private imports: (importing module, module imported from, `_name`) for each `_name` a module takes
    from another module of the package (by `from m import _name`, or as `m._name` after importing m)."""
    modules = module_names(root)
    top = root.name
    graph: dict[str, set[str]] = {name: set() for name in modules}
    private: list[tuple[str, str, str]] = []

    def owner(dotted: str) -> str | None:
        """The package module that `dotted` names or lies in (None: outside the package)."""
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name if is_package else name.rpartition(".")[0]
        aliases: dict[str, str] = {}  # local name -> package module it is bound to (for `m._name`)
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] != top:
                        continue
                    target = owner(alias.name)
                    if target is not None:
                        graph[name].add(target)
                        # `import a.b.c` binds `a`; `import a.b.c as x` binds x to a.b.c
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else top
                continue
            if node.level:  # relative: one level is the current package, each further level one up
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != top:
                continue
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:  # `from pkg import submodule`
                    target = f"{source}.{alias.name}"
                    aliases[alias.asname or alias.name] = target
                else:
                    target = owner(source)
                    if target is None:
                        continue
                    if _private(alias.name) and target != name:
                        private.append((name, target, alias.name))
                if target != name:
                    graph[name].add(target)
        for node in ast.walk(tree):  # `m._name` where m is a package module bound by an import above
            if isinstance(node, ast.Attribute) and _private(node.attr):
                dotted = _dotted(node.value)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                if head in aliases:
                    target = ".".join(filter(None, [aliases[head], rest]))
                    if target in modules and target != name:
                        private.append((name, target, node.attr))
    for name, targets in graph.items():
        targets |= {package for target in list(targets) for package in _packages_run(name, target, modules)}
    return graph, private


def _packages_run(importer: str, target: str, modules: dict[str, tuple[Path, bool]]) -> list[str]:
    """The packages whose `__init__` runs when `importer` imports `target`: Python imports every package above a
    module first. Those that hold `importer` are left out, as they are already being imported (their `__init__`
    importing their own modules, as a registry does, is no cycle)."""
    parts = target.split(".")
    above = (".".join(parts[:k]) for k in range(1, len(parts)))
    return [p for p in above if p in modules and modules[p][1] and p != importer and not importer.startswith(p + ".")]


def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or through others (the strongly connected
    components of more than one module); [] for a DAG."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm (the graph is small: recursion is fine)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that ends where it starts) through each tangle of `graph`; [] for a DAG."""
    return [_cycle_in(graph, group) for group in tangles(graph)]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the first module (by name) of a strongly connected `group`."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:  # breadth-first within the group, back to `start`
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{sorted(group)} is not strongly connected")


def test_premem_imports_form_a_dag():
    graph, _ = import_graph(PREMEM)
    found = tangles(graph)
    assert not found, "premem's imports have cycles (move what both sides share into a module below them): " + \
        "; ".join(f"{' -> '.join(_cycle_in(graph, group))} (all tangled: {', '.join(sorted(group))})"
                  for group in found)


def test_no_premem_module_imports_another_modules_private_names():
    _, private = import_graph(PREMEM)
    assert not private, "private names used across premem modules (give them a public name where they live): " + \
        "; ".join(f"{who} imports {name} from {where}" for who, where, name in private)


def test_the_graph_sees_every_module_and_the_imports_it_should():
    """A check that finds nothing is only worth something if it looks: premem's own graph has the modules and
    a few known edges, a lazy import inside a function included."""
    graph, _ = import_graph(PREMEM)
    assert {"premem.spec.schema", "premem.plan.build", "premem.data.loaders", "premem.report.pages"} <= set(graph)
    assert "premem.spec.schema" in graph["premem.plan.build"]
    assert "premem.jobs.curation" in graph["premem.jobs.runners"]  # imported inside run_collect
    assert "premem.spec.runs" in graph["premem.spec.checks"]


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    # importing pkg.low.leaf runs pkg/low/__init__.py first; an __init__ that imports its package's planner (which
    # imports back into whoever asked) makes a cycle no single import line shows
    root = _package(tmp_path, {
        "low/__init__.py": "from pkg.low.planner import build\n",
        "low/leaf.py": "X = 1\n",
        "low/planner.py": "from pkg import spec\n",
        "spec.py": "from pkg.low.leaf import X\n",
    })
    graph, _ = import_graph(root)
    assert "pkg.low" in graph["pkg.spec"]
    assert tangles(graph) == [{"pkg.low", "pkg.low.planner", "pkg.spec"}]


def test_a_package_init_importing_its_own_modules_is_no_cycle(tmp_path):
    # a registry: the package imports each member, and each member imports a sibling (never the package)
    root = _package(tmp_path, {
        "reg/__init__.py": "from pkg.reg import one, two\n",
        "reg/base.py": "REGISTRY = {}\n",
        "reg/one.py": "from pkg.reg.base import REGISTRY\n",
        "reg/two.py": "from pkg.reg.base import REGISTRY\n",
    })
    graph, _ = import_graph(root)
    assert tangles(graph) == []


def test_a_cycle_through_a_function_level_import_is_found_and_named(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from pkg.b import f\n",
        "b.py": "def f():\n    from pkg import c\n    return c\n",
        "c.py": "import pkg.a\n",
        "d.py": "from pkg.a import f\n",  # imports into the cycle, is not part of it
    })
    graph, _ = import_graph(root)
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    assert tangles(graph) == [{"pkg.a", "pkg.b", "pkg.c"}]


def test_relative_imports_resolve_and_type_checking_imports_do_not_count(tmp_path):
    root = _package(tmp_path, {
        "sub/__init__.py": "from .low import x\n",
        "sub/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..high import y\nx = 1\n",
        "sub/mid.py": "from . import low\nfrom .. import high\n",
        "high.py": "from .sub.mid import low\ny = 2\n",
    })
    graph, _ = import_graph(root)
    assert graph["pkg.sub"] == {"pkg.sub.low"}
    assert graph["pkg.sub.mid"] == {"pkg.sub.low", "pkg.high"}
    assert graph["pkg.high"] == {"pkg.sub.mid", "pkg.sub"}  # importing pkg.sub.mid runs pkg/sub/__init__.py first
    assert graph["pkg.sub.low"] == set()  # the TYPE_CHECKING import never runs
    assert cycles(graph) == [["pkg.high", "pkg.sub.mid", "pkg.high"]]


def test_private_names_imported_or_reached_across_modules_are_named(tmp_path):
    root = _package(tmp_path, {
        "a.py": "def _helper(): pass\ndef _own(): return _helper()\n",
        "b.py": "from pkg.a import _helper, __doc__\n",
        "c.py": "def f():\n    from .a import _helper as h\n    return h\n",
        "d.py": "from pkg import a\nimport pkg.a\nimport pkg.a as aa\n"
                "x = a._helper\ny = pkg.a._helper\nz = aa._helper\nw = a.__name__\n",
    })
    _, private = import_graph(root)
    assert sorted(private) == [("pkg.b", "pkg.a", "_helper"), ("pkg.c", "pkg.a", "_helper"),
                               ("pkg.d", "pkg.a", "_helper"), ("pkg.d", "pkg.a", "_helper"),
                               ("pkg.d", "pkg.a", "_helper")]


@pytest.mark.parametrize("text", ["import os\n", "from collections import _chain_from_iterable\n"])
def test_imports_from_outside_the_package_are_not_counted(tmp_path, text):
    graph, private = import_graph(_package(tmp_path, {"a.py": text}))
    assert graph["pkg.a"] == set() and private == []


def test_no_premem_module_reads_the_repositorys_bench_folder():
    """An installed premem has no bench/ beside it: what the package needs at run time is package data."""
    found = []
    for path in sorted(PREMEM.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in ("bench", "bench/"):
                found.append(f"{path.relative_to(PREMEM.parent)}:{node.lineno}")
    assert not found, "premem reaches into the repository's bench/ folder: " + ", ".join(found)


def test_premem_report_never_loads_torch(tmp_path):
    """`premem report` (and the analysis every apply ends with) reads stored numbers: loading torch for it cost
    about 3 s a call. Run on a store of made-up results, in a process of its own."""
    from tests.analysis.test_results_table import SPEC, synthetic_store

    synthetic_store(tmp_path)
    (tmp_path / "synth.yaml").write_text(SPEC.format(store=tmp_path / ".premem"))
    code = ("import sys; from premem.cli import main; rc = main(['report', 'synth.yaml']); "
            "print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "reports" / "index.html").is_file()
    assert out.stdout.strip().splitlines()[-1] == "0 False", out.stdout  # exit 0, torch never loaded
