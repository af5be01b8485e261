"""Statistics over measured values that need no torch (the analysis and `premem report` import them, and must
not pay for loading torch):

- `atc_threshold` / `atc_accuracy` / `atc_reproduction_bound`: Average Thresholded Confidence. Scores are per
  train prompt (the likelihood of one greedy sample); a threshold fitted on a reference checkpoint turns any
  checkpoint's scores into a predicted accuracy; on the reference itself it gives back the reference's accuracy
  within the bound.
- `correlations`: Pearson r and Kendall tau of a measure against a target (the generalization gap or test
  accuracy) over checkpoints.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _ranked(scores: Sequence[float]) -> tuple[np.ndarray, int]:
    """`scores` sorted from highest to lowest, with prompts that have no score (an empty greedy sample: -inf)
    put together just below every scored prompt, and how many were scored. Raises ValueError when empty."""
    s = np.sort(np.asarray(scores, dtype=float))[::-1]
    if s.size == 0:
        raise ValueError("ATC needs at least one score")
    finite = s[np.isfinite(s)]
    return np.where(np.isfinite(s), s, (finite.min() - 1.0) if finite.size else 0.0), int(finite.size)


def atc_threshold(scores: Sequence[float], accuracy: float) -> float:
    """The threshold t such that the fraction of `scores` strictly above t equals `accuracy` (as closely as the
    number of scores allows: round(accuracy x n) of them are above it). t lies midway between the two scores
    that straddle the cut, so scores of other checkpoints are not judged by a tie with one of the reference's.
    Where scores tie across the cut (prompts with no score, -inf, tie with each other) no threshold gives the
    exact fraction: `atc_accuracy` on the reference then says what it reproduces."""
    s, _ = _ranked(scores)
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy {accuracy} is not in [0, 1]")
    k = int(round(accuracy * s.size))
    if k == 0:
        return float(s[0])  # nothing strictly above the highest score
    if k == s.size:
        return float(s[-1] - 1.0)
    mid = (s[k - 1] + s[k]) / 2.0
    # two neighbouring floats have no float between them: the midpoint rounds onto the upper one, which would
    # then not count as above; the lower one keeps exactly k above (unless they tie)
    return float(mid if mid < s[k - 1] else s[k])


def atc_reproduction_bound(scores: Sequence[float], accuracy: float) -> float:
    """How far, at most, `atc_accuracy(scores, atc_threshold(scores, accuracy))` can lie from `accuracy`
    (a fraction in [0, 1]): the rounding of accuracy x n to a whole number of prompts, plus the share of prompts
    whose scores tie with each other across the cut, which no threshold can split (empty samples, -inf, tie
    with each other and lie above no threshold). 0.0 when accuracy x n is a whole number and no scores tie across
    the cut."""
    s, n_finite = _ranked(scores)
    k = int(round(accuracy * s.size))
    bound = abs(k / s.size - accuracy)
    if 0 < k < s.size and s[k - 1] == s[k]:
        # the threshold then sits on the tied value: the tied prompts above the cut are not counted above it
        bound += float(np.sum(s[:k] == s[k])) / s.size
    elif k == s.size:
        bound += float(s.size - n_finite) / s.size  # an empty sample is above no threshold
    return bound


def atc_accuracy(scores: Sequence[float], threshold: float) -> float:
    """ATC's predicted accuracy: the fraction of `scores` strictly above `threshold`."""
    s = np.asarray(scores, dtype=float)
    if s.size == 0:
        raise ValueError("ATC needs at least one score")
    return float(np.mean(s > threshold))


def correlations(x: Sequence[float | None], y: Sequence[float | None]) -> dict:
    """Pearson r and Kendall tau (tau-b) of x against y over the pairs where both are finite numbers.

    Returns {'pearson', 'kendall', 'n'}; a coefficient is None with fewer than 3 pairs or when either side is
    constant (the correlation is undefined, not zero).
    """
    from scipy import stats

    pairs = [(float(a), float(b)) for a, b in zip(x, y)
             if a is not None and b is not None and math.isfinite(float(a)) and math.isfinite(float(b))]
    out = {"pearson": None, "kendall": None, "n": len(pairs)}
    if len(pairs) < 3:
        return out
    xa, ya = np.array(pairs).T
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return out
    out["pearson"] = float(stats.pearsonr(xa, ya).statistic)
    out["kendall"] = float(stats.kendalltau(xa, ya).statistic)
    return out
