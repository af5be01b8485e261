"""What premem logs to a tracker, read from the store: the tracker runs a plan has (`tracked_runs`: one per run
of the grid, with a deterministic key and its settings), the points one recorded job gives (`job_points`: the
training loss per step, a checkpoint's accuracies, the classic measures) and those the analysis gives
(`summary_points`: PreMemAcc at the calibrated p and ATC, per checkpoint).

Every point is on one axis, the run's optimizer step: a checkpoint's metrics at the step its epoch ended, so
that loss and accuracy curves line up. Nothing here imports a tracking library.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from premem.plan.build import Plan
from premem.plan.job import Job

LOGGED_KINDS = ("train", "evaluate", "measure")  # what a tracker run shows of its premem run


@dataclass(frozen=True)
class Point:
    """One value of one metric at one optimizer step."""

    key: str
    step: int
    value: float


@dataclass(frozen=True)
class TrackedRun:
    """A premem run as the trackers see it: `name` the run's name (model/dataset/lr-ep-frac[/seed]), `key` 16 hex
    digits naming its tracker run (W&B id, MLflow tag, TensorBoard folder), `params` its settings, flat."""

    name: str
    key: str
    params: dict


def run_key(study: str, job_ids: list[str]) -> str:
    """16 hex digits naming a run's tracker run: a hash of the study's name and the ids of the jobs it logs.
    Deterministic, so a resumed apply reopens the same tracker run; it changes with anything that changes
    what is logged (an edited recipe, evaluation or measure gives a new tracker run, never points of two
    different computations on one curve); and two studies sharing a run log it to two tracker runs."""
    blob = json.dumps({"study": study, "jobs": sorted(job_ids)}, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def flatten(d: dict, prefix: str = "") -> dict:
    """A nested dict as {dotted key: value}, values a tracker takes as a parameter (number, text, bool; lists
    and None as JSON text)."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v)
    return out


def tracked_runs(plan: Plan) -> dict[str, TrackedRun]:
    """The grid's runs as tracker runs, by run name (curation's models are not runs of the grid: not logged)."""
    by_run: dict[str, list[Job]] = {}
    for job in plan.jobs:
        if job.kind in LOGGED_KINDS and job.run in plan.runs_by_name():
            by_run.setdefault(job.run, []).append(job)
    out = {}
    for run in plan.runs:
        jobs = by_run.get(run.name, [])
        params = {"study": plan.spec.name, **run.settings(), "seed": run.seed}
        first_train = next((j for j in jobs if j.kind == "train"), None)
        first_eval = next((j for j in jobs if j.kind == "evaluate"), None)
        if first_train is not None:
            params |= flatten(first_train.settings.training, "training.")
            params |= flatten(first_train.settings.model, "model.")
        if first_eval is not None:
            params |= flatten(first_eval.settings.evaluation, "evaluation.")
        out[run.name] = TrackedRun(run.name, run_key(plan.spec.name, [j.id for j in jobs]), params)
    return out


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def loss_steps(result: dict) -> list[int]:
    """The optimizer step of each value of a train job's stored `losses`. The store keeps at most 200 values an
    epoch (premem.jobs.training.downsample picks evenly spaced steps); their steps are found the same way."""
    n, steps = len(result.get("losses") or []), result["steps"]
    start = result["end_step"] - steps
    if n == steps:
        return [start + i + 1 for i in range(n)]
    return [start + 1 + int(i * (steps - 1) / (n - 1)) for i in range(n)] if n > 1 else [result["end_step"]][:n]


def job_points(job: Job, result: dict, step_of: dict[str, int]) -> list[Point]:
    """The points a recorded job gives its tracker run. `result`: the job's stored result; `step_of`: train job
    id -> the step its epoch ended at (a checkpoint's metrics go there). A diverged epoch gives none."""
    if job.kind == "train":
        if "losses" not in result:  # diverged: no checkpoint, no curve (the report names the step)
            return []
        pts = [Point("train/loss", s, v) for s, v in zip(loss_steps(result), result["losses"]) if _finite(v)]
        end = result["end_step"]
        pts += [Point("train/epoch", end, float(result["epoch"]))]
        if _finite(result.get("mean_loss")):
            pts.append(Point("train/epoch_mean_loss", end, result["mean_loss"]))
        return pts
    step = step_of.get(job.dep("checkpoint")) if job.roles else None
    if step is None:
        return []
    if job.kind == "evaluate":
        return [Point(f"eval/{k}", step, result[k]) for k in ("train_acc", "test_acc", "train_nll")
                if _finite(result.get(k))]
    if job.kind == "measure" and _finite(result.get("value")):  # ATC's score comes from the analysis
        return [Point(f"measure/{result['measure']}", step, result["value"])]
    return []


SUMMARY_KEYS = {"premem_acc": "premem/premem_acc", "atc_acc": "measure/atc_acc",  # checkpoint key -> metric
                "atc_gap": "measure/atc_gap"}


def summary_points(summary: dict, steps: dict[tuple[str, int], int]) -> dict[str, list[Point]]:
    """What the analysis adds per run (by name): each checkpoint's PreMemAcc at its block's calibrated p and
    its ATC where computed, at the step its epoch ended (`steps`: (run, epoch) -> step), and the calibrated p
    itself (at step 0: it is one number per run)."""
    out: dict[str, list[Point]] = {}
    for entry in summary.get("runs", []):
        pts = []
        if _finite(entry.get("p")):
            pts.append(Point("premem/p", 0, entry["p"]))
        for c in entry.get("checkpoints", []):
            step = steps.get((entry["name"], c.get("epoch")))
            if step is None:
                continue
            pts += [Point(metric, step, c[k]) for k, metric in SUMMARY_KEYS.items() if _finite(c.get(k))]
        if pts:
            out[entry["name"]] = pts
    return out
