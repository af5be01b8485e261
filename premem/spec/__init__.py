"""The spec stage: a study's YAML file read, validated and expanded into runs.

- `schema`: the pydantic models of every section (`Spec` at the top) and its JSON Schema;
- `checks`: the checks across sections (names that must exist, selectors, the plan's size);
- `load`: `load_spec` / `parse_spec` (every problem at once, as `SpecError`, with file, line and field path);
- `base`: what every section builds on (`Strict`, `RunSelector`), below the measures that add sections;
- `runs`: the runs a spec asks for (`Run`, `expand_runs`) and the selectors that pick some of them;
- `yamlfile`: the one YAML reader (line numbers of every field; size, depth and alias limits);
- `doc`: docs/SPEC.md and `premem schema`, generated from the models.
"""
from __future__ import annotations

from premem.lazy import lazy_exports

__all__ = ["Spec", "SpecError", "load_spec", "parse_spec"]
__getattr__ = lazy_exports(__name__, {"Spec": "schema", "SpecError": "load", "load_spec": "load", "parse_spec": "load"})
