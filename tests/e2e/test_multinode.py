"""Many nodes on one machine: a real two-node Ray cluster (`ray start --head` plus `ray start --address`, one
CPU each), the smoke spec applied to it with `premem apply --address`, and jobs landing on both nodes (each
job's node is recorded in the store and shown by `premem status`).

Teardown ends exactly the processes this test started (each `ray start --block` runs in its own process
group), not `ray stop`, which would stop every Ray on the machine, other people's test runs included.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_cli_apply import default_sigint

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    # token auth on or off must not depend on whether ~/.ray/auth_token happens to exist on this machine
    return dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _stop(proc: subprocess.Popen) -> None:
    """End a `ray start --block` and every process it started (its process group, then stragglers by pid)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    # a few seconds to stop cleanly, then SIGKILL (what it leaves is killed below, its temp folder removed): a
    # two-node cluster's graceful stop took 22.5 s here, 5.5 s with this
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 20)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=20)


@contextlib.contextmanager
def ray_cluster(head_cpus: int, workers: int):
    """A head node with `head_cpus` CPUs and `workers` worker nodes of one CPU each, all on this machine (each
    with its own raylet, object store and ports; the head's temp folder private to this test). Yields (address,
    {node id: 'premem_head' | 'premem_worker<i>'}, [the `ray start --block` processes, head first])."""
    temp = tempfile.mkdtemp(prefix="pm-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-gpus", "0", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1",
              "--dashboard-agent-listen-port", "0", "--metrics-export-port", "0"]
    procs = []
    log = open(Path(temp) / "ray-start.log", "w")
    try:
        procs.append(subprocess.Popen(
            [RAY, "start", "--head", "--port", str(port), "--temp-dir", temp, "--num-cpus", str(head_cpus),
             "--include-dashboard", "false", "--ray-client-server-port", str(free_port()),
             "--resources", '{"premem_head": 1}', *common],
            env=_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        _wait_nodes(address, 1)
        for i in range(workers):
            procs.append(subprocess.Popen(
                [RAY, "start", "--address", address, "--num-cpus", "1",
                 "--resources", f'{{"premem_worker{i}": 1}}', *common],
                env=_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
            nodes = _wait_nodes(address, 2 + i)  # one at a time: a busy machine times out nodes started together
        yield address, nodes, procs
    finally:
        for p in reversed(procs):
            _stop(p)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture()
def cluster():
    with ray_cluster(head_cpus=1, workers=1) as c:
        yield c


def _wait_nodes(address: str, n: int, timeout: float = 180) -> dict[str, str]:
    """Wait until the cluster has `n` live nodes; return node id -> its custom resource name."""
    code = ("import json, ray; ray.init(address=%r, logging_level='ERROR'); "
            "print(json.dumps({x['NodeID']: sorted(k for k in x['Resources'] if k.startswith('premem_')) "
            "for x in ray.nodes() if x['Alive']}))" % address)
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        try:
            out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True,
                                 timeout=60)
        except subprocess.TimeoutExpired as e:  # a GCS busy with a joining node on a loaded machine: ask again
            last = f"a query hung for 60 s: {(e.stderr or b'')[-2000:]!r}"
            continue
        if out.returncode == 0:
            nodes = json.loads(out.stdout.strip().splitlines()[-1])
            if len(nodes) >= n:
                return {k: v[0] if v else "" for k, v in nodes.items()}
        last = out.stderr[-2000:]
        time.sleep(1)
    raise AssertionError(f"the Ray cluster did not reach {n} nodes in {timeout}s\n{last}")


def test_smoke_spec_runs_across_two_nodes(cluster, tmp_path):
    address, nodes, _ = cluster
    assert sorted(nodes.values()) == ["premem_head", "premem_worker0"]
    shutil.copy(ROOT / "specs" / "smoke.yaml", tmp_path / "smoke.yaml")
    out = subprocess.run([sys.executable, "-m", "premem.cli", "apply", "smoke.yaml", "--address", address],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Applied: 9 done, 0 failed" in out.stdout, out.stdout

    con = sqlite3.connect(tmp_path / ".premem" / "premem.db")
    node_of = dict(con.execute("SELECT label, node FROM jobs WHERE kind != 'analysis'").fetchall())
    con.close()
    assert set(node_of.values()) == set(nodes), (node_of, nodes)  # both nodes ran jobs; every job's node is known

    def reads(label: str) -> str:  # the job whose checkpoint `label` loads
        kind, rest = label.split(" ", 1)
        run, epoch = rest.rsplit(" epoch ", 1)
        if kind == "evaluate":
            return f"train {run} epoch {epoch}"
        return f"train {run} epoch {int(epoch) - 1}" if epoch != "1" else "pretrain tiny"

    crossed = [(j, reads(j)) for j in node_of if not j.startswith("pretrain") and node_of[j] != node_of[reads(j)]]
    assert crossed, node_of  # a checkpoint written on one node was read on the other, through the shared store

    status = subprocess.run([sys.executable, "-m", "premem.cli", "status", "smoke.yaml"], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=120).stdout
    for node in nodes:
        assert f"[node {node[:8]}" in status, status

    # jobs no node of this cluster can take: on a cluster premem did not start, apply says so and submits
    # anyway (an autoscaler could add such a node); Ctrl-C then stops it, keeping what is done
    (tmp_path / "gpu.yaml").write_text((tmp_path / "smoke.yaml").read_text().replace(
        "name: smoke\n", "name: smoke\nstore: gpu-store\nresources:\n  pretrain: {gpus: 1}\n"))
    proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "gpu.yaml", "--address", address],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_sigint)
    try:
        seen, deadline = "", time.time() + 120
        while "submitting anyway" not in seen and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "pretrain jobs ask for 1 gpus but the Ray cluster has 0 in all" in seen, seen
        # one Ctrl-C is enough (premem's interrupt watcher, cli.py)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and "Interrupted" in rest, seen + rest


def _crash(proc: subprocess.Popen) -> None:
    """A node lost at once (a spot instance reclaimed): SIGKILL to its `ray start` and every process under it."""
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)
    psutil.wait_procs(family, timeout=30)


def test_node_lost_during_training_job_is_retried_on_the_other(tmp_path):
    """Two one-CPU worker nodes under a head without CPUs (so every job runs on a worker, wherever Ray's
    scheduler prefers): the worker node running a training job is lost (SIGKILL to all its processes), and
    Ray reruns that job on the other worker; the apply finishes everything."""
    with ray_cluster(head_cpus=0, workers=2) as (address, nodes, procs):
        _node_lost(address, nodes, procs, tmp_path)


def _node_lost(address, nodes, procs, tmp_path):
    proc_of = {n: procs[1 + int(r.removeprefix("premem_worker"))] for n, r in nodes.items() if r != "premem_head"}
    # epochs long enough (100 steps) to be caught in flight; evaluations kept cheap
    text = (ROOT / "specs" / "smoke.yaml").read_text().replace("train_size: 32", "train_size: 800").replace(
        "max_value: 20", "max_value: 99").replace("max_operand: 5", "max_operand: 20").replace(
        "samples: 2", "samples: 1\n  train_examples: 16\n  test_examples: 16")
    (tmp_path / "smoke.yaml").write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "smoke.yaml", "--address", address],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    plan = json.loads(subprocess.run([sys.executable, "-m", "premem.cli", "plan", "smoke.yaml", "--json"],
                                     cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120).stdout)
    train = {j["full_id"]: j["label"] for j in plan["jobs"] if j["kind"] == "train"}
    try:
        victim, deadline = None, time.time() + 400
        while victim is None and time.time() < deadline and proc.poll() is None:
            try:  # what `premem status` reads: the live driver's attempts and the node each runs on
                con = sqlite3.connect(f"{(tmp_path / '.premem' / 'premem.db').as_uri()}?mode=ro", uri=True, timeout=5)
                running = con.execute("SELECT job_id, node FROM attempts WHERE node IS NOT NULL").fetchall()
                con.close()
            except sqlite3.OperationalError:  # not created yet
                running = []
            victim, lost = next(((train[j], n) for j, n in running if j in train), (None, None))
            time.sleep(0.05)
        assert victim is not None, "no training job was seen running"
        _crash(proc_of[lost])
        output, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output
    assert "Applied: 9 done, 0 failed" in output, output
    label = victim
    con = sqlite3.connect(tmp_path / ".premem" / "premem.db")
    (node, tries), = con.execute("SELECT node, tries FROM jobs WHERE label = ?", (label,)).fetchall()
    con.close()
    left = next(n for n in proc_of if n != lost)
    assert node == left and tries >= 2, (label, node, tries)  # Ray retried it on the node that was left
