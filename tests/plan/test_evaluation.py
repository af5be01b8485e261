"""evaluation.overrides: per-dataset sampling settings, resolved per (model, dataset) pair, used by evaluate, perturb
and ATC jobs (and the cost model), without touching the ids of what they do not change."""
import pytest

from premem.cost.datasets import DataStats
from premem.cost.work import job_work
from premem.plan.build import build_plan
from premem.spec.load import SpecError, parse_spec

BASE = """\
name: t
models:
  - {name: tiny, builtin: tiny, pretrain: {dataset: a, examples: 10}}
datasets:
  - {name: a, builtin: arithmetic, train_size: 8, test_size: 8}
  - {name: b, builtin: arithmetic, train_size: 8, test_size: 8, seed: 1}
grid:
  learning_rate: [1.0e-3]
  epochs: [2]
metrics:
  atc: {reference: {dataset: a}}
  runs: all
perturbations: {samples: 3}
evaluation:
  top_p: 0.95
  max_new_tokens: 64
"""
OVERRIDES = """\
  overrides:
    - {dataset: b, top_p: 0.5, max_new_tokens: 32}
    - {dataset: b, max_new_tokens: 48, samples: 2}
"""


def _by_dataset(plan, kind, dataset):
    return {j.label: j for j in plan.jobs if j.kind == kind and j.run.split("/")[1] == dataset}


def test_a_dataset_no_override_names_keeps_every_id():
    plain, over = build_plan(parse_spec(BASE)), build_plan(parse_spec(BASE + OVERRIDES))
    for kind in ("train", "evaluate", "measure", "perturb"):
        a0, a1 = _by_dataset(plain, kind, "a"), _by_dataset(over, kind, "a")
        assert a0 and {k: j.id for k, j in a0.items()} == {k: j.id for k, j in a1.items()}, kind
    # training never sees sampling settings
    assert {j.id for j in plain.jobs if j.kind == "train"} == {j.id for j in over.jobs if j.kind == "train"}


def test_overrides_reach_evaluate_perturb_and_atc_jobs_last_match_winning():
    over = build_plan(parse_spec(BASE + OVERRIDES))
    plain = build_plan(parse_spec(BASE))
    for j in _by_dataset(over, "evaluate", "b").values():
        ev = j.settings.evaluation
        assert (ev["top_p"], ev["max_new_tokens"], ev["samples"]) == (0.5, 48, 2)
        assert "overrides" not in ev  # the resolved settings, not the list
    for j in _by_dataset(over, "evaluate", "a").values():
        ev = j.settings.evaluation
        assert (ev["top_p"], ev["max_new_tokens"], ev["samples"]) == (0.95, 64, 5)
    for kind in ("perturb", "measure"):
        jobs = _by_dataset(over, kind, "b").values()
        assert jobs
        for j in jobs:
            assert (j.settings.sampling["top_p"], j.settings.sampling["max_new_tokens"]) == (0.5, 48)
        # b's sampling jobs change id; a's do not (the test above)
        assert {j.id for j in jobs}.isdisjoint(j.id for j in _by_dataset(plain, kind, "b").values())


def test_the_cost_model_reads_each_dataset_s_own_settings():
    plan = build_plan(parse_spec(BASE + OVERRIDES))
    stats = {d.name: DataStats(8, 8, 10.0, 100.0) for d in plan.spec.datasets}
    work = {j.label: job_work(j, plan, stats) for j in plan.jobs if j.kind in ("evaluate", "perturb")}
    a = work["evaluate tiny/a/lr0.001-ep2-frac1 epoch 2"]
    b = work["evaluate tiny/b/lr0.001-ep2-frac1 epoch 2"]
    assert a.sampled == (8 * 5 + 8 * 5) * 64  # completions capped by a's 64 tokens
    assert b.sampled == (8 * 2 + 8 * 2) * 48  # b: 2 samples of at most 48 tokens
    pb = next(w for k, w in work.items() if k.startswith("perturb original prompt tiny/b/"))
    assert pb.sampled == 8 * 3 * 48


@pytest.mark.parametrize("text, where, what", [
    ("  overrides: [{dataset: bnech, top_p: 0.5}]\n", "evaluation.overrides.0.dataset", 'did you mean "bench"'),
    ("  overrides: [{dataset: bench, top_p: null}]\n", "evaluation.overrides.0", "null is not one"),
    ("  overrides: [{dataset: bench, stop: END}]\n", "evaluation.overrides.0.stop", "Done"),
    ("  overrides: [{dataset: bench, sampler: vllm}]\n", "evaluation.overrides.0.sampler", "unknown key"),
    ("  overrides: [{top_p: 0.5}]\n", "evaluation.overrides.0.dataset", "required"),
])
def test_bad_overrides_are_refused_with_their_place(text, where, what):
    with pytest.raises(SpecError) as e:
        parse_spec(BASE.replace("{name: b,", "{name: bench,") + text)
    assert any(p.path == where and what.lower() in p.message.lower() for p in e.value.problems), e.value.problems
