"""The metrics and perturbations sections: their jobs, their identities, and the checks that guard them."""
import pytest

from premem.plan.build import atc_reference, build_plan
from premem.spec.load import SpecError, parse_spec

BASE = """\
name: t
models:
  - {name: tiny, builtin: tiny, pretrain: {dataset: a, examples: 10}}
datasets:
  - {name: a, builtin: arithmetic, train_size: 8, test_size: 8}
grid:
  learning_rate: [1.0e-3, 3.0e-3]
  epochs: [1, 3]
"""
MEASURES = """\
metrics:
  gradient_variance: {minibatches: 2, batch_size: 4}
  weight_distance: {}
  atc: {reference: {learning_rate: 1.0e-3, epochs: 3}}
perturbations: {samples: 3}
"""


def _jobs(plan, kind):
    return [j for j in plan.jobs if j.kind == kind]


def test_measures_and_perturbations_add_jobs_without_touching_training_or_evaluation():
    plain, full = build_plan(parse_spec(BASE)), build_plan(parse_spec(BASE + MEASURES))
    ids = lambda p, kinds: {j.id for j in p.jobs if j.kind in kinds}  # noqa: E731
    assert ids(plain, ("pretrain", "train", "evaluate")) == ids(full, ("pretrain", "train", "evaluate"))
    checkpoints = 1 + 3 + 1 + 3
    assert len(_jobs(full, "measure")) == 3 * checkpoints
    # the final checkpoint of each of the 4 runs, under the original prompt and the 2 built-in preambles
    assert len(_jobs(full, "perturb")) == 4 * 3
    assert {j.settings.preamble for j in _jobs(full, "perturb")} == {"", " First,", " Let us think step by step."}
    analysis = full.jobs[-1]
    assert set(analysis.deps) >= {j.id for j in full.jobs if j.kind in ("measure", "perturb")}


def test_weight_distance_depends_on_the_base_model_and_gradient_variance_on_the_batch():
    plan = build_plan(parse_spec(BASE + MEASURES))
    pretrain = _jobs(plan, "pretrain")[0].id
    dist = [j for j in _jobs(plan, "measure") if j.settings.measure == "weight_distance"]
    assert all(j.deps[1] == pretrain for j in dist)
    assert all(j.settings.dataset is None for j in dist)  # the data cannot change a distance
    gv = [j for j in _jobs(plan, "measure") if j.settings.measure == "gradient_variance"]
    assert {j.settings.config["batch_size"] for j in gv} == {4}


def test_editing_one_measure_or_preamble_reruns_only_its_jobs():
    a = build_plan(parse_spec(BASE + MEASURES))
    b = build_plan(parse_spec(BASE + MEASURES.replace("minibatches: 2", "minibatches: 3")))
    changed = {j.label for j in b.jobs if j.id not in {x.id for x in a.jobs}}
    assert changed and all("gradient_variance" in c or c == "analysis and report" for c in changed)
    c = build_plan(parse_spec(BASE + MEASURES.replace("{samples: 3}", "{samples: 3, preambles: [' First,', ' So']}")))
    new = [j for j in c.jobs if j.id not in {x.id for x in a.jobs} and j.kind != "analysis"]
    assert {j.settings.preamble for j in new} == {" So"}


def test_perturbed_epochs_and_runs_are_chosen_by_the_spec():
    text = BASE + "perturbations: {epochs: all, runs: [{learning_rate: 3.0e-3}]}\n"
    jobs = _jobs(build_plan(parse_spec(text)), "perturb")
    assert {(j.run.split("/")[-1], j.epoch) for j in jobs} == {("lr0.003-ep1-frac1", 1), ("lr0.003-ep3-frac1", 1),
                                                              ("lr0.003-ep3-frac1", 2), ("lr0.003-ep3-frac1", 3)}
    jobs = _jobs(build_plan(parse_spec(BASE + "perturbations: {epochs: [2]}\n")), "perturb")
    assert {j.epoch for j in jobs} == {2}  # only runs that have an epoch 2


def test_atc_reference_is_measured_even_outside_the_chosen_runs():
    text = BASE + "metrics:\n  atc: {reference: {learning_rate: 1.0e-3, epochs: 3}, epoch: 2}\n  runs: [{epochs: 1}]\n"
    plan = build_plan(parse_spec(text))
    runs = {j.run.split("/")[-1] for j in _jobs(plan, "measure")}
    assert runs == {"lr0.001-ep1-frac1", "lr0.003-ep1-frac1", "lr0.001-ep3-frac1"}
    run, epoch = atc_reference(plan.spec, plan.runs)
    assert (run.learning_rate, run.epochs, epoch) == (1e-3, 3, 2)
    ref_jobs = [j for j in _jobs(plan, "measure") if j.run == run.name]
    assert [(j.settings.measure, j.epoch) for j in ref_jobs] == [("atc", 2)]  # nothing else, nowhere else


def test_gradient_variance_batch_defaults_to_the_runs_own_recipe():
    text = BASE.replace("grid:", "training:\n  batch_size: 16\n  overrides: [{model: tiny, batch_size: 4}]\ngrid:")
    plan = build_plan(parse_spec(text + "metrics:\n  gradient_variance: {}\n"))
    assert {j.settings.config["batch_size"] for j in _jobs(plan, "measure")} == {4}


@pytest.mark.parametrize("extra, where, message", [
    ("metrics:\n  atc: {reference: {learning_rate: 1.0e-3}}\n", "metrics.atc.reference", "exactly one run; it selects 2"),
    ("metrics:\n  atc: {reference: {epochs: 3, learning_rate: 3.0e-3}, epoch: 5}\n", "metrics.atc.epoch", "has 3 epochs"),
    ("metrics:\n  runs: [{epochs: 7}]\n", "metrics.runs.0", "selects no run"),
    ("perturbations: {preambles: [' We know that']}\n", "perturbations.preambles.0", "<unk>"),
    ("perturbations: {preambles: [' First,', ' First,']}\n", "perturbations.preambles", "duplicate"),
    ("perturbations: {preambles: [' First,', 'First, ']}\n", "perturbations.preambles", "duplicate"),
    ("perturbations: {preambles: [' original']}\n", "perturbations.preambles", "unperturbed prompt"),
    ("perturbations: {preambles: ['  ']}\n", "perturbations.preambles", "some text"),
    ("perturbations: {epochs: [9]}\n", "perturbations.epochs.0", "no run has epoch 9"),
    ("metrics:\n  gradient_variance: {minibatches: 1}\n", "metrics.gradient_variance.minibatches", "greater than or equal to 2"),
    ("metrics:\n  gradient_varience: {}\n", "metrics.gradient_varience", "gradient_variance"),
])
def test_bad_metrics_and_perturbations_are_reported_at_their_place(extra, where, message):
    with pytest.raises(SpecError) as e:
        parse_spec(BASE + extra, "s.yaml")
    text = str(e.value)
    assert where in text and message in text, text
    assert "s.yaml:" in text
