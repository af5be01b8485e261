"""The runs a spec asks for and the selectors that pick among them: `Run`, `expand_runs`, `match_runs`,
`unmatched_selectors` and the run choices of the spec's sections (calibration, measures, perturbed epochs).

It sits below both the spec's cross-field checks (premem.spec.schema, which refuses a selector that matches no run)
and the plan (premem.plan.build, which makes each run's jobs), so neither has to import the other to share them. It
reads spec objects but never imports premem.spec.schema at run time (the import below is for annotations only).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: premem.spec.schema imports this module
    from premem.spec.schema import Spec


@dataclass(frozen=True)
class Run:
    """One finetuning run of the study."""

    model: str
    dataset: str
    learning_rate: float
    epochs: int
    dataset_fraction: float
    seed: int = 0  # the seed its jobs hash and use (data order, sampling, initialisation): the spec's unless given
    # whether the spec gave the seed (grid.seeds, a run's seed): only then does the name show it, so a spec
    # without seeds names its runs as before. Not part of a run's identity: the same settings and seed are one run
    seeded: bool = field(default=False, compare=False)

    @cached_property  # formatted once: a plan names each run in several labels per epoch
    def base_name(self) -> str:
        """The name without its seed part: what the runs of one seed group share."""
        return f"{self.model}/{self.dataset}/lr{self.learning_rate:g}-ep{self.epochs}-frac{self.dataset_fraction:g}"

    @cached_property
    def name(self) -> str:
        return f"{self.base_name}/seed{self.seed}" if self.seeded else self.base_name

    def settings(self) -> dict:
        out = {"model": self.model, "dataset": self.dataset, "learning_rate": self.learning_rate,
               "epochs": self.epochs, "dataset_fraction": self.dataset_fraction}
        if self.seeded:
            out["seed"] = self.seed
        return out


def expand_runs(spec: Spec) -> list[Run]:
    """Every run of the spec: the grid (models x datasets x lrs x epochs x fractions x seeds) then the extra runs,
    without duplicates, in a stable order. Without grid.seeds (or a run's seed) a run has the spec's seed and
    its name has no seed part."""
    rule = spec.training.fixed_step_epochs
    grid_seeds = [(s, True) for s in spec.grid.seeds] if spec.grid.seeds else [(spec.seed, False)]
    runs: list[Run] = []
    for m in spec.models:
        for d in spec.datasets:
            for lr in spec.grid.learning_rate:
                for frac in spec.grid.dataset_fraction:
                    if frac < 1 and rule:
                        runs.extend(Run(m.name, d.name, lr, max(1, round(rule / frac)), frac, seed, seeded)
                                    for seed, seeded in grid_seeds)
                    else:
                        runs.extend(Run(m.name, d.name, lr, e, frac, seed, seeded)
                                    for e in spec.grid.epochs for seed, seeded in grid_seeds)
            for r in spec.runs:
                if r.model not in (None, m.name) or r.dataset not in (None, d.name):
                    continue
                epochs = r.epochs if r.epochs is not None else max(1, round(rule / r.dataset_fraction))
                seed, seeded = (r.seed, True) if r.seed is not None else (spec.seed, False)
                runs.append(Run(m.name, d.name, r.learning_rate, epochs, r.dataset_fraction, seed, seeded))
    seen, out = set(), []
    for r in runs:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


SELECTOR_KEYS = ("model", "dataset", "learning_rate", "epochs", "dataset_fraction", "seed")


def _selector_masks(selectors) -> dict[tuple[str, ...], dict[tuple, list[int]]]:
    """Selectors grouped by the fields they set: {fields set: {their values: indexes of the selectors}}. A run
    matches a selector when its values of those fields equal the selector's, so one dict lookup per group
    (at most 2^6 groups) replaces a comparison with every selector: matching stays linear in runs + selectors."""
    groups: dict[tuple[str, ...], dict[tuple, list[int]]] = {}
    for i, s in enumerate(selectors):
        keys = tuple(k for k in SELECTOR_KEYS if getattr(s, k) is not None)
        groups.setdefault(keys, {}).setdefault(tuple(getattr(s, k) for k in keys), []).append(i)
    return groups


def match_runs(runs: list[Run], selectors) -> list[Run]:
    """The runs (in order) that match `selectors`: "all", or a list of spec.RunSelector (a field left out
    matches anything; a run matching any selector is kept)."""
    if selectors == "all":
        return list(runs)
    groups = _selector_masks(selectors)
    return [r for r in runs if any(tuple(getattr(r, k) for k in keys) in values for keys, values in groups.items())]


def unmatched_selectors(runs: list[Run], selectors) -> list[int]:
    """Indexes of the selectors (a list of spec.RunSelector) that match none of `runs`, in order."""
    matched: set[int] = set()
    for keys, values in _selector_masks(selectors).items():
        for r in runs:
            matched.update(values.get(tuple(getattr(r, k) for k in keys), ()))
    return [i for i in range(len(selectors)) if i not in matched]


def selected_runs(spec: Spec, runs: list[Run]) -> list[Run]:
    """The runs that calibrate p (spec.premem.calibrate_on)."""
    return match_runs(runs, spec.premem.calibrate_on)


def measured_runs(spec: Spec, runs: list[Run]) -> list[Run]:
    """The runs whose checkpoints get the classic measures (spec.metrics.runs); a measure's `always_at`
    checkpoint (ATC's reference) gets its job even outside them (premem.measures.always_measured)."""
    return match_runs(runs, spec.metrics.runs)


class PerturbedEpochs:
    """The epochs of a perturbed run that the perturbations section (`pert`) names. Made once per plan: a list
    `perturbations.epochs` may repeat an epoch any number of times, so its distinct epochs are sorted once
    (`listed`; None for `final` and `all`) and each run takes the ones it has by bisection."""

    def __init__(self, pert):
        self.pert = pert
        self.listed = sorted(set(pert.epochs)) if isinstance(pert.epochs, list) else None

    def of(self, run: Run) -> list[int]:
        """The epochs of `run` (assumed perturbed: selected by perturbations.runs) whose checkpoints are sampled."""
        if self.pert.epochs == "final":
            return [run.epochs]
        if self.pert.epochs == "all":
            return list(range(1, run.epochs + 1))
        return self.listed[:bisect.bisect_right(self.listed, run.epochs)]


def perturbed_epochs(spec: Spec, run: Run) -> list[int]:
    """The epochs of `run` whose checkpoints are sampled under perturbed prompts (none when off or unselected)."""
    pert = spec.perturbations
    if pert is None or not match_runs([run], pert.runs):
        return []
    return PerturbedEpochs(pert).of(run)
