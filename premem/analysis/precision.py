"""What the report says about the numeric precision runs were trained in (training.precision).

Under `pure` a bfloat16 or float16 model keeps its weights and AdamW state in that dtype, and updates smaller
than half a unit in the last place of a weight round away (bfloat16: 8 bits of mantissa, so a 5e-7 step of a
weight near 0.02 is lost). Such runs are not the authors' recipe (float32 master weights, autocast passes), so
the report marks them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from premem.plan.build import Plan


def pure_low_precision_runs(plan: Plan) -> dict[str, str]:
    """{run name: dtype} of the runs (grid runs and curation models) whose train jobs keep weights and optimizer
    state in a dtype other than float32 (training.precision pure on a bfloat16/float16 model)."""
    out: dict[str, str] = {}
    for job in plan.jobs:
        if job.kind != "train" or job.run is None:
            continue
        dtype = job.settings.model.get("dtype", "float32")
        if dtype != "float32" and job.settings.training.get("precision") == "pure":
            out[job.run] = dtype
    return out


def precision_notes(plan: Plan) -> list[str]:
    """The report's notes (sentences) on runs trained in pure low precision; [] when there are none."""
    runs = pure_low_precision_runs(plan)
    if not runs:
        return []
    dtypes = " / ".join(sorted(set(runs.values())))
    names = sorted(runs)
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return [f"{len(names)} run{'s' if len(names) != 1 else ''} trained in pure {dtypes} (training.precision: "
            f"pure): weights and optimizer state in {dtypes}, so updates smaller than a weight's last bit were "
            f"rounded away (most of a 5e-7 learning-rate step); the paper trains with float32 master weights "
            f"(precision: mixed). Runs: {shown}."]


def mark_precision(plan: Plan, summary: dict) -> None:
    """Mark runs trained in pure low precision in the report's `summary`: a note (precision_notes) and, in each
    such run's settings (shown on its page), `precision: pure bfloat16` (or float16)."""
    runs = pure_low_precision_runs(plan)
    summary.setdefault("notes", []).extend(precision_notes(plan))
    for entry in summary.get("runs", []):
        if entry.get("name") in runs:
            entry["settings"] = {**entry.get("settings", {}), "precision": f"pure {runs[entry['name']]}"}
