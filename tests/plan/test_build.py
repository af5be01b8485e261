"""Runs and job ids: the grid, the fixed-step rule, and hashes that change only with what they depend on."""
import pytest

from premem.plan.build import build_plan, expand_runs, selected_runs
from premem.spec.load import parse_spec

BASE = """\
name: t
models:
  - {name: tiny, builtin: tiny, pretrain: {dataset: a, examples: 10}}
datasets:
  - {name: a, builtin: arithmetic, train_size: 8, test_size: 8}
training: {fixed_step_epochs: 3}
grid:
  learning_rate: [1.0e-3, 3.0e-3]
  epochs: [1, 3]
  dataset_fraction: [1.0, 0.5, 0.25]
runs:
  - {learning_rate: 2.0e-3, epochs: 6, dataset_fraction: 0.5}
  - {learning_rate: 1.0e-3, epochs: 3}
premem:
  calibrate_on: [{epochs: 3}]
"""


def spec(text=BASE):
    return parse_spec(text)


def test_grid_and_fixed_step_rule():
    runs = expand_runs(spec())
    names = [r.name for r in runs]
    assert len(names) == len(set(names))  # the duplicate extra run (1e-3 x 3 epochs) is dropped
    full = [r for r in runs if r.dataset_fraction == 1.0]
    assert sorted((r.learning_rate, r.epochs) for r in full) == [(1e-3, 1), (1e-3, 3), (3e-3, 1), (3e-3, 3)]
    half = [r for r in runs if r.dataset_fraction == 0.5 and r.learning_rate != 2e-3]
    quarter = [r for r in runs if r.dataset_fraction == 0.25]
    assert {r.epochs for r in half} == {6} and {r.epochs for r in quarter} == {12}
    assert any(r.learning_rate == 2e-3 and r.epochs == 6 for r in runs)
    assert len(runs) == 4 + 2 + 2 + 1


def test_jobs_chain_epochs_and_checkpoints():
    plan = build_plan(spec())
    kinds = [j.kind for j in plan.jobs]
    assert kinds[0] == "pretrain" and kinds[-1] == "analysis"
    run = next(r for r in plan.runs if r.epochs == 3 and r.dataset_fraction == 1.0)
    trains = [j for j in plan.jobs if j.kind == "train" and j.run == run.name]
    evals = [j for j in plan.jobs if j.kind == "evaluate" and j.run == run.name]
    assert [j.epoch for j in trains] == [1, 2, 3] and [j.epoch for j in evals] == [1, 2, 3]
    assert trains[0].deps == (plan.jobs[0].id,)
    assert trains[1].deps == (trains[0].id,) and evals[1].deps == (trains[1].id,)
    assert set(plan.jobs[-1].deps) == {j.id for j in plan.jobs if j.kind == "evaluate"}
    assert plan.jobs[-1].settings.calibration_runs == [r.name for r in selected_runs(plan.spec, plan.runs)]
    assert all(r.epochs == 3 for r in selected_runs(plan.spec, plan.runs))


def test_ids_are_stable_and_change_only_with_their_inputs():
    a = {j.label: j.id for j in build_plan(spec()).jobs}
    assert a == {j.label: j.id for j in build_plan(spec()).jobs}
    # renaming the study or a model's label changes no compute job (the analysis names runs by label)
    b = {j.label.replace("tiny2", "tiny"): j.id for j in build_plan(spec(BASE.replace("name: t\n", "name: u\n")
                                                                        .replace("name: tiny", "name: tiny2"))).jobs}
    assert {k: v for k, v in a.items() if not k.startswith("analysis")} == \
        {k: v for k, v in b.items() if not k.startswith("analysis")}
    # an evaluation setting changes evaluations and the analysis, never training or pretraining
    c = {j.label: j.id for j in build_plan(spec(BASE + "evaluation: {samples: 3}\n")).jobs}
    for label, jid in a.items():
        same = label.startswith(("train", "pretrain"))
        assert (c[label] == jid) == same, label
    # the test split's size does not touch training either
    d = {j.label: j.id for j in build_plan(spec(BASE.replace("test_size: 8", "test_size: 9"))).jobs}
    assert all((d[k] == v) == k.startswith(("train", "pretrain")) for k, v in a.items())
    # a training setting changes training from epoch 1 on, but not pretraining
    e = {j.label: j.id for j in build_plan(spec(BASE.replace("{fixed_step_epochs: 3}",
                                                             "{fixed_step_epochs: 3, weight_decay: 0.1}"))).jobs}
    assert all((e[k] == v) == k.startswith("pretrain") for k, v in a.items())


def test_jobs_of_gpu_less_auto_device_compute_on_cpu():
    from premem.jobs.runners import job_device

    plan = build_plan(spec())
    train = next(j for j in plan.jobs if j.kind == "train")
    assert train.settings.device == "auto" and job_device(train) == "cpu"
    gpu = build_plan(spec(BASE + "resources: {train: {gpus: 1}}\n"))
    assert job_device(next(j for j in gpu.jobs if j.kind == "train")) == "auto"


def test_selectors_match_as_a_comparison_with_each_would():
    """match_runs and unmatched_selectors look runs up by the fields a selector sets; they must agree with
    comparing every run with every selector (a field left out matches anything; 1 == 1.0)."""
    from itertools import product

    from premem.plan.build import match_runs, unmatched_selectors
    from premem.spec.schema import RunSelector

    runs = expand_runs(spec())
    sels = [RunSelector(**dict(zip(("model", "learning_rate", "epochs", "dataset_fraction"), values)))
            for values in product([None, "tiny", "other"], [None, 1e-3, 2e-3, 5e-3], [None, 3, 6, 7], [None, 1, 0.5])]
    keys = ("model", "dataset", "learning_rate", "epochs", "dataset_fraction")

    def matches(r, s):
        return all(getattr(s, k) is None or getattr(s, k) == getattr(r, k) for k in keys)

    assert match_runs(runs, sels) == [r for r in runs if any(matches(r, s) for s in sels)]
    for s in sels[::7]:
        assert match_runs(runs, [s]) == [r for r in runs if matches(r, s)]
    assert unmatched_selectors(runs, sels) == [i for i, s in enumerate(sels) if not any(matches(r, s) for r in runs)]
    assert unmatched_selectors(runs, sels) and len(unmatched_selectors(runs, sels)) < len(sels)
    assert match_runs(runs, "all") == runs and match_runs(runs, []) == [] and unmatched_selectors(runs, []) == []


EXTRA = """\
metrics:
  gradient_variance: {}
  atc: {reference: {learning_rate: 2.0e-3}}
  runs: [{epochs: 1}]
perturbations: {epochs: [2, 2, 1, 6, 6, 6], runs: [{dataset_fraction: 0.5}, {epochs: 3}], preambles: [" First,"]}
"""
CURATION = """\
curation: {new_examples: 4, learning_rate: 1.0e-3, epochs: 3, rounds: 4, ifd: {epochs: 2}}
"""


@pytest.mark.parametrize("text", [BASE, BASE + EXTRA, BASE.replace("premem:\n  calibrate_on: [{epochs: 3}]\n", "")
                                  + "premem: {p: -1.0}\n" + CURATION,
                                  BASE + EXTRA.replace("epochs: [2, 2, 1, 6, 6, 6]", "epochs: all")],
                         ids=["grid", "measures", "curation", "all-epochs"])
def test_job_counts_are_what_the_plan_makes(text):
    from collections import Counter

    from premem.plan.build import job_counts

    plan = build_plan(spec(text))
    assert {k: v for k, v in job_counts(plan.spec).items() if v} == dict(Counter(j.kind for j in plan.jobs))


def test_job_counts_of_every_shipped_spec():
    from collections import Counter
    from pathlib import Path

    from premem.plan.build import job_counts
    from premem.spec.load import load_spec

    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "specs").glob("*.yaml")) + [root / "tests" / "golden" / "features.yaml"]:
        plan = build_plan(load_spec(path))
        assert {k: v for k, v in job_counts(plan.spec).items() if v} == dict(Counter(j.kind for j in plan.jobs)), path


def test_every_job_id_is_the_content_hash_of_what_it_lists():
    """Planning hashes skip_settled's long dependency lists incrementally (plan_job.content_hash_listed); each id
    must still be content_hash of the job's own kind, settings and dependencies."""
    from premem.plan.build import content_hash

    plan = build_plan(spec(BASE + EXTRA + "evaluation: {skip_settled: true}\n"))
    evals = [j for j in plan.jobs if j.kind == "evaluate"]
    assert max(len(j.deps) for j in evals) == 12  # a quarter-data run's 12th checkpoint: its train job, 11 evaluations
    for job in plan.jobs:
        assert job.id == content_hash(job.kind, job.settings, job.deps), job.label


def test_the_job_limit_admits_a_study_at_it_and_counts_measures():
    from premem.spec.checks import MAX_JOBS
    from premem.spec.load import SpecError

    lrs = ", ".join(f"{i}.0e-4" for i in range(1, 51))
    text = BASE.split("training:")[0] + f"grid: {{learning_rate: [{lrs}], epochs: [1000]}}\n"
    assert MAX_JOBS == 100_000 and len(expand_runs(spec(text))) == 50  # 50 x 1,000 epochs x 2 jobs: at the limit
    with pytest.raises(SpecError) as e:
        spec(text + "metrics: {weight_distance: {}, runs: [{learning_rate: 1.0e-4}]}\n")
    assert [(p.path, p.message.split(" (")[0]) for p in e.value.problems] == [
        ("grid", "the study has 101,000 jobs")]


def test_every_dependency_has_a_role_and_the_roles_name_what_the_runners_read():
    """Runners read their dependencies by role (Job.dep, Job.deps_as), never by position: each job of a plan
    with measures, perturbations, skip_settled and curation names its dependencies."""
    from tests.spec.test_schema import GOOD

    text = GOOD.replace("epochs: [1]", "epochs: [3]") + (
        "metrics: {weight_distance: {}, gradient_variance: {}}\nperturbations: {samples: 2}\n"
        "evaluation: {skip_settled: true}\n")
    plan = build_plan(parse_spec(text))
    assert any(j.deps_as("earlier") for j in plan.jobs)
    for j in plan.jobs:
        if j.kind in ("train", "evaluate", "measure", "perturb", "score"):
            assert len(j.roles) == len(j.deps) or (j.roles and j.roles[-1] == "earlier"), j.label
    ev = [j for j in plan.jobs if j.kind == "evaluate"]
    assert all(j.dep("checkpoint") == j.deps[0] for j in ev)
    trains = {j.id: j for j in plan.jobs if j.kind == "train"}
    assert all(trains[j.dep("checkpoint")].epoch == j.epoch for j in ev)
    wd = [j for j in plan.jobs if j.kind == "measure" and j.settings.measure == "weight_distance"]
    assert wd and all(plan.job(j.dep("base")).kind == "pretrain" for j in wd)


def test_a_job_made_without_roles_refuses_to_be_read_by_position():
    from tests.made_jobs import evaluate_job

    job = evaluate_job("a" * 64, ("b" * 64,))
    with pytest.raises(ValueError, match="no roles"):
        job.dep("checkpoint")
    named = evaluate_job("a" * 64, ("b" * 64, "c" * 64, "d" * 64), roles=("checkpoint", "earlier"))
    assert named.dep("checkpoint") == "b" * 64 and named.deps_as("earlier") == ("c" * 64, "d" * 64)
    assert named.dep("base") is None
