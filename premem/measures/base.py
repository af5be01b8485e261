"""What a classic generalization measure is to premem (`Measure`), and the registry of them (`MEASURES`).

A measure is one entry that says everything premem needs to plan, run, cost, analyze and show it:
- `settings`: its section under the spec's `metrics:` (a premem.spec.base.Strict model; `{}` for defaults);
- `plan(config, at)`: what its job at one checkpoint is made of (`MeasureJob`: settings, dependencies);
- `run(ctx)`: the computation, where the job runs (ctx: premem.jobs.measure.MeasureContext); returns
  {"value": float | None, ...}: the value goes on the checkpoint as `<name>` unless `analyze` says otherwise;
- `work(config, sizes)`: how much it trains, samples, scores and loads, for `premem plan --cost`;
- `label`, `axis`, `value_key`, `test_key`, `test_label`: how the analysis and the report name it;
- optional hooks: `check` (cross-field spec problems), `always_at` (a checkpoint measured whatever
  `metrics.runs` says), `analyze` (turn the stored results into checkpoint values itself, as ATC does).

This module imports nothing of premem beyond the registry and the spec's base, so the spec (which builds its
`metrics:` section from the registry), the plan, the jobs, the cost model and the analysis can all read it.
A measure's own module keeps its torch code inside its functions, so importing the registry stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from premem.registry import Registry
from premem.spec.base import Strict

if TYPE_CHECKING:  # annotations only
    from premem.jobs.measure import MeasureContext
    from premem.spec.runs import Run

__all__ = ["Checkpoint", "MEASURES", "Measure", "MeasureJob", "Sizes", "always_measured", "register"]


@dataclass(frozen=True)
class Checkpoint:
    """What the plan knows about a checkpoint when it plans a measure of it (`Measure.plan`'s `at`).

    `with_data` and `without_data` are the settings that identify the checkpoint's inputs beyond its train job
    (model, seed, device; with_data adds the run's training examples); `sampling` is how the run's dataset is
    sampled (its evaluation settings, overrides applied); `batch_size` the run's training batch size; `train`
    the id of the job that writes the checkpoint; `base` the id of the pretrain job the run started from (None
    for a hub model)."""

    train: str
    base: str | None
    batch_size: int
    with_data: dict
    without_data: dict
    sampling: dict


@dataclass(frozen=True)
class MeasureJob:
    """A measure's job at one checkpoint, as `Measure.plan` returns it: `settings` (the checkpoint's, plus what
    the measure reads: only premem.plan.job_settings.MeasureSettings' fields, e.g. `sampling`), `config` (its
    resolved section: defaults filled in) and `deps`, each job it reads by its role (premem.plan.job.Job.roles):
    {"checkpoint": at.train} first, then anything else it loads (weight distance: "base"). The job's id hashes
    them in this order."""

    settings: dict
    config: dict
    deps: dict[str, str]


@dataclass(frozen=True)
class Sizes:
    """What the cost model knows about a run when it asks a measure for its work: `run_examples` (train
    examples of the run), `example_tokens` (prompt + target tokens of one), `evaluated` (train prompts an
    evaluation samples) and `completion_tokens` (tokens of one sampled completion)."""

    run_examples: int
    example_tokens: int
    evaluated: int
    completion_tokens: int


@dataclass(frozen=True)
class Measure:
    """One classic measure (see the module's docstring for each field)."""

    name: str
    settings: type[Strict]
    description: str
    label: str
    axis: str
    plan: Callable[[dict, Checkpoint], MeasureJob]
    run: Callable[["MeasureContext"], dict]
    work: Callable[[dict, Sizes], dict]
    value_key: str = ""  # checkpoint key plotted against the gap; "" = the name
    test_key: str = ""  # checkpoint key compared with test accuracy; "" = value_key
    test_label: str = ""  # its axis label; "" = axis
    #: the checkpoint key of the accuracy the measure predicts, if it predicts one (its value_key is then train
    #: accuracy minus it): the bootstrap resamples train accuracy and holds the prediction fixed
    predicts: str | None = None
    check: Callable[[Any, list["Run"]], list[tuple[tuple, str]]] | None = None
    always_at: Callable[[Any, list["Run"]], "tuple[Run, int] | None"] | None = None
    analyze: Callable[..., dict] | None = None
    #: the spec dumps `metrics.<name>: null` when the measure is off only for the measures premem had when
    #: studies were first stored (their analysis settings, and so ids, stay as they were); others are left out
    dumped_when_off: bool = False

    @property
    def gap_key(self) -> str:
        return self.value_key or self.name

    @property
    def test_value_key(self) -> str:
        return self.test_key or self.gap_key

    @property
    def test_axis(self) -> str:
        return self.test_label or self.axis


MEASURES: Registry[Measure] = Registry("measure")


def register(measure: Measure) -> Measure:
    """Add `measure` to the registry (ValueError if its name is taken) and return it. Register before premem.spec.schema
    is imported: the spec's `metrics:` section is built from the registry once (an installed package does it
    through the `premem.measures` entry point group, which premem.measures loads first)."""
    if not measure.name.isidentifier() or measure.name in ("runs", "premem"):
        raise ValueError(f"a measure's name must be a Python identifier other than 'runs' and 'premem': "
                         f"{measure.name!r}")
    return MEASURES.register(measure.name, measure)


def always_measured(spec, runs: list["Run"]) -> dict[tuple[str, int], list[str]]:
    """The checkpoints a switched-on measure computes at whatever `metrics.runs` says (its `always_at`, e.g.
    ATC's reference): (run name, epoch) -> the names of those measures."""
    out: dict[tuple[str, int], list[str]] = {}
    for name in spec.metrics.enabled():
        measure = MEASURES.get(name)
        at = measure.always_at(getattr(spec.metrics, name), runs) if measure.always_at else None
        if at is not None:
            out.setdefault((at[0].name, at[1]), []).append(name)
    return out
