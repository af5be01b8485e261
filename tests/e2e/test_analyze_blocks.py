"""End to end: `premem analyze` as a command on a CSV and a Parquet table of two (model, dataset) blocks whose
true p differ: per block (the default) each block gets its own p with R^2 about 1, `--pooled` one p that fits
one block worse; both print each block's p and R^2 and write the blocks into summary.json and the report."""
import json
import subprocess
import sys

import pytest

from tests.blocks_table import BLOCKS, GRID, block_runs, write_table

pytestmark = pytest.mark.slow


def premem(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"premem {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_analyze_two_blocks(tmp_path, fmt):
    write_table(tmp_path / f"results.{fmt}", block_runs(1))
    grid = "--p-grid=" + ":".join(str(x) for x in GRID)
    printed = premem("analyze", f"results.{fmt}", grid, "--out", "per", cwd=tmp_path)
    per = json.loads((tmp_path / "per" / "summary.json").read_text())
    assert per["premem"]["calibrate"] == "per_block" and per["premem"]["p"] is None
    for b in per["blocks"]:
        p_true = BLOCKS[(b["model"], b["dataset"])]
        assert abs(b["p"] - p_true) <= GRID[2] + 1e-9 and b["r2"] > 0.999
        assert f"{b['model']} / {b['dataset']}: p = {b['p']:.3f}, R^2 = {b['r2']:.3f}" in printed
        assert all(r["p"] == b["p"] for r in per["runs"] if r["name"] in b["runs"])
    assert 'id="blocks"' in (tmp_path / "per" / "index.html").read_text()

    printed = premem("analyze", f"results.{fmt}", grid, "--pooled", "--out", "pooled", cwd=tmp_path)
    pooled = json.loads((tmp_path / "pooled" / "summary.json").read_text())
    p = pooled["premem"]["p"]
    assert p is not None and f"PreMemAcc: p = {p:.3f}" in printed
    assert {b["p"] for b in pooled["blocks"]} == {p}
    assert min(b["r2"] for b in pooled["blocks"]) < min(b["r2"] for b in per["blocks"]) - 0.05
