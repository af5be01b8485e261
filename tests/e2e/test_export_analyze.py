"""End to end: `premem apply` on the smoke spec, `premem export` to Parquet and CSV, then `premem analyze` on
each gives back the apply's figures (p, R^2s, every checkpoint's accuracies and PreMemAcc)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from premem.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def premem(*args, cwd, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AssertionError(f"premem {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def applied(tmp_path_factory, smoke_pretraining):
    work = tmp_path_factory.mktemp("smoke")
    smoke_pretraining(work / ".premem")
    shutil.copy(ROOT / "specs" / "smoke.yaml", work / "smoke.yaml")
    premem("apply", "smoke.yaml", cwd=work)
    return work


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_then_analyze_gives_back_the_apply_figures(applied, fmt):
    out = premem("export", "smoke.yaml", "--format", fmt, "--out", f"results.{fmt}", cwd=applied)
    assert f"results.{fmt}" in out.stdout and (applied / f"results.{fmt}").exists()
    g = load_spec(str(applied / "smoke.yaml")).premem.p_grid
    premem("analyze", f"results.{fmt}", "--p-grid", f"{g.start}:{g.stop}:{g.step}", "--out", f"analyzed-{fmt}",
           cwd=applied)
    want = json.loads((applied / "reports" / "summary.json").read_text())
    got = json.loads((applied / f"analyzed-{fmt}" / "summary.json").read_text())
    assert (applied / f"analyzed-{fmt}" / "index.html").exists()
    assert set(want) - {"perplexity_gap"} <= set(got)
    assert close(got["premem"]["p"], want["premem"]["p"])
    assert close(got["premem"]["r2"], want["premem"]["r2"])
    assert close(got["train_acc"]["r2"], want["train_acc"]["r2"])
    assert [c["p"] for c in got["premem"]["calibration"]] == [c["p"] for c in want["premem"]["calibration"]]
    done = [r for r in want["runs"] if r["checkpoints"]]
    assert [r["name"] for r in got["runs"]] == [r["name"] for r in done] and done
    for a, b in zip(got["runs"], done):
        assert a["settings"] == b["settings"]
        assert [c["epoch"] for c in a["checkpoints"]] == [c["epoch"] for c in b["checkpoints"]]
        for ca, cb in zip(a["checkpoints"], b["checkpoints"]):
            for k in ("premem_acc", "train_acc", "test_acc"):
                assert close(ca[k], cb[k]), (a["name"], ca["epoch"], k, ca[k], cb[k])
