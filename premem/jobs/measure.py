"""The `measure` job kind: one classic measure (premem.measures) of one checkpoint.

`run_measure` finds the measure by the name in the job's settings and hands its `run` a `MeasureContext`: the
job's resolved section of the spec (`config`), its settings, and what a measure may need where it runs, loaded
on first use: the checkpoint, the model the run started from, the run's train examples, a sampler. The measure
returns {"value": ..., ...}; the result adds its name and the seconds it took.
"""
from __future__ import annotations

import time
from functools import cached_property

from premem.jobs.context import (Progress, UserError, evaluated_train, job_device, job_sampling_dtype, job_sections,
                                 model_section, sampler_params, set_job_threads)
from premem.measures import MEASURES
from premem.plan.job import Job
from premem.plan.job_settings import MeasureSettings
from premem.registry import UnknownName
from premem.store import Store

__all__ = ["MeasureContext", "run_measure"]


class MeasureContext:
    """What a measure's `run` gets: `config` (its section, defaults resolved), `settings` (the job's), `progress`,
    `device`, and loaders that read only what the measure asks for."""

    def __init__(self, job: Job, store: Store, progress: Progress):
        self.job, self.store, self.progress = job, store, progress
        self.settings: MeasureSettings = job.settings
        self.config: dict = job.settings.config
        self.device = job_device(job)
        # a measure that reads no data (weight distance) has no dataset section in its identity
        self.model_spec, self.dataset = (job_sections(job) if job.settings.dataset is not None
                                         else (model_section(job), None))

    @cached_property
    def _checkpoint(self):
        from premem.engine.models import load_model

        spec = self.model_spec
        return load_model(self.store.artifact(self.job.dep("checkpoint")), device=self.device, dtype=spec.dtype,
                          trust_remote_code=spec.trust_remote_code)

    def checkpoint(self):
        """The checkpoint measured (premem.engine.models.LoadedModel), in the model's dtype."""
        return self._checkpoint

    def base_model(self):
        """The model the run started from: its pretrain job's (the job's `base` dependency), or the hub model at
        the revision the run used."""
        from premem.engine.models import load_model

        spec = self.model_spec
        base = self.job.dep("base")
        source, revision = (self.store.artifact(base), None) if base else (spec.hf, spec.revision)
        return load_model(source, device=self.device, dtype=spec.dtype, trust_remote_code=spec.trust_remote_code,
                          revision=revision)

    def train_examples(self, limit: int | None = None) -> list:
        """The run's train examples (its dataset_fraction's seeded subset), the first `limit` of them if given."""
        if self.dataset is None:
            raise UserError(f"the measure {self.settings.measure!r} reads train examples, but its plan gave "
                            "its job no dataset (its `plan` should build on Checkpoint.with_data)")
        return evaluated_train(self.job, self.dataset, limit)

    def sample(self, prompts: list[str], sampling: dict, n: int, what: str = "samples") -> list[list[str]]:
        """`n` completions per prompt from the checkpoint with premem's transformers sampler, under `sampling`
        (a Checkpoint.sampling dict, as the plan stored it), seeded by the job's id."""
        from premem.engine.models import with_dtype
        from premem.engine.sampling import TransformersSampler

        dtype = job_sampling_dtype(sampling, self.job, self.progress)
        sampler = TransformersSampler(with_dtype(self.checkpoint(), dtype), batch_size=sampling["batch_size"])
        return sampler.sample(prompts, sampler_params(sampling, n, int(self.job.id[:8], 16)),
                              progress=lambda m: self.progress(f"{what}: {m}"))


def run_measure(job: Job, store: Store, progress: Progress) -> dict:
    """One classic measure (settings.measure) of the checkpoint of the job's train dependency: the measure's
    result with its name and 'seconds'."""
    set_job_threads(job)
    try:
        measure = MEASURES.get(job.settings.measure)
    except UnknownName as e:  # a plugin installed where the plan was made but not where the job runs
        raise UserError(f"{e} (is the package that provides it installed on this node?)") from None
    t0 = time.time()
    out = measure.run(MeasureContext(job, store, progress))
    return {"measure": measure.name, **out, "seconds": time.time() - t0}
