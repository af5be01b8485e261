"""Time `premem analyze` end to end on a generated results table of about 500,000 rows.

    python bench/analyze.py [--rows-scale 1.0] [--format parquet|csv|jsonl] [--resamples 1000] [--keep DIR]

The table has the shape of the paper's GSM8K study (about 450,000 rows): 14 runs x 6 checkpoints, 12 runs on
5,000 train examples, one on half of them and one on a quarter, and 1,400 test examples per checkpoint, with
plausible values (accuracy rises with epochs, examples get memorized later in training, test accuracy
follows what was learned before memorization). It is written in a temporary folder, then `premem analyze`
runs as a subprocess (interpreter start and imports included), once with bootstrap intervals (--resamples,
default 1,000) and once without, and the script prints seconds and rows/s of each.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]


def generate(scale: float = 1.0, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    n_train, n_test, n_cps = int(5000 * scale), int(1400 * scale), 6
    skill = rng.uniform(0.1, 0.95, n_train)  # how likely the example is solved by skill alone
    mem_order = 1 - skill + rng.normal(0, 0.15, n_train)  # easy examples get memorized first
    test_skill = rng.uniform(0.1, 0.95, n_test)
    runs = []
    for lr, boost in ((5e-4, 1.6), (5e-5, 1.0), (5e-6, 0.6), (5e-7, 0.3)):
        for epochs in (6, 3, 1):
            runs.append((f"gemma/gsm8k/lr{lr:g}-ep{epochs}-frac1", lr, epochs, 1.0, boost))
    runs = runs[:12] + [("gemma/gsm8k/lr5e-05-ep6-frac0.5", 5e-5, 6, 0.5, 1.0),
                        ("gemma/gsm8k/lr5e-05-ep12-frac0.25", 5e-5, 12, 0.25, 1.0)]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("run", "checkpoint", "split", "example_id", "n_samples",
                                                         "n_correct", "perplexity", "learning_rate", "epochs",
                                                         "dataset_fraction")}

    def add(run, cp, split, ids, ns, nc, perp, lr, epochs, frac):
        m = len(ids)
        cols["run"].append(np.full(m, run, dtype=object))
        cols["checkpoint"].append(np.full(m, cp, dtype=np.int64))
        cols["split"].append(np.full(m, split, dtype=object))
        cols["example_id"].append(ids)
        cols["n_samples"].append(np.full(m, ns, dtype=np.int64))
        cols["n_correct"].append(nc)
        cols["perplexity"].append(perp)
        cols["learning_rate"].append(np.full(m, lr))
        cols["epochs"].append(np.full(m, epochs, dtype=np.int64))
        cols["dataset_fraction"].append(np.full(m, frac))

    for name, lr, epochs, frac, boost in runs:
        ex = np.flatnonzero(rng.uniform(size=n_train) < frac) if frac < 1 else np.arange(n_train)
        for c in range(1, n_cps + 1):  # checkpoints evenly spaced steps over the run's training
            progress = c / n_cps * epochs * frac  # in passes over the full training set
            g = min(1.0, 0.25 * progress * boost)
            memorized = mem_order[ex] < 0.25 * (progress - 1) * boost
            p_ok = np.where(memorized, 0.97, skill[ex] * g)
            nc = rng.binomial(4, p_ok)
            loglog = np.where(memorized, rng.normal(-2.8, 0.3, len(ex)), rng.normal(-1.2, 0.4, len(ex)))
            perp = np.exp(np.exp(loglog))
            add(name, c, "train", ex.astype(str).astype(object), 4, nc, perp, lr, epochs, frac)
            tnc = rng.binomial(2, test_skill * g)
            add(name, c, "test", (100000 + np.arange(n_test)).astype(str).astype(object), 2, tnc,
                np.full(n_test, np.nan), lr, epochs, frac)
    data = {k: np.concatenate(v) for k, v in cols.items()}
    arrays = {}
    for k, v in data.items():
        if v.dtype == object:
            arrays[k] = pa.array(v, type=pa.string())
        elif k == "perplexity":
            arrays[k] = pa.array(v, mask=np.isnan(v))
        else:
            arrays[k] = pa.array(v)
    return pa.table(arrays)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows-scale", type=float, default=1.0, help="scale the examples per run (1.0: ~500k rows)")
    ap.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the timed run with "
                    "intervals (default 1000); a second run without intervals follows")
    ap.add_argument("--keep", default=None, help="write the table and report here instead of a temporary folder")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="premem-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        table = generate(args.rows_scale)
        path = work / f"results.{args.format}"
        if args.format == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, path)
        elif args.format == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, path)
        else:
            import json

            with open(path, "w") as fh:
                for row in table.to_pylist():
                    fh.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
        print(f"generated {table.num_rows:,} rows ({path.stat().st_size / 1e6:.1f} MB {args.format}) "
              f"in {time.perf_counter() - t0:.1f}s")
        for resamples in (args.resamples, 0):  # with the bootstrap intervals, then without for comparison
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "premem.cli", "analyze", str(path), "--out", str(work / "reports"),
                   f"--resamples={resamples}"]
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 1
            print(proc.stdout.strip())
            what = f"{resamples:,} bootstrap resamples" if resamples else "no intervals"
            print(f"premem analyze ({what}): {dt:.2f} s end to end for {table.num_rows:,} rows "
                  f"({table.num_rows / dt:,.0f} rows/s)\n")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
