"""The measured figures of docs/FIDELITY.md (M1-M8, M10), recomputed from the authors' published arrays with
premem's own PreMemAcc, R^2 and calibration functions (premem.metrics.premem).

    python bench/fidelity.py --generalization GEN_DIR --data DATA_DIR

GEN_DIR holds the `ckpts/` folder of github.com/katiekang1998/reasoning_generalization (per-example answer types,
perplexities and target token counts of every published checkpoint, and the PreMemAcc arrays the authors saved);
DATA_DIR holds `gsm8k_ifd.npy` and `math_ifd.npy` of github.com/katiekang1998/reasoning_data (IFD scores, one per
GSM8K / MATH train example). From clones or mirrors of the two repositories (about 130 MB and 90 kB):

    git -C REASONING_GENERALIZATION archive HEAD ckpts | tar -x -C GEN_DIR
    git -C REASONING_DATA archive HEAD gsm8k_ifd.npy math_ifd.npy | tar -x -C DATA_DIR

Their arrays are not part of premem and are never copied into it. Runs are read as the authors' analysis notebooks
read them (bench/authors_table.py, `run_arrays`): per checkpoint and split the first answer-types file present in
the order types5_seed2_temp0.8, types50_seed2_temp0.8, types5_seed2, types50_seed2, types10_seed2_temp0.8;
accuracy = share of samples of type 0; mean NLL = log(perplexity), in float32; half and quarter runs keep only
their subsample_idxs. Each line prints a figure's label, its value and, in brackets, the value docs/FIDELITY.md
(and, where there is one, the paper) gives. Takes a few seconds and about 100 MB of memory on one CPU core
(bench/README.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from authors_table import RUN_NAME, checkpoints, run_arrays, runs_of  # noqa: E402

from premem.metrics.premem import calibrate, loglog_perplexity, premem_acc, r2_identity, r2_line  # noqa: E402

# the thresholds the authors' notebooks set by hand (gsm8k_analyze.ipynb / math_analyze.ipynb cell 3)
NOTEBOOK_P = {"gsm8k": -2.3, "math": -1.7}
# the PreMemAcc arrays the authors saved, with the p docs/FIDELITY.md finds for each (M1)
SAVED = (("gsm8k_orig_3epochs_full_lr2e-05_bs128", "unmemorized_acc_cummax_all.npy", -2.5),
         ("math_orig_6epochs_full_lr5e-05_bs24", "unmemorized_acc_cummax_full.npy", -1.7),
         ("math_orig_6epochs_full_lr5e-07_bs24", "unmemorized_acc_cummax_full.npy", -1.7))
# the GSM8K runs whose checkpoints hold both 5- and 50-sample files without temperature suffix (M3)
BOTH_K = ("gsm8k_orig_6epochs_full_lr0.0002_bs128", "gsm8k_orig_6epochs_full_lr2e-05_bs128",
          "gsm8k_orig_6epochs_full_lr5e-07_bs128")
FIG7_RUN = "gsm8k_orig_6epochs_full_lr2e-05_bs128"  # the run whose PreMemAcc bins Fig. 7's GSM8K panel
FIG7_EXAMPLES = 1000  # Fig. 7 uses the first 1,000 train examples (RD gsm8k_orig_perplexity_gpt4o.ipynb cells 3, 7)
CALIBRATION_GRID = [round(float(x), 2) for x in np.arange(-3.5, -0.99, 0.05)]  # M4
EXACT_GRID = [round(float(x), 2) for x in np.arange(-3.0, -0.995, 0.01)]  # M1


def load_runs(ckpts: Path) -> dict[str, dict]:
    """Every published run under `ckpts`, by name: run_arrays's dict (acc, nll, test, files, steps) plus 'task'
    (gsm8k | math), 'data' (full | half | quarter), 'epochs' and 'folder'."""
    runs = {}
    for name, settings, folder in runs_of(ckpts):
        m = RUN_NAME.match(name)
        runs[name] = dict(run_arrays(folder, settings), task=m["task"], data=m["data"], epochs=int(m["epochs"]),
                          folder=folder)
    return runs


def of_task(runs: dict[str, dict], task: str) -> dict[str, dict]:
    """The runs of one dataset (gsm8k | math), in name order."""
    return {k: r for k, r in runs.items() if r["task"] == task}


def mean_points(runs: dict[str, dict], p: float, fig_points: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(mean PreMemAcc, test accuracy) per checkpoint over `runs` at threshold p, both as shares in [0, 1].
    PreMemAcc always runs over every checkpoint; with fig_points only checkpoints 1, 3, 5 (0-based) of the half
    and quarter runs are returned, the points Fig. 2 plots (RG gsm8k_analyze.ipynb cell 5)."""
    x, y = [], []
    for r in runs.values():
        m = premem_acc(r["acc"], r["nll"], p).mean(axis=1)
        keep = [1, 3, 5] if fig_points and r["data"] != "full" else range(len(m))
        x += [m[i] for i in keep]
        y += [r["test"][i] for i in keep]
    return np.array(x), np.array(y)


def m1_exact(runs: dict[str, dict]) -> None:
    """M1: premem_acc on the authors' inputs vs the PreMemAcc arrays they saved: the max |difference| at the p
    docs/FIDELITY.md states, and every p of a 0.01 grid over -3.0...-1.0 at which the arrays are equal."""
    for name, fname, p in SAVED:
        r = runs[name]
        saved = np.load(r["folder"] / fname)
        diff = float(np.abs(premem_acc(r["acc"], r["nll"], p) - saved).max())
        exact = [q for q in EXACT_GRID if np.array_equal(premem_acc(r["acc"], r["nll"], q), saved)]
        print(f"M1  {name}/{fname} {saved.shape}: max |diff| at p = {p}: {diff:g}; p of the 0.01 grid with "
              f"equal arrays: {exact}   [doc: 0, only at p = {p}]")


def m2_r2(runs: dict[str, dict]) -> None:
    """M2: R^2 (about y = x, fitted line in brackets) of test accuracy against mean PreMemAcc at the notebooks' p,
    over Fig. 2's points and over every published checkpoint."""
    ref = {("gsm8k", True): "doc 0.938, paper 0.94", ("gsm8k", False): "doc 0.935",
           ("math", True): "doc 0.951, paper 0.95", ("math", False): "doc 0.949"}
    for task, p in NOTEBOOK_P.items():
        rs = of_task(runs, task)
        for fig in (True, False):
            x, y = mean_points(rs, p, fig)
            print(f"M2  {task} ({len(rs)} runs), p = {p}, {'Fig. 2 points' if fig else 'all checkpoints'}: "
                  f"n = {len(x)}, R^2 = {r2_identity(y, x):.3f} (line {r2_line(y, x):.3f})   [{ref[task, fig]}]")


def m3_k(runs: dict[str, dict]) -> None:
    """M3: mixed k. The answer files the notebooks' order picks per GSM8K run; on the three runs that hold both
    k = 5 and k = 50 files, mean PreMemAcc and test accuracy from each (shares), R^2 with each, the mean per-example
    |difference| of final PreMemAcc, and Fig. 7's six bins (frac <= v < frac + 0.2) from each on examples 0-999."""
    p = NOTEBOOK_P["gsm8k"]
    for name, r in of_task(runs, "gsm8k").items():
        picked = sorted({(a.removeprefix("train_answer_"), b.removeprefix("test_answer_")) for a, b in r["files"]})
        print(f"M3  files picked, {name}: " + "; ".join(f"train {a} / test {b}" for a, b in picked))
    pm, tests, final_diff, final = {5: [], 50: []}, {5: [], 50: []}, [], {}
    for name in BOTH_K:
        r = runs[name]
        per_k = {}
        for k in (5, 50):
            names = (f"types{k}_seed2",)
            rk = run_arrays(r["folder"], {"dataset_fraction": 1.0}, names, names)
            per_k[k] = premem_acc(rk["acc"], r["nll"], p)
            pm[k].append(per_k[k].mean(axis=1))
            tests[k].append(rk["test"])
        final_diff.append(float(np.abs(per_k[5][-1] - per_k[50][-1]).mean()))
        if name == FIG7_RUN:
            final = {k: v[-1][:FIG7_EXAMPLES] for k, v in per_k.items()}
        print(f"M3  {name}: mean PreMemAcc k=5 {np.round(pm[5][-1], 3).tolist()}, k=50 "
              f"{np.round(pm[50][-1], 3).tolist()}")
    x5, x50, t5, t50 = (np.concatenate(v) for v in (pm[5], pm[50], tests[5], tests[50]))
    print(f"M3  {len(x5)} checkpoints: max |mean PreMemAcc k=5 - k=50| {np.abs(x5 - x50).max():.3f}, max |test acc "
          f"k=5 - k=50| {np.abs(t5 - t50).max():.3f}   [doc: 0.016, 0.008; 0.298 vs 0.281 at lr 2e-4's last]")
    print(f"M3  R^2 at k=5 {r2_identity(t5, x5):.3f}, at k=50 {r2_identity(t50, x50):.3f}   [doc: 0.947 vs 0.954]")
    print(f"M3  mean per-example |final PreMemAcc k=5 - k=50|: {min(final_diff):.3f}-{max(final_diff):.3f}   "
          f"[doc: 0.105-0.123]")
    b5, b50 = fig7_bins(final[5]), fig7_bins(final[50])
    print(f"M3  Fig. 7 bins of {FIG7_RUN}, examples 0-{FIG7_EXAMPLES - 1}: {100 * (b5 != b50).mean():.1f} % change "
          f"bin; counts per bin k=5 {np.bincount(b5 + 1, minlength=7)[1:].tolist()}, k=50 "
          f"{np.bincount(b50 + 1, minlength=7)[1:].tolist()}   [doc: 48.8 %; bin 1.0: 282 vs 100]")


def fig7_bins(v: np.ndarray, starts: tuple[float, ...] = (0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> np.ndarray:
    """The bin index of each PreMemAcc value under the notebook's test `start <= v < start + 0.2` for each start
    (RD gsm8k_orig_perplexity_gpt4o.ipynb cell 7: six bins, 1.0 its own); -1 where no bin holds it."""
    out = np.full(len(v), -1)
    for i, s in enumerate(starts):
        out[(v >= s) & (v < s + 0.2)] = i
    return out


def m4_calibration(runs: dict[str, dict]) -> None:
    """M4: the p premem.metrics.premem.calibrate (fit about y = x, grid -3.5...-1.0 step 0.05) picks per block
    (calibrated on the 6-epoch full-data runs, or on all runs) and pooled over both blocks; R^2 over every run of
    each block at that p, and how far pooling moves mean PreMemAcc per checkpoint (mean and max |difference|)."""
    ref = {("6-epoch runs", "gsm8k"): "doc: -2.3, 0.935; pooled -2.25, 0.929",
           ("6-epoch runs", "math"): "doc: -1.65, 0.938; pooled -2.25, 0.476, up to 0.06",
           ("all runs", "gsm8k"): "doc: -2.3, 0.935", ("all runs", "math"): "doc: -1.75, 0.952"}
    for label, pick in (("6-epoch runs", lambda r: r["epochs"] == 6 and r["data"] == "full"),
                        ("all runs", lambda r: True)):
        cal = {t: [(r["acc"], r["nll"], r["test"]) for r in of_task(runs, t).values() if pick(r)] for t in NOTEBOOK_P}
        pooled, _ = calibrate(cal["gsm8k"] + cal["math"], CALIBRATION_GRID)
        for task in NOTEBOOK_P:
            p, _ = calibrate(cal[task], CALIBRATION_GRID)
            xb, yb = mean_points(of_task(runs, task), p)
            xp, yp = mean_points(of_task(runs, task), pooled)
            print(f"M4  {task}, calibrated on {label}: per block p = {p}, R^2 {r2_identity(yb, xb):.3f} | pooled "
                  f"p = {pooled}, R^2 {r2_identity(yp, xp):.3f} | mean PreMemAcc moves {np.abs(xb - xp).mean():.4f}"
                  f" on average, {np.abs(xb - xp).max():.4f} at most   [{ref[label, task]}]")


def m5_threshold(runs: dict[str, dict]) -> None:
    """M5: the share of (checkpoint, example) cells of every run whose log(mean NLL) lies within 0.01 of the
    notebooks' p, and, over runs, the largest change of mean PreMemAcc (a share) and the largest share of
    examples whose final PreMemAcc changes when p moves by -0.01 or +0.01."""
    ref = {"gsm8k": "doc: 0.25 %; over both datasets at most 0.0035, 0.72 %",
           "math": "doc: 0.31 %; over both datasets at most 0.0035, 0.72 %"}
    for task, p in NOTEBOOK_P.items():
        near = cells = 0
        moved_mean = moved_final = 0.0
        for r in of_task(runs, task).values():
            ll = loglog_perplexity(r["nll"])
            near += int((np.abs(ll - p) < 0.01).sum())
            cells += ll.size
            base = premem_acc(r["acc"], r["nll"], p)
            for dp in (-0.01, 0.01):
                other = premem_acc(r["acc"], r["nll"], p + dp)
                moved_mean = max(moved_mean, float(np.abs(other.mean(1) - base.mean(1)).max()))
                moved_final = max(moved_final, float((other[-1] != base[-1]).mean()))
        print(f"M5  {task}, p = {p}: {near:,} of {cells:,} cells = {100 * near / cells:.2f} % within 0.01 of p; "
              f"p +- 0.01 moves mean PreMemAcc by at most {moved_mean:.4f} and the final PreMemAcc of at most "
              f"{100 * moved_final:.2f} % of examples   [{ref[task]}]")


def m6_ifd(data: Path) -> None:
    """M6: the MATH originals RD math_train4_ifd.py:136-142 keeps (index < 3,504, score >= the 25th percentile of
    the file's scores) with the file it loads, gsm8k_ifd.npy, against those MATH's own math_ifd.npy would keep;
    the overlap expected if the two were independent, and the correlation of the two score vectors."""
    g, m = np.load(data / "gsm8k_ifd.npy"), np.load(data / "math_ifd.npy")
    n = len(m)
    used = set(np.flatnonzero(g >= np.percentile(g, 25))) & set(range(n))
    own = set(np.flatnonzero(m >= np.percentile(m, 25)))
    both = len(used & own)
    print(f"M6  gsm8k_ifd {g.shape}, math_ifd {m.shape}: kept {len(used)} (GSM8K scores) vs {len(own)} (MATH "
          f"scores), both {both}; {len(used) * len(own) / n:.0f} expected if independent; corr "
          f"{np.corrcoef(g[:n], m)[0, 1]:.3f}   [doc: 1,946 of 2,628; 1,964; -0.01]")


def m7_unparseable(ckpts: Path) -> None:
    """M7: the samples marked 2 (no parseable answer) over every *answer_types*.npy file of each dataset's runs,
    whichever k and split, as a count and a share."""
    ref = {"gsm8k": "doc: 0 of 12,680,385", "math": "doc: 6.0 %"}
    for task in NOTEBOOK_P:
        two = total = 0
        for f in sorted(ckpts.glob(f"{task}_*/checkpoint-*/*answer_types*.npy")):
            a = np.load(f)
            two += int((a == 2).sum())
            total += a.size
        print(f"M7  {task}: {two:,} of {total:,} samples unparseable = {100 * two / total:.2f} %   [{ref[task]}]")


def m8_tokens(runs: dict[str, dict]) -> None:
    """M8: target token counts (train_num_tokens.npy at a run's first checkpoint): the weight token weighting gives
    an example relative to equal weighting (n / mean n), 5th-95th percentile and max; and the targets longer than
    the authors' 1,024-token training cut (the Truncation row)."""
    ref = {"gsm8k": "doc: 0.47-1.83; none over 1,024, longest 364",
           "math": "doc: 0.22-2.76, max 11.0; 58 over 1,024"}
    for name in ("gsm8k_orig_3epochs_full_lr2e-05_bs128", "math_orig_6epochs_full_lr5e-05_bs24"):
        t = np.load(checkpoints(runs[name]["folder"])[0][1] / "train_num_tokens.npy").astype(float)
        w = t / t.mean()
        print(f"M8  {name}: {len(t):,} targets, mean {t.mean():.0f} tokens; weight 5th-95th pct "
              f"{np.percentile(w, 5):.2f}-{np.percentile(w, 95):.2f}, max {w.max():.2f}; "
              f"{int((t > 1024).sum())} over 1,024 tokens, longest {t.max():.0f}   [{ref[runs[name]['task']]}]")


def m10_perfect(runs: dict[str, dict]) -> None:
    """M10: the share of examples 0-999 whose final PreMemAcc is 1.0 (at the notebooks' p): the examples Fig. 7's
    MATH panel (5 bins, frac 0...0.8, v < frac + 0.2) drops, and GSM8K's sixth bin."""
    ref = {"math_orig_6epochs_full_lr5e-05_bs24": "doc: 1.2 %", "math_orig_6epochs_full_lr5e-07_bs24": "doc: 3.0 %",
           "math_orig_6epochs_full_lr0.0002_bs24": "doc: 0.1 %", FIG7_RUN: "doc: 28.2 %"}
    for name, doc in ref.items():
        r = runs[name]
        final = premem_acc(r["acc"], r["nll"], NOTEBOOK_P[r["task"]])[-1][:FIG7_EXAMPLES]
        print(f"M10 {name}: {100 * (final == 1.0).mean():.1f} % of examples 0-{FIG7_EXAMPLES - 1} at final "
              f"PreMemAcc 1.0   [{doc}]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2].split("\n\nTheir arrays")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generalization", required=True, metavar="GEN_DIR",
                    help="a folder holding reasoning_generalization's ckpts/")
    ap.add_argument("--data", required=True, metavar="DATA_DIR",
                    help="a folder holding reasoning_data's gsm8k_ifd.npy and math_ifd.npy")
    args = ap.parse_args(argv)
    ckpts = Path(args.generalization) / "ckpts"
    if not ckpts.is_dir():
        ap.error(f"{args.generalization}: no ckpts/ folder here")
    start = time.perf_counter()
    runs = load_runs(ckpts)
    m1_exact(runs)
    m2_r2(runs)
    m3_k(runs)
    m4_calibration(runs)
    m5_threshold(runs)
    m6_ifd(Path(args.data))
    m7_unparseable(ckpts)
    m8_tokens(runs)
    m10_perfect(runs)
    print(f"({len(runs)} runs, {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
