"""Experiment trackers (TensorBoard, MLflow, W&B) named in a spec's `tracking:` section: every run of the grid is
logged to each of them while `premem apply` runs.

The driver logs, never the Ray workers: each job's results are read from the store when the job lands
(`Tracking.landed`, run_plan's on_record), and what an earlier apply recorded but did not log (it stopped, or
tracking was added to the spec later) is logged first (`Tracking.catch_up`). The store's `tracked` table
(premem.tracking.ledger) records what has been logged to which destination, so nothing is logged twice, and
each tracker run's id comes from the run (premem.tracking.content.run_key), so a resumed apply reopens the same
tracker run. A tracker that fails is reported and left alone for the rest of the apply: the study's results are
in the store either way, and the next apply logs what it missed.

The libraries are imported only when the spec names them (`premem[tracking]` installs all three).
"""
from __future__ import annotations

import importlib.util
import sys
from typing import Callable

from premem.plan.build import Plan
from premem.plan.job import Job
from premem.store import Store
from premem.tracking.content import LOGGED_KINDS, Point, TrackedRun, job_points, summary_points, tracked_runs
from premem.tracking.ledger import Ledger

EXTRA = "premem[tracking]"
# the module each tracker needs (TensorBoard's writer is torch's, which needs the tensorboard package)
MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def _installed(module: str) -> bool:
    """Whether `module` can be imported (found without importing it: wandb and mlflow take seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules (set to None)
        return False


def missing_libraries(spec) -> str | None:
    """A one-line message naming the trackers the spec names whose library is not installed (None if all are)."""
    if spec.tracking is None:
        return None
    missing = [n for n in spec.tracking.named() if not _installed(MODULES[n])]
    if not missing:
        return None
    return (f"tracking: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} named in the spec but the "
            f"{'package is' if len(missing) == 1 else 'packages are'} not installed: pip install '{EXTRA}'")


def _stderr(message: str) -> None:
    print(f"premem: {message}", file=sys.stderr, flush=True)


def _backend(name: str, conf, study: str):
    """The backend object of tracker `name` (imports its library)."""
    if name == "tensorboard":
        from premem.tracking.to_tensorboard import TensorBoardBackend

        return TensorBoardBackend(conf)
    if name == "mlflow":
        from premem.tracking.to_mlflow import MlflowBackend

        return MlflowBackend(conf, study)
    from premem.tracking.to_wandb import WandbBackend

    return WandbBackend(conf, study)


class Tracking:
    """The trackers of one apply. `warn` prints a tracker's failure (stderr by default)."""

    def __init__(self, plan: Plan, store: Store, warn: Callable[[str], None] = _stderr):
        spec = plan.spec
        self.plan, self.store, self.warn = plan, store, warn
        self.runs: dict[str, TrackedRun] = tracked_runs(plan)
        self.ledger = Ledger(store)
        self.backends = []
        for name in spec.tracking.named() if spec.tracking is not None else ():
            try:
                self.backends.append(_backend(name, getattr(spec.tracking, name), spec.name))
            except Exception as e:  # e.g. a server that is not there: the study runs, untracked by it
                self._failed(name, e)
        self.logged = {b.destination: self.ledger.logged(b.destination) for b in self.backends}
        self.step_of: dict[str, int] = {}  # train job id -> the step its epoch ended at

    def _failed(self, name: str, e: Exception) -> None:
        self.warn(f"warning: tracking to {name} failed ({type(e).__name__}: {str(e).strip()[:300]}); it is left "
                  "alone for the rest of this apply. The results are in the store: the next `premem apply` logs "
                  "what was missed")

    def _log(self, run: TrackedRun, items: dict[str, list[Point]]) -> None:
        """Log to every working tracker the items (item -> its points) of `run` that it has not had, with the
        run's settings the first time, then record them in the ledger."""
        for b in list(self.backends):
            done = self.logged[b.destination]
            todo = {k: v for k, v in items.items() if k not in done}
            params_item = f"params:{run.key}"
            params = run.params if params_item not in done else None
            if not todo and params is None:
                continue
            try:
                b.log(run, params, [p for pts in todo.values() for p in pts])
            except Exception as e:
                self.backends.remove(b)
                self._failed(b.name, e)
                continue
            new = list(todo) + ([params_item] if params is not None else [])
            self.ledger.mark(b.destination, new)
            done.update(new)

    def _tracked(self, job: Job) -> bool:
        return job.kind in LOGGED_KINDS and job.run in self.runs

    def catch_up(self) -> None:
        """Log every job the store holds as done that some tracker has not had (a resumed or re-run apply)."""
        if not self.backends:
            return
        jobs = [j for j in self.plan.jobs if self._tracked(j)]
        records = {k: r for k, r in self.store.records([j.id for j in jobs]).items() if r.status == "done"}
        for j in jobs:
            if j.kind == "train" and j.id in records and "end_step" in (records[j.id].result or {}):
                self.step_of[j.id] = records[j.id].result["end_step"]
        by_run: dict[str, dict[str, list[Point]]] = {}
        for j in jobs:
            if j.id in records and any(j.id not in self.logged[b.destination] for b in self.backends):
                by_run.setdefault(j.run, {})[j.id] = job_points(j, records[j.id].result or {}, self.step_of)
        for name, items in by_run.items():
            self._log(self.runs[name], items)

    def landed(self, job: Job) -> None:
        """Log a job the driver has just recorded done (run_plan's on_record)."""
        if not self.backends or not self._tracked(job):
            return
        result = self._result(job.id)
        if result is None:
            return
        if job.kind == "train" and "end_step" in result:
            self.step_of[job.id] = result["end_step"]
        self._log(self.runs[job.run], {job.id: job_points(job, result, self.step_of)})

    def _result(self, job_id: str) -> dict | None:
        """The stored result of a job recorded done ({} if it has none), None if it is not recorded done."""
        record = self.store.records([job_id]).get(job_id)  # reads that one row
        if record is None or record.status != "done":
            return None
        return record.result or {}

    def log_summary(self, summary: dict) -> None:
        """Log what the analysis computed (PreMemAcc at the calibrated p, ATC) once per finished study (the
        analysis job's id names it: a study with more results is another analysis)."""
        if not self.backends:
            return
        analysis = self.plan.jobs[-1]
        steps = {(j.run, j.epoch): self.step_of[j.id] for j in self.plan.jobs
                 if j.kind == "train" and j.id in self.step_of}
        for name, pts in summary_points(summary, steps).items():
            if name in self.runs:
                self._log(self.runs[name], {f"analysis:{analysis.id}:{self.runs[name].key}": pts})

    def close(self) -> None:
        """Flush and close every tracker run (a failure is reported, never raised)."""
        for b in self.backends:
            try:
                b.close()
            except Exception as e:
                self._failed(b.name, e)
        self.backends = []
