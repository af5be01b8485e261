"""The settings of one analysis (`premem analyze`'s options), checked once for the API and the CLI alike."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Options", "OptionError", "options"]

DEFAULT_LEVEL, DEFAULT_RESAMPLES = 0.95, 1000
MAX_RESAMPLES = 100_000


class OptionError(ValueError):
    """A setting out of range: `option` is its name (as the API spells it: 'p_grid', 'ci_level'), `problem`
    the rest of the sentence, so the CLI can name its flag (--p-grid) in the same words."""

    def __init__(self, option: str, problem: str):
        self.option, self.problem = option, problem
        super().__init__(f"{option}{problem}")


@dataclass(frozen=True)
class Options:
    """Checked settings: `ps` the p grid's values (log of the mean target NLL per token), `grid_text` the grid as
    START:STOP:STEP, `p` a fixed p (None: calibrate), `fit` 'identity' (R^2 about y = x) or 'line',
    `calibrate` 'per_block' or 'pooled', `calibrate_on` run names or selectors (None: every run), bootstrap
    `ci_level` (a fraction), `resamples` (0: no intervals) and `ci_seed`."""

    ps: list[float]
    grid_text: str
    p: float | None = None
    fit: str = "identity"
    calibrate: str = "per_block"
    calibrate_on: tuple[str, ...] | None = None
    ci_level: float = DEFAULT_LEVEL
    resamples: int = DEFAULT_RESAMPLES
    ci_seed: int = 0


def _grid(value: str | Sequence[float] | None):
    """premem.spec.schema.PGrid from 'START:STOP:STEP', (start, stop, step) or None (the spec's default grid)."""
    from pydantic import ValidationError

    from premem.spec.schema import PGrid

    if value is None:
        return PGrid()
    text = value if isinstance(value, str) else ":".join(str(x) for x in value)
    parts = text.split(":") if isinstance(value, str) else list(value)
    try:
        if len(parts) != 3:
            raise ValueError
        start, stop, step = (float(x) for x in parts)
        if not all(math.isfinite(x) for x in (start, stop, step)):
            raise ValueError
    except (TypeError, ValueError):
        raise OptionError("p_grid", f": expected START:STOP:STEP, three finite numbers (e.g. -3:-0.5:0.05), "
                                    f"got {text!r}") from None
    try:
        return PGrid(start=start, stop=stop, step=step)
    except ValidationError as e:
        msg = "; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())
        raise OptionError("p_grid", f" {text}: {msg}") from None


def options(*, p: float | None = None, p_grid: str | Sequence[float] | None = None, fit: str = "identity",
            pooled: bool = False, calibrate_on: Sequence[str] | None = None, ci_level: float = DEFAULT_LEVEL,
            resamples: int = DEFAULT_RESAMPLES, ci_seed: int = 0) -> Options:
    """Checked Options; raises OptionError (a ValueError) naming the first setting out of range. `p_grid`:
    'START:STOP:STEP' or (start, stop, step), default -3:-0.5:0.05; `p`: a fixed p instead of calibrating;
    `fit`: 'identity' or 'line'; `pooled`: one p for all calibration runs instead of one per (model, dataset)
    block; `calibrate_on`: run names or selectors key=value[,key=value]; `ci_level` in (0, 1); `resamples` in
    [0, 100000]; `ci_seed` >= 0."""
    grid = _grid(p_grid)
    if p is not None and not math.isfinite(p):
        raise OptionError("p", f" must be a finite number, got {p}")
    if not 0 < ci_level < 1:
        raise OptionError("ci_level", f" must be between 0 and 1, got {ci_level}")
    if not 0 <= resamples <= MAX_RESAMPLES:
        raise OptionError("resamples", f" must be between 0 and {MAX_RESAMPLES}, got {resamples}")
    if ci_seed < 0:
        raise OptionError("ci_seed", f" must be 0 or more, got {ci_seed}")
    if fit not in ("identity", "line"):
        raise OptionError("fit", f" must be 'identity' or 'line', got {fit!r}")
    return Options(ps=grid.values(), grid_text=f"{grid.start:g}:{grid.stop:g}:{grid.step:g}",
                   p=None if p is None else float(p), fit=fit, calibrate="pooled" if pooled else "per_block",
                   calibrate_on=tuple(calibrate_on) if calibrate_on else None, ci_level=float(ci_level),
                   resamples=int(resamples), ci_seed=int(ci_seed))
