"""Many nodes on one machine: a real two-node Ray cluster (`ray start --head` plus `ray start --address`, one
CPU each), the smoke spec applied to it with `premem apply --address`, and jobs landing on both nodes (each
job's node is recorded in the store and shown by `premem status`).

Teardown ends exactly the processes this test started (each `ray start --block` runs in its own process
group), not `ray stop`, which would stop every Ray on the machine, other people's test runs included.
"""
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

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
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
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            continue
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=20)


@pytest.fixture()
def cluster():
    temp = tempfile.mkdtemp(prefix="pm-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--num-gpus", "0", "--block", "--disable-usage-stats",
              "--dashboard-agent-listen-port", "0", "--metrics-export-port", "0"]
    procs = []
    log = open(Path(temp) / "ray-start.log", "w")
    try:
        procs.append(subprocess.Popen(
            [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--temp-dir", temp,
             "--include-dashboard", "false", "--ray-client-server-port", str(_free_port()),
             "--resources", '{"premem_head": 1}', *common],
            env=_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        _wait_nodes(address, 1)
        procs.append(subprocess.Popen(
            [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1",
             "--resources", '{"premem_worker": 1}', *common],
            env=_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        nodes = _wait_nodes(address, 2)
        yield address, nodes
    finally:
        for p in reversed(procs):
            _stop(p)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _wait_nodes(address: str, n: int, timeout: float = 120) -> dict[str, str]:
    """Wait until the cluster has `n` live nodes; return node id -> its custom resource name."""
    code = ("import json, ray; ray.init(address=%r, logging_level='ERROR'); "
            "print(json.dumps({x['NodeID']: sorted(k for k in x['Resources'] if k.startswith('premem_')) "
            "for x in ray.nodes() if x['Alive']}))" % address)
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            import json

            nodes = json.loads(out.stdout.strip().splitlines()[-1])
            if len(nodes) >= n:
                return {k: v[0] if v else "" for k, v in nodes.items()}
        last = out.stderr[-2000:]
        time.sleep(1)
    raise AssertionError(f"the Ray cluster did not reach {n} nodes in {timeout}s\n{last}")


def test_smoke_spec_runs_across_two_nodes(cluster, tmp_path):
    address, nodes = cluster
    assert sorted(nodes.values()) == ["premem_head", "premem_worker"]
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
