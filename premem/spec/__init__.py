"""The spec stage: a study's YAML file read, validated and expanded into runs.

- `schema`: the pydantic models of every section, `load_spec` / `parse_spec` (every problem at once, with file,
  line and field path) and the checks across sections;
- `base`: what every section builds on (`Strict`, `RunSelector`), below the measures that add sections;
- `runs`: the runs a spec asks for (`Run`, `expand_runs`) and the selectors that pick some of them;
- `yamlfile`: the one YAML reader (line numbers of every field; size, depth and alias limits);
- `doc`: docs/SPEC.md and `premem schema`, generated from the models.
"""
from __future__ import annotations

from premem.lazy import lazy_exports

__all__ = ["Spec", "SpecError", "load_spec", "parse_spec"]
__getattr__ = lazy_exports(__name__, {name: "schema" for name in __all__})
