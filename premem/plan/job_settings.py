"""The settings of each kind of job, typed: what the plan hands a job and the job reads (`PretrainSettings`,
`TrainSettings`, `EvaluateSettings`, `MeasureSettings`, `PerturbSettings`, `CollectSettings`, `ScoreSettings`,
`AnalysisSettings`).

A job's settings are also what its id hashes (premem.plan.job.content_hash reads `hashed()`): the canonical JSON
of every stored study's jobs was fixed when settings were plain dicts, so `hashed()` gives exactly those dicts. A
field made with `optional()` is left out of them while it is None (the key was added only when set, and adding it
as null would change the ids of every job planned before it existed); every other field is always in, None
included. The spec sections a job carries (`model`, `dataset`, `training`, `evaluation`, `sampling`, `source`, a
measure's `config`) stay plain data, as hashed: premem.jobs.context rebuilds the spec's models from them where a
job runs. Jobs of one (model, dataset) pair share those dicts: treat them as read-only.

This module imports nothing of premem, so the plan, the jobs, the store and the cost model can all read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = ["AnalysisSettings", "CheckpointInputs", "CollectSettings", "EvaluateSettings", "JobSettings",
           "MeasureSettings", "PerturbSettings", "PretrainSettings", "ScoreSettings", "TrainSettings", "optional"]


def optional(default=None):
    """A field left out of `hashed()` while it is None (see the module docstring)."""
    return field(default=default, metadata={"optional": True})


@dataclass(frozen=True)
class JobSettings:
    """Base of every kind's settings: `hashed()` (the plain data the id hashes and the store records) and
    `from_hashed()` (back from that data: a TypeError names a key the kind does not have)."""

    kind: ClassVar[str]

    def hashed(self) -> dict[str, Any]:
        """The settings as the plain dict the job's id hashes: optional fields only when set."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.metadata.get("optional") and getattr(self, f.name) is None)}

    @classmethod
    def from_hashed(cls, data: dict[str, Any]) -> JobSettings:
        """The settings whose `hashed()` is `data`; TypeError for a key this kind has not, or a missing one."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(f"{cls.kind} settings have no {unknown} (they have: {sorted(known)})")
        return cls(**data)


@dataclass(frozen=True)
class PretrainSettings(JobSettings):
    """Pretraining a built-in model: its section (without dtype and trust_remote_code: pretraining is always
    float32 on built-in code), the generator's section (without split sizes), the spec's seed and device."""

    kind: ClassVar[str] = "pretrain"
    model: dict
    dataset: dict
    seed: int
    device: str


@dataclass(frozen=True)
class CheckpointInputs(JobSettings):
    """What identifies the inputs of a run's jobs beyond their dependencies: the model section, the run's seed
    and the device (every kind that trains or reads a run's checkpoint has these)."""

    model: dict
    seed: int
    device: str


@dataclass(frozen=True)
class TrainSettings(CheckpointInputs):
    """One epoch of a run: the dataset section without test_size (training never reads the test split; the whole
    section for curation's IFD scorer, which trains on `train_split`), the training recipe, the run's learning
    rate, epochs, dataset fraction and this epoch. `data_files`: the local data files' digests; `model_sha256`:
    a local hf model folder's digest (epoch 1 only, later epochs chain on); `collected`: the id of the curation
    round's collection it trains on besides the originals."""

    kind: ClassVar[str] = "train"
    dataset: dict
    training: dict
    learning_rate: float
    epochs: int
    dataset_fraction: float
    epoch: int
    data_files: dict | None = optional()
    model_sha256: str | None = optional()
    train_split: str | None = optional()
    collected: str | None = optional()


@dataclass(frozen=True)
class EvaluateSettings(CheckpointInputs):
    """One checkpoint's evaluation: the dataset section, its evaluation settings (overrides resolved), the run's
    dataset fraction. `scoring_dtype`: the dtype target perplexity is scored in (non-float32 models only);
    `sampling_seed` and `skip_settled_below`: set under evaluation.skip_settled only."""

    kind: ClassVar[str] = "evaluate"
    dataset: dict
    evaluation: dict
    dataset_fraction: float
    data_files: dict | None = optional()
    scoring_dtype: str | None = optional()
    sampling_seed: int | None = optional()
    skip_settled_below: float | None = optional()


@dataclass(frozen=True)
class MeasureSettings(CheckpointInputs):
    """One classic measure of one checkpoint: `measure` (its registered name) and `config` (its resolved
    `metrics:` section), plus what its `plan` took from the checkpoint (premem.measures.Checkpoint): the run's
    training examples (`dataset`, `dataset_fraction`, `data_files`) for a measure that reads them, `sampling`
    for one that samples."""

    kind: ClassVar[str] = "measure"
    measure: str
    config: dict
    dataset: dict | None = optional()
    dataset_fraction: float | None = optional()
    data_files: dict | None = optional()
    sampling: dict | None = optional()


@dataclass(frozen=True)
class PerturbSettings(CheckpointInputs):
    """One checkpoint sampled under one prompt: the run's training examples, the `preamble` put after each
    prompt ("" for the original prompt), `samples` per prompt and how to sample."""

    kind: ClassVar[str] = "perturb"
    dataset: dict
    dataset_fraction: float
    preamble: str
    samples: int
    sampling: dict
    data_files: dict | None = optional()


@dataclass(frozen=True)
class ScoreSettings(CheckpointInputs):
    """IFD scores of curation's originals under the scorer's checkpoint: the dataset section, and
    `unconditional` (set only when not after_cue)."""

    kind: ClassVar[str] = "score"
    dataset: dict
    data_files: dict | None = optional()
    unconditional: str | None = optional()


@dataclass(frozen=True)
class CollectSettings(JobSettings):
    """One curation round's new examples: the `strategy` that chooses originals, the `round`, how many
    `new_examples`, the dataset section (without test_size), the seed, the `source` of new examples and `after`
    (the previous round's collection, None in round 1). Per strategy: premem's `threshold`, `p` and the
    `evaluations` it reads; ifd's `percent` and `scores` (the score job); heuristic's `percent`."""

    kind: ClassVar[str] = "collect"
    strategy: str
    round: int
    new_examples: int
    dataset: dict
    seed: int
    source: dict
    after: str | None
    data_files: dict | None = optional()
    threshold: float | None = optional()
    p: float | None = optional()
    evaluations: list[str] | None = optional()
    percent: float | None = optional()
    scores: str | None = optional()

    def hashed(self) -> dict[str, Any]:
        out = super().hashed()
        if self.strategy == "premem":  # its p is hashed even when None (premem.p calibrated)
            out["p"] = self.p
        return out


@dataclass(frozen=True)
class AnalysisSettings(JobSettings):
    """The analysis: the spec's premem section, the runs p is calibrated on, and the metrics, perturbations and
    curation sections when the spec has them."""

    kind: ClassVar[str] = "analysis"
    premem: dict
    calibration_runs: list[str]
    metrics: dict | None = optional()
    perturbations: dict | None = optional()
    curation: dict | None = optional()
