"""The robustness figure (the paper's Fig. 7) per (model, dataset) block: examples of two tasks are never binned
together, and `perturbations.perfect_bin` gives PreMemAcc = 1.0 a bin of its own (the authors' GSM8K panel).

Real plan, real store (SQLite in tmp_path); the per-example rows are written by the test instead of a model."""
from __future__ import annotations

import pytest

from premem.analysis.analyze import gather_runs
from premem.analysis.measures import BINS, add_robustness, bin_label, bin_of, bins_for
from premem.plan.build import build_plan
from premem.report.html import write_report
from premem.spec.load import parse_spec
from premem.store import Store

SPEC = """\
name: blocks
seed: 0
models:
  - name: tiny
    builtin: tiny
    size: {layers: 1, hidden: 16, heads: 2, mlp: 32, max_length: 160}
    pretrain: {dataset: easy, examples: 10}
datasets:
  - {name: easy, builtin: arithmetic, train_size: 6, test_size: 3, max_steps: 1, max_value: 20, max_operand: 5}
  - {name: hard, builtin: arithmetic, train_size: 6, test_size: 3, max_steps: 2, max_value: 20, max_operand: 5}
grid: {learning_rate: [1.0e-3], epochs: [2]}
evaluation: {samples: 2, max_new_tokens: 4, batch_size: 4}
perturbations: {samples: 2, perfect_bin: PERFECT}
premem: {p: -3.0}
"""
K = 2


def _study(tmp_path, perfect: bool):
    plan = build_plan(parse_spec(SPEC.replace("PERFECT", str(perfect).lower())))
    store = Store(tmp_path / "store")
    for job in plan.jobs:
        if job.kind == "train":
            store.record(job, "done", result={"mean_loss": 1.0})
        if job.kind not in ("evaluate", "perturb"):
            continue
        easy = job.run.split("/")[1] == "easy"
        # every example of `easy` always right (PreMemAcc 1.0), of `hard` always wrong (0.0); nll 1.0 is far
        # above the threshold (log 1.0 = 0 > p = -3): nothing is memorized
        right = K if easy else 0
        if job.kind == "perturb" and job.settings.preamble:
            right = K // 2 if easy else 0  # a preamble costs the easy examples half their accuracy
        rows = [{"split": "train", "example_id": f"train-{e:06d}", "n_samples": K, "n_correct": right,
                 "n_unparseable": 0, "nll": 1.0, "n_target_tokens": 10} for e in range(6)]
        if job.kind == "evaluate":
            rows += [{"split": "test", "example_id": f"test-{t:06d}", "n_samples": K, "n_correct": right,
                      "n_unparseable": 0} for t in range(3)]
        store.record(job, "done", result={}, examples=rows)
    return plan, store


def _robustness(tmp_path, perfect: bool) -> dict:
    plan, store = _study(tmp_path, perfect)
    runs, _ = gather_runs(plan, store)
    summary = {"runs": [{"name": r.name, "checkpoints": []} for r in runs]}
    add_robustness(plan, store, summary, runs, {r.name: -3.0 for r in runs})
    return summary


def test_two_blocks_are_binned_apart(tmp_path):
    summary = _robustness(tmp_path, perfect=False)
    panels = {p["dataset"]: p for p in summary["robustness_blocks"]}
    assert set(panels) == {"easy", "hard"}
    assert "robustness" not in summary  # no figure pooling two tasks
    assert summary["robustness_meta"]["blocks"] == ["tiny / easy", "tiny / hard"]
    easy, hard = panels["easy"], panels["hard"]
    assert easy["meta"]["checkpoints"] and all("/easy/" in c["run"] for c in easy["meta"]["checkpoints"])
    assert all("/hard/" in c["run"] for c in hard["meta"]["checkpoints"])
    # easy: all six examples in the top bin (closed at 1.0), accuracy 1.0 originally and 0.5 under a preamble
    top = bin_label(*BINS[-1])
    assert easy["robustness"]["original"][top]["n"] == 6 and easy["robustness"]["original"][top]["mean"] == 1.0
    preambles = [lab for lab in easy["robustness"] if lab != "original"]
    assert len(preambles) == 2 and all(easy["robustness"][lab][top]["mean"] == 0.5 for lab in preambles)
    # hard: all in the bottom bin, none leaked into easy's panel or the other way round
    bottom = bin_label(*BINS[0])
    assert hard["robustness"]["original"][bottom]["n"] == 6 and hard["robustness"]["original"][top]["n"] == 0
    assert easy["robustness"]["original"][bottom]["n"] == 0


def test_perfect_bin_holds_premem_acc_one_alone(tmp_path):
    summary = _robustness(tmp_path, perfect=True)
    easy = next(p for p in summary["robustness_blocks"] if p["dataset"] == "easy")
    assert easy["meta"]["bins"] == ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0", "1.0"]
    assert easy["robustness"]["original"]["1.0"]["n"] == 6 and easy["robustness"]["original"]["0.8-1.0"]["n"] == 0


@pytest.mark.parametrize("value, five, six", [(0.0, 0, 0), (0.8, 4, 4), (0.9999, 4, 4), (1.0, 4, 5)])
def test_bin_of_with_and_without_the_perfect_bin(value, five, six):
    assert bin_of(value) == five and bin_of(value, perfect_bin=True) == six
    assert len(bins_for(False)) == 5 and len(bins_for(True)) == 6


def test_report_draws_one_panel_per_block(tmp_path):
    summary = _robustness(tmp_path, perfect=True)
    out = tmp_path / "report"
    write_report({"spec": {"name": "blocks"}, "runs": summary["runs"], **{k: v for k, v in summary.items()
                                                                          if k != "runs"}}, {}, out)
    page = (out / "robustness.html").read_text(encoding="utf-8")
    assert 'id="violins-1"' in page and 'id="violins-2"' in page
    assert "tiny / easy" in page and "tiny / hard" in page
    header = (out / "data" / "robustness.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("block,prompt,")
