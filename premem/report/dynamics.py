"""Per-example dynamics: which training examples are correct and/or memorized at each checkpoint of a run,
cleaned and sorted for the heatmaps of the dynamics page and the run pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .common import as_dict, as_list, num

MAX_DYNAMICS_ROWS = 64

#: category code -> (label, colour) for the per-example dynamics pictures.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("incorrect, not memorized", "#e3e3e3"),
    ("correct, not memorized", "#1b9e77"),
    ("incorrect, memorized", "#d95f02"),
    ("correct, memorized", "#7570b3"),
)


@dataclass
class PreparedDynamics:
    epochs: list[Any]
    example_ids: list[Any]  # shown rows, sorted
    rows: list[list[int | None]]  # shown rows, sorted
    n_total: int
    all_example_ids: list[Any] = field(default_factory=list)  # every example, input order
    all_rows: list[list[int | None]] = field(default_factory=list)


def _code(v: Any) -> int | None:
    f = num(v)
    if f is None or f != int(f) or not 0 <= int(f) <= 3:
        return None
    return int(f)


def prepare_dynamics(entry: Mapping[str, Any] | None, max_rows: int = MAX_DYNAMICS_ROWS) -> PreparedDynamics:
    """Clean one run's dynamics, sort its examples (first epoch memorized, then first epoch correct; never
    memorized / never correct last) and keep at most ``max_rows`` of them, evenly spaced in that order."""
    entry = as_dict(entry)
    cats = [as_list(r) for r in as_list(entry.get("categories"))]
    epochs = as_list(entry.get("epochs"))
    n_cols = max([len(epochs)] + [len(r) for r in cats]) if (epochs or cats) else 0
    if len(epochs) < n_cols:
        epochs = epochs + [f"#{k + 1}" for k in range(len(epochs), n_cols)]
    rows = [[_code(v) for v in r] + [None] * (n_cols - len(r)) for r in cats]
    ids = as_list(entry.get("example_ids"))
    ids = [ids[i] if i < len(ids) else f"#{i}" for i in range(len(rows))]

    big = n_cols + 1

    def key(i: int) -> tuple[int, int, int]:
        r = rows[i]
        first_mem = next((j for j, c in enumerate(r) if c in (2, 3)), big)
        first_cor = next((j for j, c in enumerate(r) if c in (1, 3)), big)
        return (first_mem, first_cor, i)

    order = sorted(range(len(rows)), key=key)
    n = len(order)
    if n > max_rows > 0:
        if max_rows == 1:
            picks = [order[0]]
        else:
            picks = [order[round(k * (n - 1) / (max_rows - 1))] for k in range(max_rows)]
    else:
        picks = order
    return PreparedDynamics(
        epochs=epochs,
        example_ids=[ids[i] for i in picks],
        rows=[rows[i] for i in picks],
        n_total=n,
        all_example_ids=ids,
        all_rows=rows,
    )
