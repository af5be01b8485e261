"""Evaluation of a checkpoint, and evaluation.skip_settled: settled examples are not sampled, PreMemAcc unchanged."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from premem.analysis.analyze import RunData, analyze, analyze_plan, dynamics_picture
from premem.data.synthetic import ArithmeticTask
from premem.data.tokenizer import WordTokenizer
from premem.engine.evaluate import evaluate_checkpoint, settled
from premem.engine.models import LoadedModel, build_tiny, save_model
from premem.engine.sampling import SamplingParams
from premem.plan.build import build_plan, settle_threshold
from premem.spec.load import parse_spec
from premem.spec.schema import TinyArchitecture
from premem.store import Store

P_GRID = [round(-3.0 + 0.05 * i, 6) for i in range(51)]  # the spec's default grid
BELOW = min(P_GRID)
MEM, HALF, UNMEM = 0.01, 0.2, 0.6  # NLLs: memorized at every p of the grid / at some / at none


def test_the_settled_rule():
    assert settled(MEM, [], BELOW)  # memorized at the first checkpoint
    assert not settled(HALF, [], BELOW)  # memorized only for p > log(0.2): not for every p of the grid
    assert not settled(UNMEM, [], BELOW)
    assert settled(MEM, [(0, UNMEM), (0, HALF)], BELOW)  # never correct before
    assert settled(MEM, [(3, MEM), (0, UNMEM)], BELOW)  # correct only while memorized
    assert not settled(MEM, [(0, UNMEM), (1, UNMEM)], BELOW)  # correct while not memorized: PreMemAcc can be > 0
    assert not settled(MEM, [(1, HALF)], BELOW)  # correct while not memorized at the grid's smallest p
    assert not settled(MEM, [None], BELOW)  # a missing history is never settled
    assert not settled(float("nan"), [], BELOW)
    assert settled(0.0, [], BELOW)  # NLL 0: log(log(perplexity)) = -inf


def _skip(acc: np.ndarray, nll: np.ndarray, k: int) -> np.ndarray:
    """`acc` with NaN where skip_settled would not have sampled (what gather_runs reads back from the store)."""
    out = acc.copy()
    for m in range(acc.shape[0]):
        for e in range(acc.shape[1]):
            earlier = [(0 if math.isnan(out[j, e]) else int(round(out[j, e] * k)), nll[j, e]) for j in range(m)]
            if settled(nll[m, e], earlier, BELOW):
                out[m, e] = np.nan
    return out


def _runs(seed: int, k: int = 4) -> list[RunData]:
    """Hand-built runs: a few designed trajectories plus random ones, test accuracy loosely tied to them."""
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(4):
        epochs = 5
        designed_acc = np.array([  # columns are examples
            [0.25, 0.0, 0.5, 0.0, 0.0],
            [0.5, 0.25, 0.0, 0.75, 0.0],
            [1.0, 1.0, 1.0, 1.0, 0.25],
            [1.0, 1.0, 1.0, 0.0, 0.5],
            [1.0, 1.0, 0.75, 1.0, 1.0]])
        designed_nll = np.array([
            [UNMEM, UNMEM, UNMEM, MEM, UNMEM],
            [HALF, MEM, UNMEM, MEM, MEM],
            [MEM, MEM, MEM, UNMEM, MEM],  # ex3 forgets: memorized, then not, then again
            [MEM, MEM, MEM, MEM, MEM],
            [MEM, MEM, MEM, MEM, UNMEM]])
        n_rand = 40
        nll = np.where(rng.random((epochs, n_rand)) < 0.3 + 0.12 * np.arange(epochs)[:, None] * (r + 1) / 2,
                       rng.uniform(0.001, 0.045, (epochs, n_rand)), rng.uniform(0.05, 1.0, (epochs, n_rand)))
        acc = rng.integers(0, k + 1, (epochs, n_rand)) / k
        acc_all = np.concatenate([designed_acc, acc], axis=1)
        nll_all = np.concatenate([designed_nll, nll], axis=1)
        test = np.clip(0.2 + 0.1 * r + rng.normal(0, 0.05, epochs) + 0.3 * acc_all.mean(1) - 0.15, 0, 1)
        runs.append(RunData(f"run{r}", {"learning_rate": 10.0 ** -r}, list(range(1, epochs + 1)),
                            [f"e{i}" for i in range(acc_all.shape[1])], acc_all, nll_all, test, [None] * epochs))
    return runs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_premem_acc_is_unchanged_with_skipping(seed):
    k = 4
    full = _runs(seed, k)
    skipped = [RunData(r.name, r.settings, r.epochs, r.example_ids, _skip(r.acc, r.nll, k), r.nll, r.test_acc,
                       r.train_loss) for r in full]
    n_skipped = sum(int(np.isnan(r.acc).sum()) for r in skipped)
    assert n_skipped > 0
    # the designed columns: ex1 (memorized before ever correct) is skipped from epoch 2 on; ex0 and ex2 (correct
    # while unmemorized at epoch 1) never; ex3 (memorized at epochs 1-2, forgotten and correct at 3) skipped at 1
    # and 2 only: once correct while not memorized, its PreMemAcc can be > 0 again
    s = skipped[0].acc
    assert np.isnan(s[1:, 1]).all() and not np.isnan(s[:, [0, 2]]).any()
    assert np.isnan(s[:, 3]).tolist() == [True, True, False, False, False]
    a = analyze(full, P_GRID, [r.name for r in full])
    b = analyze(skipped, P_GRID, [r.name for r in full])
    assert a["premem"] == b["premem"]  # p, R^2 (identity and line), the whole calibration curve: identical
    for ra, rb in zip(a["runs"], b["runs"]):
        assert [c["premem_acc"] for c in ra["checkpoints"]] == [c["premem_acc"] for c in rb["checkpoints"]]
    # train accuracy is over the examples measured: skipped ones are left out, not counted as wrong or right
    got = [c["train_acc"] for c in b["runs"][0]["checkpoints"]]
    assert got == pytest.approx(np.nanmean(skipped[0].acc, axis=1).tolist())
    # with a fixed p too (the grid's smallest p is the bound; any p above it is exact)
    for p in (BELOW, -1.0):
        want = analyze(full, P_GRID, [], fixed_p=p)["runs"]
        assert _same_but_train(analyze(skipped, P_GRID, [], fixed_p=p)["runs"], want) == want
    pic = dynamics_picture(skipped[0], a["premem"]["p"])
    assert pic["categories"][1][1:] == [None] * 4  # not measured: drawn as missing, never as incorrect


def _same_but_train(runs_b, runs_a):
    """runs_b with train_acc taken from runs_a (the only field skipping may change)."""
    out = []
    for rb, ra in zip(runs_b, runs_a):
        out.append({"name": rb["name"], "checkpoints": [cb | {"train_acc": ca["train_acc"]}
                                                        for cb, ca in zip(rb["checkpoints"], ra["checkpoints"])]})
    return out


# ------------------------------------------------------------------------------------------------ evaluate_checkpoint
def _random_model(size=TinyArchitecture(layers=1, hidden=16, heads=2, mlp=32, max_length=256)) -> LoadedModel:
    codec = WordTokenizer.for_arithmetic_task()
    return LoadedModel(build_tiny(size, codec.vocab_size, 0), codec, torch.device("cpu"), torch.float32)


def test_evaluate_checkpoint_scores_every_target_then_samples_only_unsettled():
    lm = _random_model()
    train = ArithmeticTask(seed=0).split("train", 5)
    test = ArithmeticTask(seed=0).split("test", 2)
    params = SamplingParams(n=3, max_new_tokens=4, seed=0)
    # a random model's NLL is about log(vocabulary) ~ 4.7 nats/token: memorized for p = 2 (log 4.7 = 1.55 < 2)
    below = 2.0
    high = math.exp(2.5)  # an NLL not memorized at p = 2
    earlier = [{train[0].id: (1, 5.0), train[1].id: (1, high), train[3].id: (0, high)},
               {train[0].id: (2, 5.0), train[1].id: (0, 5.0), train[3].id: (0, 5.0), train[4].id: (0, 5.0)}]
    stats: dict = {}
    rows = evaluate_checkpoint(lm, train, test, params, settle_below=below, earlier=earlier, stats=stats)
    by = {(r["split"], r["example_id"]): r for r in rows}
    # 0: correct only while memorized -> settled; 1: correct while not memorized -> sampled; 2: no history at the
    # first earlier checkpoint -> sampled; 3: never correct -> settled; 4: missing at the first -> sampled
    assert [by[("train", ex.id)]["n_samples"] for ex in train] == [0, 3, 3, 0, 3]
    assert stats["skipped_train"] == 2
    for ex in (train[0], train[3]):
        r = by[("train", ex.id)]
        assert r["n_correct"] == r["n_unparseable"] == 0 and r["samples"] == []
    assert all(by[("train", ex.id)]["nll"] > 0 and by[("train", ex.id)]["n_target_tokens"] > 0 for ex in train)
    assert all(by[("test", ex.id)]["n_samples"] == 3 for ex in test)
    # without the option, the same call samples every example
    rows = evaluate_checkpoint(lm, train, test, params, earlier=earlier)
    assert all(r["n_samples"] == 3 for r in rows)


# ------------------------------------------------------------------------------------------------ plan and store
SMOKE = """\
name: s
seed: 0
models:
  - name: tiny
    builtin: tiny
    size: {layers: 1, hidden: 16, heads: 2, mlp: 32, max_length: 160}
    pretrain: {dataset: a, examples: 10}
datasets:
  - {name: a, builtin: arithmetic, train_size: 6, test_size: 3, max_steps: 1, max_value: 20, max_operand: 5}
grid: {learning_rate: [1.0e-3, 3.0e-3], epochs: [3]}
evaluation: {samples: 2, max_new_tokens: 4, batch_size: 4, skip_settled: SKIP}
premem: {p_grid: {start: START, stop: 2.5, step: 0.5}}
"""


def _spec(skip: bool, start: float = -3.0):
    return parse_spec(SMOKE.replace("SKIP", str(skip).lower()).replace("START", str(start)))


def test_plan_with_skipping_chains_a_runs_evaluations_and_keeps_their_seed():
    off, on = build_plan(_spec(False)), build_plan(_spec(True))
    assert settle_threshold(on.spec) == -3.0
    assert [j.id for j in off.jobs if j.kind != "evaluate" and j.kind != "analysis"] == \
        [j.id for j in on.jobs if j.kind != "evaluate" and j.kind != "analysis"]  # training is not touched
    for run in on.runs:
        ev_on = [j for j in on.jobs if j.kind == "evaluate" and j.run == run.name]
        ev_off = [j for j in off.jobs if j.kind == "evaluate" and j.run == run.name]
        for i, (a, b) in enumerate(zip(ev_on, ev_off)):
            assert a.deps == (b.deps[0], *[e.id for e in ev_on[:i]]) and a.id != b.id
            assert a.settings.sampling_seed == int(b.id[:8], 16)  # the same samples as without the option
            assert a.settings.skip_settled_below == -3.0
            assert "skip_settled" not in b.settings.evaluation  # off: ids as before the option existed
    # the bound follows the premem section: a fixed p below the grid lowers it
    fixed = parse_spec(SMOKE.replace("SKIP", "true").replace("START", "-2.0")
                       .replace("step: 0.5}}", "step: 0.5}, p: -2.5}"))
    assert settle_threshold(fixed) == -2.5


def _record_checkpoints(plan, store: Store, acc_of, nll_of, skip_rule: bool) -> None:
    """Record every evaluate job of `plan` done, with per-example rows from acc_of/nll_of (run, epoch, example)."""
    k = 2
    for job in plan.jobs:
        if job.kind == "train":
            store.record(job, "done", result={"mean_loss": 1.0})
        if job.kind != "evaluate":
            continue
        rows = []
        for e in range(6):
            ex, nll = f"train-{e:06d}", nll_of(job.run, job.epoch, e)
            n = k
            if skip_rule:
                earlier = [(round(acc_of(job.run, m, e) * k) if not _was_skipped(job.run, m, e, acc_of, nll_of) else 0,
                            nll_of(job.run, m, e)) for m in range(1, job.epoch)]
                n = 0 if settled(nll, earlier, BELOW) else k
            c = round(acc_of(job.run, job.epoch, e) * k) if n else 0
            rows.append({"split": "train", "example_id": ex, "n_samples": n, "n_correct": c, "n_unparseable": 0,
                         "nll": nll, "n_target_tokens": 10})
        for t in range(3):
            rows.append({"split": "test", "example_id": f"test-{t:06d}", "n_samples": k,
                         "n_correct": int(t < job.epoch) + int(t == 0), "n_unparseable": 0})
        store.record(job, "done", result={}, examples=rows)


def _was_skipped(run, epoch, e, acc_of, nll_of) -> bool:
    earlier = [(0 if _was_skipped(run, m, e, acc_of, nll_of) else round(acc_of(run, m, e) * 2), nll_of(run, m, e))
               for m in range(1, epoch)]
    return settled(nll_of(run, epoch, e), earlier, BELOW)


def test_the_report_reads_skipped_examples_as_not_measured(tmp_path):
    acc_of = lambda run, m, e: ((m * 7 + e * 3 + len(run)) % 3) / 2  # noqa: E731
    nll_of = lambda run, m, e: [0.6, 0.01, 0.2, 0.01, 0.03, 1.2][(e + m * (e % 2)) % 6]  # noqa: E731
    off, on = build_plan(_spec(False)), build_plan(_spec(True))
    s_off, s_on = Store(tmp_path / "off"), Store(tmp_path / "on")
    _record_checkpoints(off, s_off, acc_of, nll_of, skip_rule=False)
    _record_checkpoints(on, s_on, acc_of, nll_of, skip_rule=True)
    assert sum(r["n_samples"] == 0 for r in s_on.examples([j.id for j in on.jobs if j.kind == "evaluate"])) > 0
    a, _ = analyze_plan(off, s_off)
    b, dyn = analyze_plan(on, s_on)
    assert a["premem"]["p"] is not None and a["premem"] == b["premem"]
    for ra, rb in zip(a["runs"], b["runs"]):
        assert [c["premem_acc"] for c in ra["checkpoints"]] == [c["premem_acc"] for c in rb["checkpoints"]]
        assert [c["test_acc"] for c in ra["checkpoints"]] == [c["test_acc"] for c in rb["checkpoints"]]
    assert any(None in row for pic in dyn.values() for row in pic["categories"])


def test_run_evaluate_reads_the_earlier_checkpoints_from_the_store_read_only(tmp_path):
    from premem.jobs.runners import run_evaluate

    spec = _spec(True, start=2.0)  # a random model's examples are all memorized at p = 2
    plan = build_plan(spec)
    store = Store(tmp_path)
    run = plan.runs[0].name
    evals = [j for j in plan.jobs if j.kind == "evaluate" and j.run == run]
    trains = [j for j in plan.jobs if j.kind == "train" and j.run == run]
    codec = WordTokenizer.for_arithmetic_task()
    save_model(build_tiny(spec.models[0].size, codec.vocab_size, 0), codec, store.artifact(trains[1].id))
    high = math.exp(3.0)  # not memorized at p = 2
    rows = [{"split": "train", "example_id": f"train-{e:06d}", "n_samples": 2, "n_correct": int(e < 2),
             "n_unparseable": 0, "nll": high if e == 0 else 1.0, "n_target_tokens": 10} for e in range(6)]
    store.record(trains[0], "done", result={})
    store.record(evals[0], "done", result={}, examples=rows)
    store.record(trains[1], "done", result={})
    before = store.db_path.read_bytes()
    result = run_evaluate(evals[1], store, lambda _m: None)
    assert store.db_path.read_bytes() == before
    n = {r["example_id"]: r["n_samples"] for r in result["_examples"] if r["split"] == "train"}
    # train-000000: correct while not memorized at epoch 1 -> sampled; train-000001: correct only while memorized,
    # the others never correct -> settled
    assert n == {"train-000000": 2, **{f"train-{e:06d}": 0 for e in range(1, 6)}}
    assert result["skipped_train"] == 5 and result["n_train"] == 6
    first = next(r for r in result["_examples"] if r["example_id"] == "train-000000")
    assert result["train_acc"] == first["n_correct"] / 2  # over the examples measured only
