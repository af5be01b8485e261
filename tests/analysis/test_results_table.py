"""Results tables (`premem analyze` / `premem export`): hand-computed figures, every validation error, and a
round trip store -> export -> analyze that gives back `analyze_plan`'s figures."""
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from premem.analysis.analyze import analyze_plan, build_summary
from premem.analysis.results_table import MAX_PROBLEMS, TableError, export_table, read_results, write_table
from premem.cli import main

P = math.log(0.1)  # memorized once mean NLL < 0.1 nats/token, i.e. perplexity < e^0.1 = 1.105

# Run "full" (checkpoints are steps 100, 200, 300) trains on a, b, c, d; run "half" on a and c only.
# (run, checkpoint, example, n_correct of 4, perplexity)
TRAIN = [
    ("full", 100, "a", 2, 2.0), ("full", 200, "a", 4, 1.5), ("full", 300, "a", 4, 1.05),   # memorized at 300
    ("full", 100, "b", 1, 1.5), ("full", 200, "b", 4, 1.01), ("full", 300, "b", 4, 1.01),  # memorized at 200
    ("full", 100, "c", 3, 3.0), ("full", 200, "c", 1, 3.0), ("full", 300, "c", 2, 3.0),    # accuracy drops
    ("full", 100, "d", 0, 3.0), ("full", 200, "d", 0, 3.0), ("full", 300, "d", 1, 1.05),
    ("half", 1, "a", 2, 1.2), ("half", 2, "a", 3, 1.05),
    ("half", 1, "c", 1, 2.0), ("half", 2, "c", 2, 2.0),
]
# (run, checkpoint, n_correct of 2 for test examples t1..t4)
TEST = [("full", 100, [1, 1, 0, 1]), ("full", 200, [1, 1, 1, 0]), ("full", 300, [2, 1, 1, 0]),
        ("half", 1, [0, 1, 1, 0]), ("half", 2, [1, 1, 1, 1])]
RUNS = {"full": {"learning_rate": 1e-3, "epochs": 3, "dataset_fraction": 1.0},
        "half": {"learning_rate": 1e-3, "epochs": 6, "dataset_fraction": 0.5}}

# by hand, at p = log(0.1):
#  full  a: masked .5 1 0 -> PreMemAcc .5 1 1;  b: masked .25 0 0 -> .25 .25 .25;
#        c: masked .75 .25 .5 -> min(.75, acc) = .75 .25 .5;  d: masked 0 0 0 -> 0 0 0
#  half  a: masked .5 0 -> .5 .5;  c: .25 .5 -> .25 .5
EXPECTED = {
    "full": [  # checkpoint, train_acc, test_acc, premem_acc, memorized_frac
        (100, (2 + 1 + 3 + 0) / 16, (0.5 + 0.5 + 0 + 0.5) / 4, (0.5 + 0.25 + 0.75 + 0) / 4, 0.0),
        (200, (4 + 4 + 1 + 0) / 16, (0.5 + 0.5 + 0.5 + 0) / 4, (1 + 0.25 + 0.25 + 0) / 4, 1 / 4),
        (300, (4 + 4 + 2 + 1) / 16, (1 + 0.5 + 0.5 + 0) / 4, (1 + 0.25 + 0.5 + 0) / 4, 3 / 4),
    ],
    "half": [
        (1, (2 + 1) / 8, (0 + 0.5 + 0.5 + 0) / 4, (0.5 + 0.25) / 2, 0.0),
        (2, (3 + 2) / 8, (0.5 + 0.5 + 0.5 + 0.5) / 4, (0.5 + 0.5) / 2, 1 / 2),
    ],
}
# test accuracies over the five checkpoints: .375 .375 .5 .25 .5, mean .4, SS_tot = .04375
R2_PREMEM = 1 - (0 + 0 + 0.0625 ** 2 + 0.125 ** 2 + 0) / 0.04375
R2_TRAIN = 1 - (0 + 0.1875 ** 2 + 0.1875 ** 2 + 0.125 ** 2 + 0.125 ** 2) / 0.04375


def rows(accuracy_column=False, settings=True):
    out = []
    for run, cp, ex, nc, perp in TRAIN:
        out.append({"run": run, "checkpoint": cp, "split": "train", "example_id": ex, "n_correct": nc,
                    "n_samples": 4, "perplexity": perp})
    for run, cp, ncs in TEST:
        for k, nc in enumerate(ncs):
            out.append({"run": run, "checkpoint": cp, "split": "test", "example_id": f"t{k + 1}", "n_correct": nc,
                        "n_samples": 2, "perplexity": None})
    out = [out[i] for i in np.random.default_rng(1).permutation(len(out))]  # order must not matter
    out.sort(key=lambda r: r["run"] != "full")  # but runs appear "full" first
    for r in out:
        if accuracy_column:
            r["accuracy"] = r.pop("n_correct") / r.pop("n_samples")
        if settings:
            r.update(RUNS[r["run"]])
    return out


def write(path, records):
    table = pa.Table.from_pylist(records)
    if str(path).endswith(".parquet"):
        pq.write_table(table, path)
    elif str(path).endswith(".csv"):
        pacsv.write_csv(table, path)
    else:
        with open(path, "w") as fh:
            for r in records:
                fh.write(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n")
    return str(path)


def summarize(res, ps=(P,), fixed_p=None, calibration=None):
    entries = [{"id": r.name, "name": r.name, "status": "done", "error": None, "settings": r.settings}
               for r in res.runs]
    return build_summary(res.runs, entries, ps=list(ps), calibration_runs=calibration or [r.name for r in res.runs],
                         fixed_p=fixed_p, study={"name": "t", "path": "", "text": ""})


def check_expected(summary):
    assert summary["premem"]["p"] == pytest.approx(P)
    runs = {r["name"]: r for r in summary["runs"]}
    assert list(runs) == ["full", "half"]
    for name, exp in EXPECTED.items():
        cps = runs[name]["checkpoints"]
        assert [c["epoch"] for c in cps] == [e[0] for e in exp]
        for c, (_, train, test, pm, memo) in zip(cps, exp):
            assert c["train_acc"] == pytest.approx(train, abs=1e-12)
            assert c["test_acc"] == pytest.approx(test, abs=1e-12)
            assert c["premem_acc"] == pytest.approx(pm, abs=1e-12)
            assert c["memorized_frac"] == pytest.approx(memo, abs=1e-12)
    full_nll = [[math.log(p) for r, cp, _, _, p in TRAIN if r == "full" and cp == k] for k in (100, 200, 300)]
    for c, nlls in zip(runs["full"]["checkpoints"], full_nll):
        assert c["train_nll"] == pytest.approx(sum(nlls) / 4, abs=1e-12)
    assert summary["premem"]["r2"] == pytest.approx(R2_PREMEM, abs=1e-12)
    assert summary["train_acc"]["r2"] == pytest.approx(R2_TRAIN, abs=1e-12)
    assert summary["checkpoints"] == 5 and summary["test_acc_range"] == [0.25, 0.5]


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_hand_computed_table(tmp_path, ext):
    res = read_results(write(tmp_path / f"r.{ext}", rows()))
    assert [r.name for r in res.runs] == ["full", "half"] and res.n_rows == 16 + 20
    full, half = res.runs
    assert full.example_ids == ["a", "b", "c", "d"] and half.example_ids == ["a", "c"]  # the subset run
    assert full.epochs == [100, 200, 300] and half.epochs == [1, 2]
    assert full.settings == RUNS["full"] and half.settings == RUNS["half"]
    summary, dynamics = summarize(res)
    check_expected(summary)
    # dynamics: 0 wrong, 1 correct, 2 wrong & memorized, 3 correct & memorized (correct: Acc >= 0.5)
    assert dynamics["full"]["epochs"] == [100, 200, 300]
    assert dynamics["full"]["categories"] == [[1, 1, 3], [0, 3, 3], [1, 0, 1], [0, 0, 2]]
    assert dynamics["half"]["categories"] == [[1, 3], [0, 1]]
    gap = summary["perplexity_gap"]
    assert gap["memorized_correct_count"] == 4 and gap["unmemorized_correct_count"] == 6
    assert gap["memorized_correct_median_perplexity"] == pytest.approx((1.01 + 1.05) / 2)
    assert gap["unmemorized_correct_median_perplexity"] == pytest.approx(2.0)
    assert gap["threshold_perplexity"] == pytest.approx(math.exp(0.1))
    assert "irreducible_perplexity" not in gap


@pytest.mark.parametrize("ext", ["parquet", "jsonl"])
def test_integer_example_ids(tmp_path, ext):
    ids = {"a": 10, "b": 9, "c": 100, "d": 7}
    recs = [dict(r, example_id=ids[r["example_id"]] if r["split"] == "train" else 1000 + int(r["example_id"][1:]))
            for r in rows()]
    res = read_results(write(tmp_path / f"r.{ext}", recs))
    assert res.runs[0].example_ids == ["10", "100", "7", "9"]  # compared as strings
    summary, _ = summarize(res)
    assert [c["premem_acc"] for c in summary["runs"][0]["checkpoints"]] == pytest.approx(
        [e[3] for e in EXPECTED["full"]])


def test_accuracy_column_instead_of_counts(tmp_path):
    res = read_results(write(tmp_path / "r.parquet", rows(accuracy_column=True)))
    check_expected(summarize(res)[0])


def test_calibration_picks_p_from_the_grid(tmp_path):
    res = read_results(write(tmp_path / "r.csv", rows()))
    # p = -5: nothing memorized (PreMemAcc = accuracy); p = 0.5: everything memorized (PreMemAcc = 0)
    summary, _ = summarize(res, ps=[-5.0, P, 0.5])
    curve = {round(c["p"], 4): c["r2"] for c in summary["premem"]["calibration"]}
    assert curve[-5.0] == pytest.approx(R2_TRAIN)
    assert curve[round(P, 4)] == pytest.approx(R2_PREMEM)
    assert curve[0.5] == pytest.approx(1 - (2 * 0.375 ** 2 + 2 * 0.5 ** 2 + 0.25 ** 2) / 0.04375)
    assert summary["premem"]["p"] == pytest.approx(P)
    # calibrating on one run only, and a fixed p
    assert summarize(res, ps=[-5.0, P, 0.5], calibration=["half"])[0]["premem"]["calibration_runs"] == ["half"]
    assert summarize(res, ps=[-5.0, P], fixed_p=0.5)[0]["premem"]["p"] == 0.5


def test_runs_table_and_selectors(tmp_path):
    results = write(tmp_path / "r.csv", rows(settings=False))
    runs = write(tmp_path / "runs.csv", [{"run": k, **v, "model": "m"} for k, v in RUNS.items()]
                 + [{"run": "other", "learning_rate": 1.0, "epochs": 1, "dataset_fraction": 1.0, "model": "m"}])
    res = read_results(results, runs_path=runs)
    assert res.runs[0].settings == {"model": "m", **RUNS["full"]}
    assert any("other" in n for n in res.notes)
    assert res.select(["epochs=6"]) == ["half"]
    assert res.select(["learning_rate=0.001,dataset_fraction=1"]) == ["full"]
    assert res.select(["half", "full"]) == ["full", "half"] and res.select(None) == ["full", "half"]
    with pytest.raises(TableError, match="no run named 'nope'"):
        res.select(["nope"])
    with pytest.raises(TableError, match="no run has epochs=9"):
        res.select(["epochs=9"])
    # a setting given both as a column and in the runs table must agree
    clash = write(tmp_path / "r2.csv", rows())
    bad_runs = write(tmp_path / "runs2.csv", [{"run": "full", "epochs": 4}])
    with pytest.raises(TableError, match="run 'full': epochs is 3 in .* but 4 in"):
        read_results(clash, runs_path=bad_runs)


def test_extra_columns_that_vary_are_ignored_and_settings_must_not_vary(tmp_path):
    recs = rows()
    for i, r in enumerate(recs):
        r["note"] = f"n{i}"
    res = read_results(write(tmp_path / "r.csv", recs))
    assert "note" not in res.runs[0].settings and any("note" in n for n in res.notes)
    for r in recs:  # settings given on train rows only still count
        if r["split"] == "test":
            r["learning_rate"] = None
    assert read_results(write(tmp_path / "r1.parquet", recs)).runs[1].settings == RUNS["half"]
    recs[3]["learning_rate"] = 5.0
    with pytest.raises(TableError) as e:
        read_results(write(tmp_path / "r2.csv", recs))
    assert "row 4, column learning_rate: a run setting must be the same on every row of a run" in e.value.problems[0]


# ----------------------------------------------------------------------------------- validation errors


def problems_of(tmp_path, records, ext="parquet", name="bad"):
    with pytest.raises(TableError) as e:
        read_results(write(tmp_path / f"{name}.{ext}", records))
    return e.value.problems


def test_missing_columns(tmp_path):
    recs = [{k: v for k, v in r.items() if k not in ("split", "n_correct")} for r in rows()]
    probs = problems_of(tmp_path, recs)
    assert "column split is missing (required)" in probs
    assert any("n_correct is missing" in p for p in probs)
    recs = [{k: v for k, v in r.items() if k not in ("n_correct", "n_samples")} for r in rows()]
    assert any("n_samples and n_correct, or accuracy, are missing" in p for p in problems_of(tmp_path, recs))
    recs = [{k: v for k, v in r.items() if k != "perplexity"} for r in rows()]
    assert problems_of(tmp_path, recs) == ["column perplexity is missing (required for train rows)"]


def test_accuracy_outside_0_1(tmp_path):
    recs = rows(accuracy_column=True)
    recs[2]["accuracy"] = 1.5
    recs[7]["accuracy"] = -0.1
    probs = problems_of(tmp_path, recs, "csv")
    assert probs == ["row 3, column accuracy: must be in [0, 1], got 1.5",
                     "row 8, column accuracy: must be in [0, 1], got -0.1"]


def test_counts_out_of_range(tmp_path):
    recs = rows()
    recs[0]["n_correct"] = 5
    recs[1]["n_samples"] = 0
    probs = problems_of(tmp_path, recs, "csv")
    assert probs[0].startswith("row 1, column n_correct: must be an integer in [0, n_samples = 4")
    assert probs[1] == "row 2, column n_samples: must be an integer >= 1, got 0"


def test_bad_perplexity(tmp_path):
    recs = rows()
    train = [i for i, r in enumerate(recs) if r["split"] == "train"]
    recs[train[0]]["perplexity"] = 1.0
    recs[train[1]]["perplexity"] = float("nan")
    recs[train[2]]["perplexity"] = None
    probs = problems_of(tmp_path, recs, "parquet")
    assert probs == [f"row {train[0] + 1}, column perplexity: must be a finite number > 1, got 1.0",
                     f"row {train[1] + 1}, column perplexity: is NaN",
                     f"row {train[2] + 1}, column perplexity: missing value (train rows need a perplexity)"]


def test_duplicate_rows(tmp_path):
    recs = rows()
    recs.append(dict(recs[4]))
    assert problems_of(tmp_path, recs, "jsonl") == [
        f"row {len(recs)}, column example_id: duplicate of row 5 (same run, checkpoint, split and example_id)"]


def test_run_without_test_rows_and_incomplete_checkpoints(tmp_path):
    recs = [r for r in rows() if not (r["run"] == "half" and r["split"] == "test")]
    assert problems_of(tmp_path, recs) == ["run 'half' has no test rows"]
    recs = [r for r in rows() if not (r["run"] == "full" and r["checkpoint"] == 200 and r["example_id"] == "c")]
    assert problems_of(tmp_path, recs) == [
        "run 'full', checkpoint 200: 1 of the run's 4 train examples have no row (e.g. 'c'); every checkpoint "
        "of a run needs the same train examples"]
    recs = [r for r in rows() if not (r["run"] == "full" and r["checkpoint"] == 300 and r["split"] == "test")]
    assert problems_of(tmp_path, recs) == ["run 'full', checkpoint 300: train rows but no test rows"]


def test_bad_keys(tmp_path):
    recs = rows()
    recs[0]["split"] = "validation"
    recs[1]["checkpoint"] = 1.5
    recs[2]["run"] = None
    probs = problems_of(tmp_path, recs, "parquet")
    assert probs == ["row 1, column split: must be 'train' or 'test', got 'validation'",
                     "row 2, column checkpoint: must be an integer, got 1.5",
                     "row 3, column run: missing value"]
    recs = [dict(r, n_samples=str(r["n_samples"])) for r in rows()]
    recs[0]["n_samples"] = "four"
    assert problems_of(tmp_path, recs, "csv") == ["row 1, column n_samples: 'four' is not a number"]


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_huge_checkpoints_stay_distinct(tmp_path, ext):
    """Checkpoints above 2**53 (a step counter, a timestamp in ns) are read as integers, never through float64,
    which would make 2**53 and 2**53 + 1 one checkpoint and report every row as a duplicate."""
    big = {100: 2**53, 200: 2**53 + 1, 300: 2**63 - 1}
    recs = [dict(r, checkpoint=big.get(r["checkpoint"], r["checkpoint"])) for r in rows()]
    res = read_results(write(tmp_path / f"r.{ext}", recs))
    assert res.runs[0].epochs == [2**53, 2**53 + 1, 2**63 - 1]
    summary, _ = summarize(res)
    assert [c["epoch"] for c in summary["runs"][0]["checkpoints"]] == [2**53, 2**53 + 1, 2**63 - 1]


def test_checkpoints_beyond_64_bits_or_inexact_are_refused(tmp_path):
    recs = rows()
    recs[0]["checkpoint"] = 777
    path = write(tmp_path / "big.csv", recs)
    text = open(path).read()
    with open(path, "w") as fh:  # a CSV column with 2**64 + 1 is read as float64: no value in it is exact
        fh.write(text.replace(",777,", f",{2**64 + 1},", 1))
    with pytest.raises(TableError) as e:
        read_results(path)
    assert e.value.problems[0].startswith("row 1, column checkpoint: 1.8446744073709552e+19 is too large to be "
                                          "read exactly"), e.value.problems
    recs[0]["checkpoint"] = 1e20
    assert "too large to be read exactly" in problems_of(tmp_path, recs, "parquet")[0]
    recs[0]["checkpoint"] = 1
    table = pa.Table.from_pylist(recs)
    ck = [2**64 - 1] + table.column("checkpoint").to_pylist()[1:]
    pq.write_table(table.set_column(1, "checkpoint", pa.array(ck, pa.uint64())), tmp_path / "u.parquet")
    with pytest.raises(TableError) as e:
        read_results(tmp_path / "u.parquet")
    assert e.value.problems == [f"row 1, column checkpoint: must fit in 64 bits (at most {2**63 - 1}), got {2**64 - 1}"]


def test_problems_are_capped(tmp_path):
    recs = rows(accuracy_column=True)
    for r in recs:
        r["accuracy"] = 2.0
    with pytest.raises(TableError) as e:
        read_results(write(tmp_path / "r.parquet", recs))
    assert len(e.value.problems) == min(MAX_PROBLEMS, len(recs)) and e.value.total == len(recs)
    many = recs * 3
    for i, r in enumerate(many):
        many[i] = dict(r, example_id=f"{r['example_id']}-{i}")
    with pytest.raises(TableError) as e:
        read_results(write(tmp_path / "r2.parquet", many))
    assert len(e.value.problems) == MAX_PROBLEMS and e.value.total == len(many)
    assert e.value.lines()[-1].endswith(f"... and {len(many) - MAX_PROBLEMS} more problems")


# ----------------------------------------------------------------------------------- the command


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_cli_analyze(tmp_path, ext, capsys):
    path = write(tmp_path / f"r.{ext}", rows())
    out = tmp_path / "rep"
    assert main(["analyze", path, "--p-grid", "-5:0.5:0.5", "--p", str(P), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    check_expected(summary)
    assert len(summary["premem"]["calibration"]) == 12 and (out / "index.html").exists()
    assert {"spec", "generated_at", "premem", "train_acc", "test_acc_range", "checkpoints", "notes", "runs",
            "perplexity_gap"} <= set(summary)
    assert summary["runs"][1]["settings"] == RUNS["half"] and summary["runs"][1]["status"] == "done"
    assert "PreMemAcc: p = -2.303" in capsys.readouterr().out


def test_cli_analyze_invalid_writes_nothing(tmp_path, capsys):
    recs = rows()
    recs[0]["n_samples"] = -1
    path = write(tmp_path / "r.csv", recs)
    out = tmp_path / "rep"
    assert main(["analyze", path, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "r.csv: row 1, column n_samples: must be an integer >= 1, got -1" in err
    assert "1 problem; nothing was written." in err and not out.exists()
    assert main(["analyze", str(tmp_path / "missing.csv"), "--out", str(out)]) == 1
    assert main(["analyze", write(tmp_path / "ok.csv", rows()), "--calibrate-on", "nope", "--out", str(out)]) == 1
    assert main(["analyze", write(tmp_path / "ok.csv", rows()), "--p-grid", "0:-1:0.1", "--out", str(out)]) == 1
    assert not out.exists()


# ----------------------------------------------------------------------------------- export round trip

SPEC = """
name: synth
store: {store}
models:
  - {{name: tiny, builtin: tiny, size: {{layers: 2, hidden: 64, heads: 2, mlp: 256, max_length: 192}},
     pretrain: {{dataset: arithmetic, examples: 10}}}}
datasets:
  - {{name: arithmetic, builtin: arithmetic, train_size: 24, test_size: 10}}
grid: {{learning_rate: [1.0e-3, 1.0e-2], epochs: [1, 3]}}
runs:
  - {{learning_rate: 3.0e-3, epochs: 4, dataset_fraction: 0.5}}
premem:
  p_grid: {{start: -3.0, stop: 0.0, step: 0.1}}
"""


def synthetic_store(tmp_path, text=SPEC):
    """A store with made-up evaluations of every checkpoint (no training): accuracy grows with epochs,
    examples get memorized (low perplexity) once learned."""
    from premem.plan.build import build_plan
    from premem.spec.load import parse_spec
    from premem.store import Store

    spec = parse_spec(text.format(store=tmp_path / ".premem"))
    plan = build_plan(spec)
    store = Store(spec.store)
    rng = np.random.default_rng(0)
    for run in plan.runs:
        n = 24 if run.dataset_fraction == 1 else 12
        skill = rng.uniform(0.2, 0.9, n)
        order = 1 - skill + rng.normal(0, 0.1, n)
        boost = run.learning_rate / 3e-3
        for job in plan.jobs:
            if job.run != run.name:
                continue
            if job.kind == "train":
                store.record(job, "done", result={"mean_loss": 1.0 / job.epoch})
                continue
            g, mem = min(1.0, 0.35 * job.epoch * boost), 0.3 * (job.epoch - 1) * boost
            ex = []
            for i in range(n):
                memorized = order[i] < mem
                nc = int(rng.binomial(4, 1.0 if memorized else skill[i] * g))
                ex.append({"split": "train", "example_id": str(i * 7), "n_samples": 4, "n_correct": nc,
                           "n_unparseable": 0, "nll": float(np.exp(rng.normal(-2.2 if memorized else -0.7, 0.4)))})
            for i in range(10):
                ex.append({"split": "test", "example_id": str(500 + i), "n_samples": 2, "n_unparseable": 0,
                           "n_correct": int(rng.binomial(2, float(np.mean(skill)) * g))})
            store.record(job, "done", result={}, examples=ex)
    return spec, plan, store


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_then_analyze_gives_back_the_figures(tmp_path, fmt):
    spec, plan, store = synthetic_store(tmp_path)
    expected, _ = analyze_plan(plan, store)
    assert expected["premem"]["p"] is not None and expected["premem"]["r2"] > 0.3  # a real calibration
    table = export_table(plan, store)
    assert table.num_rows == 8 * (24 + 10) + 4 * (12 + 10)  # full runs: 1 + 3 + 1 + 3 checkpoints; half: 4
    path = write_table(table, tmp_path / f"out.{fmt}", fmt)
    res = read_results(path)
    entries = [{"id": r.name, "name": r.name, "status": "done", "error": None, "settings": r.settings}
               for r in res.runs]
    got, _ = build_summary(res.runs, entries, ps=spec.premem.p_grid.values(),
                           calibration_runs=[r.name for r in res.runs])
    assert got["premem"]["p"] == expected["premem"]["p"]
    assert got["premem"]["r2"] == pytest.approx(expected["premem"]["r2"], abs=1e-9)
    assert got["train_acc"]["r2"] == pytest.approx(expected["train_acc"]["r2"], abs=1e-9)
    assert [r["name"] for r in got["runs"]] == [r["name"] for r in expected["runs"]]
    for a, b in zip(got["runs"], expected["runs"]):
        assert a["settings"] == b["settings"]
        assert len(a["checkpoints"]) == len(b["checkpoints"])
        for ca, cb in zip(a["checkpoints"], b["checkpoints"]):
            for k in ("epoch", "train_acc", "test_acc", "premem_acc", "memorized_frac", "train_nll"):
                assert ca[k] == pytest.approx(cb[k], abs=1e-9), (a["name"], ca["epoch"], k)
