"""ATC's threshold and the correlations, on cases whose answers are known."""
import math

import numpy as np
import pytest

from premem.metrics.stats import atc_accuracy, atc_reproduction_bound, atc_threshold, correlations


@pytest.mark.parametrize("accuracy", [0.0, 0.1, 0.25, 0.5, 0.975, 1.0])
def test_atc_reproduces_the_reference_accuracy_exactly(accuracy):
    scores = np.random.default_rng(1).normal(size=40)
    t = atc_threshold(scores, accuracy)
    assert atc_accuracy(scores, t) == accuracy


def test_atc_reproduction_bound_pins_what_the_threshold_guarantees():
    # an accuracy that is not a whole number of prompts: 3/64 of 32 prompts is 1.5, rounded to 2 (0.0625);
    # the bound says half a prompt's share
    scores = np.random.default_rng(2).normal(size=32)
    assert atc_accuracy(scores, atc_threshold(scores, 3 / 64)) == 0.0625
    assert atc_reproduction_bound(scores, 3 / 64) == pytest.approx(1 / 64)
    # a tie across the cut: sorted -0.2, -1, -1, -1, -inf; 40 % asks for the first two, but the second ties
    # with the two below it, so only -0.2 lies above any threshold: 0.2, off by exactly the one tied prompt
    tied = [-math.inf, -1.0, -1.0, -1.0, -0.2]
    assert atc_accuracy(tied, atc_threshold(tied, 0.4)) == 0.2
    assert atc_reproduction_bound(tied, 0.4) == pytest.approx(0.2)
    # empty samples (-inf) tie with each other below every scored prompt
    assert atc_reproduction_bound([1.0, -math.inf, -math.inf, -math.inf], 0.5) == pytest.approx(0.25)
    # neighbouring floats have no float between them; the threshold still splits them
    up = np.nextafter(1.0, 2.0)
    assert atc_accuracy([up, 1.0, 0.0], atc_threshold([up, 1.0, 0.0], 1 / 3)) == pytest.approx(1 / 3)
    # the rule, over many random cases with heavy ties: never further than the bound, and exact where it is 0
    rng = np.random.default_rng(3)
    for _ in range(500):
        n = int(rng.integers(1, 30))
        s = rng.integers(-3, 3, size=n).astype(float)
        s[rng.random(n) < 0.1] = -math.inf
        acc = float(rng.random()) if rng.random() < 0.5 else int(rng.integers(0, n + 1)) / n
        got, bound = atc_accuracy(s, atc_threshold(s, acc)), atc_reproduction_bound(s, acc)
        assert abs(got - acc) <= bound + 1e-12, (s, acc)
        if bound == 0:
            assert got == acc


def test_atc_threshold_with_ties_and_infinite_scores():
    scores = [-math.inf, -1.0, -1.0, -0.5, -0.2]
    assert atc_accuracy(scores, atc_threshold(scores, 0.4)) == 0.4
    assert atc_accuracy([-0.3, -0.9], atc_threshold(scores, 0.4)) == 0.5  # other checkpoints: fraction above t
    # empty samples (-inf) sit below every scored prompt; a tie across the cut cannot be split exactly
    assert atc_accuracy([1.0, -math.inf, -math.inf, -math.inf], atc_threshold([1.0, -math.inf, -math.inf, -math.inf], 0.25)) == 0.25
    assert math.isfinite(atc_threshold([1.0, -math.inf, -math.inf, -math.inf], 0.5))
    with pytest.raises(ValueError):
        atc_threshold([], 0.5)
    with pytest.raises(ValueError):
        atc_threshold([1.0], 1.5)


def test_correlations_known_cases():
    x = [0.1, 0.2, 0.3, 0.4]
    assert correlations(x, [2 * v + 1 for v in x]) == {"pearson": pytest.approx(1.0), "kendall": pytest.approx(1.0), "n": 4}
    assert correlations(x, [-v for v in x])["kendall"] == pytest.approx(-1.0)
    assert correlations(x, [1, 1, 1, 1])["pearson"] is None  # undefined, not zero
    assert correlations([1, None, 3, float("nan"), 5], [1, 2, 3, 4, 6])["n"] == 3
    assert correlations([1, 2], [1, 2])["pearson"] is None
