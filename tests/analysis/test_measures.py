"""PreMemAcc bins of the robustness figure, ATC scores from stored rows, and the run pages' sample choice."""
import math

import pytest

from premem.analysis.analyze import pick_samples
from premem.analysis.measures import BINS, bin_label, bin_of, bin_stats
from premem.measures.atc import scores as atc_scores


@pytest.mark.parametrize("value, index", [(0.0, 0), (0.1999, 0), (0.2, 1), (0.4, 2), (0.6, 3), (0.7999, 3),
                                          (0.8, 4), (1.0, 4)])
def test_bins_are_half_open_and_the_last_is_closed(value, index):
    assert bin_of(value) == index
    assert [bin_label(*b) for b in BINS] == ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]


def test_atc_scores_by_form_and_empty_samples_score_lowest():
    rows = [{"example_id": "b", "nll": 0.5, "n_target_tokens": 4}, {"example_id": "a", "nll": 0.25, "n_target_tokens": 2},
            {"example_id": "c", "nll": None, "n_target_tokens": 0}]
    assert list(atc_scores(rows, "token_mean")) == [-0.25, -0.5, -math.inf]  # in example id order
    assert list(atc_scores(rows, "sequence")) == [-0.5, -2.0, -math.inf]


def test_stats_of_a_bin():
    s = bin_stats([0.0, 0.5, 1.0, 1.0])
    assert (s["n"], s["mean"], s["median"]) == (4, 0.625, 0.75)
    assert bin_stats([])["mean"] is None and bin_stats([])["n"] == 0


def test_run_page_samples_mix_memorized_and_not():
    rows = [{"memorized": i % 4 == 0, "i": i} for i in range(40)]
    picked = pick_samples(rows, 6)
    assert len(picked) == 6 and sum(r["memorized"] for r in picked) == 3
    few = [{"memorized": True, "i": 0}] + [{"memorized": False, "i": i} for i in range(1, 20)]
    assert sum(r["memorized"] for r in pick_samples(few, 6)) == 1 and len(pick_samples(few, 6)) == 6
    assert len(pick_samples(rows[:3], 6)) == 3
