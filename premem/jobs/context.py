"""What every kind of job needs from where it runs, whatever it computes: the device and threads it may use,
its spec sections rebuilt from its settings, its dataset's examples, its dependencies' stored rows, the
progress callback and the error that says the spec or the data is at fault (`UserError`).

The job kinds (premem.jobs.runners, premem.jobs.curation, premem.jobs.training, premem.jobs.sharded) import these from
here; this module imports none of them, so they never import each other to share a helper.
"""
from __future__ import annotations

from typing import Callable

import torch

from premem.engine.hardware import resolve_sampling_dtype
from premem.errors import UserError
from premem.plan.job import Job
from premem.plan.job_settings import CheckpointInputs
from premem.store import Store

__all__ = ["Progress", "UserError", "dataset_section", "dataset_splits", "dependency_train_rows", "evaluated_train",
           "job_device", "job_sampling_dtype", "job_sections", "model_section", "run_examples", "sampler_params",
           "set_job_threads"]

Progress = Callable[[str], None]


def set_job_threads(job: Job) -> None:
    """Give torch as many threads as the CPUs the job asked Ray for."""
    # 2 tasks on 2 cores get 1 thread each: more would make them fight over the cores
    torch.set_num_threads(max(1, int(job.resources.get("cpus", 1))))


def job_device(job: Job) -> str:
    """The device a job computes on: `auto` means cuda only for a job that asked Ray for a GPU (a job with
    none would otherwise share whatever GPU it happens to see with every other job). A collect job's identity
    names no device (its settings never had one): a generating one samples where `auto` says."""
    device = job.settings.device if isinstance(job.settings, CheckpointInputs) else "auto"
    if device == "auto" and not job.resources.get("gpus"):
        return "cpu"
    return device


def model_section(job: Job):
    """The job's model section (spec.ModelSpec), rebuilt from its settings (which leave out the label)."""
    from premem.spec.schema import ModelSpec

    return ModelSpec.model_validate({"name": "m", **job.settings.model})


def dataset_section(job: Job):
    """The job's dataset section (spec.DatasetSpec), validated where the job runs (a UserError if not valid)."""
    from pydantic import ValidationError

    from premem.spec.schema import DatasetSpec

    data = dict(job.settings.dataset)
    data.setdefault("train_size", 1)  # sizes a job's identity leaves out (they do not affect its result)
    data.setdefault("test_size", 1)
    try:
        dataset = DatasetSpec.model_validate({"name": "d", **data})
    except ValidationError as e:  # e.g. a local data file missing where this job runs
        msgs = [f"{'.'.join(map(str, err['loc'])) or 'section'}: {err['msg'].removeprefix('Value error, ')}"
                for err in e.errors()]
        raise UserError("dataset: " + "; ".join(msgs)) from None
    return dataset


def job_sections(job: Job):
    """The job's (model section, dataset section)."""
    return model_section(job), dataset_section(job)


def dataset_splits(dataset):
    """The dataset's examples (data.loaders.Splits); a problem with the data itself is a UserError (retrying
    will not help)."""
    from premem.data.loaders import DataError, load_splits

    try:
        return load_splits(dataset)
    except DataError as e:
        raise UserError(str(e)) from None


def run_examples(job: Job, dataset) -> list:
    """The train examples of the job's run: its dataset_fraction's subset of the train split (seeded)."""
    from premem.data.loaders import subset_indices

    splits = dataset_splits(dataset)
    idx = subset_indices(len(splits.train), job.settings.dataset_fraction, job.settings.seed)
    return [splits.train[i] for i in idx]


def evaluated_train(job: Job, dataset, n: int | None) -> list:
    """The train examples a checkpoint's evaluation reads: the first `n` (evaluation.train_examples; None =
    all) of the run's subset."""
    train = run_examples(job, dataset)
    return train[:n] if n is not None else train


def job_sampling_dtype(sampling: dict, job: Job, progress: Progress) -> str | None:
    """The dtype this job samples in (evaluation.sampling_dtype, `auto` decided for the device it runs on; None:
    the model's), said in its progress when `auto` chose it."""
    dtype, why = resolve_sampling_dtype(sampling["sampling_dtype"], job_device(job))
    if sampling["sampling_dtype"] == "auto":
        progress(f"sampling in {dtype} ({why})")
    return dtype


def sampler_params(sampling: dict, n: int, seed: int):
    """premem.engine.sampling.SamplingParams for `n` samples per prompt under a job's sampling settings."""
    from premem.engine.sampling import SamplingParams

    return SamplingParams(n=n, temperature=sampling["temperature"], top_p=sampling["top_p"],
                          max_new_tokens=sampling["max_new_tokens"], stop=sampling["stop"], seed=seed)


def dependency_train_rows(store: Store, job_ids: list[str]) -> list[dict[str, tuple[int, int, float | None]]]:
    """Per evaluate job of `job_ids` (in the order given): train example id -> (n_samples, n_correct, nll), read
    through a read-only connection (only the driver writes the store; these jobs are recorded done, being the
    reading job's dependencies). RuntimeError when one has no rows: the store is not what the plan expects."""
    import sqlite3

    if not job_ids:
        return []
    out: dict[str, dict[str, tuple[int, int, float | None]]] = {j: {} for j in job_ids}
    con = sqlite3.connect(f"{store.db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        q = (f"SELECT job_id, example_id, n_samples, n_correct, nll FROM examples WHERE split = 'train' "
             f"AND job_id IN ({','.join('?' * len(job_ids))})")
        for job_id, example_id, n, correct, nll in con.execute(q, job_ids):
            out[job_id][example_id] = (n, correct, nll)
    finally:
        con.close()
    missing = [j[:10] for j in job_ids if not out[j]]
    if missing:
        raise RuntimeError(f"no per-example results in the store for the evaluations {missing}")
    return [out[j] for j in job_ids]
