"""TensorBoard: the tracking module driven on a real store, its event files read back with TensorBoard's own
EventAccumulator."""
from pathlib import Path

from premem.tracking import Tracking
from premem.tracking.content import tracked_runs
from premem.tracking.to_tensorboard import run_folder
from tests.tracking.study import catch_up, expected_points, logged_jobs, record, study


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of every scalar in the event files of `folder` (all of them, repeats included)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def tensor_tags(folder: Path) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc.Tags()["tensors"]


def check_all_logged_once(plan, log_dir: Path) -> None:
    runs = tracked_runs(plan)
    for name, metrics in expected_points(plan).items():
        got = scalars(run_folder(log_dir, runs[name]))
        for metric, points in metrics.items():
            steps = [s for s, _ in got[metric]]
            assert len(steps) == len(set(steps)), (name, metric, steps)  # no step logged twice
            assert dict(got[metric]) == {s: pytest_approx(v) for s, v in points.items()}, (name, metric)


def pytest_approx(v):
    import pytest

    return pytest.approx(v, rel=1e-6)


def test_every_run_its_folder_its_curves_and_settings(tmp_path):
    plan, store = study(tmp_path, f"tracking: {{tensorboard: {{log_dir: {tmp_path / 'tb'}}}}}\n")
    record(store, logged_jobs(plan))
    catch_up(plan, store)
    runs = tracked_runs(plan)
    assert len(runs) == 2
    for run in runs.values():  # one folder per run, named by the run, then its key
        folder = run_folder(tmp_path / "tb", run)
        assert folder.relative_to(tmp_path / "tb").parts[:2] == ("tiny", "arithmetic"), folder
        assert folder.name == run.key
        assert "premem/settings/text_summary" in tensor_tags(folder)
    check_all_logged_once(plan, tmp_path / "tb")
    lr = scalars(run_folder(tmp_path / "tb", runs["tiny/arithmetic/lr0.003-ep2-frac1"]))
    assert lr["eval/test_acc"] == [(4, 0.125), (8, 0.25)]  # a checkpoint's metrics at the step its epoch ended
    assert [s for s, _ in lr["train/loss"]] == list(range(1, 9))


def test_a_resumed_apply_logs_the_rest_and_nothing_twice(tmp_path):
    tracking = f"tracking: {{tensorboard: {{log_dir: {tmp_path / 'tb'}}}}}\n"
    plan, store = study(tmp_path, tracking)
    jobs = logged_jobs(plan)
    half = logged_jobs(plan, 0.5)
    record(store, half)
    first = Tracking(plan, store)  # an apply that stops after half of the jobs landed (each logged as it lands)
    first.catch_up()
    for job in half:
        first.landed(job)  # landing again (the driver called twice) logs nothing more
    first.close()
    record(store, jobs[len(half):])
    second = Tracking(plan, store)  # the next apply: the rest, as it lands
    second.catch_up()
    for job in jobs[len(half):]:
        second.landed(job)
    second.close()
    catch_up(plan, store)  # an apply with nothing to do logs nothing
    check_all_logged_once(plan, tmp_path / "tb")


def test_landing_jobs_one_by_one_logs_the_same(tmp_path):
    plan, store = study(tmp_path, f"tracking: {{tensorboard: {{log_dir: {tmp_path / 'tb'}}}}}\n")
    t = Tracking(plan, store)
    t.catch_up()  # an empty store: nothing yet
    for job in logged_jobs(plan):
        record(store, [job])
        t.landed(job)
    t.close()
    check_all_logged_once(plan, tmp_path / "tb")


def test_the_analysis_is_logged_once_per_finished_study(tmp_path):
    plan, store = study(tmp_path, f"tracking: {{tensorboard: {{log_dir: {tmp_path / 'tb'}}}}}\n")
    record(store, logged_jobs(plan))
    name = "tiny/arithmetic/lr0.001-ep2-frac1"
    # the part of premem.analysis.analyze's summary the trackers read: each run's p and its checkpoints
    summary = {"runs": [{"name": name, "p": -1.5,
                         "checkpoints": [{"epoch": 1, "premem_acc": 0.5, "atc_acc": 0.25},
                                         {"epoch": 2, "premem_acc": 0.75, "atc_acc": None}]}]}
    for _ in range(2):  # a second apply of the finished study: the same analysis, not logged again
        t = Tracking(plan, store)
        t.catch_up()
        t.log_summary(summary)
        t.close()
    got = scalars(run_folder(tmp_path / "tb", tracked_runs(plan)[name]))
    assert got["premem/premem_acc"] == [(4, 0.5), (8, 0.75)]
    assert got["measure/atc_acc"] == [(4, 0.25)]
    assert got["premem/p"] == [(0, -1.5)]
