"""Pre-memorization accuracy (PreMemAcc) and the calibration of its threshold p.

Definitions (PAPER_NOTES.md): an example is *not memorized* at a checkpoint while
log(log(Perp)) >= p, where Perp = exp(mean target NLL), so log(log(Perp)) = log(mean NLL). Then
  MaskedAcc_m = Acc_m * 1[not memorized at m]
  PreMemAcc_m = min( max_{m' <= m} MaskedAcc_{m'}, Acc_m )
with checkpoints m = 1, 2, ... (end of each epoch). Arrays are shaped (checkpoints, examples).
"""
from __future__ import annotations

import numpy as np


def loglog_perplexity(mean_nll: np.ndarray) -> np.ndarray:
    """log(log(perplexity)) = log(mean NLL in nats/token); -inf where the NLL is 0 (fully memorized)."""
    nll = np.asarray(mean_nll, dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(nll, 0.0))


def not_memorized(mean_nll: np.ndarray, p: float) -> np.ndarray:
    """Boolean array: True where the example is not memorized (log(log(Perp)) >= p)."""
    return loglog_perplexity(mean_nll) >= p


def masked_acc(acc: np.ndarray, mean_nll: np.ndarray, p: float) -> np.ndarray:
    """Accuracy where the example is not memorized, 0 where it is (same shape as `acc`)."""
    return np.asarray(acc, dtype=float) * not_memorized(mean_nll, p)


def premem_acc(acc: np.ndarray, mean_nll: np.ndarray, p: float) -> np.ndarray:
    """Per-example PreMemAcc at every checkpoint: min(running max over epochs of MaskedAcc, current Acc).

    `acc` and `mean_nll` are (checkpoints, examples) in epoch order; returns the same shape, values in [0, 1].
    """
    acc = np.asarray(acc, dtype=float)
    running = np.maximum.accumulate(masked_acc(acc, mean_nll, p), axis=0)
    return np.minimum(running, acc)


def premem_acc_grid(acc: np.ndarray, mean_nll: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """Mean PreMemAcc per checkpoint for every p in `ps`: shape (len(ps), checkpoints)."""
    acc = np.asarray(acc, dtype=float)
    ll = loglog_perplexity(mean_nll)
    ps = np.asarray(ps, dtype=float)
    masked = acc[None] * (ll[None] >= ps[:, None, None])  # (p, checkpoints, examples)
    running = np.maximum.accumulate(masked, axis=1)
    return np.minimum(running, acc[None]).mean(axis=2)


def r2_identity(y: np.ndarray, x: np.ndarray) -> float:
    """R^2 of predicting y by x itself (the y = x line): 1 - SS_res / SS_tot. Can be negative; nan if y is constant."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    if len(y) < 2 or ss_tot == 0:
        return float("nan")
    return 1.0 - float(((y - x) ** 2).sum()) / ss_tot


def r2_line(y: np.ndarray, x: np.ndarray) -> float:
    """R^2 of the least-squares line of y on x (the squared Pearson correlation); nan when undefined."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    if len(y) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def calibrate(runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], ps: list[float],
              fit: str = "identity") -> tuple[float | None, list[dict]]:
    """Choose p by the fit of mean PreMemAcc to test accuracy over all checkpoints of `runs`.

    Each run is (acc (checkpoints x examples), mean_nll (same shape), test_acc (checkpoints,)).
    Returns (best p or None when no p gives a finite fit, [{'p', 'r2', 'r2_line'} per p]).
    """
    ps_arr = np.asarray(ps, dtype=float)
    preds, tests = [], []
    for acc, nll, test in runs:
        preds.append(premem_acc_grid(acc, nll, ps_arr))  # (p, checkpoints)
        tests.append(np.asarray(test, float))
    if not preds:
        return None, []
    pred = np.concatenate(preds, axis=1)
    test = np.concatenate(tests)
    curve = []
    for i, p in enumerate(ps):
        curve.append({"p": float(p), "r2": r2_identity(test, pred[i]), "r2_line": r2_line(test, pred[i])})
    key = "r2" if fit == "identity" else "r2_line"
    finite = [c for c in curve if np.isfinite(c[key])]
    if not finite:
        return None, curve
    best = max(finite, key=lambda c: c[key])
    return best["p"], curve
