"""Names a package gives from its submodules, imported only when first asked for.

A stage package (premem.spec, premem.plan) offers its few public names at its top (`from premem.spec import
load_spec`) without importing its submodules when it is imported itself: importing `premem.plan.job` must not
load the planner, or a module that premem.plan.build imports could never import premem.plan.job (a cycle
through the package). premem's own modules import the submodule that owns a name; the package names are for
users, scripts and tests.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, owners: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` that returns each name of `owners` (name -> the submodule of
    `package` that defines it) from that submodule, importing it on first use; other names raise
    AttributeError (so `from package import submodule` still imports the submodule)."""
    def __getattr__(name: str) -> Any:
        owner = owners.get(name)
        if owner is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{owner}"), name)
    return __getattr__
