"""Faults, each driven through the real CLI (`premem apply` as a subprocess) and a real local Ray, on tiny
specs: a worker killed mid-training, a diverging run, a missing / unwritable / full store location, damaged
store files, and a user error (not retried). The driver's kill -9 and two applies at once are in
test_cli_apply.py."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
SMOKE = (ROOT / "specs" / "smoke.yaml").read_text()


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def premem(*args, cwd, timeout=600, check=True):
    proc = subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"premem {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def spec(tmp: Path, name: str, text: str) -> Path:
    (tmp / f"{name}.yaml").write_text(text)
    return tmp / f"{name}.yaml"


def rows(store: Path, query: str, args=()) -> list:
    """The rows of `query` on the store's database, opened read-only: a poll that comes before `apply` has made
    the database must not make an empty one itself (apply refuses a 0-byte database as damaged)."""
    con = sqlite3.connect(f"{(store / 'premem.db').as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(query, args).fetchall()
    finally:
        con.close()


def results(store: Path) -> tuple[dict, dict]:
    """(per job label: its result without timings, per (job label, split, example): the example's row)."""
    jobs = {label: (status, json.loads(result) if result else None)
            for label, status, result in rows(store, "SELECT label, status, result FROM jobs WHERE kind != 'analysis'")}
    for _, res in jobs.values():
        for k in ("seconds", "artifact_sha256", "sample_seconds", "score_seconds", "tokens_per_second"):
            (res or {}).pop(k, None)
    examples = {(label, split, ex): (n, c, u, nll) for label, split, ex, n, c, u, nll in rows(
        store, "SELECT j.label, e.split, e.example_id, e.n_samples, e.n_correct, e.n_unparseable, e.nll "
               "FROM examples e JOIN jobs j ON j.id = e.job_id")}
    return jobs, examples


# ------------------------------------------------------------------------------------------ divergence
def test_diverging_run_is_recorded_skipped_and_shown_while_others_finish(tmp_path, smoke_pretraining):
    smoke_pretraining(tmp_path / ".premem")
    text = SMOKE.replace("learning_rate: [1.0e-3, 3.0e-3]", "learning_rate: [1.0e-3, 1.0e+30]")
    text = text.replace("    builtin: tiny\n", "    builtin: tiny\n    trust_remote_code: true\n", 1)
    spec(tmp_path, "div", text)
    out = premem("apply", "div.yaml", cwd=tmp_path)  # exit 0: a diverged run is an outcome, not a failure
    assert "Applied: 4 done, 0 failed, 0 not started" in out.stdout, out.stdout  # pretraining was done
    assert "Diverged: tiny/arithmetic/lr1e+30-ep2-frac1 at step" in out.stdout and "3 later jobs are skipped" \
        in out.stdout, out.stdout
    (label, result), = rows(tmp_path / ".premem", "SELECT label, result FROM jobs WHERE result LIKE '%diverged%'")
    div = json.loads(result)["diverged"]
    assert label.endswith("lr1e+30-ep2-frac1 epoch 1") and div["loss"] in ("nan", "inf") and div["step"] >= 0
    assert not (tmp_path / ".premem" / "artifacts" / rows(tmp_path / ".premem", "SELECT id FROM jobs WHERE label = ?",
                                                          (label,))[0][0]).exists()  # no checkpoint to go on from

    status = premem("status", "div.yaml", cwd=tmp_path).stdout
    assert f"-- loss {div['loss']} at step {div['step']}" in status
    assert "1 diverged, 6 done, 3 skipped" in status, status

    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    by_name = {r["name"]: r for r in summary["runs"]}
    bad, good = by_name["tiny/arithmetic/lr1e+30-ep2-frac1"], by_name["tiny/arithmetic/lr0.001-ep2-frac1"]
    assert bad["status"] == "diverged" and bad["diverged_step"] == div["step"] and not bad["checkpoints"]
    assert good["status"] == "done" and len(good["checkpoints"]) == 2
    html = (tmp_path / "reports" / "index.html").read_text()
    assert f"diverged at step {div['step']}" in html
    assert "trust_remote_code is on for tiny" in html and summary["trust_remote_code"] == ["tiny"]

    again = premem("apply", "div.yaml", cwd=tmp_path)  # a diverged run stays diverged: nothing to redo
    assert "Nothing to do" in again.stdout, again.stdout


# ------------------------------------------------------------------------------------------ user error
def test_user_error_fails_its_job_once_and_the_rest_goes_on(tmp_path):
    """A model whose context is shorter than the finetuning examples: a UserError, recorded after one attempt
    (no retry), its run's later jobs not started, the apply exits 2 naming it."""
    text = SMOKE.replace("max_length: 128}", "max_length: 24}").replace("warmup_steps: 20}", "warmup_steps: 20, block: 16}")
    text = text.replace("examples: 4000,", "examples: 400,")  # its pretraining is not what this is about
    spec(tmp_path, "short", text)
    out = premem("apply", "short.yaml", cwd=tmp_path, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "longer than the model's max_length" in out.stderr
    failed = rows(tmp_path / ".premem", "SELECT label, tries, error FROM jobs WHERE status = 'failed'")
    assert len(failed) == 2 and all(t == 1 for _, t, _ in failed), failed  # both epoch-1 jobs, one try each
    assert rows(tmp_path / ".premem", "SELECT kind, tries FROM jobs WHERE status = 'done' AND kind != 'analysis'") \
        == [("pretrain", 1)]
    status = premem("status", "short.yaml", cwd=tmp_path).stdout
    assert "2 failed" in status and "7 not started" in status, status  # the analysis too


# ------------------------------------------------------------------------------------------ store location
def test_store_location_problems_stop_apply_before_any_work(tmp_path):
    missing = tmp_path / "not-mounted" / "store"
    spec(tmp_path, "missing", SMOKE.replace("name: smoke\n", f"name: smoke\nstore: {missing}\n"))
    out = premem("apply", "missing.yaml", cwd=tmp_path, check=False)
    assert out.returncode == 2 and "does not exist (on a cluster: is the shared file system mounted?)" in out.stderr
    assert "nothing was run" in out.stderr and not (tmp_path / "not-mounted").exists()

    (tmp_path / "afile").write_text("x")  # refused when the spec is validated, before any work
    spec(tmp_path, "file", SMOKE.replace("name: smoke\n", "name: smoke\nstore: afile\n"))
    out = premem("apply", "file.yaml", cwd=tmp_path, check=False)
    assert out.returncode == 1 and "exists and is not a folder" in out.stderr and "nothing was run" in out.stderr


def _mount_tmpfs(where: Path, size: str, *options: str) -> bool:
    where.mkdir()
    opts = ",".join((f"size={size}",) + options)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True).returncode == 0


@pytest.fixture()
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "16m"):
        pytest.skip("cannot mount a tmpfs here (needs root): the full-disk checks need a small file system")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_or_read_only_store_stops_apply_before_any_work(tmp_path, small_disk):
    spec(tmp_path, "full", SMOKE.replace("name: smoke\n", f"name: smoke\nstore: {small_disk}/store\n"))
    out = premem("apply", "full.yaml", cwd=tmp_path, check=False)
    assert out.returncode == 2 and "MiB free on the file system of" in out.stderr and "nothing was run" in out.stderr
    assert not (small_disk / "store").exists()

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    out = premem("apply", "full.yaml", cwd=tmp_path, check=False)
    assert out.returncode == 2 and "cannot write in" in out.stderr and "Read-only file system" in out.stderr


def test_disk_filling_up_during_work_fails_clearly_and_loses_nothing(tmp_path):
    """The store's file system fills up after pretraining: the apply stops with a clear message (the job's
    ENOSPC, or the database that can no longer be written), exit 2, no traceback; once space is freed the
    next apply goes on from what was recorded (pretraining is not redone)."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "80m"):  # the pre-check asks about 71 MiB for the smoke spec
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        spec(tmp_path, "smoke", SMOKE.replace("name: smoke\n", f"name: smoke\nstore: {disk}/store\n")
             .replace("train_size: 32", "train_size: 160"))
        proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "smoke.yaml"], cwd=tmp_path, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        try:
            deadline = time.time() + 400
            while time.time() < deadline and proc.poll() is None:
                try:
                    con = sqlite3.connect(f"{(disk / 'store' / 'premem.db').as_uri()}?mode=ro", uri=True, timeout=5)
                    pre = con.execute("SELECT finished FROM jobs WHERE kind = 'pretrain'").fetchall()
                    con.close()
                except sqlite3.OperationalError:
                    pre = []
                if pre:
                    break
                time.sleep(0.05)
            assert pre, "pretraining was not recorded in time"
            filler = disk / "filler"
            with open(filler, "wb") as f:  # take every free byte
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
            out, err = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == 2, out + err
        assert ("No space left on device" in err or "database or disk is full" in err
                or "the file system under the store is full" in err), out + err
        assert "Traceback" not in err, err
        filler.unlink()
        again = premem("apply", "smoke.yaml", cwd=tmp_path)
        assert "0 failed" in again.stdout, again.stdout
        assert rows(disk / "store", "SELECT finished FROM jobs WHERE kind = 'pretrain'") == pre  # not redone
        assert not list((disk / "store" / "artifacts").glob(".tmp-*"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ------------------------------------------------------------------------------------------ damaged store
def test_damaged_checkpoint_and_database_are_reported_never_read(tmp_path, smoke_pretraining):
    spec(tmp_path, "smoke", SMOKE)
    store = smoke_pretraining(tmp_path / ".premem")
    premem("apply", "smoke.yaml", cwd=tmp_path)
    before = results(store)

    # a checkpoint truncated after its job was recorded; the jobs after it not yet recorded (a crash, say)
    (epoch1, sums), = rows(store, "SELECT id, result FROM jobs WHERE label = ?",
                           ("train tiny/arithmetic/lr0.001-ep2-frac1 epoch 1",))
    assert "model.safetensors" in json.loads(sums)["artifact_sha256"]
    weights = store / "artifacts" / epoch1 / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    con = sqlite3.connect(store / "premem.db")
    with con:
        con.execute("DELETE FROM jobs WHERE label LIKE '%lr0.001-ep2-frac1 epoch 2' OR kind = 'analysis'")
    con.close()
    out = premem("apply", "smoke.yaml", cwd=tmp_path, check=False)
    assert out.returncode == 2
    assert "model.safetensors does not match the checksum recorded with its job" in out.stderr, out.stderr
    assert not rows(store, "SELECT 1 FROM jobs WHERE id = ?", (epoch1,))  # forgotten: recomputed next time
    status = premem("status", "smoke.yaml", cwd=tmp_path).stdout
    assert "does not match the checksum" in status

    out = premem("apply", "smoke.yaml", cwd=tmp_path)  # recomputes epoch 1, then what needed it
    assert "Plan: 3 to run" in out.stdout and "0 failed" in out.stdout, out.stdout
    assert results(store) == before  # the same results as before the damage, bit for bit

    # the database itself: garbage, then a truncated copy; every command says so plainly and exits 2
    good = (store / "premem.db").read_bytes()
    for name, damaged in (("garbage", os.urandom(len(good))), ("truncated", good[:len(good) // 3])):
        shutil.rmtree(store)
        store.mkdir()
        (store / "premem.db").write_bytes(damaged)
        for verb in ("status", "apply", "report", "plan"):
            out = premem(verb, "smoke.yaml", cwd=tmp_path, check=False)
            assert out.returncode == 2, (name, verb, out.stdout, out.stderr)
            assert "damaged or not a premem database" in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert (store / "premem.db").read_bytes() == damaged, name  # never "repaired" by overwriting


# ------------------------------------------------------------------------------------------ worker killed
def _train_worker(driver: psutil.Process, epoch: int):
    """The Ray worker process running a training job of epoch `epoch` among the driver's descendants."""
    try:
        kids = driver.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for p in kids:
        try:
            title = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if title.startswith("ray::train ") and f"epoch {epoch}" in title:
            return p
    return None


KILL_SPEC = SMOKE.replace("train_size: 32", "train_size: 160").replace(
    "samples: 2", "samples: 1\n  train_examples: 16\n  test_examples: 16")  # longer epochs, cheap evaluations


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, smoke_pretraining):
    """The results of an undisturbed apply of KILL_SPEC, to compare disturbed ones with (its pretraining
    done beforehand, as the disturbed applies', or not: the same results either way)."""
    calm = tmp_path_factory.mktemp("calm")
    smoke_pretraining(calm / ".premem")
    spec(calm, "smoke", KILL_SPEC)
    premem("apply", "smoke.yaml", cwd=calm)
    return results(calm / ".premem")


def test_worker_killed_during_training_is_retried_from_the_last_epoch(tmp_path, undisturbed, smoke_pretraining):
    """kill -9 of the worker process while it trains epoch 2: Ray retries that one job, which starts again from
    epoch 1's checkpoint (epoch 1 is not redone), and every result equals an undisturbed run's."""
    hit = tmp_path / "hit"
    hit.mkdir()
    smoke_pretraining(hit / ".premem")
    spec(hit, "smoke", KILL_SPEC)

    proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "smoke.yaml"], cwd=hit, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        driver = psutil.Process(proc.pid)
        victim, deadline = None, time.time() + 400
        while victim is None and time.time() < deadline and proc.poll() is None:
            victim = _train_worker(driver, epoch=2)
            time.sleep(0.05)
        assert victim is not None, "no epoch-2 training worker was seen"
        title = " ".join(victim.cmdline())
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output
    assert "Applied: 8 done, 0 failed" in output, output  # pretraining was done
    label = " ".join(title.removeprefix("ray::").split())
    store = hit / ".premem"
    found = rows(store, "SELECT tries, started FROM jobs WHERE label = ?", (label,))
    assert len(found) == 1, (title, rows(store, "SELECT label FROM jobs"))
    (tries, started), = found
    assert tries == 2 and started > killed_at  # the recorded result is the retry's
    epoch1 = label.replace("epoch 2", "epoch 1")
    (finished1,), = rows(store, "SELECT finished FROM jobs WHERE label = ?", (epoch1,))
    assert finished1 < killed_at  # the run resumed from epoch 1's checkpoint: epoch 1 was not trained again
    assert f"2 tries" in premem("status", "smoke.yaml", cwd=hit).stdout
    assert results(store) == undisturbed  # identical to the undisturbed run


def test_driver_killed_twice_then_results_equal_an_undisturbed_run(tmp_path, undisturbed):
    """kill -9 of `premem apply` at two points (during pretraining, then with some runs' jobs recorded); each
    next apply redoes only what is unrecorded, and the finished study equals an undisturbed one exactly."""
    spec(tmp_path, "smoke", KILL_SPEC)
    store = tmp_path / ".premem"
    kept: dict[str, float] = {}
    for wait_for in (0, 3):  # recorded compute jobs to wait for before the kill
        proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "smoke.yaml"], cwd=tmp_path,
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 400
            while time.time() < deadline and proc.poll() is None:
                try:
                    n = len(rows(store, "SELECT 1 FROM jobs")) if (store / "premem.db").exists() else 0
                    running = rows(store, "SELECT 1 FROM attempts") if n >= wait_for else []
                except sqlite3.OperationalError:
                    n, running = 0, []
                if n >= len(kept) + wait_for and running:  # a job in flight
                    break
                time.sleep(0.05)
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # the driver only: its local Ray goes away with it
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        now = dict(rows(store, "SELECT id, finished FROM jobs")) if (store / "premem.db").exists() else {}
        assert all(now[k] == v for k, v in kept.items())  # what was recorded stays as it was
        kept = now
    assert len(kept) < 9, "the kills came too late"
    out = premem("apply", "smoke.yaml", cwd=tmp_path)
    assert f"Plan: {9 - len(kept)} to run, {len(kept)} done." in out.stdout, out.stdout
    assert results(store) == undisturbed


def test_jobs_no_node_can_take_are_refused_on_a_local_ray(tmp_path):
    """On the Ray that premem starts itself nothing would ever add a GPU: refused before any job starts (on a
    cluster the same plan is submitted with a note, for its autoscaler: test_multinode.py)."""
    spec(tmp_path, "gpu", SMOKE.replace("name: smoke\n", "name: smoke\nresources:\n  train: {gpus: 1}\n"))
    out = premem("apply", "gpu.yaml", cwd=tmp_path, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "train jobs ask for 1 gpus but the Ray cluster has 0 in all" in out.stderr and "nothing was run" in out.stderr
    assert not rows(tmp_path / ".premem", "SELECT 1 FROM jobs")


# ------------------------------------------------------------------------------------------ someone else's Ray
def test_a_local_apply_never_joins_a_cluster_an_earlier_ray_start_recorded(tmp_path):
    """`ray start` records its cluster's address in Ray's temp folder, and a bare ray.init() joins that cluster
    (another user's, or a test's). Without --address premem starts a Ray of its own all the same."""
    import tempfile

    from tests.e2e.test_multinode import free_port

    temp = Path(tempfile.mkdtemp(prefix="pm-rt-", dir="/tmp"))  # short: Ray's socket paths live under it
    try:
        recorded = f"127.0.0.1:{free_port()}"  # a port nothing listens on: joining it could only fail
        (temp / "ray").mkdir()
        (temp / "ray" / "ray_current_cluster").write_text(recorded)  # where `ray start` records it
        code = ("import ray; from premem.jobs.schedule import init_ray; started = init_ray(None); "
                "print(started, ray.get_runtime_context().gcs_address); ray.shutdown()")
        env = dict(_env(), RAY_TMPDIR=str(temp))
        env.pop("RAY_ADDRESS", None)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                             stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stdout + out.stderr
        started, address = out.stdout.split()[-2:]
        assert started == "True" and address != recorded, out.stdout
    finally:
        shutil.rmtree(temp, ignore_errors=True)
