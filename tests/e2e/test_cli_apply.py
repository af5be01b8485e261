"""End to end: the real `premem` CLI, a real local Ray, the real store, on the smoke spec.

These train real (very small) models, so they take about a minute each.
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def premem(*args, cwd, timeout=600, check=True):
    proc = subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"premem {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture()
def workdir(tmp_path):
    shutil.copy(ROOT / "specs" / "smoke.yaml", tmp_path / "smoke.yaml")
    return tmp_path


def done_jobs(store: Path) -> dict[str, float]:
    db = store / "premem.db"
    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(db, timeout=5)
        rows = con.execute("SELECT id, finished FROM jobs WHERE status = 'done'").fetchall()
        con.close()
    except sqlite3.OperationalError:
        return {}
    return dict(rows)


def compute_jobs(store: Path, jobs: dict[str, float]) -> dict[str, float]:
    """The entries of `jobs` that are not the analysis (which every apply records again with the report)."""
    con = sqlite3.connect(store / "premem.db", timeout=5)
    analysis = {r[0] for r in con.execute("SELECT id FROM jobs WHERE kind = 'analysis'")}
    con.close()
    return {k: v for k, v in jobs.items() if k not in analysis}


def test_apply_then_reapply_does_nothing(workdir):
    out = premem("apply", "smoke.yaml", cwd=workdir)
    assert "Applied: 9 done, 0 failed" in out.stdout, out.stdout
    summary = json.loads((workdir / "reports" / "summary.json").read_text())
    assert {"premem", "train_acc", "runs"} <= set(summary)
    assert "p" in summary["premem"] and "r2" in summary["premem"] and "r2" in summary["train_acc"]
    assert len(summary["runs"]) == 2 and all(len(r["checkpoints"]) == 2 for r in summary["runs"])
    for run in summary["runs"]:
        for cp in run["checkpoints"]:
            assert {"train_acc", "test_acc", "premem_acc"} <= set(cp)
    html = (workdir / "reports" / "index.html").read_text()
    assert "PreMemAcc" in html and "<svg" in html
    before = done_jobs(workdir / ".premem")

    again = premem("apply", "smoke.yaml", cwd=workdir)
    assert "Nothing to do" in again.stdout and "Rebuilding the report" in again.stdout
    after = done_jobs(workdir / ".premem")
    assert after.keys() == before.keys()
    assert all(after[k] == v for k, v in compute_jobs(workdir / ".premem", before).items())  # nothing recomputed

    plan = premem("plan", "smoke.yaml", cwd=workdir)
    assert "Plan: 0 to run, 10 done." in plan.stdout
    plan_json = json.loads(premem("plan", "smoke.yaml", "--json", cwd=workdir).stdout)
    kinds = [j["kind"] for j in plan_json["jobs"]]
    assert kinds.count("train") == 4 and kinds.count("evaluate") == 4 and kinds.count("pretrain") == 1
    train = [j for j in plan_json["jobs"] if j["kind"] == "train"][0]
    assert {"id", "kind", "status", "model", "dataset", "learning_rate", "epochs", "dataset_fraction"} <= set(train)

    status = premem("status", "smoke.yaml", cwd=workdir)
    assert "10 done" in status.stdout

    (workdir / "reports" / "index.html").unlink()
    premem("report", "smoke.yaml", cwd=workdir)
    assert (workdir / "reports" / "index.html").exists()

    # an edit that changes only evaluation reruns only evaluation (and analysis), never training
    spec = (workdir / "smoke.yaml").read_text().replace("samples: 2", "samples: 3")
    (workdir / "smoke.yaml").write_text(spec)
    plan = premem("plan", "smoke.yaml", cwd=workdir).stdout
    assert "Plan: 5 to run, 5 done." in plan, plan
    assert all(" train " not in ln or " done " in ln for ln in plan.splitlines())


def test_kill9_then_apply_redoes_only_unfinished(workdir, smoke_pretraining):
    store = smoke_pretraining(workdir / ".premem")
    proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "smoke.yaml"], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(done_jobs(store)) < 3:
            time.sleep(0.2)
        assert len(done_jobs(store)) >= 3, "apply recorded too few jobs before the deadline"
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: Ray's own processes notice and go away
        proc.wait()
    before = done_jobs(store)
    assert 3 <= len(before) < 9, f"the kill came too late to test resuming ({len(before)} jobs done)"

    status = premem("status", "smoke.yaml", cwd=workdir)
    assert f"{len(before)} done" in status.stdout

    out = premem("apply", "smoke.yaml", cwd=workdir)
    assert f"Plan: {9 - len(before)} to run, {len(before)} done." in out.stdout, out.stdout
    after = done_jobs(store)
    assert len(after) == 10  # 9 jobs + the analysis
    assert all(after[k] == v for k, v in before.items())  # finished jobs were not redone
    assert (workdir / "reports" / "index.html").exists()
    assert not list((store / "artifacts").glob(".tmp-*"))  # no half-written checkpoint left behind


def default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A shell that starts this test suite in the
    background (`cmd &`) makes it ignored, and ignored signals are inherited: a user's terminal never does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_one_ctrl_c_stops_apply_and_the_next_apply_continues(workdir, smoke_pretraining):
    """A single SIGINT while jobs run: apply stops with exit 130 and says so, keeping what is recorded (Ray can
    swallow a SIGINT on its own; premem's watcher thread makes one always enough)."""
    store = smoke_pretraining(workdir / ".premem")
    proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "smoke.yaml"], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, start_new_session=True, preexec_fn=default_sigint)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(done_jobs(store)) < 2:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and "Interrupted: finished jobs are kept" in out, out
    # what the next apply needs: the store not left locked, and what was recorded counted done (that an apply
    # then runs only the rest is test_kill9_then_apply_redoes_only_unfinished's)
    from premem.store import Store

    released = Store(store)
    released.acquire()  # StoreBusy if the interrupted apply had kept its lock
    released.release()
    before = done_jobs(store)
    plan = premem("plan", "smoke.yaml", cwd=workdir)  # the analysis is a job of the plan too: 10 in all
    assert 2 <= len(before) < 9 and f"Plan: {10 - len(before)} to run, {len(before)} done." in plan.stdout, \
        plan.stdout


def test_second_apply_on_same_store_refuses(workdir):
    from premem.store import Store, StoreBusy

    holder = Store(workdir / ".premem")
    holder.acquire()
    try:
        out = premem("apply", "smoke.yaml", cwd=workdir, check=False)
        assert out.returncode == 2
        assert "another `premem apply`" in out.stderr
        with pytest.raises(StoreBusy):
            Store(workdir / ".premem").acquire()
    finally:
        holder.release()


def test_bad_spec_starts_nothing(workdir):
    (workdir / "bad.yaml").write_text((workdir / "smoke.yaml").read_text().replace("samples: 2", "samples: 0"))
    out = premem("apply", "bad.yaml", cwd=workdir, check=False)
    assert out.returncode == 1
    assert "bad.yaml:" in out.stderr and "evaluation.samples" in out.stderr
    assert not (workdir / ".premem").exists()
    out = premem("validate", "missing.yaml", cwd=workdir, check=False)
    assert out.returncode == 1 and "no such file" in out.stderr
