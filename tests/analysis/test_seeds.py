"""Seeds as an axis (grid.seeds, runs[].seed, curation.seeds): each seed its own runs with their own job ids; a
seed equal to the spec's plans exactly the jobs of the spec without seeds; the summary averages over seeds."""

import numpy as np
import pytest

from premem.plan.build import build_plan, job_counts, match_runs
from premem.spec.load import SpecError, parse_spec
from premem.spec.schema import RunSelector

BASE = """
name: seeds
seed: 0
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
metrics: {weight_distance: {}, runs: all}
perturbations: {runs: all, epochs: final, samples: 2}
"""
GRID = "grid: {learning_rate: [1.0e-3, 2.0e-3], epochs: [2]%s}\n"


def plan(grid_extra: str = "", extra: str = ""):
    return build_plan(parse_spec(BASE + GRID % grid_extra + extra, "seeds.yaml"))


def by_label(p) -> dict[str, str]:
    return {j.label: j.id for j in p.jobs}


def test_grid_seeds_multiply_the_runs_each_with_its_own_ids():
    plain, seeded = plan(), plan(", seeds: [0, 1, 2]")
    assert len(seeded.runs) == 3 * len(plain.runs)
    assert [r.name for r in plain.runs] == ["tiny/arithmetic/lr0.001-ep2-frac1", "tiny/arithmetic/lr0.002-ep2-frac1"]
    assert [r.name for r in seeded.runs[:3]] == [f"tiny/arithmetic/lr0.001-ep2-frac1/seed{s}" for s in (0, 1, 2)]
    assert {r.base_name for r in seeded.runs} == {r.name for r in plain.runs}
    kinds = ("train", "evaluate", "measure", "perturb")
    n = {k: sum(j.kind == k for j in plain.jobs) for k in kinds}
    assert {k: sum(j.kind == k for j in seeded.jobs) for k in kinds} == {k: 3 * v for k, v in n.items()}
    assert job_counts(seeded.spec) == {k: sum(j.kind == k for j in seeded.jobs) for k in job_counts(seeded.spec)}
    # pretraining is per model: the seeds repeat finetuning from the same base model
    assert [j.id for j in seeded.jobs if j.kind == "pretrain"] == [j.id for j in plain.jobs if j.kind == "pretrain"]
    ids = [j.id for j in seeded.jobs if j.kind != "analysis"]
    assert len(ids) == len(set(ids))  # every seed's jobs are its own
    for j in seeded.jobs:
        if j.kind in kinds:
            assert j.settings.seed == int(j.run.rsplit("seed", 1)[1])


def test_the_spec_seed_among_the_seeds_keeps_the_ids_of_the_spec_without_seeds():
    plain, seeded = by_label(plan()), by_label(plan(", seeds: [0, 1, 2]"))
    for label, job_id in plain.items():
        if label == "analysis and report":
            continue
        name = label.replace("-frac1", "-frac1/seed0")
        assert seeded[name] == job_id, label
    other = by_label(plan(", seeds: [5]"))
    assert not set(other.values()) & {v for k, v in plain.items() if "pretrain" not in k}


def test_a_run_seed_and_selectors_by_seed():
    p = plan(", seeds: [0, 1]", "runs: [{learning_rate: 3.0e-3, epochs: 1, seed: 7}, {learning_rate: 4.0e-3, epochs: 1}]\n")
    names = [r.name for r in p.runs]
    assert "tiny/arithmetic/lr0.003-ep1-frac1/seed7" in names
    assert "tiny/arithmetic/lr0.004-ep1-frac1" in names  # no seed given: the spec's, no seed part
    assert [r.name for r in match_runs(p.runs, [RunSelector(seed=1)])] == [
        "tiny/arithmetic/lr0.001-ep2-frac1/seed1", "tiny/arithmetic/lr0.002-ep2-frac1/seed1"]
    assert len(match_runs(p.runs, [RunSelector(seed=0)])) == 3  # spec.seed 0: the unseeded extra run too
    calib = build_plan(parse_spec(BASE.replace("premem: {p: -0.75}", "premem: {calibrate_on: [{seed: 1}]}")
                                  + GRID % ", seeds: [0, 1]", "s.yaml"))
    assert calib.jobs[-1].settings.calibration_runs == [r.name for r in calib.runs if r.seed == 1]
    with pytest.raises(SpecError, match="selects no run"):
        parse_spec(BASE.replace("runs: all, epochs", "runs: [{seed: 9}], epochs") + GRID % ", seeds: [0, 1]", "s.yaml")
    with pytest.raises(SpecError, match="listed twice"):
        plan(", seeds: [1, 1]")
    with pytest.raises(SpecError, match="seed must lie"):
        plan(", seeds: [-1]")


CURATION = """
curation:
  rounds: 2
  new_examples: 4
  learning_rate: 1.0e-3
  epochs: 2
"""


def curation_plan(extra: str = ""):
    text = BASE.replace("metrics: {weight_distance: {}, runs: all}\nperturbations: {runs: all, epochs: final, "
                        "samples: 2}\n", "") + CURATION + extra
    return build_plan(parse_spec(text, "cur.yaml"))


def test_curation_seeds_plan_the_study_once_per_seed():
    one, two = curation_plan(), curation_plan("  seeds: [0, 1]\n")
    assert len(two.jobs) - 1 == 2 * (len(one.jobs) - 1) - 1  # pretraining shared, the analysis once
    assert job_counts(two.spec) == {k: sum(j.kind == k for j in two.jobs) for k in job_counts(two.spec)}
    assert [s for s, _ in two.curation.per_seed()] == [0, 1]
    names = [r.name for r in two.curation.runs]
    assert "curation/round0/seed0" in names and "curation/iid/round2/seed1" in names
    labels = [j.label for j in two.jobs]
    assert len(labels) == len(set(labels))
    # seed 0 == the spec's seed: the jobs of the spec without seeds, under names with a seed part
    plain = {j.id for j in one.jobs if j.kind != "analysis"}
    seed0 = {j.id for j in two.curation.parts[0].jobs} | {j.id for j in two.jobs if j.kind == "pretrain"}
    assert seed0 == plain
    assert not {j.id for j in two.curation.parts[1].jobs} & plain
    assert one.curation.per_seed() == [(None, one.curation)]


def test_seed_groups_average_over_seeds_with_a_t_interval():
    import numpy as np
    from scipy.stats import t

    from premem.analysis.analyze import build_summary
    from premem.analysis.results import RunData

    runs, entries = [], []
    tests = {0: [0.2, 0.5], 1: [0.4, 0.5], 2: [0.6, 0.5]}
    for seed, test_acc in tests.items():
        name = f"m/d/lr0.001-ep2-frac1/seed{seed}"
        acc = np.array([[0.1 * seed, 0.0], [0.5, 0.5]])
        nll = np.array([[2.0, 2.0], [0.5, 0.5]])
        settings = {"model": "m", "dataset": "d", "learning_rate": 1e-3, "epochs": 2, "dataset_fraction": 1.0,
                    "seed": seed}
        runs.append(RunData(name, settings, [1, 2], ["a", "b"], acc, nll, np.array(test_acc), [None, None]))
        entries.append({"id": name, "name": name, "status": "done", "error": None, "settings": settings,
                        "seed": seed, "seed_group": "m/d/lr0.001-ep2-frac1"})
    lone = "m/d/lr0.002-ep2-frac1"  # no seed group: a run of a spec without seeds
    runs.append(RunData(lone, {"model": "m", "dataset": "d"}, [1], ["a"], np.array([[1.0]]), np.array([[1.0]]),
                        np.array([0.9]), [None]))
    entries.append({"id": lone, "name": lone, "status": "done", "error": None, "settings": {}, "seed": 0})
    summary, _ = build_summary(runs, entries, ps=[-1.0, 0.0], calibration_runs=[], fixed_p=0.0)
    [group] = summary["seed_groups"]
    assert group["name"] == "m/d/lr0.001-ep2-frac1" and group["seeds"] == [0, 1, 2]
    assert group["runs"] == [e["name"] for e in entries[:3]]
    first, last = group["checkpoints"]
    assert first["epoch"] == 1 and first["n"] == 3
    half = t.ppf(0.975, 2) * 0.2 / np.sqrt(3)  # sd of 0.2, 0.4, 0.6 is 0.2
    assert first["test_acc"] == pytest.approx(0.4)
    assert first["test_acc_ci"] == pytest.approx([0.4 - half, 0.4 + half])
    assert first["train_acc"] == pytest.approx(np.mean([0.0, 0.05, 0.1]))
    pm = [e["checkpoints"][0]["premem_acc"] for e in summary["runs"][:3]]
    assert first["premem_acc"] == pytest.approx(np.mean(pm))
    assert last["test_acc"] == pytest.approx(0.5) and last["test_acc_ci"] == pytest.approx([0.5, 0.5])
    assert [e["seed"] for e in summary["runs"]] == [0, 1, 2, 0]
    # one seed: the mean, no interval; no seed groups: no key
    one, _ = build_summary(runs[:1], entries[:1], ps=[-1.0, 0.0], calibration_runs=[], fixed_p=0.0)
    assert one["seed_groups"][0]["checkpoints"][0]["test_acc_ci"] is None
    none, _ = build_summary(runs[3:], entries[3:], ps=[-1.0, 0.0], calibration_runs=[], fixed_p=0.0)
    assert "seed_groups" not in none


class FakeStore:
    """Just what curation_summary reads: records(ids) -> {id: record with status and result}."""

    def __init__(self, results: dict[str, dict]):
        from types import SimpleNamespace

        self._records = {k: SimpleNamespace(status="done", result=v) for k, v in results.items()}

    def records(self, ids):
        return {i: self._records[i] for i in ids if i in self._records}


# test accuracy per seed, strategy and round (round 0 shared by every strategy of a seed)
CURVES = {0: {"iid": [0.2, 0.3, 0.4], "premem": [0.2, 0.4, 0.5]},
          1: {"iid": [0.3, 0.35, 0.45], "premem": [0.3, 0.5, 0.55]}}


def test_curation_with_two_seeds_averages_curves_and_ratios():
    from scipy.stats import t

    from premem.analysis.curation import curation_summary
    from premem.data.curate import efficiency

    p = curation_plan('  strategies: ["premem", "iid"]\n  seeds: [0, 1]\n  targets: [0.3, 0.4]\n')
    results = {}
    for seed, part in p.curation.per_seed():
        for run in part.runs:
            strategy = run.strategies[0] if run.round else "iid"
            results[run.train[-1]] = {"examples": 16 + 4 * run.round}
            results[run.final_eval] = {"test_acc": CURVES[seed][strategy][run.round]}
    cur = curation_summary(p, FakeStore(results))
    assert cur["seeds"] == [0, 1] and set(cur["per_seed"]) == {"0", "1"} and cur["originals"] == 16
    half = t.ppf(0.975, 1) * np.std([0.2, 0.3], ddof=1) / np.sqrt(2)
    first = cur["iid"]["curve"][0]
    assert first["round"] == 0 and first["n"] == 2 and first["status"] == "done"
    assert first["run"] == "curation/round0" and first["runs"] == ["curation/round0/seed0", "curation/round0/seed1"]
    assert first["test_acc"] == pytest.approx(0.25) and first["test_acc_ci"] == pytest.approx([0.25 - half, 0.25 + half])
    assert first["size"] == 16 and first["size_ci"] == pytest.approx([16, 16])
    assert [q["test_acc"] for q in cur["premem"]["curve"]] == pytest.approx([0.25, 0.45, 0.525])
    per = {s: efficiency([(16 + 4 * r, a) for r, a in enumerate(CURVES[s]["iid"])],
                         [(16 + 4 * r, a) for r, a in enumerate(CURVES[s]["premem"])], [0.3, 0.4]) for s in (0, 1)}
    for k, row in enumerate(cur["premem"]["efficiency"]):
        ratios = [per[s][k]["ratio"] for s in (0, 1)]
        assert row["target"] == [0.3, 0.4][k] and row["n"] == 2
        assert row["ratio"] == pytest.approx(np.mean(ratios))
        h = t.ppf(0.975, 1) * np.std(ratios, ddof=1) / np.sqrt(2)
        assert row["ratio_ci"] == pytest.approx([np.mean(ratios) - h, np.mean(ratios) + h])
        assert cur["per_seed"]["0"]["premem"]["efficiency"][k]["ratio"] == pytest.approx(ratios[0])
    seed_means = [np.mean([e["ratio"] for e in per[s]]) for s in (0, 1)]
    assert cur["premem"]["mean_ratio"] == pytest.approx(np.mean(seed_means))
    assert cur["premem"]["mean_ratio_ci"] is not None


def test_curation_without_seeds_keeps_its_summary_shape():
    from premem.analysis.curation import curation_summary

    p = curation_plan('  strategies: ["premem", "iid"]\n')
    results = {}
    for run in p.curation.runs:
        strategy = run.strategies[0] if run.round else "iid"
        results[run.train[-1]] = {"examples": 16 + 4 * run.round}
        results[run.final_eval] = {"test_acc": CURVES[0][strategy][run.round]}
    cur = curation_summary(p, FakeStore(results))
    assert "seeds" not in cur and "per_seed" not in cur
    assert [q["test_acc"] for q in cur["premem"]["curve"]] == [0.2, 0.4, 0.5]
    assert "test_acc_ci" not in cur["premem"]["curve"][0]


def test_analyze_plan_of_a_seeded_grid_gives_seed_groups_and_a_report(tmp_path):
    from premem.analysis.analyze import analyze_plan
    from premem.report.html import render_pages
    from premem.store import Store

    p = build_plan(parse_spec(BASE.replace("metrics: {weight_distance: {}, runs: all}\nperturbations: {runs: all, "
                                           "epochs: final, samples: 2}\n", "") + GRID % ", seeds: [0, 1, 2]",
                              "s.yaml"))
    store = Store(tmp_path / "store")
    for job in p.jobs:
        if job.kind == "train":
            store.record(job, "done", result={"mean_loss": 1.0})
        if job.kind != "evaluate":
            continue
        seed = job.settings.seed
        rows = [{"split": "train", "example_id": f"train-{e}", "n_samples": 4, "n_correct": (e + seed) % 5,
                 "n_unparseable": 0, "nll": 0.1 * (e + 1), "n_target_tokens": 10} for e in range(4)]
        rows += [{"split": "test", "example_id": f"test-{t}", "n_samples": 4, "n_correct": (t + seed + job.epoch) % 5,
                  "n_unparseable": 0} for t in range(3)]
        store.record(job, "done", result={}, examples=rows)
    summary, _ = analyze_plan(p, store)
    assert [e["seed"] for e in summary["runs"]] == [0, 1, 2, 0, 1, 2]
    groups = summary["seed_groups"]
    assert [g["name"] for g in groups] == ["tiny/arithmetic/lr0.001-ep2-frac1", "tiny/arithmetic/lr0.002-ep2-frac1"]
    last = groups[0]["checkpoints"][-1]
    tests = [e["checkpoints"][-1]["test_acc"] for e in summary["runs"][:3]]
    assert last["n"] == 3 and last["test_acc"] == pytest.approx(np.mean(tests)) and len(last["test_acc_ci"]) == 2
    page = render_pages(summary, {})["index.html"]
    assert '<section id="seeds"' in page and "seed: 2" in page
