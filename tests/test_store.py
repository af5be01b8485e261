"""The store: a job is recorded whole or not at all; artifacts count only when published."""
import pytest

from premem.plan import Job
from premem.store import Store, StoreBusy


def job(i="a" * 64, kind="evaluate"):
    return Job(id=i, kind=kind, label=f"{kind} x", settings={"k": 1}, run="r", epoch=1)


def test_record_and_read_back(tmp_path):
    s = Store(tmp_path / "st")
    rows = [{"split": "train", "example_id": "e1", "n_samples": 4, "n_correct": 3, "n_unparseable": 1,
             "nll": 0.2, "n_target_tokens": 10, "samples": ["a", "b"]},
            {"split": "test", "example_id": "e2", "n_samples": 2, "n_correct": 0, "n_unparseable": 0}]
    s.record(job(), "done", result={"x": 1}, examples=rows)
    rec = s.records()["a" * 64]
    assert rec.status == "done" and rec.result == {"x": 1}
    got = {r["example_id"]: r for r in s.examples(["a" * 64], with_samples=True)}
    assert got["e1"]["n_correct"] == 3 and got["e1"]["samples"] == ["a", "b"] and got["e2"]["nll"] is None
    # recording again replaces, never duplicates
    s.record(job(), "done", result={"x": 2}, examples=rows[:1])
    assert len(s.examples(["a" * 64])) == 1 and s.records()["a" * 64].result == {"x": 2}


def test_failed_transaction_leaves_nothing(tmp_path):
    s = Store(tmp_path / "st")
    bad = [{"split": "train", "example_id": "e1", "n_samples": 4, "n_correct": 3, "n_unparseable": 0},
           {"split": "train", "example_id": "e1", "n_samples": 4, "n_correct": 3, "n_unparseable": 0}]  # duplicate key
    with pytest.raises(Exception):
        s.record(job(), "done", result={}, examples=bad)
    assert s.records() == {} and s.examples(["a" * 64]) == []


def test_publish_is_atomic_and_replaces_stale(tmp_path):
    s = Store(tmp_path / "st")
    st = s.staging("j1")
    (st / "w.bin").write_text("new")
    stale = s.artifact("j1")
    stale.mkdir(parents=True)
    (stale / "w.bin").write_text("old, never recorded")
    final = s.publish(st, "j1")
    assert (final / "w.bin").read_text() == "new" and not st.exists()
    s.staging("j2")
    assert s.clean_staging() == 1


def test_lock_is_exclusive(tmp_path):
    a, b = Store(tmp_path / "st"), Store(tmp_path / "st")
    a.acquire()
    assert b.apply_running()
    with pytest.raises(StoreBusy, match="another `premem apply`"):
        b.acquire()
    a.mark_started(["j"])
    assert "j" in b.running()
    a.release()
    assert not b.apply_running() and b.running() == {}
    b.acquire()
    b.release()
