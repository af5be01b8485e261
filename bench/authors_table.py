"""The authors' published per-example results (Kang et al., Llama3-8B on GSM8K and MATH) as one table that
`premem analyze` reads: a check of premem's PreMemAcc, calibration and R^2 on real data.

    python bench/authors_table.py CKPTS_PARENT OUT.parquet        # write the table
    premem analyze OUT.parquet --p-grid=-3:-0.5:0.05 --calibrate-on epochs=6,dataset_fraction=1 --out DIR
    python bench/authors_table.py --plotted DIR/summary.json        # R^2 over the checkpoints they plotted

CKPTS_PARENT is a folder holding their `ckpts/` (from github.com/katiekang1998/reasoning_generalization;
extract it from a clone or mirror first, e.g. `git -C MIRROR archive HEAD ckpts | tar -x -C DIR`). Their arrays
are not part of premem and are never copied into it.

What their files hold (read from their notebooks gsm8k_analyze.ipynb / math_analyze.ipynb and the scripts
gsm8k_eval_samples.py, math_eval_samples.py, gsm8k_eval_perplexity.py):
- ckpts/{task}_orig_{E}epochs_{full|half|quarter}_lr{LR}_bs{B}/checkpoint-{STEP}/: one folder per saved
  checkpoint (the step number orders them).
- {train|test}_answer_types{k}_seed2[_temp0.8].npy: (examples, k) integers per sample, 0 = correct, 1 = wrong,
  2 = no parseable answer. Several k may be present; like the notebooks, the first of types5_seed2_temp0.8,
  types50_seed2_temp0.8, types5_seed2, types50_seed2, types10_seed2_temp0.8 that exists is used, for train and
  test separately.
- train_perplexities.npy: (examples,) exp of the mean per-token NLL of the target given the prompt.
- subsample_idxs.npy (half and quarter runs): the train examples that run trained on; their arrays cover the
  whole train split and, as in the notebooks, only those examples are kept.

The table: one row per (run, checkpoint, split, example) with n_samples, n_correct, n_unparseable, perplexity
(train rows) and the run's settings as columns: model (llama3-8b), dataset (gsm8k | math), learning_rate, epochs,
dataset_fraction (1, 0.5, 0.25), batch_size. Checkpoints are the authors' step numbers.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

MODEL = "llama3-8b"
ANSWER_TYPES = ("types5_seed2_temp0.8", "types50_seed2_temp0.8", "types5_seed2", "types50_seed2",
                "types10_seed2_temp0.8")  # the order of preference of the authors' notebooks
RUN_NAME = re.compile(r"^(?P<task>gsm8k|math)_orig_(?P<epochs>\d+)epochs_(?P<data>full|half|quarter)_lr(?P<lr>[0-9.e+-]+)"
                      r"_bs(?P<bs>\d+)$")
FRACTION = {"full": 1.0, "half": 0.5, "quarter": 0.25}
# the checkpoints the authors' Fig. 3 plots of the half and quarter runs (indexes 1, 3, 5 of their six)
PLOTTED = {"half": (1, 3, 5), "quarter": (1, 3, 5)}


def answer_file(folder: Path, split: str, names: tuple[str, ...] = ANSWER_TYPES) -> Path:
    """The answer-types file of `split` at one checkpoint folder: the first of `names` (default: the notebooks'
    order of preference) that exists. Raises FileNotFoundError when there is none."""
    for name in names:
        path = folder / f"{split}_answer_{name}.npy"
        if path.exists():
            return path
    raise FileNotFoundError(f"{folder}: no {split}_answer_{'|'.join(names)}.npy")


def answer_types(folder: Path, split: str, names: tuple[str, ...] = ANSWER_TYPES) -> np.ndarray:
    """The (examples, k) answer types of `split` at one checkpoint (0 correct, 1 wrong, 2 unparseable), from the
    first file of `names` present (default: the notebooks' order of preference)."""
    return np.load(answer_file(folder, split, names))


def checkpoints(run_folder: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint-STEP folder of a run, in step order (the order of the epochs)."""
    return sorted((int(p.name.split("-")[1]), p) for p in run_folder.glob("checkpoint-*") if p.is_dir())


def train_subset(run_folder: Path, settings: dict) -> np.ndarray | None:
    """The train examples a half or quarter run trained on (its subsample_idxs.npy), None for a full-data run:
    their arrays cover the whole train split and, as in the notebooks, only these examples are kept."""
    sub = run_folder / "subsample_idxs.npy"
    return np.load(sub) if settings["dataset_fraction"] < 1 and sub.exists() else None


def run_arrays(run_folder: Path, settings: dict, train_names: tuple[str, ...] = ANSWER_TYPES,
               test_names: tuple[str, ...] = ANSWER_TYPES) -> dict:
    """One run as the notebooks read it (gsm8k_analyze.ipynb / math_analyze.ipynb cell 1), checkpoints in step
    order: {'acc': (checkpoints, examples) share of correct train samples, 'nll': same shape, mean target NLL in
    nats/token = log(perplexity), computed in float32 as theirs, 'test': (checkpoints,) share of correct test
    samples, 'files': [(train file, test file) names per checkpoint], 'steps': [step per checkpoint]}.
    Answer files: per checkpoint and split, the first of `train_names` / `test_names` present."""
    acc, nll, test, files, steps = [], [], [], [], []
    for step, cp in checkpoints(run_folder):
        tr, te = answer_file(cp, "train", train_names), answer_file(cp, "test", test_names)
        acc.append((np.load(tr) == 0).mean(axis=1))
        test.append(float((np.load(te) == 0).mean()))
        nll.append(np.log(np.load(cp / "train_perplexities.npy")))
        files.append((tr.name, te.name))
        steps.append(step)
    acc, nll = np.array(acc), np.array(nll)
    keep = train_subset(run_folder, settings)
    if keep is not None:
        acc, nll = acc[:, keep], nll[:, keep]
    return {"acc": acc, "nll": nll, "test": np.array(test), "files": files, "steps": steps}


def runs_of(ckpts: Path) -> list[tuple[str, dict, Path]]:
    """(run name, settings, folder) for every run folder under `ckpts` whose name follows the authors' pattern,
    sorted by task, then name."""
    out = []
    for folder in sorted(p for p in ckpts.iterdir() if p.is_dir()):
        m = RUN_NAME.match(folder.name)
        if m is None:
            print(f"skipped {folder.name}: not a run folder of the known pattern", file=sys.stderr)
            continue
        out.append((folder.name, {"model": MODEL, "dataset": m["task"], "learning_rate": float(m["lr"]),
                                  "epochs": int(m["epochs"]), "dataset_fraction": FRACTION[m["data"]],
                                  "batch_size": int(m["bs"])}, folder))
    return out


def build_table(root: Path):
    """The authors' runs under `root`/ckpts as a pyarrow Table in the format `premem analyze` reads (see the
    module's docstring); prints one line per run to stderr."""
    import pyarrow as pa

    ckpts = root / "ckpts"
    if not ckpts.is_dir():
        raise SystemExit(f"{root}: no ckpts/ folder here")
    parts = []
    for name, settings, folder in runs_of(ckpts):
        steps = checkpoints(folder)
        keep = train_subset(folder, settings)
        clipped = 0
        for step, cp in steps:
            train, test = answer_types(cp, "train"), answer_types(cp, "test")
            perp = np.load(cp / "train_perplexities.npy").astype(float)
            if keep is not None:
                train, perp = train[keep], perp[keep]
            # premem reads perplexity > 1 (a mean NLL above 0); a float32 perplexity of exactly 1 is the smallest
            # NLL it could show, kept just above 1
            low = perp <= 1.0
            clipped += int(low.sum())
            perp = np.where(low, np.nextafter(1.0, 2.0), perp)
            for split, types, ids in (("train", train, keep if keep is not None else np.arange(len(train))),
                                      ("test", test, np.arange(len(test)))):
                n = len(types)
                cols = {"run": pa.array([name] * n), "checkpoint": pa.array(np.full(n, step, dtype=np.int64)),
                        "split": pa.array([split] * n), "example_id": pa.array(ids.astype(np.int64)),
                        "n_samples": pa.array(np.full(n, types.shape[1], dtype=np.int64)),
                        "n_correct": pa.array((types == 0).sum(axis=1).astype(np.int64)),
                        "n_unparseable": pa.array((types == 2).sum(axis=1).astype(np.int64)),
                        "perplexity": pa.array(perp if split == "train" else np.full(n, np.nan),
                                               mask=None if split == "train" else np.ones(n, dtype=bool))}
                for k, v in settings.items():
                    cols[k] = pa.array([v] * n)
                parts.append(pa.table(cols))
        print(f"{name}: {len(steps)} checkpoints, {len(keep) if keep is not None else 'all'} train examples"
              + (f", {clipped} perplexities of exactly 1 set just above 1" if clipped else ""), file=sys.stderr)
    return pa.concat_tables(parts)


def plotted_r2(summary_path: Path) -> dict:
    """Per block of a `premem analyze` summary.json: the R^2 about y = x and of a fitted line of PreMemAcc
    against test accuracy over the checkpoints the authors' figure plots (every checkpoint of the full-data runs,
    indexes 1, 3, 5 of the half and quarter runs), at the p premem chose for the block."""
    from premem.metrics.premem import r2_identity, r2_line

    summary = json.loads(Path(summary_path).read_text())
    runs = {r["name"]: r for r in summary["runs"]}
    out = {}
    for b in summary["blocks"]:
        test, pm = [], []
        for name in b["runs"]:
            m = RUN_NAME.match(name)
            cps = runs[name]["checkpoints"]
            idx = PLOTTED.get(m["data"], range(len(cps))) if m else range(len(cps))
            for i in idx:
                if i < len(cps) and cps[i]["premem_acc"] is not None:
                    test.append(cps[i]["test_acc"])
                    pm.append(cps[i]["premem_acc"])
        out[f"{b['model']} / {b['dataset']}"] = {"p": b["p"], "checkpoints": len(test),
                                                 "r2": r2_identity(test, pm), "r2_line": r2_line(test, pm)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", help="a folder holding the authors' ckpts/")
    ap.add_argument("out", nargs="?", help="the table to write (.parquet or .csv)")
    ap.add_argument("--plotted", metavar="SUMMARY", help="print the R^2 over the checkpoints the authors plotted, "
                    "from a summary.json of `premem analyze` on the table")
    args = ap.parse_args(argv)
    if args.plotted:
        for block, fig in plotted_r2(Path(args.plotted)).items():
            print(f"{block}: p = {fig['p']}, {fig['checkpoints']} checkpoints, R^2 = {fig['r2']:.3f} "
                  f"(fitted line {fig['r2_line']:.3f})")
        return 0
    if not args.root or not args.out:
        ap.error("give ROOT and OUT (or --plotted SUMMARY)")
    table = build_table(Path(args.root))
    out = Path(args.out)
    if out.suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, out)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, out)
    print(f"{out}: {table.num_rows:,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
