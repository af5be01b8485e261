"""Runs that differ only by seed (grid.seeds, runs[].seed, curation.seeds): their mean and a confidence interval.

The interval is Student's t over seeds at 95 %: mean +/- t(0.975, n-1) * s / sqrt(n), s the sample standard
deviation (ddof 1). Seeds are few (3 to 5 is usual), which is what t is for: a bootstrap over 3 values has only 10
distinct resamples, and a normal interval would be too narrow. It assumes the seeds' values scatter about a mean
roughly normally; with one seed there is no spread to read, so the interval is None.

summary['seed_groups'] = [{'name': the runs' name without the seed part, 'runs': [run names, in run order],
  'seeds': [their seeds], 'checkpoints': [{'epoch', 'n' (seeds with that checkpoint), 'test_acc', 'test_acc_ci',
  'premem_acc', 'premem_acc_ci', 'train_acc', 'train_acc_ci'}]}]: each value the mean over the seeds that have it,
  each '_ci' [lo, hi] or None.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

CONFIDENCE = 0.95
SEED_METRICS = ("test_acc", "premem_acc", "train_acc")


def mean_ci(values: Sequence[float | None]) -> tuple[float | None, list[float] | None]:
    """(mean, [lo, hi]) of the values that are not None: the t-interval at CONFIDENCE over them; (None, None)
    without values, (mean, None) with one."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None, None
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, None
    from scipy.stats import t

    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return mean, [mean - half, mean + half]


def seed_groups(entries: list[dict]) -> list[dict]:
    """summary['seed_groups'] from summary['runs'] entries: those with a 'seed_group' (the name they share with
    their other seeds) grouped by it, in the order the groups first appear."""
    groups: dict[str, list[dict]] = {}
    for e in entries:
        if e.get("seed_group") is not None:
            groups.setdefault(e["seed_group"], []).append(e)
    out = []
    for name, runs in groups.items():
        epochs = sorted({cp["epoch"] for r in runs for cp in r.get("checkpoints") or []})
        checkpoints = []
        for epoch in epochs:
            cps = [cp for r in runs for cp in r.get("checkpoints") or [] if cp["epoch"] == epoch]
            point: dict = {"epoch": epoch, "n": len(cps)}
            for key in SEED_METRICS:
                point[key], point[f"{key}_ci"] = mean_ci([cp.get(key) for cp in cps])
            checkpoints.append(point)
        out.append({"name": name, "runs": [r["name"] for r in runs], "seeds": [r.get("seed") for r in runs],
                    "checkpoints": checkpoints})
    return out
