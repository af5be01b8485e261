"""End to end: adding the classic measures and perturbations to a finished study computes only them, and the
report's summary carries their figures under stable keys (real CLI, real local Ray, real store)."""
import json
import sqlite3

import pytest

from tests.e2e.test_cli_apply import done_jobs, premem, workdir  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

MEASURES = """
metrics:
  gradient_variance: {minibatches: 3, batch_size: 8}
  weight_distance: {}
  atc: {reference: {learning_rate: 1.0e-3}}
perturbations:
  samples: 3
"""


def kinds(store):
    con = sqlite3.connect(store / "premem.db")
    out = dict(con.execute("SELECT id, kind FROM jobs").fetchall())
    con.close()
    return out


def test_measures_added_to_a_finished_study(workdir, smoke_pretraining):  # noqa: F811
    store = smoke_pretraining(workdir / ".premem")
    premem("apply", "smoke.yaml", cwd=workdir)
    before = done_jobs(store)
    spec = workdir / "smoke.yaml"
    spec.write_text(spec.read_text() + MEASURES)
    out = premem("apply", "smoke.yaml", cwd=workdir)
    after, kind = done_jobs(store), kinds(store)
    # nothing trained or evaluated again: only the new measure and perturb jobs (and the analysis) ran
    rerun = {kind[j] for j, t in after.items() if before.get(j) != t}
    assert rerun == {"measure", "perturb", "analysis"}, out.stdout
    assert sum(1 for j in after if kind[j] == "measure") == 3 * 4  # 3 measures x 2 runs x 2 epochs
    assert sum(1 for j in after if kind[j] == "perturb") == 3 * 2  # original + 2 preambles x final of 2 runs

    summary = json.loads((workdir / "reports" / "summary.json").read_text())
    for name in ("premem", "gradient_variance", "weight_distance", "atc"):
        entry = summary["baselines"][name]
        assert {"pearson_gap", "kendall_gap", "pearson_test", "kendall_test"} <= set(entry)
        assert entry["n"] == 4
    ref = summary["baselines_meta"]["atc_reference"]
    run = next(r for r in summary["runs"] if r["name"] == ref["run"])
    cp = next(c for c in run["checkpoints"] if c["epoch"] == ref["epoch"])
    # the threshold gives back the reference's test accuracy as far as the reference's scores allow: exactly when
    # test accuracy is a whole number of train prompts and no scores tie at the cut, else within the rounding
    # and the tied share (which scores tie differs from one CPU to another; the rule does not)
    assert cp["atc_acc"] == ref["reproduced_acc"]
    assert abs(cp["atc_acc"] - cp["test_acc"]) <= ref["reproduction_bound"] + 1e-12
    assert ref["reproduction_bound"] < 0.5  # 32 prompts: a tie of more than half of them would be a broken model
    for r in summary["runs"]:
        for c in r["checkpoints"]:
            assert c["weight_distance"] > 0 and c["gradient_variance"] > 0
            assert c["gap"] == pytest.approx(c["train_acc"] - c["test_acc"])
        assert r["loss_curve"] and r["samples"]["examples"]
    rob = summary["robustness"]
    assert list(rob) == ["original", "First,", "Let us think step by step."]
    n_examples = 32 * 2  # every train example of both final checkpoints, in exactly one bin per prompt
    for prompt in rob.values():
        assert list(prompt) == ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]
        assert sum(b["n"] for b in prompt.values()) == n_examples

    # every per-example result is exportable, perturbations and ATC scores included
    premem("export", "smoke.yaml", "--table", "perturbations", "--out", "p.csv", cwd=workdir)
    lines = (workdir / "p.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ['"run"', '"checkpoint"', '"example_id"', '"prompt"']
    assert len(lines) == 1 + 3 * 2 * 32
    premem("export", "smoke.yaml", "--table", "atc", "--out", "a.parquet", cwd=workdir)
    import pyarrow.parquet as pq

    assert pq.read_table(workdir / "a.parquet").num_rows == 2 * 2 * 32

    # one more preamble: only its two perturb jobs run
    spec.write_text(spec.read_text().replace("samples: 3", "samples: 3\n  preambles: [' First,', ' Let us think "
                                             "step by step.', ' So']"))
    again = premem("apply", "smoke.yaml", cwd=workdir)
    newer = done_jobs(store)
    ran = [j for j, t in newer.items() if after.get(j) != t and kinds(store)[j] != "analysis"]
    assert len(ran) == 2 and all(kinds(store)[j] == "perturb" for j in ran), again.stdout

    # last (it skips without a browser outside CI): the real report in a real browser; every page renders
    # offline with no error, every figure drawn
    from tests.report.test_browser import ARGS, CHROMIUM, _need_browser, assert_pages_render, report_pages

    _need_browser()
    from playwright.sync_api import sync_playwright

    out = workdir / "reports"
    shots = workdir / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            assert_pages_render(browser, out, report_pages(out), shots)
        finally:
            browser.close()

