"""The curation section through the real CLI and a real local Ray, on a tiny built-in study: every strategy's
curve and rounds in summary.json and on the report's Curation page; a kill -9 in the middle of a round resumes
there and ends with the same results; a pool that runs dry stops with a clear error; changing t reruns only
premem's chain."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.e2e.test_faults import _env, premem, results, rows, spec

pytestmark = pytest.mark.slow

CURATION = """name: cur
seed: 0
models:
  - name: tiny
    builtin: tiny
    size: {layers: 2, hidden: 32, heads: 2, mlp: 64, max_length: 192}
    pretrain: {dataset: arithmetic, examples: 300, epochs: 1, learning_rate: 5.0e-3, batch_size: 32, block: 128}
datasets:
  - name: arithmetic
    builtin: arithmetic
    train_size: 24
    test_size: 16
    max_steps: 3
    max_value: 40
    max_operand: 10
training: {batch_size: 8, warmup_steps: 1}
evaluation: {samples: 2, test_samples: 1, max_new_tokens: 60, temperature: 0.8}
premem: {p: -0.75}
curation:
  rounds: 2
  new_examples: 8
  learning_rate: 1.0e-3
  epochs: 2
  ifd: {epochs: 1}
"""
N_JOBS = 40  # compute jobs: pretrain, round 0 (2 train + 2 evaluate), IFD scorer (train + score), 4 x 2 rounds


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("curation")
    spec(tmp, "cur", CURATION)
    out = premem("apply", "cur.yaml", cwd=tmp)
    assert f"Applied: {N_JOBS} done, 0 failed" in out.stdout, out.stdout
    return tmp


def test_every_strategy_has_its_curve_and_rounds(study):
    cur = json.loads((study / "reports" / "summary.json").read_text())["curation"]
    assert cur["strategies"] == ["premem", "iid", "ifd", "heuristic"] and cur["originals"] == 24
    for s in cur["strategies"]:
        curve = cur[s]["curve"]
        assert [(p["round"], p["size"], p["status"]) for p in curve] == [(0, 24, "done"), (1, 32, "done"),
                                                                        (2, 40, "done")]
        assert all(0 <= p["test_acc"] <= 1 for p in curve)
        assert [(r["new"], r["collected"]) for r in cur[s]["rounds"]] == [(8, 8), (8, 16)]
    assert cur["iid"]["rounds"][0]["chosen"] == 24
    assert cur["ifd"]["rounds"][0]["chosen"] == cur["heuristic"]["rounds"][0]["chosen"] == 12  # top 50 percent
    assert 0 <= cur["premem"]["rounds"][0]["premem_mean"] <= 1
    for s in ("premem", "ifd", "heuristic"):
        assert "efficiency" in cur[s]
    page = (study / "reports" / "curation.html").read_text()
    assert "premem" in page and "heuristic" in page


def test_collected_examples_are_variants_of_the_chosen_originals(study):
    store = study / ".premem"
    (job_id, result), = rows(store, "SELECT id, result FROM jobs WHERE label LIKE 'collect round 2 (heuristic%'")
    lines = (store / "artifacts" / job_id / "collected.jsonl").read_text().splitlines()
    collected = [json.loads(x) for x in lines]
    assert len(collected) == 16 and [c["round"] for c in collected] == [1] * 8 + [2] * 8
    chosen = set(json.loads(result)["chosen_ids"])
    assert {c["original"] for c in collected} <= chosen
    assert len({c["id"] for c in collected}) == 16  # no variant drawn twice


def test_changing_only_t_reruns_only_premems_chain(study, tmp_path):
    shutil.copytree(study / ".premem", tmp_path / ".premem")
    spec(tmp_path, "cur", CURATION.replace("  rounds: 2\n", "  rounds: 2\n  threshold: 0.5\n"))
    plan = json.loads(premem("plan", "cur.yaml", "--json", cwd=tmp_path).stdout)
    todo = [j["label"] for j in plan["jobs"] if j["status"] != "done" and j["kind"] != "analysis"]
    assert todo and all("premem" in label for label in todo), todo
    assert "collect round 1 (premem, 8 new)" in todo


def test_kill_in_the_middle_of_a_round_resumes_there_with_the_same_results(study, tmp_path):
    spec(tmp_path, "cur", CURATION)
    store = tmp_path / ".premem"
    proc = subprocess.Popen([sys.executable, "-m", "premem.cli", "apply", "cur.yaml"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            try:
                round1 = rows(store, "SELECT 1 FROM jobs WHERE label LIKE 'collect round 1%' AND status = 'done'")
                running = rows(store, "SELECT 1 FROM attempts")
            except sqlite3.OperationalError:
                round1, running = [], []
            if len(round1) >= 2 and running:  # inside round 1: some collected, jobs in flight
                break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    kept = len(rows(store, "SELECT 1 FROM jobs WHERE status = 'done'"))
    assert 0 < kept < N_JOBS, "the kill came too late"
    out = premem("apply", "cur.yaml", cwd=tmp_path)
    assert f"Plan: {N_JOBS - kept} to run, {kept} done." in out.stdout, out.stdout
    assert results(store) == results(study / ".premem")


def test_a_pool_that_runs_dry_stops_with_a_clear_error(tmp_path):
    pool = tmp_path / "pool.jsonl"
    from premem.data.loaders import arithmetic_task
    from premem.spec.load import parse_spec

    ds = parse_spec(CURATION, "cur.yaml").datasets[0]
    task = arithmetic_task(ds)
    train = task.split("train", 24)
    with open(pool, "w") as f:  # one pre-written variant for each of the first four originals only
        for ex in train[:4]:
            v = task.variants(ex, 1, seed=5)[0]
            f.write(json.dumps({"original_id": ex.id, "question": v.question, "answer": v.solution}) + "\n")
    text = CURATION.replace("  ifd: {epochs: 1}\n", f"  strategies: [iid]\n  source: pool\n  pool: {{file: {pool}}}\n")
    spec(tmp_path, "pool", text)
    out = premem("apply", "pool.yaml", cwd=tmp_path, check=False)
    assert out.returncode != 0
    assert "have only 4 unused variants left; this round asks for 8" in out.stdout + out.stderr, out.stdout + out.stderr


def test_export_lists_every_collected_example(study, tmp_path):
    out = premem("export", "cur.yaml", "--table", "curation", "--out", str(tmp_path / "c.csv"), cwd=study)
    assert "Exported 64 rows (4 runs)" in out.stdout, out.stdout  # 4 strategies x 2 rounds x 8
    import csv

    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert {r["strategy"] for r in rows} == {"premem", "iid", "ifd", "heuristic"}
    assert all(r["example_id"].startswith(r["original_id"] + "-v") and r["answer"] for r in rows)
    none = premem("export", "cur.yaml", cwd=study, check=False)  # no grid runs: nothing in the results table
    assert none.returncode != 0 and "no finished checkpoints of grid runs" in none.stderr
