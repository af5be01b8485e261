"""A tracker that fails loses nothing: the others log on, the failure is reported, and the failed tracker's
items stay unlogged in the ledger so that the next apply logs them."""
import pytest

from premem.tracking import Tracking
from premem.tracking.ledger import Ledger
from tests.tracking.study import logged_jobs, record, study
from tests.tracking.test_tensorboard import check_all_logged_once


@pytest.fixture(autouse=True)
def _folder_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


def test_a_failing_tracker_is_reported_and_the_others_go_on(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where MLflow's folder store should be\n")
    section = (f"tracking:\n  tensorboard: {{log_dir: {tmp_path / 'tb'}}}\n"
               f"  mlflow: {{tracking_uri: {blocker}}}\n")
    plan, store = study(tmp_path, section)
    record(store, logged_jobs(plan))
    warnings: list[str] = []
    t = Tracking(plan, store, warn=warnings.append)
    t.catch_up()
    t.close()
    assert len(warnings) == 1 and "tracking to mlflow failed" in warnings[0], warnings
    assert "the next `premem apply` logs what was missed" in warnings[0]
    check_all_logged_once(plan, tmp_path / "tb")
    ledger = Ledger(store)
    assert not ledger.logged(f"mlflow:{blocker}#smoke")  # nothing marked: the next apply tries again
    # the folder comes back: the next apply logs everything to MLflow, and nothing again to TensorBoard
    blocker.unlink()
    again = Tracking(plan, store, warn=warnings.append)
    again.catch_up()
    again.close()
    assert len(warnings) == 1, warnings
    assert ledger.logged(f"mlflow:{blocker}#smoke") >= {j.id for j in logged_jobs(plan) if j.run}
    check_all_logged_once(plan, tmp_path / "tb")
