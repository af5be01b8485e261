"""The classic generalization measures premem compares PreMemAcc with, one module each, found by name.

Each module of this package declares one `Measure` (premem.measures.base: its spec section, its job, its
computation, its cost and how the report names it) and the list below registers it; the spec's `metrics:`
section, the plan, the jobs, `premem plan --cost`, the analysis and the report all read the registry, so a new
measure is its own module plus one line here. A measure from another installed package registers through the
`premem.measures` entry point group (`name = "package.module:MEASURE"`), loaded here, in every process that
imports premem (Ray workers included). docs/ARCHITECTURE.md walks through adding one.
"""
from __future__ import annotations

import sys
from importlib.metadata import entry_points

from premem.measures import atc, gradient_variance, weight_distance
from premem.measures.base import MEASURES, Checkpoint, Measure, MeasureJob, Sizes, always_measured, register

__all__ = ["Checkpoint", "ENTRY_POINT_GROUP", "MEASURES", "Measure", "MeasureJob", "Sizes", "always_measured",
           "register"]

ENTRY_POINT_GROUP = "premem.measures"

# The built-in measures, in the order the report shows them (the paper's Fig. 5).
for _builtin in (gradient_variance.MEASURE, weight_distance.MEASURE, atc.MEASURE):
    register(_builtin)


def _load_plugins() -> None:
    """Register each measure an installed package declares under ENTRY_POINT_GROUP. One that fails to load is
    reported on stderr and left out (a spec that names it then gets "unknown measure"), so a broken plugin
    never stops premem itself."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            measure = ep.load()
            if not isinstance(measure, Measure):
                raise TypeError(f"{ep.value} is a {type(measure).__name__}, not a premem.measures.Measure")
            if measure.name != ep.name:
                raise ValueError(f"the entry point is named {ep.name!r} but the measure {measure.name!r}")
            register(measure)
        except Exception as e:  # noqa: BLE001 - any failure of someone else's code: say it, go on
            print(f"premem: the measure plugin {ep.name!r} ({ep.value}) was not loaded: {type(e).__name__}: {e}",
                  file=sys.stderr)


_load_plugins()
