"""The curation section's jobs chain round to round by content hash (premem.plan.curation)."""
import json
from pathlib import Path

import pytest

from premem.plan.build import build_plan
from premem.spec.load import SpecError, parse_spec

BASE = """
name: cur
models:
  - name: tiny
    builtin: tiny
    size: {layers: 2, hidden: 32, heads: 2, mlp: 64, max_length: 192}
    pretrain: {dataset: arithmetic, examples: 100}
datasets:
  - name: arithmetic
    builtin: arithmetic
    train_size: 16
    test_size: 8
premem: {p: -0.75}
curation:
  new_examples: 4
  learning_rate: 1.0e-3
  epochs: 2
"""


def plan_of(extra: str = "", **curation):
    curation.setdefault("rounds", 3)
    spec = BASE + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in curation.items()) + extra
    return build_plan(parse_spec(spec, "cur.yaml"))


def ids_by_label(plan) -> dict[str, str]:
    return {j.label: j.id for j in plan.jobs}


def test_round_zero_is_shared_and_every_strategy_has_its_rounds():
    plan = plan_of()
    cp = plan.curation
    assert [r.name for r in cp.runs if r.round == 0] == ["curation/round0"]
    assert cp.runs[0].strategies == ("premem", "iid", "ifd", "heuristic")
    for s in ("premem", "iid", "ifd", "heuristic"):
        assert [r.round for r in cp.runs if r.strategies == (s,)] == [1, 2, 3]
        assert len(cp.collects[s]) == 3
    assert plan.runs == []  # a curation-only spec has no grid runs
    labels = [j.label for j in plan.jobs]
    assert len(labels) == len(set(labels))


def test_rounds_chain_collect_to_collect_and_collect_to_training():
    plan = plan_of()
    by_id = {j.id: j for j in plan.jobs}
    for s, collects in plan.curation.collects.items():
        for r, cid in enumerate(collects, start=1):
            job = by_id[cid]
            if r > 1:
                assert collects[r - 2] in job.deps and job.settings.after == collects[r - 2]
            else:
                assert job.settings.after is None
        for run in plan.curation.runs:
            if run.strategies == (s,):
                first_train = by_id[run.train[0]]
                assert run.collect in first_train.deps and first_train.settings.collected == run.collect
    # premem selects with the previous round's model: its collect of round r depends on round r-1's evaluations
    runs = {r.name: r for r in plan.curation.runs}
    c2 = by_id[plan.curation.collects["premem"][1]]
    assert set(runs["curation/premem/round1"].evals) <= set(c2.deps)
    assert len(runs["curation/premem/round1"].evals) == 2  # every epoch: PreMemAcc runs over epochs
    assert len(runs["curation/premem/round3"].evals) == 1  # the last round only gives a test accuracy
    assert len(runs["curation/iid/round2"].evals) == 1
    assert by_id[plan.curation.collects["ifd"][0]].settings.scores == plan.curation.scorer


def test_changing_the_threshold_reruns_only_premems_chain():
    a, b = ids_by_label(plan_of()), ids_by_label(plan_of(threshold=0.5))
    changed = {label for label in a if a[label] != b[label]}
    assert changed
    assert all("premem" in label or label == "analysis and report" for label in changed), changed
    assert not any("round0" in label for label in changed)


def test_changing_the_ifd_percent_reruns_only_ifds_rounds_not_its_scorer():
    a, b = ids_by_label(plan_of()), ids_by_label(plan_of(ifd={"percent": 75}))
    changed = {label for label in a if a[label] != b[label]}
    assert all("(ifd" in label or "curation/ifd/" in label or label == "analysis and report" for label in changed)
    assert a["score IFD of the originals"] == b["score IFD of the originals"]


def test_ifd_bos_only_reruns_the_scorer_and_ifds_rounds_only():
    a, b = ids_by_label(plan_of()), ids_by_label(plan_of(ifd={"unconditional": "bos_only"}))
    changed = {label for label in a if a[label] != b[label]}
    assert "score IFD of the originals" in changed
    assert all("(ifd" in label or "curation/ifd/" in label or label in ("analysis and report",
               "score IFD of the originals") for label in changed), changed
    explicit = ids_by_label(plan_of(ifd={"unconditional": "after_cue"}))
    assert explicit == a  # the default, written out, is hashed as before the option existed


def test_rounds_of_varying_size_plan_their_own_sizes():
    plan = build_plan(parse_spec(BASE.replace("new_examples: 4", "new_examples: [2, 4, 8]") + "  rounds: 3\n"))
    for s in ("premem", "iid", "ifd", "heuristic"):
        sizes = [plan.job(j).settings.new_examples for j in plan.curation.collects[s]]
        assert sizes == [2, 4, 8]


def test_more_rounds_keep_the_earlier_rounds():
    a, b = ids_by_label(plan_of()), ids_by_label(plan_of(rounds=4))
    # every job of rounds 0-2 is the same; premem's round 3 now selects, so its training is kept too
    for label, job_id in a.items():
        if "round3" in label and "premem" in label and "evaluate" in label:
            continue
        if label != "analysis and report":
            assert b[label] == job_id, label


def test_a_grid_runs_beside_the_curation_unchanged():
    grid = "grid: {learning_rate: [1.0e-3], epochs: [2]}\n"
    with_cur = build_plan(parse_spec(BASE + grid, "a.yaml"))
    without = build_plan(parse_spec(BASE.split("curation:")[0] + grid, "b.yaml"))
    assert {j.id for j in without.jobs if j.run and not j.run.startswith("curation/")} == \
        {j.id for j in with_cur.jobs if j.run and not j.run.startswith("curation/")}


def test_only_chosen_strategies_are_planned():
    plan = plan_of(strategies=["iid", "heuristic"])
    assert set(plan.curation.collects) == {"iid", "heuristic"}
    assert plan.curation.scorer is None
    assert not any(j.kind == "score" for j in plan.jobs)
    assert len(plan.curation.runs[0].evals) == 1  # no premem: round 0 needs only its test accuracy


@pytest.mark.parametrize("extra,message", [
    ("  source: variants\n  strategies: [premem, iid]\n  model: nope\n", "unknown model 'nope'"),
    ("  dataset: arithmetik\n", "did you mean"),
])
def test_curation_names_are_checked(extra, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(BASE + extra, "cur.yaml")


def test_variants_need_the_builtin_task():
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    text = f"""
name: cur
models: [{{name: m, hf: some-org/some-model}}]
datasets:
  - name: own
    jsonl: {{train_file: {fixtures / 'gsm8k_train.jsonl'}, test_file: {fixtures / 'gsm8k_test.jsonl'}}}
curation: {{new_examples: 4, learning_rate: 1.0e-5, p: -1.0}}
"""
    with pytest.raises(SpecError, match="only the built-in task can make variants"):
        parse_spec(text, "cur.yaml")
    assert parse_spec(text.replace("p: -1.0}", f"p: -1.0, source: pool, pool: {{file: {fixtures / 'gsm8k_train.jsonl'}}}}}"),
                      "cur.yaml").curation.source == "pool"
