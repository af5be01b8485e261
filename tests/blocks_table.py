"""A results table of two (model, dataset) blocks whose true memorization thresholds p differ, for the tests of
per-block calibration (tests/analysis/test_blocks.py, tests/e2e/test_analyze_blocks.py).

In each block an example's log(log(perplexity)) falls over the checkpoints of a run (faster at higher learning
rates), and each checkpoint's test accuracy is exactly the mean PreMemAcc of the block's train examples at the
block's own p. So calibrating inside the block finds that p with R^2 = 1 about y = x, and one p for both blocks
cannot fit both.
"""
from __future__ import annotations

import math

import numpy as np

from premem.analysis.results import RunData
from premem.metrics.premem import premem_acc

GRID = (-3.0, -0.5, 0.05)  # START, STOP, STEP of the p grid the tests calibrate on
BLOCKS = {("llama-test", "gsm8k"): -2.4, ("llama-test", "math"): -1.7}  # the true p of each block
LEARNING_RATES = (1e-5, 3e-5, 1e-4)
EPOCHS = 5
EXAMPLES = 160
SAMPLES = 4


def block_runs(seed: int = 0) -> list[RunData]:
    """Three runs per block (one per learning rate), EPOCHS checkpoints each, EXAMPLES train examples; the
    test accuracy of each checkpoint (a fraction in [0, 1]) is its mean PreMemAcc at its block's true p."""
    rng = np.random.default_rng(seed)
    runs = []
    for (model, dataset), p_true in BLOCKS.items():
        for k, lr in enumerate(LEARNING_RATES):
            skill = rng.uniform(0, 1, EXAMPLES)
            epochs = np.arange(1, EPOCHS + 1)[:, None]
            # accuracy: rises with epochs, faster at higher learning rates; k = SAMPLES samples per example
            p_right = np.clip(skill[None] * 0.6 + 0.08 * epochs * (k + 1) * rng.uniform(0.3, 1.2, EXAMPLES), 0, 1)
            acc = rng.binomial(SAMPLES, p_right) / SAMPLES
            # log(log(perplexity)): starts about 1 above the block's p, falls through it at an example's own pace
            start = p_true + rng.uniform(0.3, 1.5, EXAMPLES)
            fall = 0.12 * (k + 1) * rng.uniform(0.3, 2.0, EXAMPLES)
            loglog = start[None] - fall[None] * epochs
            nll = np.exp(loglog)
            test = premem_acc(acc, nll, p_true).mean(axis=1)
            name = f"{dataset}-lr{lr:g}"
            runs.append(RunData(name, {"model": model, "dataset": dataset, "learning_rate": lr, "epochs": EPOCHS},
                                list(range(1, EPOCHS + 1)), [f"ex{i:03d}" for i in range(EXAMPLES)], acc, nll, test,
                                [None] * EPOCHS))
    return runs


def table_rows(runs: list[RunData]) -> list[dict]:
    """The runs as rows of the table `premem analyze` reads: train rows with accuracy and perplexity (exp of
    the mean target NLL), one test row per checkpoint whose accuracy is the checkpoint's test accuracy."""
    out = []
    for r in runs:
        for i, e in enumerate(r.epochs):
            for j, ex in enumerate(r.example_ids):
                out.append({"run": r.name, "checkpoint": e, "split": "train", "example_id": ex,
                            "accuracy": float(r.acc[i, j]), "perplexity": math.exp(float(r.nll[i, j])),
                            **{k: r.settings[k] for k in ("model", "dataset", "learning_rate")}})
            out.append({"run": r.name, "checkpoint": e, "split": "test", "example_id": "t0",
                        "accuracy": float(r.test_acc[i]), "perplexity": None,
                        **{k: r.settings[k] for k in ("model", "dataset", "learning_rate")}})
    return out


def write_table(path, runs: list[RunData]) -> str:
    """Write the runs as a CSV or Parquet table (by the name's ending); return the path as text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(table_rows(runs))
    if str(path).endswith(".parquet"):
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return str(path)
