"""W&B: the tracking module driven on a real store with wandb's offline mode (no network), its .wandb files read
back with wandb's own protobuf (tests/tracking/wandb_files.py)."""
import pytest

from premem.tracking import Tracking
from premem.tracking.content import tracked_runs
from premem.tracking.to_wandb import STEP
from tests.tracking import wandb_files
from tests.tracking.study import catch_up, expected_points, logged_jobs, record, study


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))


def check(plan, root):
    runs = tracked_runs(plan)
    for name, metrics in expected_points(plan).items():
        key = runs[name].key
        assert wandb_files.offline_runs(root, key), name  # the W&B run's id is the run's key
        rows = wandb_files.history(root, key)
        config = wandb_files.config(root, key)
        assert config["learning_rate"] == runs[name].params["learning_rate"]
        assert config["training.optimizer"] == "adamw"
        for metric, points in metrics.items():
            got = [(r[STEP], r[metric]) for r in rows if metric in r]
            steps = [s for s, _ in got]
            assert len(steps) == len(set(steps)), (name, metric, steps)  # nothing logged twice
            assert dict(got) == pytest.approx(points), (name, metric)


def spec_section(root) -> str:
    return f"tracking: {{wandb: {{project: premem-test, mode: offline, dir: {root}}}}}\n"


def test_every_run_with_its_settings_and_curves(tmp_path):
    plan, store = study(tmp_path, spec_section(tmp_path / "wb"))
    record(store, logged_jobs(plan))
    catch_up(plan, store)
    check(plan, tmp_path / "wb")


def test_a_resumed_apply_reopens_the_same_runs_and_logs_nothing_twice(tmp_path):
    plan, store = study(tmp_path, spec_section(tmp_path / "wb"))
    jobs, half = logged_jobs(plan), logged_jobs(plan, 0.5)
    record(store, half)
    first = Tracking(plan, store)
    for job in half:
        first.landed(job)
    first.close()
    record(store, jobs[len(half):])
    for _ in range(2):  # the rest, then an apply with nothing left to log
        catch_up(plan, store)
    check(plan, tmp_path / "wb")
    key = next(iter(tracked_runs(plan).values())).key
    assert len(wandb_files.offline_runs(tmp_path / "wb", key)) == 2  # two sessions of one run; none for the third
