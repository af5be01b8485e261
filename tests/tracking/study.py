"""A small real study for the tracking tests, without Ray: the smoke spec (plus two classic measures and a
tracking section), its real plan, and a real store holding results of the shape the jobs record."""
from __future__ import annotations

from pathlib import Path

from premem.plan.build import build_plan
from premem.spec.load import parse_spec
from premem.store import Store

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4  # optimizer steps per epoch: 32 examples, batch size 8
MEASURES = "metrics: {gradient_variance: {}, weight_distance: {}}\n"


def spec_text(tracking: str = "", measures: bool = True) -> str:
    """The smoke spec's text with the measures (when asked) and `tracking` (a YAML section) appended."""
    return (ROOT / "specs" / "smoke.yaml").read_text() + (MEASURES if measures else "") + tracking


def study(tmp_path: Path, tracking: str):
    """(plan, store) of the smoke spec with `tracking` appended; the store is empty."""
    spec = parse_spec(spec_text(tracking))
    return build_plan(spec), Store(tmp_path / "store")


def result_of(job) -> dict:
    """A result of the shape job `job` records (premem.jobs.training.train_result, run_evaluate, run_measure),
    with values that say which job and epoch they come from."""
    e = job.epoch
    lr = getattr(job.settings, "learning_rate", 0)
    if job.kind == "train":
        losses = [round(2.0 / (STEPS * (e - 1) + i + 1) + lr, 6) for i in range(STEPS)]
        return {"epoch": e, "steps": STEPS, "end_step": STEPS * e, "tokens": 100, "seconds": 1.0,
                "mean_loss": sum(losses) / STEPS, "losses": losses, "examples": 32}
    if job.kind == "evaluate":
        return {"train_acc": 0.25 * e, "test_acc": 0.125 * e, "train_nll": 1.0 / e, "seconds": 1.0}
    if job.kind == "measure":
        name = job.settings.measure
        return {"measure": name, "value": 10.0 * e + (1 if name == "weight_distance" else 0), "seconds": 1.0}
    return {}


def record(store: Store, jobs) -> None:
    """Record `jobs` done in `store`, each with result_of's result."""
    for job in jobs:
        store.record(job, "done", result=result_of(job), started=0.0)


def logged_jobs(plan, fraction: float = 1.0):
    """The plan's train, evaluate and measure jobs (in dependency order), the first `fraction` of them."""
    jobs = [j for j in plan.jobs if j.kind in ("pretrain", "train", "evaluate", "measure")]
    return jobs[:int(len(jobs) * fraction)]


def expected_points(plan) -> dict[str, dict[str, dict[int, float]]]:
    """run name -> metric -> {step: value} that logging every job of `plan` gives."""
    out: dict = {}
    for job in logged_jobs(plan):
        if job.run is None:
            continue
        r = result_of(job)
        m = out.setdefault(job.run, {})
        end = STEPS * job.epoch
        if job.kind == "train":
            for i, v in enumerate(r["losses"]):
                m.setdefault("train/loss", {})[STEPS * (job.epoch - 1) + i + 1] = v
            m.setdefault("train/epoch", {})[end] = float(job.epoch)
            m.setdefault("train/epoch_mean_loss", {})[end] = r["mean_loss"]
        elif job.kind == "evaluate":
            for k in ("train_acc", "test_acc", "train_nll"):
                m.setdefault(f"eval/{k}", {})[end] = r[k]
        else:
            m.setdefault(f"measure/{r['measure']}", {})[end] = r["value"]
    return out


def catch_up(plan, store: Store) -> None:
    """One `premem apply` whose jobs all landed before it started: it logs what the store holds that no tracker
    has had yet, then closes the trackers."""
    from premem.tracking import Tracking

    t = Tracking(plan, store)
    t.catch_up()
    t.close()
