"""Jobs made by hand for tests about what happens around a job (the store, roles, faults), not what it computes:
an evaluate job with settings of the right type and made-up sections."""
from __future__ import annotations

from premem.plan.job import Job
from premem.plan.job_settings import EvaluateSettings

SETTINGS = EvaluateSettings(model={"builtin": "tiny"}, seed=0, device="cpu", dataset={"builtin": "arithmetic"},
                            evaluation={}, dataset_fraction=1.0)


def evaluate_job(job_id: str = "e" * 64, deps: tuple[str, ...] = (), **fields) -> Job:
    """An evaluate job with id `job_id`, dependencies `deps` and any other Job field given (run "r", epoch 1 by
    default)."""
    return Job(job_id, "evaluate", fields.pop("label", "evaluate x"), SETTINGS, deps,
               **({"run": "r", "epoch": 1} | fields))
