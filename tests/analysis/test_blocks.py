"""Calibration per (model, dataset) block (premem.calibrate: per_block, the default) against pooled calibration:
each block of a two-block study recovers its own p with R^2 about 1, one pooled p fits one of them badly, and a
study of one block gets exactly the summary it got before blocks existed."""
import json

import numpy as np
import pytest

from premem.analysis.analyze import analyze, build_summary, perplexity_gap
from premem.cli import main
from premem.spec.schema import PGrid
from tests.blocks_table import BLOCKS, GRID, block_runs, write_table

PS = PGrid(start=GRID[0], stop=GRID[1], step=GRID[2]).values()
STEP = GRID[2]


def entries(runs):
    return [{"id": r.name, "name": r.name, "status": "done", "error": None, "settings": r.settings} for r in runs]


def by_block(result):
    return {(b["model"], b["dataset"]): b for b in result["blocks"]}


@pytest.mark.parametrize("seed", [0, 1])
def test_each_block_recovers_its_own_p(seed):
    runs = block_runs(seed)
    got = analyze(runs, PS, [r.name for r in runs])
    assert got["premem"]["calibrate"] == "per_block"
    blocks = by_block(got)
    assert set(blocks) == set(BLOCKS)
    for key, p_true in BLOCKS.items():
        b = blocks[key]
        assert abs(b["p"] - p_true) <= STEP + 1e-9
        assert b["r2"] == pytest.approx(1.0, abs=1e-9)
        assert len(b["runs"]) == 3 and b["checkpoints"] == 15 and len(b["calibration"]) == len(PS)
        assert b["calibration_runs"] == b["runs"]
        lo, hi = b["test_acc_range"]
        assert 0 <= lo < hi <= 1
    # several blocks calibrated apart: no one p; the headline R^2 pools every checkpoint at its block's p
    assert got["premem"]["p"] is None and got["premem"]["calibration"] == []
    assert got["premem"]["r2"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_pooled_picks_one_p_and_fits_a_block_worse(seed):
    runs = block_runs(seed)
    per = by_block(analyze(runs, PS, [r.name for r in runs]))
    pooled = analyze(runs, PS, [r.name for r in runs], calibrate_mode="pooled")
    p = pooled["premem"]["p"]
    assert p is not None and pooled["premem"]["calibrate"] == "pooled"
    assert {b["p"] for b in pooled["blocks"]} == {p}
    worst = min(b["r2"] for b in pooled["blocks"])
    assert worst < min(b["r2"] for b in per.values()) - 0.05
    # pooled keeps its one calibration curve, as before blocks
    assert len(pooled["premem"]["calibration"]) == len(PS)


def test_calibration_runs_are_taken_within_each_block():
    runs = block_runs(0)
    gsm = [r.name for r in runs if r.settings["dataset"] == "gsm8k"]
    got = analyze(runs, PS, gsm)
    blocks = by_block(got)
    assert blocks[("llama-test", "gsm8k")]["calibration_runs"] == gsm
    math_block = blocks[("llama-test", "math")]
    assert math_block["p"] is None and math_block["calibration_runs"] == [] and math_block["r2"] is None
    assert any("llama-test / math has no calibration runs" in n for n in got["notes"])
    math_runs = {r["name"]: r for r in got["runs"] if r["name"] in math_block["runs"]}
    assert all(c["premem_acc"] is None for r in math_runs.values() for c in r["checkpoints"])
    # a fixed p applies to every block
    fixed = analyze(runs, PS, gsm, fixed_p=-2.0)
    assert [b["p"] for b in fixed["blocks"]] == [-2.0, -2.0] and not fixed["notes"]


def test_summary_blocks_and_each_run_says_its_p():
    runs = block_runs(0)
    summary, dynamics = build_summary(runs, entries(runs), ps=PS, calibration_runs=[r.name for r in runs])
    blocks = by_block(summary)
    for r in summary["runs"]:
        key = (r["settings"]["model"], r["settings"]["dataset"])
        assert r["p"] == blocks[key]["p"]
    assert set(dynamics) == {r.name for r in runs}
    for b in summary["blocks"]:
        assert {"model", "dataset", "p", "r2", "r2_line", "train_acc", "calibration", "calibration_runs",
                "checkpoints", "test_acc_range", "perplexity_gap"} <= set(b)
        assert b["perplexity_gap"]["threshold_perplexity"] == pytest.approx(np.exp(np.exp(b["p"])))
    # several ps: the study-wide perplexity gap has no one threshold
    assert summary["perplexity_gap"]["threshold_perplexity"] is None


def test_perplexity_gap_per_run_p_equals_per_block_gaps():
    runs = block_runs(0)
    p_of = {r.name: BLOCKS[(r.settings["model"], r.settings["dataset"])] for r in runs}
    both = perplexity_gap(runs, p_of)
    parts = [perplexity_gap([r for r in runs if r.settings["dataset"] == d], p) for (_, d), p in BLOCKS.items()]
    assert both["memorized_correct_count"] == sum(g["memorized_correct_count"] for g in parts)
    assert both["unmemorized_correct_count"] == sum(g["unmemorized_correct_count"] for g in parts)


def test_one_block_summary_is_unchanged():
    """A study of one block: summary['premem'] is exactly the one calibration, whichever mode, and equal to the
    block's own figures."""
    runs = [r for r in block_runs(0) if r.settings["dataset"] == "math"]
    names = [r.name for r in runs]
    per, _ = build_summary(runs, entries(runs), ps=PS, calibration_runs=names)
    pooled, _ = build_summary(runs, entries(runs), ps=PS, calibration_runs=names, calibrate_mode="pooled")
    strip = lambda pm: {k: v for k, v in pm.items() if k != "calibrate"}  # noqa: E731
    assert strip(per["premem"]) == strip(pooled["premem"])
    assert per["runs"] == pooled["runs"] and per["perplexity_gap"] == pooled["perplexity_gap"]
    (b,) = per["blocks"]
    assert b["p"] == per["premem"]["p"] and b["r2"] == per["premem"]["r2"]
    assert b["r2_line"] == per["premem"]["r2_line"] and b["train_acc"] == per["train_acc"]
    assert b["calibration"] == per["premem"]["calibration"]
    assert per["perplexity_gap"]["threshold_perplexity"] == pytest.approx(np.exp(np.exp(b["p"])))
    assert not [n for n in per["notes"] if "Block" in n]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_cli_analyze_two_blocks(tmp_path, ext, capsys):
    path = write_table(tmp_path / f"results.{ext}", block_runs(0))
    grid = ":".join(str(x) for x in GRID)
    out = tmp_path / "per"
    assert main(["analyze", path, "--p-grid", grid, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    blocks = by_block(summary)
    for key, p_true in BLOCKS.items():
        assert abs(blocks[key]["p"] - p_true) <= STEP + 1e-9 and blocks[key]["r2"] > 0.999
        assert f"{key[0]} / {key[1]}: p = {blocks[key]['p']:.3f}" in printed
    assert "calibrated per (model, dataset) block" in printed
    html = (out / "index.html").read_text()
    assert 'id="blocks"' in html and (out / "data" / "blocks.csv").exists()
    assert (out / "data" / "block2_calibration.csv").exists()
    out2 = tmp_path / "pooled"
    assert main(["analyze", path, "--p-grid", grid, "--pooled", "--out", str(out2)]) == 0
    pooled = json.loads((out2 / "summary.json").read_text())
    assert pooled["premem"]["calibrate"] == "pooled" and pooled["premem"]["p"] is not None
    assert min(b["r2"] for b in pooled["blocks"]) < 0.95


def test_calibrate_is_hashed_only_when_pooled():
    """The analysis job's id: unchanged by premem.calibrate at its default (every id pinned before it stays),
    different under pooled."""
    from pathlib import Path

    from premem.plan.build import build_plan
    from premem.spec.load import load_spec

    spec = load_spec(str(Path(__file__).resolve().parents[2] / "specs" / "smoke.yaml"))
    assert spec.premem.calibrate == "per_block"

    def analysis_job(s):
        return next(j for j in build_plan(s).jobs if j.kind == "analysis")

    default = analysis_job(spec)
    assert "calibrate" not in default.settings.premem
    pooled = analysis_job(spec.model_copy(update={"premem": spec.premem.model_copy(update={"calibrate": "pooled"})}))
    assert pooled.settings.premem["calibrate"] == "pooled" and pooled.id != default.id


def test_report_of_two_blocks_and_of_one(tmp_path):
    """Two blocks: the Overview has the blocks table and, per block, a PreMemAcc-vs-test figure and a calibration
    curve, each well-formed with its CSV; the headline p says 'per block'. One block: no blocks section."""
    import re
    import xml.etree.ElementTree as ET

    from premem.report.html import write_report

    runs = block_runs(0)
    summary, dynamics = build_summary(runs, entries(runs), ps=PS, calibration_runs=[r.name for r in runs])
    out = tmp_path / "two"
    write_report(summary, dynamics, out)
    page = (out / "index.html").read_text()
    section = page[page.index('<section id="blocks">'):]
    section = section[:section.index("</section>")]
    assert "per block" in page and section.count("<figure") == 4
    for svg_text in re.findall(r"<svg\b.*?</svg>", section, re.S):
        ET.fromstring(svg_text)
    for k in (1, 2):
        for name in (f"block{k}_premem_vs_test.csv", f"block{k}_calibration.csv"):
            assert f"data/{name}" in section and (out / "data" / name).is_file()
    rows = (out / "data" / "blocks.csv").read_text().splitlines()
    assert rows[0].startswith("model,dataset,p,r2,r2_line,train_r2") and len(rows) == 3
    one = [r for r in runs if r.settings["dataset"] == "gsm8k"]
    summary, dynamics = build_summary(one, entries(one), ps=PS, calibration_runs=[r.name for r in one])
    out = tmp_path / "one"
    write_report(summary, dynamics, out)
    page = (out / "index.html").read_text()
    assert 'id="blocks"' not in page and not (out / "data" / "blocks.csv").exists()
