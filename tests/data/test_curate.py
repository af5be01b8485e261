"""Curation's selection rules, sources and efficiency reading on cases with known answers (premem.data.curate)."""
import json

import numpy as np
import pytest

from premem.data import curate
from premem.data.loaders import DataError, TextExample
from premem.data.synthetic import ArithmeticTask


# ------------------------------------------------------------------------------------------ selection
def test_final_premem_is_the_last_checkpoints_premem_accuracy():
    # example 0: correct while unmemorized at epoch 1, then memorized -> PreMemAcc stays 1 (capped by Acc 1)
    # example 1: only correct once memorized -> 0; example 2: half right unmemorized, then right -> 0.5
    acc = np.array([[1.0, 0.0, 0.5], [1.0, 1.0, 1.0]])
    nll = np.array([[1.0, 1.0, 1.0], [0.1, 0.1, 1.0]])  # log(0.1) = -2.3 < p = -1: memorized
    np.testing.assert_allclose(curate.final_premem(acc, nll, -1.0), [1.0, 0.0, 1.0])
    acc[1, 2] = 0.5
    nll[1, 2] = 0.1
    np.testing.assert_allclose(curate.final_premem(acc, nll, -1.0), [1.0, 0.0, 0.5])


def test_selection_by_threshold_keeps_those_at_or_below_t():
    ids = ["a", "b", "c", "d"]
    assert curate.below_threshold(ids, [0.0, 0.75, 0.8, 1.0], 0.75) == (["a", "b"], None)


def test_selection_with_nothing_below_t_draws_from_the_lowest_and_says_so():
    chosen, note = curate.below_threshold(["a", "b", "c"], [0.9, 0.8, 0.8], 0.5)
    assert chosen == ["b", "c"]
    assert "no original has PreMemAcc <= 0.5" in note


def test_top_percent_keeps_the_highest_scores():
    ids = [f"x{i}" for i in range(10)]
    scores = [float(i) for i in range(10)]
    assert curate.top_percent(ids, scores, 50, "s") == ["x5", "x6", "x7", "x8", "x9"]
    assert curate.top_percent(ids, scores, 25, "s") == ["x7", "x8", "x9"]  # ceil(2.5)
    assert curate.top_percent(ids, [float("nan")] + scores[1:], 100, "s") == sorted(ids)
    assert "x0" not in curate.top_percent(ids, [float("nan")] + scores[1:], 90, "s")  # NaN ranks last


def test_top_percent_breaks_ties_by_seed_and_keeps_the_count():
    ids = [f"x{i}" for i in range(8)]
    picks = {tuple(curate.top_percent(ids, [1.0] * 8, 50, str(seed))) for seed in range(20)}
    assert all(len(p) == 4 for p in picks)
    assert len(picks) > 1  # ties are not always broken the same way
    assert curate.top_percent(ids, [1.0] * 8, 50, "7") == curate.top_percent(ids, [1.0] * 8, 50, "7")


def test_ifd_is_the_ratio_of_mean_nlls():
    assert curate.ifd_score(0.5, 2.0) == 0.25
    assert np.isnan(curate.ifd_score(None, 2.0))
    assert np.isnan(curate.ifd_score(1.0, 0.0))


def test_heuristic_difficulty_percentile_on_known_difficulties():
    task = ArithmeticTask(seed=0, max_steps=3, max_value=40, max_operand=10)
    train = task.split("train", 30)
    ids = [ex.id for ex in train]
    chosen = curate.top_percent(ids, [float(ex.difficulty) for ex in train], 50, "h")
    assert len(chosen) == 15
    kept = [ex.difficulty for ex in train if ex.id in chosen]
    dropped = [ex.difficulty for ex in train if ex.id not in chosen]
    assert min(kept) >= max(dropped)


def test_draw_counts_round_robin_sums_to_n_and_is_even():
    counts, exhausted = curate.draw_counts(["a", "b", "c"], 7, "s")
    assert sum(counts.values()) == 7 and sorted(counts.values()) == [2, 2, 3]
    assert exhausted == []
    assert curate.draw_counts(["a", "b", "c"], 7, "s") == (counts, [])


def test_draw_counts_skips_exhausted_originals_and_names_them():
    left = {"a": 1, "b": 5, "c": 0}
    counts, exhausted = curate.draw_counts(["a", "b", "c"], 4, "s", left=left.get)
    assert counts == {"a": 1, "b": 3}
    assert exhausted == ["a", "c"]


def test_draw_counts_fails_when_the_pool_runs_dry():
    with pytest.raises(ValueError, match="only 3 unused variants left; this round asks for 5"):
        curate.draw_counts(["a", "b"], 5, "s", left={"a": 1, "b": 2}.get)


# ------------------------------------------------------------------------------------------ sources
def test_builtin_variants_keep_template_and_difficulty_and_continue_where_the_last_round_stopped():
    task = ArithmeticTask(seed=0, max_steps=3, max_value=40, max_operand=10)
    originals = {ex.id: ex for ex in task.split("train", 4)}
    oid = next(iter(originals))
    first = curate.builtin_variants(task, originals, {oid: 2}, {}, seed=0, round_=1)
    later = curate.builtin_variants(task, originals, {oid: 1}, {oid: 2}, seed=0, round_=2)
    all3 = curate.builtin_variants(task, originals, {oid: 3}, {}, seed=0, round_=1)
    assert [v.id for v in first + later] == [v.id for v in all3] == [f"{oid}-v{j}" for j in range(3)]
    assert [v.question for v in first + later] == [v.question for v in all3]
    for v in all3:
        assert v.original == oid and v.difficulty == originals[oid].difficulty
        assert v.question != originals[oid].question
    assert later[0].round == 2


def test_collected_round_trip(tmp_path):
    ex = [curate.Collected("train-000001-v0", "train-000001", 1, "Q?", "S #### 3", "3", 2)]
    curate.write_collected(tmp_path, ex)
    assert curate.read_collected(tmp_path) == ex
    assert curate.used_per_original(ex + ex) == {"train-000001": 2}


def _pool_file(tmp_path, rows):
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_pool_variants_are_drawn_in_file_order_and_run_out(tmp_path):
    rows = [{"original_id": "train-00000", "question": f"q{j}", "answer": f"step\n#### {j}"} for j in range(3)]
    rows.append({"original_id": "train-00001", "question": "other", "answer": "#### 9"})
    pool = curate.read_pool(_pool_file(tmp_path, rows), "original_id", "question", "answer", "gsm8k")
    assert [q for q, _, _ in pool["train-00000"]] == ["q0", "q1", "q2"]
    originals = {i: TextExample(i, "Q", "S\n#### 1", "1", 1) for i in ("train-00000", "train-00001", "train-00002")}
    used = {"train-00000": 1}
    left = lambda i: len(pool.get(i, [])) - used.get(i, 0)  # noqa: E731
    counts, exhausted = curate.draw_counts(list(originals), 3, "s", left=left)
    assert counts == {"train-00000": 2, "train-00001": 1}
    assert exhausted == ["train-00000", "train-00001", "train-00002"]  # train-00002 has no variant at all
    new = curate.pool_variants(pool, originals, counts, used, 2, "gsm8k")
    assert [(v.id, v.question, v.answer) for v in new] == [
        ("train-00000-p1", "q1", "1"), ("train-00000-p2", "q2", "2"), ("train-00001-p0", "other", "9")]
    with pytest.raises(ValueError, match="only 3 unused variants"):
        curate.draw_counts(list(originals), 4, "s", left=left)


def test_pool_row_without_a_final_answer_is_named(tmp_path):
    path = _pool_file(tmp_path, [{"original_id": "a", "question": "q", "answer": "#### 1"},
                                 {"original_id": "a", "question": "q", "answer": "no answer here"}])
    with pytest.raises(DataError, match="row 2: the solution has no final answer"):
        curate.read_pool(path, "original_id", "question", "answer", "gsm8k")


def test_parse_generated_solution_mode_accepts_only_the_right_answer():
    orig = TextExample("train-1", "How many?", "2 + 3 = 5\n#### 5", "5", 1)
    assert curate.parse_generated(" 3 + 2 = 5\n#### 5\nDone.", "solution", orig, "gsm8k") == \
        ("How many?", "3 + 2 = 5\n#### 5", "5")
    assert curate.parse_generated(" 3 + 3 = 6\n#### 6", "solution", orig, "gsm8k") is None
    assert curate.parse_generated(" 2 + 3 = 5\n#### 5", "solution", orig, "gsm8k") is None  # a copy
    assert curate.parse_generated(" no answer", "solution", orig, "gsm8k") is None


def test_parse_generated_example_mode_reads_question_and_answer():
    orig = TextExample("train-1", "How many?", "#### 5", "5", 1)
    text = "Question: Tom has 4 apples and buys 2. How many now?\nAnswer: 4 + 2 = 6\n#### 6\nDone."
    assert curate.parse_generated(text, "example", orig, "gsm8k") == \
        ("Tom has 4 apples and buys 2. How many now?", "4 + 2 = 6\n#### 6", "6")
    assert curate.parse_generated("Question: How many?\nAnswer: #### 5", "example", orig, "gsm8k") is None
    assert curate.parse_generated("just text", "example", orig, "gsm8k") is None


# ------------------------------------------------------------------------------------------ efficiency
def test_size_at_interpolates_the_first_crossing():
    curve = [(100, 0.2), (200, 0.4), (300, 0.35), (400, 0.6)]
    assert curate.size_at(curve, 0.3) == pytest.approx(150)
    assert curate.size_at(curve, 0.5) == pytest.approx(360)
    assert curate.size_at(curve, 0.1) == 100
    assert curate.size_at(curve, 0.7) is None


def test_efficiency_of_a_strategy_twice_as_sample_efficient_is_two():
    iid = [(100, 0.2), (200, 0.3), (300, 0.4), (400, 0.5)]
    other = [(100, 0.2), (150, 0.3), (200, 0.4), (250, 0.5)]  # the same accuracies with half the new data
    rows = curate.efficiency(iid, other, [0.3, 0.4, 0.5, 0.9])
    assert [r["ratio"] for r in rows[:3]] == pytest.approx([200 / 150, 300 / 200, 400 / 250])
    assert rows[3] == {"target": 0.9, "iid_size": None, "size": None, "ratio": None}


def test_default_targets_lie_between_round_zero_and_the_lower_peak():
    iid = [(100, 0.2), (200, 0.5)]
    other = [(100, 0.2), (200, 0.4)]
    assert curate.default_targets(0.2, iid, other) == pytest.approx([0.25, 0.3, 0.35])
    assert curate.default_targets(0.2, [(100, 0.2), (200, 0.1)], other) == []


def test_parse_generated_example_mode_cuts_what_follows_the_answer():
    orig = TextExample("train-1", "How many?", "#### 5", "5", 1)
    text = " Ann has 3 pens and gets 4 more. How many?\nAnswer: 3 + 4 = 7\n#### 7\nextra chat\n\nQuestion: next"
    assert curate.parse_generated(text, "example", orig, "gsm8k") == \
        ("Ann has 3 pens and gets 4 more. How many?", "3 + 4 = 7\n#### 7", "7")
