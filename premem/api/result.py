"""What an analysis returns: `Analysis` (the numbers summary.json holds, as attributes and DataFrames, the report,
and an inline view for Jupyter) and `Figure` (one SVG figure of the report).

Nothing is drawn here: the figures are those premem.report builds for the report's pages
(premem.report.pages.build_report), so a notebook shows exactly what the report shows.
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup

from premem.analysis.results_table import Results

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Analysis", "Figure"]

MAIN_FIGURE = "premem_vs_test"


class Figure:
    """One figure of the report as SVG text (`svg`). Jupyter shows it inline (`_repr_html_`: the chart and, for
    per-run figures, a legend of the runs' colours); `save(path)` writes the .svg file."""

    def __init__(self, name: str, title: str, svg: str, legend: str = ""):
        self.name, self.title, self.svg, self.legend = name, title, str(svg), str(legend)

    def _repr_html_(self) -> str:
        return f'<div class="premem-figure">{self.svg}{self.legend}</div>'

    def save(self, path: str | os.PathLike) -> Path:
        """Write the chart (without the legend) as an SVG file at `path`; return the path."""
        from premem.atomic import replacing

        path = Path(path)
        with replacing(path) as tmp:  # no half-written file if interrupted
            Path(tmp).write_text(self.svg, encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"<premem Figure {self.name!r}: {self.title}>"


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


def _with_ci(out: dict, d: dict, key: str, name: str | None = None) -> None:
    """`out[name]` = d[key] and, when d has its bootstrap interval, `name_low`, `name_high`."""
    name = name or key
    out[name] = d.get(key)
    ci = d.get(f"{key}_ci")
    if ci:
        out[f"{name}_low"], out[f"{name}_high"] = ci[0], ci[1]


class Analysis:
    """The result of premem's analysis. `summary` is exactly what the report's summary.json holds (accuracies
    are fractions in [0, 1]; p is on the log(mean target NLL per token) scale; R^2 is unitless, 1 at best);
    `dynamics` the per-example pictures; `results` the validated table (None for a study read from a store).

    Shown inline in Jupyter (the headline numbers and PreMemAcc against test accuracy); `figure(name)` gives
    any figure of the report, `write_report(out)` the whole HTML folder."""

    def __init__(self, summary: dict, dynamics: dict, results: Results | None = None):
        self.summary, self.dynamics, self.results = summary, dynamics, results

    # ------------------------------------------------------------------ the headline numbers
    @property
    def p(self) -> float | None:
        """The calibrated (or fixed) p, log of the mean target NLL per token; None when each (model, dataset)
        block has its own (see `blocks()`) or when p could not be calibrated."""
        return self.summary["premem"]["p"]

    @property
    def r2(self) -> float | None:
        """R^2 of PreMemAcc against test accuracy about y = x, over every checkpoint (unitless; None if undefined)."""
        return self.summary["premem"]["r2"]

    @property
    def r2_line(self) -> float | None:
        """R^2 of a line fitted to PreMemAcc against test accuracy (unitless; None if undefined)."""
        return self.summary["premem"]["r2_line"]

    @property
    def train_r2(self) -> float | None:
        """R^2 of plain train accuracy against test accuracy about y = x (unitless), the baseline."""
        return self.summary["train_acc"]["r2"]

    @property
    def intervals(self) -> dict | None:
        """How the bootstrap intervals were made ({'level', 'method', 'resamples', 'seed', 'resampled'}), or
        None when there are none (resamples=0)."""
        return self.summary.get("intervals")

    def ci(self, key: str) -> list[float] | None:
        """The bootstrap interval [low, high] of a headline number: 'p', 'r2', 'r2_line' (PreMemAcc) or
        'train_r2', 'train_r2_line' (train accuracy); None without intervals or where undefined."""
        if key.startswith("train_"):
            return self.summary["train_acc"].get(key.removeprefix("train_") + "_ci")
        return self.summary["premem"].get(f"{key}_ci")

    def headline(self) -> dict:
        """The headline numbers as `premem analyze` prints them: p, r2, r2_line, train_r2, train_r2_line, and
        each one's interval (`<key>_ci`, [low, high]) where the analysis made intervals."""
        out = {}
        for key in ("p", "r2", "r2_line", "train_r2", "train_r2_line"):
            src = self.summary["train_acc"] if key.startswith("train_") else self.summary["premem"]
            k = key.removeprefix("train_")
            out[key] = src.get(k)
            if self.intervals:
                out[f"{key}_ci"] = src.get(f"{k}_ci")
        return out

    # ------------------------------------------------------------------ tables
    def checkpoints(self) -> pd.DataFrame:
        """One row per run and checkpoint: run, checkpoint (the table's checkpoint or epoch), p (the run's
        block's), premem_acc, train_acc, test_acc, memorized_frac (fractions in [0, 1]), train_nll (mean target
        NLL per token, nats), train_loss, and `<measure>_low`/`_high` bootstrap bounds where the summary has them."""
        rows = []
        for run in self.summary["runs"]:
            for c in run["checkpoints"]:
                row = {"run": run["name"], "checkpoint": c["epoch"], "p": run.get("p")}
                for k in ("premem_acc", "train_acc", "test_acc", "memorized_frac", "train_nll", "train_loss"):
                    _with_ci(row, c, k)
                rows.append(row)
        return _frame(rows)

    def runs(self) -> pd.DataFrame:
        """One row per run: run, its settings, status, p (its block's), checkpoints (count) and, at its last
        checkpoint, premem_acc, train_acc and test_acc (fractions in [0, 1])."""
        rows = []
        for run in self.summary["runs"]:
            last = run["checkpoints"][-1] if run["checkpoints"] else {}
            row = {"run": run["name"], **(run.get("settings") or {}), "status": run.get("status"), "p": run.get("p"),
                   "checkpoints": len(run["checkpoints"])}
            for k in ("premem_acc", "train_acc", "test_acc"):
                _with_ci(row, last, k)
            rows.append(row)
        return _frame(rows)

    def blocks(self) -> pd.DataFrame:
        """One row per (model, dataset) block: model, dataset, p, r2, r2_line (PreMemAcc), train_r2,
        train_r2_line, checkpoints, runs (count), with bootstrap bounds (`_low`, `_high`) where made."""
        rows = []
        for b in self.summary["blocks"]:
            row = {"model": b["model"], "dataset": b["dataset"]}
            for k in ("p", "r2", "r2_line"):
                _with_ci(row, b, k)
            for k in ("r2", "r2_line"):
                _with_ci(row, b["train_acc"], k, f"train_{k}")
            row |= {"checkpoints": b["checkpoints"], "runs": len(b["runs"])}
            rows.append(row)
        return _frame(rows)

    def calibration(self) -> pd.DataFrame:
        """The calibration curve: for each p of the grid, R^2 about y = x ('r2') and of a fitted line
        ('r2_line') on the calibration runs, with `chosen` marking the p kept; per block (model, dataset
        columns) when each block was calibrated on its own."""
        rows = []
        curves = ([(None, self.summary["premem"])] if self.summary["premem"]["calibration"]
                  else [(b, b) for b in self.summary["blocks"]])
        for block, d in curves:
            for c in d["calibration"]:
                rows.append(({"model": block["model"], "dataset": block["dataset"]} if block else {})
                            | {"p": c.get("p"), "r2": c.get("r2"), "r2_line": c.get("r2_line"),
                               "chosen": d.get("p") is not None and c.get("p") == d.get("p")})
        return _frame(rows)

    # ------------------------------------------------------------------ figures and the report
    @cached_property
    def _index(self) -> dict:
        """The report's front page as premem.report builds it (its figures, its headline cells)."""
        from premem.report.pages import build_report

        return build_report(self.summary, self.dynamics).pages[0].ctx

    def figures(self) -> dict[str, Figure]:
        """Every figure of the report's front page by name: 'premem_vs_test' and 'train_vs_test' (each
        checkpoint's PreMemAcc or train accuracy against its test accuracy, with y = x), 'calibration' (R^2
        against p) and, for several (model, dataset) blocks, 'block<k>_premem_vs_test' and
        'block<k>_calibration'."""
        from premem.report.svg import legend

        ctx = self._index
        runs = legend([(r["name"], r["color"]) for r in ctx["legend_runs"]], columns=4) if ctx["legend_runs"] else ""
        out = {}
        for panel, name in zip(ctx["panels"], ("train_vs_test", MAIN_FIGURE)):
            out[name] = Figure(name, panel["title"], panel["svg"], runs)
        if ctx["calibration"]:
            out["calibration"] = Figure("calibration", "Calibration: R² against p", ctx["calibration"]["svg"])
        for k, fig in enumerate((ctx["blocks"] or {}).get("figures", []), start=1):
            out[f"block{k}_premem_vs_test"] = Figure(f"block{k}_premem_vs_test", f"{fig['name']}: PreMemAcc vs test "
                                                     "accuracy", fig["svg"], runs)
            if fig["calibration"]:
                out[f"block{k}_calibration"] = Figure(f"block{k}_calibration", f"{fig['name']}: R² against p",
                                                      fig["calibration"]["svg"])
        return out

    def figure(self, name: str = MAIN_FIGURE) -> Figure:
        """One figure of `figures()` by name (default: PreMemAcc against test accuracy); KeyError naming the
        figures there are for an unknown name."""
        figs = self.figures()
        if name not in figs:
            raise KeyError(f"no figure {name!r}; there are: {', '.join(figs)}")
        return figs[name]

    def write_report(self, out: str | os.PathLike = "reports", kept: list[str] | None = None) -> Path:
        """Write the HTML report (pages, summary.json, data/*.csv) into the folder `out`, as `premem analyze
        --out` does; return index.html's path. The folder must be new, empty or a report premem wrote
        (premem.report.folder.ReportFolderError otherwise, before anything is written); `kept` collects the
        user's files a rewrite had to leave beside the folder."""
        from premem.report.folder import ReportFolderError, report_folder_problem
        from premem.report.html import write_report

        problem = report_folder_problem(out, may_climb=True)
        if problem:
            raise ReportFolderError(problem)
        return write_report(self.summary, self.dynamics, Path(out), kept=kept)

    def _repr_html_(self) -> str:
        ctx = self._index
        h = ctx["headline"]
        per_block = ctx["per_block"]
        cells = [("p", "per block" if per_block else h["p"]),
                 ("R² PreMemAcc vs test (about y = x)", h["r2_premem"]),
                 ("R² PreMemAcc vs test (fitted line)", h["r2_premem_line"]),
                 ("R² train accuracy vs test (about y = x)", h["r2_train"]),
                 ("R² train accuracy vs test (fitted line)", h["r2_train_line"])]
        rows = Markup("").join(Markup("<tr><th style='text-align:left'>{}</th><td>{}</td></tr>").format(k, v)
                       for k, v in cells)
        parts = [Markup("<div class='premem-analysis'><strong>premem analysis: {}</strong>").format(
                     self.summary["spec"].get("name") or ""),
                 Markup("<table>{}</table>").format(rows)]
        if ctx.get("intervals_note"):
            parts.append(Markup("<p><small>{}</small></p>").format(ctx["intervals_note"]))
        if ctx["blocks"]:
            brows = Markup("").join(Markup("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
                r["name"], r["p"], r["r2"], r["train_r2"]) for r in ctx["blocks"]["rows"])
            parts.append(Markup("<table><tr><th>block</th><th>p</th><th>R² PreMemAcc</th><th>R² train acc</th>"
                                "</tr>{}</table>").format(brows))
        figs = self.figures()
        if MAIN_FIGURE in figs:
            parts.append(Markup(figs[MAIN_FIGURE]._repr_html_()))
        for note in ctx["notes"]:
            parts.append(Markup("<p><small>Note: {}</small></p>").format(note))
        parts.append(Markup("</div>"))
        return str(Markup("").join(parts))

    def __repr__(self) -> str:
        h = self.headline()
        fmt = (lambda v: "n/a" if v is None else f"{v:.3f}")
        return (f"<premem Analysis: {len(self.summary['runs'])} runs, {self.summary['checkpoints']} checkpoints; "
                f"p = {fmt(h['p'])}, R^2 = {fmt(h['r2'])}, train accuracy R^2 = {fmt(h['train_r2'])}>")
