"""Bootstrap intervals for the headline figures (issue 15): percentile bootstrap over the examples.

What is random in a study is which train and which test examples were drawn. So each resample draws, per
(model, dataset) block, a multiset of the block's train examples and one of its test examples (multinomial
counts, one row of weights per resample), and uses the same weights at every checkpoint of every run of the
block: a run's curve stays a curve. A run trained on a subset (half or a quarter of the data) uses the weights
restricted to its own examples. Means become matrix products (resamples x examples) @ (examples x checkpoints).

Inside every resample p is calibrated again over the whole grid (PreMemAcc per (checkpoint, example) is computed
once per p, then averaged under every resample's weights at once), so p's own uncertainty is inside the R^2
interval. Row 0 of every resampled array holds the plain estimate (every weight 1), which leave-one-run-out uses.

Entry points: `bootstrap` (the resampled figures, a `Bootstrap`), `add_intervals` (their `_ci` keys and `loro`
into a summary built by premem.analysis.analyze), `percentile_ci`, `correlation_cis`, `mean_ci` and `resample_weights`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from premem.analysis.results import RunData, block_of
from premem.metrics.premem import loglog_perplexity

METHOD = "percentile bootstrap"
MEASURES_NOTE = ("The classic measures' own values (gradient variance, distance from initialization, ATC's "
                 "predicted accuracy) are not resampled; train and test accuracy, the gap and PreMemAcc are.")
MIN_DEFINED = 0.5  # an interval is given only when at least this share of the resamples defines the figure


@dataclass
class Bootstrap:
    """The resampled figures of one analysis. Arrays have one row per resample plus row 0, the plain estimate.

    `checkpoints[(run, epoch)]` = {'train', 'test', 'premem'} arrays (resamples + 1,) (premem NaN where p is not
    known); `blocks[i]` = {'p', 'r2', 'r2_line', 'train_r2', 'train_r2_line'} (resamples + 1,) for the i-th block
    in order of first run, and 'loro' (dict or None); `premem` the same for the whole study.
    """

    level: float
    resamples: int
    seed: int
    resampled: str
    checkpoints: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    blocks: list[dict] = field(default_factory=list)
    premem: dict = field(default_factory=dict)

    def meta(self) -> dict:
        """summary['intervals']."""
        return {"level": self.level, "resamples": self.resamples, "seed": self.seed, "method": METHOD,
                "resampled": self.resampled, "measures_note": MEASURES_NOTE}


def resample_weights(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """Multinomial count weights (resamples + 1, n) as float: row 0 all ones, each other row the number of times
    each of the n items is drawn in n draws with replacement."""
    w = np.ones((resamples + 1, n))
    if n and resamples:
        draws = rng.integers(0, n, size=(resamples, n))
        flat = (np.arange(resamples)[:, None] * n + draws).ravel()
        w[1:] = np.bincount(flat, minlength=resamples * n).reshape(resamples, n)
    return w


def percentile_ci(values: np.ndarray, level: float) -> list[float | None] | None:
    """[low, high] percentile interval of the resampled `values` (row 0, the estimate, left out), or None when
    fewer than MIN_DEFINED of the resamples give a finite value."""
    v = np.asarray(values, float)[1:]
    fin = v[np.isfinite(v)]
    if v.size == 0 or fin.size < MIN_DEFINED * v.size:
        return None
    lo, hi = np.percentile(fin, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def r2_identity_rows(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """R^2 of y by x itself along the last axis, over the entries where both are finite: 1 - SS_res / SS_tot;
    NaN with fewer than 2 entries or constant y."""
    ok = np.isfinite(y) & np.isfinite(x)
    n = ok.sum(-1)
    y0 = np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ybar = y0.sum(-1) / n
        ss_tot = np.where(ok, (y0 - ybar[..., None]) ** 2, 0.0).sum(-1)
        ss_res = np.where(ok, (y0 - np.where(ok, x, 0.0)) ** 2, 0.0).sum(-1)
        r2 = 1.0 - ss_res / ss_tot
    return np.where((n >= 2) & (ss_tot > 1e-24), r2, np.nan)


def r2_line_rows(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation of x and y along the last axis over the entries where both are finite;
    NaN where undefined (fewer than 2 entries, either side constant)."""
    ok = np.isfinite(y) & np.isfinite(x)
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        y0, x0 = np.where(ok, y, 0.0), np.where(ok, x, 0.0)
        yc = np.where(ok, y0 - (y0.sum(-1) / n)[..., None], 0.0)
        xc = np.where(ok, x0 - (x0.sum(-1) / n)[..., None], 0.0)
        sxx, syy, sxy = (xc * xc).sum(-1), (yc * yc).sum(-1), (xc * yc).sum(-1)
        r2 = sxy * sxy / (sxx * syy)
    return np.where((n >= 2) & (sxx > 1e-24) & (syy > 1e-24), r2, np.nan)


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (all entries finite); NaN with fewer than 3 entries or a constant side."""
    n = x.shape[-1]
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    sxx, syy = (xc * xc).sum(-1), (yc * yc).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(-1) / np.sqrt(sxx * syy)
    return np.where((n >= 3) & (sxx > 1e-24) & (syy > 1e-24), r, np.nan)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair along the last axis (as scipy.stats.kendalltau: ties counted), from the
    signs of all pairwise differences, rows in chunks; NaN with fewer than 3 entries or a constant side."""
    rows, n = x.shape
    out = np.full(rows, np.nan)
    if n < 3:
        return out
    step = max(1, 8_000_000 // (n * n))
    for a in range(0, rows, step):
        xs, ys = x[a:a + step], y[a:a + step]
        sx = (xs[:, :, None] > xs[:, None, :]).astype(np.int8) - (xs[:, :, None] < xs[:, None, :])
        sy = (ys[:, :, None] > ys[:, None, :]).astype(np.int8) - (ys[:, :, None] < ys[:, None, :])
        nx = np.count_nonzero(sx, axis=(1, 2)).astype(float)
        ny = np.count_nonzero(sy, axis=(1, 2)).astype(float)
        num = (sx * sy).sum((1, 2), dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a:a + step] = np.where((nx > 0) & (ny > 0), num / np.sqrt(nx * ny), np.nan)
    return out


def correlation_cis(x: np.ndarray, y: np.ndarray, level: float) -> tuple[list | None, list | None]:
    """(Pearson r interval, Kendall tau interval) of resampled points x, y: (resamples + 1, points) each, columns
    with any non-finite entry left out."""
    keep = np.isfinite(x).all(0) & np.isfinite(y).all(0)
    x, y = x[:, keep], y[:, keep]
    return percentile_ci(pearson_rows(x, y), level), percentile_ci(kendall_rows(x, y), level)


def mean_ci(values: Sequence[float], rng: np.random.Generator, resamples: int, level: float) -> list | None:
    """Percentile interval of the mean of `values` under `resamples` resamples of them (None with no values)."""
    v = np.asarray(values, float)
    if v.size == 0:
        return None
    w = resample_weights(rng, v.size, resamples)
    return percentile_ci(w @ v / v.size, level)


def _union_index(id_lists: list[list[str]]) -> tuple[int, list[np.ndarray]]:
    """(number of distinct ids, per list the index of each of its ids among them)."""
    if not id_lists:
        return 0, []
    all_ids = np.concatenate([np.asarray(ids, dtype=str) for ids in id_lists])
    uniq, inv = np.unique(all_ids, return_inverse=True)
    cuts = np.cumsum([len(ids) for ids in id_lists])[:-1]
    return len(uniq), np.split(inv, cuts)


def _weighted_means(w: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted means (resamples + 1, rows) of values (rows, examples) with NaN entries left out of both sums."""
    known = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ np.where(known, values, 0.0).T) / (w @ known.T.astype(float))


def _premem_grid(acc: np.ndarray, nll: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """Per-example PreMemAcc for every p: (p, checkpoints, examples)."""
    ll = loglog_perplexity(nll)
    masked = acc[None] * (ll[None] >= ps[:, None, None])
    return np.minimum(np.maximum.accumulate(masked, axis=1), acc[None])


def _best(test: np.ndarray, pm: np.ndarray, cols: np.ndarray, fit: str) -> np.ndarray:
    """Index of the best p per row (-1 where no p fits) calibrating on the columns `cols` (bool (K,)):
    test (R, K), pm (R, P, K)."""
    y = np.where(cols, test, np.nan)[:, None, :]
    score = r2_identity_rows(y, pm) if fit == "identity" else r2_line_rows(y, pm)
    finite = np.isfinite(score)
    best = np.argmax(np.where(finite, score, -np.inf), axis=1)
    return np.where(finite.any(1), best, -1)


@dataclass
class _Columns:
    """Every checkpoint of the analysed runs as one column: the resampled means and which block/run it is."""

    test: np.ndarray  # (R, K)
    train: np.ndarray  # (R, K)
    pm: np.ndarray  # (R, P, K)
    block: np.ndarray  # (K,) block index
    run: np.ndarray  # (K,) run index
    calib: np.ndarray  # (K,) bool


def _fit(c: _Columns, keep: np.ndarray, nblocks: int, pooled: bool, fit: str, fixed: bool
         ) -> tuple[np.ndarray, np.ndarray]:
    """(chosen p index per block and row (nblocks, R), -1 none; PreMemAcc at it (R, K)) over the columns `keep`."""
    rows = c.test.shape[0]
    if fixed:
        best = np.zeros((nblocks, rows), dtype=int)
    elif pooled:
        best = np.repeat(_best(c.test, c.pm, c.calib & keep, fit)[None], nblocks, axis=0)
    else:
        best = np.stack([_best(c.test, c.pm, c.calib & keep & (c.block == b), fit) for b in range(nblocks)])
    pm_at = np.full(c.test.shape, np.nan)
    for b in range(nblocks):
        cols = np.flatnonzero(c.block == b)
        idx = np.maximum(best[b], 0)
        vals = np.take_along_axis(c.pm[:, :, cols], idx[:, None, None], axis=1)[:, 0]
        pm_at[:, cols] = np.where((best[b] >= 0)[:, None], vals, np.nan)
    return best, pm_at


def _loro(c: _Columns, scope: np.ndarray, names: list[str], nblocks: int, pooled: bool, fit: str,
          fixed: bool) -> dict | None:
    """Leave-one-run-out R^2 (about y = x) of the columns `scope`, each run of the scope left out in turn and p
    calibrated again without it (as the analysis calibrates: per block or pooled over every block):
    {'min_r2', 'run', 'r2_by_run'}; None with fewer than 3 runs in scope."""
    runs_in = [int(r) for r in np.unique(c.run[scope])]
    if len(runs_in) < 3:
        return None
    plain = _Columns(c.test[:1], c.train[:1], c.pm[:1], c.block, c.run, c.calib)
    by_run: dict[str, float | None] = {}
    for r in runs_in:
        keep = scope & (c.run != r)
        _, pm_at = _fit(plain, c.run != r, nblocks, pooled, fit, fixed)
        v = r2_identity_rows(np.where(keep, plain.test, np.nan), pm_at)[0]
        by_run[names[r]] = float(v) if np.isfinite(v) else None
    known = {k: v for k, v in by_run.items() if v is not None}
    if not known:
        return {"min_r2": None, "run": None, "r2_by_run": by_run}
    worst = min(known, key=known.get)
    return {"min_r2": known[worst], "run": worst, "r2_by_run": by_run}


def bootstrap(runs: list[RunData], ps: Sequence[float], calibration_runs: Sequence[str], fit: str = "identity",
              fixed_p: float | None = None, calibrate_mode: str = "per_block", resamples: int = 1000,
              level: float = 0.95, seed: int = 0) -> Bootstrap:
    """Resample each block's train and test examples `resamples` times (seeded: the same seed gives the same
    intervals) and recompute, in each resample, every block's calibrated p, R^2 of PreMemAcc and of train
    accuracy against test accuracy, and every checkpoint's mean train accuracy, test accuracy and PreMemAcc,
    exactly as premem.analysis.analyze.analyze does once. Returns a Bootstrap (row 0 of each array: the plain
    estimate)."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple, list[RunData]] = {}
    for r in runs:
        groups.setdefault(block_of(r.settings), []).append(r)
    blocks = list(groups.values())
    pooled = calibrate_mode == "pooled" or len(blocks) <= 1
    fixed = fixed_p is not None
    ps_arr = np.asarray([fixed_p] if fixed else list(ps), dtype=float)
    chosen = set(calibration_runs)
    with_test = all(r.test_example_acc is not None for r in runs)
    resampled = ("train examples and test examples of each (model, dataset) block, the same multiset at every "
                 "checkpoint of every run of the block" if with_test else
                 "train examples of each (model, dataset) block only (the results have no per-example test "
                 "accuracy, so test accuracy is not resampled)")
    test_cols, train_cols, pm_cols, block_ids, run_ids, calib, names, keys = [], [], [], [], [], [], [], []
    for b, rs in enumerate(blocks):
        n_tr, idx_tr = _union_index([r.example_ids for r in rs])
        w_tr = resample_weights(rng, n_tr, resamples)
        if with_test:
            n_te, idx_te = _union_index([r.test_example_ids for r in rs])
            w_te = resample_weights(rng, n_te, resamples)
        for k, r in enumerate(rs):
            w = w_tr[:, idx_tr[k]]
            acc0 = np.nan_to_num(r.acc)
            train_cols.append(_weighted_means(w, r.acc))
            grid = _premem_grid(acc0, r.nll, ps_arr)  # (P, C, n)
            P, C, n = grid.shape
            with np.errstate(invalid="ignore", divide="ignore"):
                pm = (w @ grid.reshape(P * C, n).T) / w.sum(1, keepdims=True)
            pm_cols.append(pm.reshape(-1, P, C))
            if with_test:
                test_cols.append(_weighted_means(w_te[:, idx_te[k]], r.test_example_acc))
            else:
                test_cols.append(np.repeat(np.asarray(r.test_acc, float)[None], resamples + 1, axis=0))
            run_index = len(names)
            names.append(r.name)
            block_ids += [b] * C
            run_ids += [run_index] * C
            calib += [r.name in chosen] * C
            keys += [(r.name, int(e)) for e in r.epochs]
    boot = Bootstrap(level=level, resamples=resamples, seed=seed, resampled=resampled)
    if not names:
        return boot
    c = _Columns(np.concatenate(test_cols, 1), np.concatenate(train_cols, 1), np.concatenate(pm_cols, 2),
                 np.array(block_ids), np.array(run_ids), np.array(calib, dtype=bool))
    everything = np.ones(len(keys), dtype=bool)
    best, pm_at = _fit(c, everything, len(blocks), pooled, fit, fixed)
    p_rows = np.where(best >= 0, ps_arr[np.maximum(best, 0)], np.nan)  # (nblocks, R)
    for j, key in enumerate(keys):
        boot.checkpoints[key] = {"train": c.train[:, j], "test": c.test[:, j], "premem": pm_at[:, j]}
    for b in range(len(blocks)):
        cols = c.block == b
        y = np.where(cols, c.test, np.nan)
        boot.blocks.append({"p": p_rows[b], "r2": r2_identity_rows(y, pm_at), "r2_line": r2_line_rows(y, pm_at),
                            "train_r2": r2_identity_rows(y, c.train), "train_r2_line": r2_line_rows(y, c.train),
                            "loro": _loro(c, cols, names, len(blocks), pooled, fit, fixed)})
    boot.premem = {"p": p_rows[0] if pooled or fixed else np.full(c.test.shape[0], np.nan),
                   "r2": r2_identity_rows(c.test, pm_at), "r2_line": r2_line_rows(c.test, pm_at),
                   "train_r2": r2_identity_rows(c.test, c.train), "train_r2_line": r2_line_rows(c.test, c.train),
                   "loro": _loro(c, everything, names, len(blocks), pooled, fit, fixed)}
    return boot


def add_intervals(summary: dict, boot: Bootstrap) -> None:
    """Put the intervals of `boot` into a summary that premem.analysis.analyze.build_summary made: summary['intervals'];
    'p_ci', 'r2_ci', 'r2_line_ci' and 'loro' in summary['premem'] and each block; 'r2_ci', 'r2_line_ci' in their
    'train_acc'; 'train_acc_ci', 'test_acc_ci', 'premem_acc_ci' on every checkpoint of summary['runs']."""
    lv = boot.level
    summary["intervals"] = boot.meta()

    def fill(target: dict, train: dict, figures: dict) -> None:
        target["p_ci"] = percentile_ci(figures["p"], lv) if target.get("p") is not None else None
        target["r2_ci"] = percentile_ci(figures["r2"], lv)
        target["r2_line_ci"] = percentile_ci(figures["r2_line"], lv)
        train["r2_ci"] = percentile_ci(figures["train_r2"], lv)
        train["r2_line_ci"] = percentile_ci(figures["train_r2_line"], lv)
        if figures["loro"] is not None:
            target["loro"] = figures["loro"]

    if boot.premem:
        fill(summary["premem"], summary["train_acc"], boot.premem)
    for b, figures in zip(summary["blocks"], boot.blocks):
        fill(b, b["train_acc"], figures)
    for entry in summary["runs"]:
        for cp in entry.get("checkpoints", []):
            arrays = boot.checkpoints.get((entry["name"], cp["epoch"]))
            if arrays is None:
                continue
            cp["train_acc_ci"] = percentile_ci(arrays["train"], lv)
            cp["test_acc_ci"] = percentile_ci(arrays["test"], lv)
            cp["premem_acc_ci"] = percentile_ci(arrays["premem"], lv) if cp.get("premem_acc") is not None else None
