"""Running premem's analysis on results: the functions behind `premem analyze` and the notebook API.

No statistic is computed here: calibration, R^2, PreMemAcc and the bootstrap are premem.analysis.analyze',
premem.analysis.intervals' and premem.metrics.premem's; this module only feeds them and wraps what they return.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from premem.analysis.results_table import Results
from premem.api.load import read
from premem.api.options import DEFAULT_LEVEL, DEFAULT_RESAMPLES, OptionError, Options, options
from premem.api.result import Analysis
from premem.wording import counted

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["analyze", "analyze_results", "analyze_study", "describe", "premem_acc"]


def describe(results: Results, opts: Options, command: str) -> str:
    """The text a report shows as its study's source: `command` (how the analysis was asked for), the table's
    size and the p grid and calibration runs (raises TableError for an unknown --calibrate-on run)."""
    calibration = results.select(list(opts.calibrate_on) if opts.calibrate_on else None)
    n_cps = sum(len(r.epochs) for r in results.runs)
    return (f"{command}\n\n{counted(results.n_rows, 'row')}: {counted(len(results.runs), 'run')}, "
            f"{counted(n_cps, 'checkpoint')}.\n"
            f"p grid: {opts.grid_text} ({len(opts.ps)} values). Calibration runs: "
            f"{'all' if len(calibration) == len(results.runs) else ', '.join(calibration)}.\n")


def analyze_results(results: Results, opts: Options, study: dict | None = None) -> Analysis:
    """The analysis of validated `results` (premem.api.read) under `opts` (premem.api.options): p calibrated on
    the calibration runs (per (model, dataset) block unless pooled) or fixed, R^2 of PreMemAcc and of train
    accuracy against test accuracy (about y = x and of a fitted line), every run's PreMemAcc per checkpoint,
    and, when opts.resamples > 0, their bootstrap intervals. `study`: {'name', 'path', 'text'} the report shows
    as its source. Returns an Analysis whose .summary is what summary.json holds. Raises TableError for an
    unknown calibration run."""
    from premem.analysis.analyze import build_summary
    from premem.analysis.intervals import bootstrap

    calibration = results.select(list(opts.calibrate_on) if opts.calibrate_on else None)
    entries = [{"id": r.name, "name": r.name, "status": "done", "error": None, "settings": r.settings}
               for r in results.runs]
    boot = (bootstrap(results.runs, opts.ps, calibration, opts.fit, opts.p, opts.calibrate, opts.resamples,
                      opts.ci_level, opts.ci_seed) if opts.resamples else None)
    summary, dynamics = build_summary(results.runs, entries, ps=opts.ps, calibration_runs=calibration, fit=opts.fit,
                                      fixed_p=opts.p, study=study, notes=results.notes,
                                      calibrate_mode=opts.calibrate, boot=boot)
    return Analysis(summary, dynamics, results)


def _call_text(name: str, opts: Options) -> str:
    """How an API call reads in the report (the CLI shows its command line instead)."""
    args = [repr(name), f"p_grid={opts.grid_text!r}"]
    args += [f"p={opts.p:g}"] if opts.p is not None else []
    args += [f"fit={opts.fit!r}"] if opts.fit != "identity" else []
    args += ["pooled=True"] if opts.calibrate == "pooled" else []
    args += [f"calibrate_on={list(opts.calibrate_on)!r}"] if opts.calibrate_on else []
    args += [f"ci_level={opts.ci_level:g}"] if opts.ci_level != DEFAULT_LEVEL else []
    args += [f"resamples={opts.resamples}"] if opts.resamples != DEFAULT_RESAMPLES else []
    args += [f"ci_seed={opts.ci_seed}"] if opts.ci_seed else []
    return f"premem.api.analyze({', '.join(args)})"


def analyze(data: Any, *, runs: str | os.PathLike | None = None, p: float | None = None,
            p_grid: str | Sequence[float] | None = None, fit: str = "identity", pooled: bool = False,
            calibrate_on: Sequence[str] | None = None, ci_level: float = DEFAULT_LEVEL,
            resamples: int = DEFAULT_RESAMPLES, ci_seed: int = 0, name: str | None = None) -> Analysis:
    """`premem analyze` as a function: `data` is a results table's path, a pandas DataFrame or a pyarrow Table
    in the long-table format (load_table, load_study); the settings are the command's options (see
    premem.api.options: p_grid 'START:STOP:STEP' on the log(mean NLL) scale, default -3:-0.5:0.05; p fixed
    instead of calibrated; fit 'identity' or 'line'; pooled; calibrate_on; bootstrap ci_level, resamples (0: no
    intervals), ci_seed). Returns an Analysis (p, R^2, intervals, per-checkpoint tables, figures, the report),
    with the numbers `premem analyze` prints and writes to summary.json for the same table and options.
    Raises ValueError (OptionError) for a setting out of range, TableError for an invalid table."""
    opts = options(p=p, p_grid=p_grid, fit=fit, pooled=pooled, calibrate_on=calibrate_on, ci_level=ci_level,
                   resamples=resamples, ci_seed=ci_seed)
    results = read(data, runs)
    label = name or (Path(data).name if isinstance(data, (str, os.PathLike)) else "DataFrame")
    path = str(data) if isinstance(data, (str, os.PathLike)) else ""
    study = {"name": label, "path": path, "text": describe(results, opts, _call_text(label, opts))}
    return analyze_results(results, opts, study)


def analyze_study(spec: str | os.PathLike, store: str | os.PathLike | None = None) -> Analysis:
    """What `premem report` shows for the study `spec` (a spec file's path), computed from its store with the
    spec's own premem settings (p grid, calibration runs, fit, intervals), and the classic measures,
    robustness and curation where the spec has them. `store`: the store folder when it is not the spec's
    `store` relative to the working directory. Returns an Analysis (its .summary is the report's
    summary.json). Raises FileNotFoundError when the store holds no results. Read only."""
    from premem.analysis.analyze import analyze_plan
    from premem.api.load import open_study

    _, plan, st = open_study(spec, store)
    summary, dynamics = analyze_plan(plan, st, str(spec))
    return Analysis(summary, dynamics)


def premem_acc(data: Any, p: float, *, per: str = "checkpoint", runs: str | os.PathLike | None = None
               ) -> pd.DataFrame:
    """PreMemAcc at the threshold `p` (log of the mean target NLL per token; an example counts as memorized
    once log(log(perplexity)) < p) for `data` (as for `analyze`), as a DataFrame.

    per='checkpoint' (default): one row per run and checkpoint with premem_acc, train_acc, test_acc,
    memorized_frac (fractions in [0, 1]), train_nll (mean target NLL per token, nats); per='example': one row
    per run, checkpoint and train example with that example's acc (fraction of its samples correct), nll,
    memorized and premem_acc. Computed by premem.analysis.analyze / premem.metrics.premem, as the report does."""
    if per not in ("checkpoint", "example"):
        raise ValueError(f"per must be 'checkpoint' or 'example', got {per!r}")
    if not math.isfinite(p):
        raise OptionError("p", f" must be a finite number, got {p}")
    results = read(data, runs)
    if per == "checkpoint":
        opts = options(p=p, p_grid=(p, p, 1.0), resamples=0)  # a fixed p: nothing to calibrate, no bootstrap
        return analyze_results(results, opts).checkpoints()
    return _per_example(results, p)


def _per_example(results: Results, p: float) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    from premem.metrics.premem import loglog_perplexity
    from premem.metrics.premem import premem_acc as premem_acc_of

    frames = []
    for r in results.runs:
        # accuracy not measured (NaN) counts 0, as premem.analysis.analyze counts it
        pm = premem_acc_of(np.nan_to_num(r.acc), r.nll, p)
        n_cp, n_ex = r.acc.shape
        frames.append(pd.DataFrame({
            "run": r.name, "checkpoint": np.repeat(r.epochs, n_ex), "example_id": np.tile(r.example_ids, n_cp),
            "acc": r.acc.ravel(), "nll": r.nll.ravel(), "memorized": (loglog_perplexity(r.nll) < p).ravel(),
            "premem_acc": pm.ravel()}))
    return pd.concat(frames, ignore_index=True)
