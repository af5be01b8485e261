"""MLflow: the tracking module driven on a real store into a local MLflow folder store, read back with
MlflowClient."""
import pytest

from premem.tracking.content import tracked_runs
from premem.tracking.to_mlflow import KEY_TAG
from tests.tracking.study import catch_up, expected_points, logged_jobs, record, study


@pytest.fixture(autouse=True)
def _folder_store(monkeypatch):
    # MLflow 3 refuses folder stores unless told; premem tells it for a folder named in the spec (setdefault):
    # the test leaves no trace of it in the environment of later tests
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


def client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=str(uri))


def check(plan, uri, experiment="smoke"):
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    runs = tracked_runs(plan)
    found = c.search_runs([exp.experiment_id])
    assert sorted(r.data.tags[KEY_TAG] for r in found) == sorted(r.key for r in runs.values())
    for name, metrics in expected_points(plan).items():
        (run,) = c.search_runs([exp.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{runs[name].key}'")
        assert run.info.run_name == name
        assert run.data.params["learning_rate"] == str(runs[name].params["learning_rate"])
        assert run.data.params["training.optimizer"] == "adamw"
        for metric, points in metrics.items():
            hist = c.get_metric_history(run.info.run_id, metric)
            steps = [m.step for m in hist]
            assert len(steps) == len(set(steps)), (name, metric, steps)
            assert {m.step: m.value for m in hist} == pytest.approx(points), (name, metric)


def test_every_run_with_its_settings_and_curves(tmp_path):
    uri = tmp_path / "mlruns"
    plan, store = study(tmp_path, f"tracking: {{mlflow: {{tracking_uri: {uri}}}}}\n")
    record(store, logged_jobs(plan))
    catch_up(plan, store)
    check(plan, uri)  # the experiment is the study's name by default


def test_a_resumed_apply_reopens_the_same_runs_and_logs_nothing_twice(tmp_path):
    uri = tmp_path / "mlruns"
    plan, store = study(tmp_path, f"tracking: {{mlflow: {{tracking_uri: {uri}, experiment: resumed}}}}\n")
    jobs, half = logged_jobs(plan), logged_jobs(plan, 0.5)
    record(store, half)
    catch_up(plan, store)
    record(store, jobs[len(half):])
    for _ in range(2):  # the rest, then an apply with nothing left to log
        catch_up(plan, store)
    check(plan, uri, "resumed")
