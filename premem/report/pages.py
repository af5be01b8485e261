"""The report's pages as data: one template context per page and the CSV of every figure.

:func:`build_report` turns the analysis' ``summary`` and ``dynamics`` dicts into a :class:`Report` (pages and
CSV files); :mod:`premem.report.html` renders and writes it.  Pages:

* ``index.html`` -- the headline, PreMemAcc and train accuracy against test accuracy, calibration of p,
  the perplexity gap, the runs table and the spec;
* ``dynamics.html`` -- per-example dynamics, one heatmap per run;
* ``measures.html`` -- the classic generalization measures against the generalization gap and test
  accuracy (the paper's Fig. 5), from ``summary["baselines"]``;
* ``robustness.html`` -- per-example accuracy under perturbed prompts by PreMemAcc bin (the paper's
  Fig. 7), from ``summary["robustness"]``;
* ``curation.html`` -- the data-curation study (the paper's Fig. 8): test accuracy against training-set size
  per strategy, sample efficiency against iid and each round's selection, from ``summary["curation"]``
  (:func:`premem.analysis.curation.curation_summary`); written, and in the navigation bar, only when the
  summary has that section;
* ``runs/<slug>.html`` -- one page per run: settings, loss curve, checkpoints, dynamics, sample outputs.

Every section of the summary is optional: a page whose data is absent is still written (so no link ever
breaks) and says what would compute it; its entry in the navigation bar is muted.  The curation page is the
exception: a study without a curation section has no such page and no entry for it.

Intervals (issue 15): when the summary has bootstrap intervals (``summary["intervals"]`` and a ``<key>_ci``
``[low, high]`` beside a number), each number is printed with its interval ("0.853 [0.781, 0.902]"), what they
are is said once per page, scatter points get error bars, curves shaded bands, violins the mean with its
interval, and the CSVs ``<key>_low``/``<key>_high`` columns; the front page adds the leave-one-run-out fits
(``loro``). A summary without them renders as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from markupsafe import Markup

from . import svg
from .common import (
    DASH,
    as_dict,
    as_list,
    ci_bounds,
    ci_cells,
    csv_text,
    format_ci,
    format_general,
    format_lr,
    format_num,
    format_p,
    format_sig,
    intervals_note,
    num,
    quantiles,
    short,
    slug,
    with_ci,
)
from .dynamics import CATEGORIES, MAX_DYNAMICS_ROWS, prepare_dynamics

#: the baselines in the order the paper shows them (others, if any, follow in the summary's order)
BASELINE_ORDER = ("premem", "gradient_variance", "weight_distance", "atc")
#: a measure that predicts an accuracy is plotted against the gap as train accuracy minus that accuracy, and
#: against test accuracy as the accuracy itself (what its correlation with test accuracy is computed on);
#: a baseline's own "test_key" / "test_x_label" win over these
TEST_KEYS = {"premem_gap": ("premem_acc", "PreMemAcc"), "atc_gap": ("atc_acc", "ATC-predicted accuracy")}
#: a baseline's correlations, each with its interval as ``<key>_ci`` when the summary has intervals
CORRELATION_KEYS = ("pearson_gap", "kendall_gap", "pearson_test", "kendall_test")
DEFAULT_BINS = ("0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0")
#: colours of the prompts on the robustness page (a dimension of its own, not runs)
PROMPT_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2", "#72b7b2", "#9d755d", "#eeca3b")
MEMORIZED_COLOR = CATEGORIES[3][1]
#: a dynamics cell without a value (an example not sampled at that checkpoint: evaluation.skip_settled)
NOT_MEASURED = ("not measured", "#ffffff")

MEASURES_MISSING = ("Not computed for this study. `premem apply` computes the classic generalization measures "
                    "(gradient variance, distance from initialization, ATC) when the spec has a `metrics:` "
                    "section; add one and apply again. `premem analyze` (evaluations made elsewhere) does not "
                    "compute them.")
NO_RUNS_MISSING = "This study has no grid runs, and {what} are measured on the grid runs' checkpoints."
ROBUSTNESS_MISSING = ("Not computed for this study. `premem apply` evaluates perturbed prompts when the spec has a "
                      "`perturbations:` section; add one and apply again. `premem analyze` (evaluations made "
                      "elsewhere) does not compute them.")

#: the curation strategies in the order the spec lists them by default; each keeps its colour across studies
STRATEGY_ORDER = ("premem", "iid", "ifd", "heuristic")
#: statuses of a curation model other than "done" (the chart leaves such points out)
CURATION_STATUSES = ("done", "failed", "incomplete", "diverged")

#: checkpoint columns of a run page: key, header, formatter
CHECKPOINT_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("train_acc", "Train acc", format_num),
    ("test_acc", "Test acc", format_num),
    ("premem_acc", "PreMemAcc", format_num),
    ("gap", "Gap (train − test)", format_num),
    ("premem_gap", "Train − PreMemAcc", format_num),
    ("memorized_frac", "Memorized (fraction)", format_num),
    ("train_nll", "Train NLL", format_num),
    ("train_loss", "Train loss", format_num),
    ("gradient_variance", "Gradient variance", format_sig),
    ("weight_distance", "Distance from init.", format_sig),
    ("atc_acc", "ATC acc", format_num),
    ("atc_gap", "Train − ATC acc", format_num),
)


def checkpoint_columns(summary: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """CHECKPOINT_COLUMNS, then a column for each checkpoint value of a measure the summary has that they do not
    name (a measure registered beyond the built-in ones: premem.measures), headed by the measure's label."""
    out = list(CHECKPOINT_COLUMNS)
    known = {key for key, _, _ in out}
    for name, b in as_dict(summary.get("baselines")).items():
        if name == "premem":
            continue
        b = as_dict(b)
        label, test_key = str(b.get("label") or name), str(b.get("test_key") or "")
        for key, head in ((str(b.get("value_key") or name), label), (test_key, f"{label} ({test_key})")):
            if key and key not in known:
                out.append((key, head, format_sig))
                known.add(key)
    return out


@dataclass
class Page:
    path: str  # relative to the report's folder, "/"-separated
    template: str
    ctx: dict


@dataclass
class Report:
    pages: list[Page] = field(default_factory=list)
    csvs: dict[str, str] = field(default_factory=dict)  # name under data/ -> text


@dataclass
class Run:
    id: str
    name: str
    raw: dict
    checkpoints: list[dict]
    color: str
    slug: str

    @property
    def href(self) -> str:
        """The run page, relative to the report's folder."""
        return f"runs/{self.slug}.html"


# --------------------------------------------------------------------------------------------- helpers


def _checkpoints(run: Mapping[str, Any]) -> list[dict]:
    cps = [as_dict(c) for c in as_list(run.get("checkpoints"))]
    cps = [c for c in cps if c]

    def ek(c: dict) -> tuple[int, float]:
        e = num(c.get("epoch"))
        return (0, e) if e is not None else (1, 0.0)

    return sorted(cps, key=ek)


def _gap(c: Mapping[str, Any]) -> float | None:
    """The checkpoint's generalization gap: its ``gap`` if given, else train accuracy - test accuracy."""
    g = num(c.get("gap"))
    if g is not None:
        return g
    tr, te = num(c.get("train_acc")), num(c.get("test_acc"))
    return None if tr is None or te is None else tr - te


def _shown(value: Any, ci: Any, decimals: int = 3, fmt: Any = None) -> str:
    """A number as a template shows it: its text and, when it has an interval, the interval after it in a muted
    ``<span class="ci">`` ("0.853 [0.781, 0.902]" as text); the plain text when it has none, so a summary
    without intervals renders as before."""
    text = fmt(value) if fmt else format_num(value, decimals)
    c = format_ci(ci, decimals, fmt)
    return Markup('{}<span class="ci"> {}</span>').format(text, c) if c else text


def _ci_span(ci: Any, decimals: int = 3, fmt: Any = None) -> str:
    """Only the interval, in a muted ``<span class="ci">``, for a template that prints it apart from its value;
    "" when there is none."""
    c = format_ci(ci, decimals, fmt)
    return Markup('<span class="ci"> {}</span>').format(c) if c else ""


def _has_ci(items: Sequence[Mapping[str, Any]], key: str) -> bool:
    """Whether any of ``items`` has an interval for ``key`` (its ``key + "_ci"`` sibling)."""
    return any(ci_bounds(as_dict(x).get(key + "_ci")) is not None for x in items)


def _ci_columns(items: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """Those of ``keys`` that have an interval in any of ``items``: each gets ``_low`` and ``_high`` columns in
    the CSV (none without intervals, so the CSV stays as before)."""
    return [k for k in keys if _has_ci(items, k)]


def _columns_with_ci(keys: Sequence[str], with_ci_keys: Sequence[str]) -> list[str]:
    """CSV header: each key, followed by ``<key>_low`` and ``<key>_high`` when it has intervals."""
    out = []
    for k in keys:
        out.append(k)
        if k in with_ci_keys:
            out += [f"{k}_low", f"{k}_high"]
    return out


def _cells_with_ci(item: Mapping[str, Any], keys: Sequence[str], with_ci_keys: Sequence[str],
                   value: Any = None) -> list[Any]:
    """A CSV row's cells for ``keys`` (by ``value(item, key)``, default the number at the key), each followed
    by its interval's low and high when the key has intervals."""
    out: list[Any] = []
    for k in keys:
        out.append(value(item, k) if value else num(item.get(k)))
        if k in with_ci_keys:
            out += ci_cells(item.get(k + "_ci"))
    return out


def _run_label(run: Run) -> str:
    return run.name if run.name == run.id else f"{run.name} ({run.id})"


def _run_tip(run: Run, c: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()) -> str:
    lines = [_run_label(run), f"epoch {format_general(c.get('epoch'))}"]
    if run.raw.get("seed_group") is not None:  # a run of a seeds axis: which seed this point is
        lines.append(f"seed: {format_general(run.raw.get('seed'))}")
    lines += [f"{lbl}: {val}" for lbl, val in extra]
    for key, lbl in (("train_acc", "train acc"), ("test_acc", "test acc"), ("premem_acc", "PreMemAcc"),
                     ("memorized_frac", "memorized"), ("train_nll", "train NLL")):
        if key in c:
            lines.append(f"{lbl}: {with_ci(c.get(key), c.get(key + '_ci'))}")
    return "\n".join(lines)


def _status(r: Mapping[str, Any]) -> tuple[str, str, str]:
    """(status, css class, text shown) of a run: "diverged at step N" when the step is known."""
    status = str(r.get("status") or "unknown")
    cls = status if status in ("done", "failed", "incomplete", "diverged") else "other"
    text = status
    if status == "diverged":
        step = num(r.get("diverged_step"))
        if step is not None:
            text = f"diverged at step {int(step)}"
    return status, cls, text


def _setting(key: Any, v: Any) -> str:
    """A run setting as shown: learning rates in scientific notation, numbers tidy, anything else as text."""
    if key == "learning_rate" and num(v) is not None:
        return format_lr(v)
    return str(v) if isinstance(v, (dict, list, tuple)) else format_general(v)


def _error(r: Mapping[str, Any]) -> str | None:
    err = r.get("error")
    return None if err is None or str(err).strip() == "" else str(err)


def _r2_text(v: Any, ci: Any = None) -> str:
    return f"R² = {with_ci(v, ci)}"


def _acc_series(run: Run, key: str) -> svg.Series:
    """One run's checkpoints as ``key`` (x) against test accuracy (y), with error bars where the checkpoints have
    intervals (``<key>_ci``, ``test_acc_ci``)."""
    cps = run.checkpoints
    return svg.Series(name=run.name, points=[(c.get(key), c.get("test_acc")) for c in cps],
                      tooltips=[_run_tip(run, c) for c in cps], color=run.color, href=run.href,
                      x_errors=[ci_bounds(c.get(key + "_ci")) for c in cps],
                      y_errors=[ci_bounds(c.get("test_acc_ci")) for c in cps])


def _loro(st: "_Study", loro: Any, root: str = "") -> dict | None:
    """A leave-one-run-out record ({"min_r2", "run", "r2_by_run"}) for a template: the smallest R² and the run
    left out for it (with its page), and every fit, smallest first; None when the summary has none."""
    d = as_dict(loro)
    if not d:
        return None
    by_run = sorted(((str(k), num(v)) for k, v in as_dict(d.get("r2_by_run")).items()),
                    key=lambda kv: (kv[1] is None, kv[1] if kv[1] is not None else 0.0))

    def link(name: Any) -> dict:
        run = st.find_run(name)
        return {"name": run.name if run else str(name), "href": f"{root}{run.href}" if run else None}

    return {"r2": format_num(d.get("min_r2")), "run": link(d.get("run") if d.get("run") is not None else DASH),
            "n": len(by_run), "rows": [link(k) | {"r2": format_num(v)} for k, v in by_run]}


def _headline_sentence(r2_pm: float | None, r2_tr: float | None, n_points: int, n_runs: int,
                       ci_pm: Any = None, ci_tr: Any = None) -> str:
    if n_points == 0 and r2_pm is None and r2_tr is None:
        return "No checkpoint has both PreMemAcc and test accuracy yet."
    base = (f"R² is measured about the line y = x over {n_points} checkpoint{'s' if n_points != 1 else ''} of "
            f"{n_runs} run{'s' if n_runs != 1 else ''}: 1 means the measure equals test accuracy, 0 or less means "
            f"it predicts test accuracy no better than a constant.")
    if r2_pm is None or r2_tr is None:
        return base
    pm, tr = with_ci(r2_pm, ci_pm), with_ci(r2_tr, ci_tr)
    if r2_pm >= 0.8 and r2_pm > r2_tr:
        verdict = (f" PreMemAcc lies close to y = x (R² = {pm}) while plain train accuracy does not "
                   f"(R² = {tr}): pre-memorization accuracy predicts test accuracy.")
    elif r2_pm > r2_tr:
        verdict = (f" PreMemAcc tracks test accuracy better than train accuracy does (R² {pm} vs "
                   f"{tr}), but not closely.")
    else:
        verdict = (f" Here PreMemAcc (R² = {pm}) does not predict test accuracy better than train "
                   f"accuracy (R² = {tr}).")
    return base + verdict


def _legend(runs: Sequence[Run]) -> list[dict]:
    return [{"name": r.name, "id": r.id, "color": r.color, "href": r.href} for r in runs]


# --------------------------------------------------------------------------------------------- the study


class _Study:
    """What every page shares: the runs (with colours and page slugs) and the CSV files gathered so far."""

    def __init__(self, summary: Mapping[str, Any], dynamics: Mapping[str, Any]):
        self.summary = summary
        self.checkpoint_columns = checkpoint_columns(summary)
        self.dynamics = as_dict(dynamics)
        self.csvs: dict[str, str] = {}
        self.spec = as_dict(summary.get("spec"))
        taken: set[str] = set()
        self.runs: list[Run] = []
        for k, r in enumerate(as_dict(x) for x in as_list(summary.get("runs"))):
            rid = str(r.get("id") if r.get("id") is not None else f"run-{k + 1}")
            name = str(r.get("name") if r.get("name") is not None else rid)
            self.runs.append(Run(rid, name, r, _checkpoints(r), svg.color_for(k), slug(rid, taken)))
        self.by_id = {r.id: r for r in self.runs}
        self.by_name = {r.name: r for r in self.runs}
        self._dyn_taken: set[str] = set()
        self.dyn_slugs: dict[str, str] = {}
        self.has_measures = bool(as_dict(summary.get("baselines")))
        self.has_robustness = bool(as_dict(summary.get("robustness")) or as_list(summary.get("robustness_blocks")))
        self.curation = as_dict(summary.get("curation"))
        self.has_curation = bool(self.curation)

    def find_run(self, key: Any) -> Run | None:
        k = str(key)
        return self.by_id.get(k) or self.by_name.get(k)

    def dynamics_entry(self, rid: str) -> Any:
        if rid in self.dynamics:
            return self.dynamics[rid]
        return next((v for k, v in self.dynamics.items() if str(k) == rid), None)

    def dynamics_ids(self) -> list[str]:
        keys = [str(k) for k in self.dynamics]
        return [r.id for r in self.runs if r.id in keys] + [k for k in keys if k not in self.by_id]

    def dynamics_figure(self, rid: str, *, root: str = "") -> dict:
        """One run's heatmap, its CSV (written once) and what the figure's caption needs."""
        prep = prepare_dynamics(self.dynamics_entry(rid))
        if rid not in self.dyn_slugs:
            self.dyn_slugs[rid] = slug(rid, self._dyn_taken)
        fname = f"dynamics_{self.dyn_slugs[rid]}.csv"
        self.csvs[fname] = csv_text(
            ["run_id", "example_id", "epoch", "category"],
            [[rid, ex, ep, c] for ex, row in zip(prep.all_example_ids, prep.all_rows)
             for ep, c in zip(prep.epochs, row)],
        )
        n_cols = len(prep.epochs)
        cell_w = max(8.0, min(26.0, 150.0 / max(1, n_cols)))
        chart = svg.heatmap(
            prep.rows,
            categories=CATEGORIES,
            col_labels=[str(e) for e in prep.epochs],
            row_labels=[f"example {e}" for e in prep.example_ids],
            x_label="epoch",
            y_label="examples",
            cell_width=cell_w,
            cell_height=5,
            show_legend=False,
            missing=NOT_MEASURED,
        )
        run = self.by_id.get(rid)
        return {"name": run.name if run else rid, "id": rid, "svg": Markup(chart), "csv": f"{root}data/{fname}",
                "href": f"{root}{run.href}" if run else None, "shown": len(prep.rows), "total": prep.n_total,
                "has_missing": any(c is None for r in prep.rows for c in r)}

    def nav(self, active: str) -> list[dict]:
        items = [
            ("index", "index.html", "Overview", True, ""),
            ("dynamics", "dynamics.html", "Dynamics", True, ""),
            ("measures", "measures.html", "Measures", self.has_measures, "not computed for this study"),
            ("robustness", "robustness.html", "Robustness", self.has_robustness, "not computed for this study"),
        ]
        if self.has_curation:
            items.append(("curation", "curation.html", "Curation", True, ""))
        items.append(("runs", "index.html#runs", f"Runs ({len(self.runs)})", True, ""))
        return [{"key": k, "href": h, "label": lbl, "active": k == active, "available": ok, "title": t}
                for k, h, lbl, ok, t in items]

    def base_ctx(self, active: str, title: str, root: str = "") -> dict:
        n_failed = sum(1 for r in self.runs if str(r.raw.get("status")) in ("failed", "diverged"))
        return {
            "root": root,
            "nav": self.nav(active),
            "page_title": title,
            "study_name": str(self.spec.get("name") or "premem study"),
            "spec_path": str(self.spec.get("path") or ""),
            "generated_at": str(self.summary.get("generated_at") or DASH),
            "n_runs": len(self.runs),
            "n_failed": n_failed,
            "intervals_note": intervals_note(self.summary.get("intervals")),
        }


def _calibration_figure(st: _Study, curve: Any, p: float | None, csv_name: str,
                        title: str = "Calibration: R² against p") -> dict | None:
    """The calibration curve (R² about y = x and of a fitted line against p) as a figure, its CSV written under
    ``csv_name``, a dashed line at the chosen ``p``; None when there is no curve."""
    calib = [as_dict(c) for c in as_list(curve)]
    calib = sorted([c for c in calib if num(c.get("p")) is not None], key=lambda c: num(c.get("p")))
    if not calib:
        return None
    st.csvs[csv_name] = csv_text(
        ["p", "r2", "r2_line", "chosen"],
        [[num(c.get("p")), num(c.get("r2")), num(c.get("r2_line")),
          int(p is not None and abs(num(c.get("p")) - p) < 1e-12)] for c in calib],
    )
    yvals = [v for c in calib for v in (num(c.get("r2")), num(c.get("r2_line"))) if v is not None]
    floor = -1.0
    clipped = bool(yvals) and min(yvals) < floor
    y_range = (floor, 1.0) if clipped else (min(min(yvals, default=0.0), 0.0), 1.0)
    ser = [
        svg.Series(name="R² about y = x", points=[(c.get("p"), c.get("r2")) for c in calib],
                   tooltips=[f"p = {format_p(c.get('p'))}\nR² about y = x: {format_num(c.get('r2'))}"
                             for c in calib], color="#1f77b4"),
        svg.Series(name="R² of fitted line", points=[(c.get("p"), c.get("r2_line")) for c in calib],
                   tooltips=[f"p = {format_p(c.get('p'))}\nR² of fitted line: {format_num(c.get('r2_line'))}"
                             for c in calib], color="#ff7f0e", dashed=True),
    ]
    chart = svg.line_chart(
        ser, title=title, x_label="p (log of mean target NLL)",
        y_label="R² (calibration runs)", y_range=y_range, vline=p,
        vline_label=f"chosen p = {format_p(p)}" if p is not None else None, width=720, height=340,
    )
    return {"svg": Markup(chart), "csv": f"data/{csv_name}", "clipped": clipped, "floor": floor}


def _block_name(b: Mapping[str, Any]) -> str:
    return " / ".join("–" if b.get(k) is None else str(b.get(k)) for k in ("model", "dataset"))


def _blocks(st: _Study) -> dict | None:
    """The (model, dataset) blocks of summary['blocks'], each calibrated on its own under premem.calibrate
    per_block: a table (p, R² about y = x and of a fitted line, train accuracy's R²) and, per block, PreMemAcc
    against test accuracy and the block's calibration curve. None for a study of one block (the page as before)."""
    blocks = [b for b in (as_dict(x) for x in as_list(st.summary.get("blocks"))) if b]
    if len(blocks) < 2:
        return None
    mode = str(as_dict(st.summary.get("premem")).get("calibrate") or "per_block")
    trains = [as_dict(b.get("train_acc")) for b in blocks]
    block_ci = _ci_columns(blocks, ["p", "r2", "r2_line"])
    train_ci = _ci_columns(trains, ["r2", "r2_line"])
    rows, csv_rows, figures = [], [], []
    for k, b in enumerate(blocks, start=1):
        train = as_dict(b.get("train_acc"))
        names = {str(x) for x in as_list(b.get("runs"))}
        runs = [r for r in st.runs if r.id in names or r.name in names]
        rng = as_list(b.get("test_acc_range"))
        rows.append({"name": _block_name(b), "model": DASH if b.get("model") is None else str(b.get("model")),
                     "dataset": DASH if b.get("dataset") is None else str(b.get("dataset")),
                     "p": _shown(b.get("p"), b.get("p_ci"), fmt=format_p), "r2": _shown(b.get("r2"), b.get("r2_ci")),
                     "r2_line": _shown(b.get("r2_line"), b.get("r2_line_ci")),
                     "train_r2": _shown(train.get("r2"), train.get("r2_ci")),
                     "train_r2_line": _shown(train.get("r2_line"), train.get("r2_line_ci")),
                     "n_runs": len(names), "checkpoints": format_general(b.get("checkpoints")),
                     "test_range": (f"{format_num(rng[0])} – {format_num(rng[1])}" if len(rng) == 2 else DASH),
                     "n_calibration": len(as_list(b.get("calibration_runs"))), "loro": _loro(st, b.get("loro"))})
        csv_rows.append([b.get("model"), b.get("dataset")] + _cells_with_ci(b, ["p", "r2", "r2_line"], block_ci)
                        + _cells_with_ci(train, ["r2", "r2_line"], train_ci)
                        + [len(names), num(b.get("checkpoints")), len(as_list(b.get("calibration_runs")))]
                        + ([num(as_dict(b.get("loro")).get("min_r2")), as_dict(b.get("loro")).get("run")]
                           if any(as_dict(x.get("loro")) for x in blocks) else []))
        series, pts_rows = [], []
        cps_all = [c for run in runs for c in run.checkpoints]
        pts_ci = _ci_columns(cps_all, ["premem_acc", "test_acc"])
        for run in runs:
            series.append(_acc_series(run, "premem_acc"))
            pts_rows += [[run.id, run.name, c.get("epoch")] + _cells_with_ci(c, ["premem_acc", "test_acc"], pts_ci)
                         for c in run.checkpoints]
        # one range for both axes (y = x stays the diagonal), up to the block's largest value: a block whose
        # accuracies stay low (MATH) is not squeezed into a corner
        top = max((v for c in cps_all for v in (num(c.get("premem_acc")), num(c.get("test_acc"))) if v is not None),
                  default=1.0)
        hi = min(1.0, max(0.1, math.ceil((top + 0.02) * 10) / 10))
        name = f"block{k}_premem_vs_test.csv"
        st.csvs[name] = csv_text(["run_id", "run_name", "epoch"] + _columns_with_ci(["premem_acc", "test_acc"], pts_ci),
                                 pts_rows)
        scatter = svg.scatter_chart(
            series, title=f"{_block_name(b)}: PreMemAcc vs test accuracy", x_label="PreMemAcc",
            y_label="Test accuracy", x_range=(0, hi), y_range=(0, hi), diagonal=True,
            annotation=[_r2_text(b.get("r2"), b.get("r2_ci")), f"p = {with_ci(b.get('p'), b.get('p_ci'), fmt=format_p)}"],
            width=470, height=440)
        figures.append({"name": _block_name(b), "svg": Markup(scatter), "csv": f"data/{name}",
                        "calibration": _calibration_figure(st, b.get("calibration"), num(b.get("p")),
                                                           f"block{k}_calibration.csv",
                                                           f"{_block_name(b)}: R² against p")})
    has_loro = any(as_dict(x.get("loro")) for x in blocks)
    st.csvs["blocks.csv"] = csv_text(
        ["model", "dataset"] + _columns_with_ci(["p", "r2", "r2_line"], block_ci)
        + ["train_" + c for c in _columns_with_ci(["r2", "r2_line"], train_ci)]
        + ["runs", "checkpoints", "calibration_runs"] + (["loro_min_r2", "loro_run"] if has_loro else []), csv_rows)
    return {"rows": rows, "csv": "data/blocks.csv", "figures": figures, "pooled": mode == "pooled",
            "has_loro": has_loro}


# --------------------------------------------------------------------------------------------- index


def _index(st: _Study) -> Page:
    summary = st.summary
    premem = as_dict(summary.get("premem"))
    train = as_dict(summary.get("train_acc"))
    notes = [str(n) for n in as_list(summary.get("notes")) if n is not None and str(n).strip()]
    runs = st.runs

    n_points = 0
    panels = []
    all_cps = [c for run in runs for c in run.checkpoints]
    for key, label, name, r2, r2_ci in (
        ("train_acc", "Train accuracy", "train_vs_test", train.get("r2"), train.get("r2_ci")),
        ("premem_acc", "PreMemAcc", "premem_vs_test", premem.get("r2"), premem.get("r2_ci")),
    ):
        with_cis = _ci_columns(all_cps, [key, "test_acc"])
        series = [_acc_series(run, key) for run in runs]
        rows = [[run.id, run.name, c.get("epoch")] + _cells_with_ci(c, [key, "test_acc"], with_cis)
                for run in runs for c in run.checkpoints]
        if key == "premem_acc":
            n_points = sum(1 for c in all_cps if num(c.get(key)) is not None and num(c.get("test_acc")) is not None)
        st.csvs[f"{name}.csv"] = csv_text(["run_id", "run_name", "epoch"] + _columns_with_ci([key, "test_acc"], with_cis),
                                          rows)
        chart = svg.scatter_chart(
            series, title=f"{label} vs test accuracy", x_label=label, y_label="Test accuracy", x_range=(0, 1),
            y_range=(0, 1), diagonal=True, annotation=_r2_text(r2, r2_ci), width=470, height=440,
        )
        panels.append({"title": f"{label} vs test accuracy", "svg": Markup(chart), "csv": f"data/{name}.csv",
                       "r2": with_ci(r2, r2_ci)})

    # calibration
    p = num(premem.get("p"))
    calibration = _calibration_figure(st, premem.get("calibration"), p, "calibration.csv")
    calibration_runs = []
    for x in as_list(premem.get("calibration_runs")):
        run = st.find_run(x)
        calibration_runs.append({"name": run.name if run else str(x), "href": run.href if run else None})

    # perplexity gap
    gap = as_dict(summary.get("perplexity_gap"))
    gap_rows = []
    if gap:
        for key, label, expl in (
            ("memorized_correct_median_perplexity", "Correct and memorized: median perplexity",
             "examples answered correctly whose target trace is memorized"),
            ("unmemorized_correct_median_perplexity", "Correct, not memorized: median perplexity",
             "examples answered correctly without reproducing the trace"),
            ("irreducible_perplexity", "Irreducible perplexity",
             "floor of a perfect model that has not seen the trace"),
            ("threshold_perplexity", "Memorization threshold exp(exp(p))",
             "below this an example counts as memorized"),
        ):
            if key in gap and (runs or num(gap.get(key)) is not None):  # no runs: only what was measured
                gap_rows.append({"label": label, "value": format_num(gap.get(key), 4), "expl": expl})
        st.csvs["perplexity_gap.csv"] = csv_text(["quantity", "value"], [[k, num(v)] for k, v in gap.items()])

    # runs table
    table, run_rows = [], []
    final_ci = _ci_columns([r.checkpoints[-1] for r in runs if r.checkpoints], ["train_acc", "test_acc", "premem_acc"])
    for run in runs:
        r, cps = run.raw, run.checkpoints
        sett = as_dict(r.get("settings"))
        last = cps[-1] if cps else {}
        status, cls, status_text = _status(r)
        err = _error(r)
        table.append({
            "name": run.name, "id": run.id, "color": run.color, "href": run.href,
            "tip": "; ".join([f"id: {run.id}"] + [f"{k}: {_setting(k, v)}" for k, v in sett.items()]),
            "lr": format_lr(sett.get("learning_rate")),
            "epochs": format_general(sett.get("epochs")),
            "fraction": format_general(sett.get("dataset_fraction")),
            "status": status, "status_class": cls, "status_text": status_text,
            "n_checkpoints": len(cps),
            "train": _shown(last.get("train_acc"), last.get("train_acc_ci")),
            "test": _shown(last.get("test_acc"), last.get("test_acc_ci")),
            "premem": _shown(last.get("premem_acc"), last.get("premem_acc_ci")),
            "error": err, "error_short": None if err is None else short(err),
            "seed": format_general(r.get("seed")),
        })
        step = num(r.get("diverged_step"))
        run_rows.append([run.id, run.name, status, None if step is None else int(step), sett.get("model"),
                         sett.get("dataset"), num(sett.get("learning_rate")), sett.get("epochs"),
                         num(sett.get("dataset_fraction")), len(cps)]
                        + _cells_with_ci(last, ["train_acc", "test_acc", "premem_acc"], final_ci) + [err])
    seeds = _seed_groups(st)
    if seeds is not None:  # a seeds axis: each run's seed as the last column
        run_rows = [row + [num(run.raw.get("seed"))] for row, run in zip(run_rows, runs)]
    st.csvs["runs.csv"] = csv_text(
        ["run_id", "run_name", "status", "diverged_step", "model", "dataset", "learning_rate", "epochs",
         "dataset_fraction", "n_checkpoints"]
        + ["final_" + k for k in _columns_with_ci(["train_acc", "test_acc", "premem_acc"], final_ci)] + ["error"]
        + (["seed"] if seeds is not None else []), run_rows)
    cp_keys = ["train_acc", "test_acc", "premem_acc", "train_nll", "memorized_frac", "train_loss"]
    cp_keys += [k for k, _, _ in st.checkpoint_columns if k not in cp_keys
                and any(k in c for run in runs for c in run.checkpoints)]
    cp_ci = _ci_columns(all_cps, cp_keys)
    st.csvs["checkpoints.csv"] = csv_text(
        ["run_id", "run_name", "epoch"] + _columns_with_ci(cp_keys, cp_ci),
        [[run.id, run.name, c.get("epoch")] + _cells_with_ci(c, cp_keys, cp_ci)
         for run in runs for c in run.checkpoints],
    )

    n_runs_with_points = len({run.id for run in runs for c in run.checkpoints
                              if num(c.get("premem_acc")) is not None and num(c.get("test_acc")) is not None})
    r2_pm, r2_tr = num(premem.get("r2")), num(train.get("r2"))
    blocks = _blocks(st)
    ctx = st.base_ctx("index", "Overview") | {
        "spec_text": None if st.spec.get("text") is None else str(st.spec.get("text")),
        "notes": notes,
        "headline": {
            "p": _shown(p, premem.get("p_ci"), fmt=format_p),
            "threshold": format_num(gap.get("threshold_perplexity") if gap else
                                    (math.exp(math.exp(p)) if p is not None and p < 5 else None), 4),
            "r2_premem": _shown(r2_pm, premem.get("r2_ci")),
            "good": r2_pm is not None and r2_pm >= 0.8 and (r2_tr is None or r2_pm > r2_tr),
            "r2_premem_line": _shown(premem.get("r2_line"), premem.get("r2_line_ci")),
            "r2_train": _shown(r2_tr, train.get("r2_ci")),
            "r2_train_line": _shown(train.get("r2_line"), train.get("r2_line_ci")),
            "sentence": _headline_sentence(r2_pm, r2_tr, n_points, n_runs_with_points, premem.get("r2_ci"),
                                           train.get("r2_ci")),
            "loro": _loro(st, premem.get("loro")),
        },
        "panels": panels,
        "legend_runs": _legend([r for r in runs if r.checkpoints]),
        "calibration": calibration,
        "calibration_runs": calibration_runs,
        "blocks": blocks,
        "per_block": blocks is not None and p is None and not blocks["pooled"],
        "gap_rows": gap_rows,
        "runs": table,
        "has_measures": st.has_measures,
        "has_robustness": st.has_robustness,
        "no_runs": not runs,
        "curation": _curation_index(st),
        "seeds": seeds,
    }
    return Page("index.html", "index.html.j2", ctx)


# --------------------------------------------------------------------------------------------- seeds


def _with_ci(mean: Any, ci: Any, digits: int = 3) -> str:
    """"0.412 [0.371, 0.453]": a mean over seeds with its interval, or the mean alone when there is none."""
    lo_hi = [num(v) for v in as_list(ci)]
    text = format_num(mean, digits)
    if len(lo_hi) == 2 and None not in lo_hi and num(mean) is not None:
        text += f" [{format_num(lo_hi[0], digits)}, {format_num(lo_hi[1], digits)}]"
    return text


def _seed_groups(st: _Study) -> dict | None:
    """The index page's seeds table (summary['seed_groups']): each group's mean test accuracy and PreMemAcc at
    its last epoch over its seeds, with 95 % t-intervals; its CSV (seed_groups.csv, every epoch) goes into
    st.csvs. None when the study has no seeds axis."""
    groups = [as_dict(g) for g in as_list(st.summary.get("seed_groups"))]
    groups = [g for g in groups if g]
    if not groups:
        return None
    rows, csv_rows = [], []
    for g in groups:
        cps = [as_dict(c) for c in as_list(g.get("checkpoints")) if as_dict(c)]
        last = cps[-1] if cps else {}
        rows.append({"name": str(g.get("name")), "n_runs": len(as_list(g.get("runs"))),
                     "seeds": ", ".join(format_general(x) for x in as_list(g.get("seeds"))),
                     "epoch": format_general(last.get("epoch")), "n": format_general(last.get("n")),
                     "test": _with_ci(last.get("test_acc"), last.get("test_acc_ci")),
                     "premem": _with_ci(last.get("premem_acc"), last.get("premem_acc_ci"))})
        for c in cps:
            csv_rows.append([g.get("name"), c.get("epoch"), c.get("n")] + [
                v for k in ("test_acc", "premem_acc", "train_acc")
                for v in (num(c.get(k)), *((as_list(c.get(f"{k}_ci")) + [None, None])[:2]))])
    st.csvs["seed_groups.csv"] = csv_text(
        ["group", "epoch", "n_seeds", "test_acc", "test_acc_lo", "test_acc_hi", "premem_acc", "premem_acc_lo",
         "premem_acc_hi", "train_acc", "train_acc_lo", "train_acc_hi"], csv_rows)
    return {"rows": rows, "csv": "data/seed_groups.csv"}


# --------------------------------------------------------------------------------------------- dynamics


def _dynamics_legend_items(figs: Sequence[dict]) -> list[tuple[str, str]]:
    return list(CATEGORIES) + ([NOT_MEASURED] if any(f["has_missing"] for f in figs) else [])


def _dyn_legend(figs: Sequence[dict]) -> Markup | None:
    if not figs:
        return None
    items = _dynamics_legend_items(figs)
    return Markup(svg.legend(items, columns=len(items)))


def _dynamics_page(st: _Study) -> Page:
    figs = [st.dynamics_figure(rid) for rid in st.dynamics_ids()]
    ctx = st.base_ctx("dynamics", "Per-example dynamics") | {
        "dyn_figs": figs,
        "dyn_legend": _dyn_legend(figs),
        "max_rows": MAX_DYNAMICS_ROWS,
        "no_runs": not st.runs,
        "has_curation": st.has_curation,
    }
    return Page("dynamics.html", "dynamics.html.j2", ctx)


# --------------------------------------------------------------------------------------------- measures


def _corr_text(r: Any, tau: Any) -> str:
    return f"r = {format_num(r, 2)} · τ = {format_num(tau, 2)}"


def _measures_page(st: _Study) -> Page:
    baselines = as_dict(st.summary.get("baselines"))
    meta = as_dict(st.summary.get("baselines_meta"))
    names = [n for n in BASELINE_ORDER if n in baselines] + [str(n) for n in baselines if n not in BASELINE_ORDER]
    used = [str(x) for x in as_list(meta.get("runs"))]
    runs = [r for r in (st.find_run(x) for x in used) if r is not None] if used else list(st.runs)
    runs = list({r.id: r for r in runs}.values())  # unique, in order
    unknown_runs = [x for x in used if st.find_run(x) is None]

    entries = []
    for name in names:
        b = as_dict(baselines.get(name))
        value_key = str(b.get("value_key") or name)
        x_label = str(b.get("x_label") or b.get("label") or name)
        test_key, test_x_label = TEST_KEYS.get(value_key, (value_key, x_label))
        entries.append({
            "name": name,
            "label": str(b.get("label") or name),
            "value_key": value_key,
            "x_label": x_label,
            "test_key": str(b.get("test_key") or test_key),
            "test_x_label": str(b.get("test_x_label") or test_x_label),
            "pearson_gap": num(b.get("pearson_gap")), "kendall_gap": num(b.get("kendall_gap")),
            "pearson_test": num(b.get("pearson_test")), "kendall_test": num(b.get("kendall_test")),
            "n": b.get("n"),
        } | {f"{k}_ci": ci_bounds(b.get(f"{k}_ci")) for k in CORRELATION_KEYS})

    rows_out: list[dict] = []
    for target, y_label, target_name in (("gap", "Generalization gap (train − test)", "gap"),
                                         ("test_acc", "Test accuracy", "test")):
        panels = []
        for e in entries:
            key, x_label = (e["value_key"], e["x_label"]) if target == "gap" else (e["test_key"], e["test_x_label"])
            series = []
            for run in runs:
                pts, tips = [], []
                for c in run.checkpoints:
                    x = num(c.get(key))
                    y = _gap(c) if target == "gap" else num(c.get("test_acc"))
                    pts.append((x, y))
                    x_ci = format_ci(c.get(key + "_ci"), fmt=format_sig)
                    tips.append("\n".join([_run_label(run), f"epoch {format_general(c.get('epoch'))}",
                                           f"{x_label}: {format_sig(x)}" + (f" {x_ci}" if x_ci else ""),
                                           f"gap: {format_num(_gap(c))}",
                                           f"train acc: {with_ci(c.get('train_acc'), c.get('train_acc_ci'))}",
                                           f"test acc: {with_ci(c.get('test_acc'), c.get('test_acc_ci'))}"]))
                series.append(svg.Series(run.name, pts, tooltips=tips, color=run.color, href=run.href,
                                         x_errors=[ci_bounds(c.get(key + "_ci")) for c in run.checkpoints],
                                         y_errors=[ci_bounds(c.get("test_acc_ci")) if target == "test_acc" else None
                                                   for c in run.checkpoints]))
            r, tau = e[f"pearson_{target_name}"], e[f"kendall_{target_name}"]
            r_ci, tau_ci = e[f"pearson_{target_name}_ci"], e[f"kendall_{target_name}_ci"]
            # with intervals, r and τ on a line each: the panels are narrow
            subtitle = (_corr_text(r, tau) if r_ci is None and tau_ci is None else
                        [f"r = {with_ci(r, r_ci, 2)}", f"τ = {with_ci(tau, tau_ci, 2)}"])
            chart = svg.scatter_chart(
                series, title=e["label"], subtitle=subtitle, x_label=x_label, y_label=y_label,
                width=300, height=300 + (18 if isinstance(subtitle, list) else 0), connect=False, marker_radius=4.2,
            )
            panels.append({"svg": Markup(chart), "label": e["label"], "r": format_num(r), "tau": format_num(tau)})
        rows_out.append({"target": target, "title": f"Against the {y_label[0].lower() + y_label[1:]}"
                         if target == "gap" else "Against test accuracy", "panels": panels})

    # the data behind every panel, and the correlations
    keys = list(dict.fromkeys([e["value_key"] for e in entries] + [e["test_key"] for e in entries]))
    keys = [k for k in keys if k not in ("train_acc", "test_acc", "gap")]
    if entries:
        st.csvs["measures.csv"] = csv_text(
            ["run_id", "run_name", "epoch", "train_acc", "test_acc", "gap"] + keys,
            [[run.id, run.name, c.get("epoch"), num(c.get("train_acc")), num(c.get("test_acc")), _gap(c)]
             + [num(c.get(k)) for k in keys] for run in runs for c in run.checkpoints],
        )
        corr_ci = _ci_columns(entries, CORRELATION_KEYS)
        st.csvs["measures_correlations.csv"] = csv_text(
            ["measure", "label", "value_key"] + _columns_with_ci(CORRELATION_KEYS, corr_ci) + ["n"],
            [[e["name"], e["label"], e["value_key"]] + _cells_with_ci(e, CORRELATION_KEYS, corr_ci) + [num(e["n"])]
             for e in entries],
        )
    table = [{"label": e["label"], "x_label": e["x_label"] if e["test_key"] == e["value_key"] else
              f"{e['x_label']} (against the gap); {e['test_x_label']} (against test accuracy)",
              "pg": _shown(e["pearson_gap"], e["pearson_gap_ci"]),
              "kg": _shown(e["kendall_gap"], e["kendall_gap_ci"]), "pt": _shown(e["pearson_test"], e["pearson_test_ci"]),
              "kt": _shown(e["kendall_test"], e["kendall_test_ci"]), "n": format_general(e["n"]),
              "strongest": False} for e in entries]
    strengths = [abs(e["pearson_gap"]) if e["pearson_gap"] is not None else -1.0 for e in entries]
    if strengths and max(strengths) >= 0:
        table[strengths.index(max(strengths))]["strongest"] = True

    atc = as_dict(meta.get("atc_reference"))
    atc_ref = None
    if atc:
        run = st.find_run(atc.get("run"))
        atc_ref = {"run": run.name if run else str(atc.get("run") or DASH), "href": run.href if run else None,
                   "epoch": format_general(atc.get("epoch")), "test_acc": format_num(atc.get("test_acc")),
                   "threshold": format_sig(atc.get("threshold")), "score": str(atc.get("score") or DASH)}
    ctx = st.base_ctx("measures", "Generalization measures") | {
        "available": bool(entries),
        "missing": MEASURES_MISSING if st.runs else NO_RUNS_MISSING.format(what="the classic generalization measures"),
        "rows": rows_out,
        "table": table,
        "legend_runs": _legend([r for r in runs if r.checkpoints]),
        "used_runs": [{"name": r.name, "href": r.href} for r in runs] if used else [],
        "unknown_runs": unknown_runs,
        "atc_ref": atc_ref,
        "extra_note": (None if as_dict(st.summary.get("intervals")).get("measures_note") is None
                       else str(as_dict(st.summary.get("intervals")).get("measures_note"))),
    }
    return Page("measures.html", "measures.html.j2", ctx)


# --------------------------------------------------------------------------------------------- robustness


def _robustness_panel(st: _Study, rob: Mapping[str, Any], meta: Mapping[str, Any]) -> dict:
    """One robustness figure (violins by PreMemAcc bin, one colour per prompt), its table and its CSV rows
    ('stat_rows', 'value_rows'), from a summary's {prompt: {bin: stats}} and its meta."""
    preambles = {str(k): "" if v is None else str(v) for k, v in as_dict(meta.get("preambles")).items()}
    prompts = [str(p) for p in rob]
    prompts = (["original"] if "original" in prompts else []) + [p for p in prompts if p != "original"]
    bins = [str(b) for b in as_list(meta.get("bins"))] or list(DEFAULT_BINS)
    for p in prompts:
        for b in as_dict(rob.get(p)):
            if str(b) not in bins:
                bins.append(str(b))

    def cell(p: str, b: str) -> dict:
        d = as_dict(rob.get(p))
        v = d.get(b)
        if v is None:
            v = next((vv for kk, vv in d.items() if str(kk) == b), None)
        return as_dict(v)

    groups, stat_rows, value_rows = [], [], []
    stats: dict[tuple[str, str], dict] = {}
    for i, p in enumerate(prompts):
        data = {}
        for b in bins:
            c = cell(p, b)
            vals = [x for x in (num(v) for v in as_list(c.get("values"))) if x is not None]
            q = quantiles(vals)
            s = {k: num(c.get(k)) if num(c.get(k)) is not None else q[k] for k in ("mean", "median", "q1", "q3")}
            s["n"] = int(num(c.get("n"))) if num(c.get("n")) is not None else len(vals)
            mean_ci = ci_bounds(c.get("mean_ci"))
            stats[(p, b)] = s | {"mean_ci": mean_ci}
            label = "original prompt" if p == "original" else f"preamble “{p}”"
            tip = (f"{label} · PreMemAcc {b}\nn = {s['n']}\nmedian {format_num(s['median'])} "
                   f"(quartiles {format_num(s['q1'])} to {format_num(s['q3'])})\nmean {with_ci(s['mean'], mean_ci)}")
            data[b] = svg.Violin(vals, stats=s, tooltip=tip, mean_ci=mean_ci)
            # the mean's interval last: dropped from the CSV when no bin has one
            stat_rows.append([p, preambles.get(p, ""), b, s["n"], s["mean"], s["median"], s["q1"], s["q3"]]
                             + ci_cells(mean_ci))
            value_rows += [[p, b, v] for v in vals]
        groups.append((p if p != "original" else "original prompt", PROMPT_COLORS[i % len(PROMPT_COLORS)], data))

    figure = None
    if prompts:
        chart = svg.violin_chart(
            bins, groups, title="Per-example accuracy under each prompt, by PreMemAcc",
            x_label="PreMemAcc of the training example (bin)", y_label="Accuracy under the prompt",
            width=1100, height=440,
        )
        figure = {"svg": Markup(chart)}

    table = []
    for b in bins:
        row = {"bin": b, "cells": []}
        base = stats.get(("original", b), {}).get("mean") if "original" in prompts else None
        for p in prompts:
            s = stats[(p, b)]
            delta = None if base is None or s["mean"] is None or p == "original" else s["mean"] - base
            row["cells"].append({"n": s["n"], "median": format_num(s["median"], 2), "q1": format_num(s["q1"], 2),
                                 "q3": format_num(s["q3"], 2), "mean": format_num(s["mean"]),
                                 "mean_ci": _ci_span(s["mean_ci"]),
                                 "delta": None if delta is None else (("+" if delta > 0 else "") + format_num(delta))})
        table.append(row)
    checkpoints = []
    for c in (as_dict(x) for x in as_list(meta.get("checkpoints"))):
        run = st.find_run(c.get("run"))
        checkpoints.append({"run": run.name if run else str(c.get("run") or DASH), "href": run.href if run else None,
                            "epoch": format_general(c.get("epoch"))})
    return {"figure": figure, "table": table, "checkpoints": checkpoints, "stat_rows": stat_rows,
            "has_ci": any(s["mean_ci"] is not None for s in stats.values()),
            "value_rows": value_rows,
            "prompts": [{"label": p, "color": PROMPT_COLORS[i % len(PROMPT_COLORS)], "preamble": preambles.get(p, ""),
                         "preamble_shown": preambles.get(p, "").replace("\n", "\\n")} for i, p in enumerate(prompts)]}


def _robustness_page(st: _Study) -> Page:
    meta = as_dict(st.summary.get("robustness_meta"))
    blocks = [as_dict(b) for b in as_list(st.summary.get("robustness_blocks"))]
    if len(blocks) > 1:  # one panel per (model, dataset) block, as the paper's one per task
        panels = [_robustness_panel(st, as_dict(b.get("robustness")), as_dict(b.get("meta")))
                  | {"title": str(b.get("block") or DASH)} for b in blocks]
    else:
        panels = [_robustness_panel(st, as_dict(st.summary.get("robustness")), meta) | {"title": None}]
    panels = [p for p in panels if p["figure"] is not None]
    if panels:
        several = len(panels) > 1
        has_ci = any(v is not None for p in panels for row in p["stat_rows"] for v in row[-2:])
        st.csvs["robustness.csv"] = csv_text(
            (["block"] if several else []) + ["prompt", "preamble", "premem_bin", "n", "mean", "median", "q1", "q3"]
            + (["mean_low", "mean_high"] if has_ci else []),
            [([p["title"]] if several else []) + (row if has_ci else row[:-2]) for p in panels for row in p["stat_rows"]])
        st.csvs["robustness_values.csv"] = csv_text(
            (["block"] if several else []) + ["prompt", "premem_bin", "accuracy"],
            [([p["title"]] if several else []) + row for p in panels for row in p["value_rows"]])
    ctx = st.base_ctx("robustness", "Robustness to perturbed prompts") | {
        "available": bool(panels),
        "missing": ROBUSTNESS_MISSING if st.runs else NO_RUNS_MISSING.format(what="accuracies under perturbed prompts"),
        "panels": panels,
        "samples": format_general(meta.get("samples")) if meta.get("samples") is not None else None,
    }
    return Page("robustness.html", "robustness.html.j2", ctx)


# --------------------------------------------------------------------------------------------- curation


def _strategies(cur: Mapping[str, Any]) -> list[str]:
    """The curation's strategy names in the summary's order (no duplicates)."""
    return list(dict.fromkeys(str(s) for s in as_list(cur.get("strategies")) if s is not None))


def _strategy_color(name: str, k: int) -> str:
    """A strategy's colour: fixed for the four known strategies, the palette after them for any other."""
    return svg.color_for(STRATEGY_ORDER.index(name) if name in STRATEGY_ORDER else len(STRATEGY_ORDER) + k)


def _strategy_desc(name: str, settings: Mapping[str, Any]) -> str:
    """One line saying which originals a strategy draws its new examples from."""
    ifd, heur = as_dict(settings.get("ifd")), as_dict(settings.get("heuristic"))
    return {
        "premem": f"variants of the originals whose PreMemAcc under the previous round's model is at most "
                  f"t = {format_general(settings.get('threshold'))}",
        "iid": "variants of originals drawn uniformly from all of them (the reference curve)",
        "ifd": f"variants of the top {format_general(ifd.get('percent'))}% of originals by IFD score",
        "heuristic": f"variants of the top {format_general(heur.get('percent'))}% of originals by the dataset's "
                     f"difficulty",
    }.get(name, "")


def _count(v: Any) -> int | float | None:
    """``v`` as a number, an int when whole (round numbers, sizes, counts: "230" in CSV, not "230.0"); else None."""
    f = num(v)
    return int(f) if f is not None and f == int(f) and abs(f) < 1e15 else f


def _curve_points(entry: Mapping[str, Any]) -> list[dict]:
    """A strategy's curve points, tidied: round and size (int, float or None), test_acc (float or None) and its
    interval test_acc_ci ((low, high) or None), run and status (str)."""
    out = []
    for p in (as_dict(x) for x in as_list(entry.get("curve"))):
        if not p:
            continue
        out.append({"round": _count(p.get("round")), "size": _count(p.get("size")), "test_acc": num(p.get("test_acc")),
                    "test_acc_ci": ci_bounds(p.get("test_acc_ci")),
                    "run": DASH if p.get("run") is None else str(p.get("run")),
                    "status": str(p.get("status") or "unknown")} | _seed_point(p))
    return sorted(out, key=lambda p: (p["round"] is None, p["round"] or 0.0))


def _seed_point(p: Mapping[str, Any]) -> dict:
    """A seed-mean curve point's interval and seed count (curation.seeds); {} for a point of one seed."""
    ci = [num(v) for v in as_list(p.get("test_acc_ci"))]
    if p.get("n") is None:
        return {}
    return {"test_acc_ci": tuple(ci) if len(ci) == 2 and None not in ci else None, "n": _count(p.get("n"))}


def _finished(p: Mapping[str, Any]) -> bool:
    """Whether a curve point is drawn: its model is done and has a size and a test accuracy."""
    return p["status"] == "done" and p["size"] is not None and p["test_acc"] is not None


def _mean_ratio(entry: Mapping[str, Any]) -> tuple[float | None, int, int]:
    """(the strategy's mean ratio iid size / strategy size, targets with a ratio, targets) from its efficiency
    rows; the summary's ``mean_ratio`` wins over the mean computed here."""
    eff = [as_dict(e) for e in as_list(entry.get("efficiency"))]
    ratios = [r for r in (num(e.get("ratio")) for e in eff) if r is not None]
    mean = num(entry.get("mean_ratio"))
    if mean is None and ratios:
        mean = sum(ratios) / len(ratios)
    return mean, len(ratios), len(eff)


def _efficiency_sentence(name: str, entry: Mapping[str, Any]) -> str:
    """What a strategy's mean ratio says, in words, with the numbers it rests on."""
    mean, k, n = _mean_ratio(entry)
    note = entry.get("targets_note")
    if mean is None:
        if n:
            return (f"{name}: no ratio: at none of the {n} target test accuracies do both the iid curve and "
                    f"{name}'s reach the target.")
        return f"{name}: no ratio" + (f": {note}." if note else ".")
    over = f"{k} of {n} target test accuracies" if k < n else f"{n} target test accurac{'y' if n == 1 else 'ies'}"
    if not n:  # a mean without its rows
        over = "its target test accuracies"
    m = format_num(mean, 2)
    ci = format_ci(entry.get("mean_ratio_ci"), 2)
    ci = f" {ci}" if ci else ""
    if m == "1.00":
        return (f"{name} needs as many examples as iid to reach the same test accuracies (mean ratio {m}{ci} at "
                f"{over}).")
    if mean > 1:
        return (f"{name} reaches iid's test accuracies with {m}×{ci} fewer examples (mean of iid's training-set "
                f"size ÷ {name}'s at {over}).")
    return (f"{name} needs more examples than iid to reach the same test accuracies: mean ratio {m}{ci} (iid's "
            f"training-set size ÷ {name}'s at {over}).")


def _curation_index(st: _Study) -> dict | None:
    """The front page's curation paragraph: one sentence per strategy compared with iid; None without curation."""
    if not st.has_curation:
        return None
    cur = st.curation
    strategies = _strategies(cur)
    finished = any(_finished(p) for s in strategies for p in _curve_points(as_dict(cur.get(s))))
    if not finished:
        return {"lines": [], "pending": True, "note": None}
    if "iid" not in strategies:
        note = next((as_dict(cur.get(s)).get("targets_note") for s in strategies
                     if as_dict(cur.get(s)).get("targets_note") is not None), None)
        return {"lines": [], "pending": False,
                "note": str(note) if note else "iid is not among the strategies: nothing to compare with"}
    lines = [_efficiency_sentence(s, as_dict(cur.get(s))) for s in strategies if s != "iid"]
    return {"lines": lines, "pending": False, "note": None}


def _curation_settings(cur: Mapping[str, Any], strategies: Sequence[str]) -> list[dict]:
    """The curation's settings as (key, value) pairs for the page's settings line."""
    s = as_dict(cur.get("settings"))
    new = [format_general(n) for n in as_list(s.get("new_examples"))]
    new_text = DASH if not new else (f"{new[0]} each round" if len(set(new)) == 1 else ", ".join(new))
    items = [("Model", format_general(s.get("model"))), ("Dataset", format_general(s.get("dataset"))),
             ("Originals", format_general(cur.get("originals"))), ("Rounds", format_general(s.get("rounds"))),
             ("Threshold t", format_general(s.get("threshold"))), ("p", format_p(s.get("p"))),
             ("New examples per round", new_text), ("Learning rate", format_lr(s.get("learning_rate"))),
             ("Epochs", format_general(s.get("epochs"))), ("Source of new examples", format_general(s.get("source")))]
    if "ifd" in strategies:
        ifd = as_dict(s.get("ifd"))
        lr = (format_lr(ifd.get("learning_rate")) if num(ifd.get("learning_rate")) is not None
              else f"{format_lr(s.get('learning_rate'))} (the rounds')")
        items.append(("IFD scoring", f"trained on {format_general(ifd.get('split'))} · "
                                     f"{format_general(ifd.get('epochs'))} epoch{'' if ifd.get('epochs') == 1 else 's'}"
                                     f" · learning rate {lr} · top {format_general(ifd.get('percent'))}%"))
    if "heuristic" in strategies:
        items.append(("Heuristic", f"top {format_general(as_dict(s.get('heuristic')).get('percent'))}% by difficulty"))
    return [{"key": k, "value": v} for k, v in items]


def _ratio_text(v: Any) -> str:
    """A sample-efficiency ratio as shown: "1.52×"; "–" when missing."""
    f = num(v)
    return DASH if f is None else f"{format_num(f, 2)}×"


def _curve_tip(name: str, p: Mapping[str, Any]) -> str:
    """A curve marker's tooltip: strategy, round, training-set size, test accuracy and run name, one a line."""
    rnd = format_general(p["round"])
    return "\n".join([name, f"round {rnd}" + (" (the originals, shared by every strategy)" if p["round"] == 0 else ""),
                      f"training-set size: {format_general(p['size'])} examples",
                      f"test acc: {with_ci(p['test_acc'], p.get('test_acc_ci'))}", f"run: {p['run']}"] + _seed_tip(p))


def _seed_tip(p: Mapping[str, Any]) -> list[str]:
    """A seed-mean point's tooltip line: how many seeds it averages, and that its interval is a t-interval over
    them (none for a point of one seed)."""
    if p.get("n") is None:
        return []
    return [f"mean over {format_general(p['n'])} seeds" + (", 95% t-interval over seeds" if p.get("test_acc_ci") else "")]


def _exhausted(ids: Sequence[Any], shown: int = 6) -> dict:
    """The exhausted originals of a round: their count, every id (for a tooltip) and the first few as text."""
    ids = [str(i) for i in ids]
    more = len(ids) - shown
    return {"n": len(ids), "title": ", ".join(ids),
            "text": ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")}


def _curation_page(st: _Study) -> Page:
    """The curation page (``curation.html``): settings, test accuracy against training-set size per strategy
    (finished models only), sample efficiency against iid and each round's selection; its CSV files
    (``curation_curves.csv``, ``curation_efficiency.csv``, ``curation_rounds.csv``) go into ``st.csvs``."""
    cur = st.curation
    settings = as_dict(cur.get("settings"))
    strategies = _strategies(cur)
    originals = _count(cur.get("originals"))
    entries = {s: as_dict(cur.get(s)) for s in strategies}
    points = {s: _curve_points(entries[s]) for s in strategies}
    colors = {s: _strategy_color(s, k) for k, s in enumerate(strategies)}
    several_seeds = len(as_list(cur.get("seeds"))) > 1  # curation.seeds: seed-mean curves with interval bands

    # the figure: finished models only
    curve_ci = _ci_columns([p for s in strategies for p in points[s]], ["test_acc"])
    st.csvs["curation_curves.csv"] = csv_text(
        ["strategy", "round", "size"] + _columns_with_ci(["test_acc"], curve_ci) + ["status", "run"],
        [[s, p["round"], p["size"]] + _cells_with_ci(p, ["test_acc"], curve_ci) + [p["status"], p["run"]]
         for s in strategies for p in points[s]])
    finished = any(_finished(p) for s in strategies for p in points[s])
    left_out = {p["run"]: p["status"] for s in strategies for p in points[s] if not _finished(p)}
    figure = None
    if finished:
        series = []
        for s in strategies:
            shown = [p for p in points[s] if _finished(p)]
            series.append(svg.Series(s, [(p["size"], p["test_acc"]) for p in shown],
                                     tooltips=[_curve_tip(s, p) for p in shown], color=colors[s], dashed=s == "iid",
                                     y_errors=[p.get("test_acc_ci") for p in shown], band=True))
        chart = svg.line_chart(series, title="Test accuracy against training-set size",
                               x_label="training-set size (examples)", y_label="test accuracy", width=760,
                               height=420, marker_radius=4.2, x_integer=True)
        statuses = {}
        for status in left_out.values():
            statuses[status] = statuses.get(status, 0) + 1
        figure = {"svg": Markup(chart), "csv": "data/curation_curves.csv", "n_left_out": len(left_out),
                  "bands": bool(curve_ci),
                  "left_out": ", ".join(f"{n} {k}" for k, n in sorted(statuses.items()))}

    # sample efficiency against iid
    efficiency, eff_rows = [], []
    others = [entries[s] for s in strategies if s != "iid"]
    ratio_ci = _ci_columns([as_dict(x) for e in others for x in as_list(e.get("efficiency"))], ["ratio"])
    mean_ci = _ci_columns(others, ["mean_ratio"])
    for s in strategies:
        if s == "iid":
            continue
        e = entries[s]
        rows = []
        for x in (as_dict(v) for v in as_list(e.get("efficiency"))):
            ratio = num(x.get("ratio"))
            rows.append({"target": format_num(x.get("target")), "iid_size": format_general(num(x.get("iid_size"))),
                         "size": format_general(num(x.get("size"))),
                         "ratio": _shown(ratio, x.get("ratio_ci"), fmt=_ratio_text),
                         "fewer": ratio is not None and ratio > 1})
        mean, k, n = _mean_ratio(e)
        note = None if e.get("targets_note") is None else str(e.get("targets_note"))
        efficiency.append({"name": s, "color": colors[s], "rows": rows, "note": note,
                           "mean": _shown(mean, e.get("mean_ratio_ci"), fmt=_ratio_text), "k": k, "n": n})
        mean_cells = [mean] + (ci_cells(e.get("mean_ratio_ci")) if mean_ci else [])
        eff_rows += [[s, num(x.get("target")), num(x.get("iid_size")), num(x.get("size"))]
                     + _cells_with_ci(x, ["ratio"], ratio_ci) + mean_cells + [note]
                     for x in (as_dict(v) for v in as_list(e.get("efficiency")))]
        if not as_list(e.get("efficiency")):
            eff_rows.append([s, None, None, None, None] + [None, None] * bool(ratio_ci) + mean_cells + [note])
    if efficiency:
        st.csvs["curation_efficiency.csv"] = csv_text(
            ["strategy", "target_test_acc", "iid_size", "size"] + _columns_with_ci(["ratio", "mean_ratio"],
                                                                                 ratio_ci + mean_ci) + ["note"],
            eff_rows)

    # each round's selection, beside the model trained on it
    round_tables, round_rows = [], []
    for s in strategies:
        recs = {_count(r.get("round")): r for r in (as_dict(x) for x in as_list(entries[s].get("rounds"))) if r}
        by_round = {p["round"]: p for p in points[s]}
        rows = []
        for rnd in sorted(set(recs) | set(by_round), key=lambda r: (r is None, r or 0.0)):
            rec, p = recs.get(rnd), by_round.get(rnd)
            status = p["status"] if p else None
            row = {"round": format_general(rnd), "size": format_general(p["size"]) if p else DASH,
                   "test_acc": _shown(p["test_acc"], p["test_acc_ci"]) if p else DASH, "run": p["run"] if p else DASH,
                   "status": status or DASH, "status_class": (status if status in CURATION_STATUSES else "other")
                   if status else None, "collection": rec is not None, "round0": rnd == 0 and rec is None}
            if rec is not None:
                chosen = format_general(num(rec.get("chosen")))
                row |= {"chosen": chosen if originals is None or chosen == DASH else
                        f"{chosen} of {format_general(originals)}",
                        "drawn_from": format_general(num(rec.get("drawn_from"))),
                        "new": format_general(num(rec.get("new"))),
                        "collected": format_general(num(rec.get("collected"))),
                        "exhausted": _exhausted(as_list(rec.get("exhausted"))),
                        "note": None if rec.get("note") is None else str(rec.get("note")),
                        "premem_mean": format_num(rec.get("premem_mean"))}
            rows.append(row)
            round_rows.append([s, rnd, _count(rec.get("chosen")) if rec else None, originals,
                               _count(rec.get("drawn_from")) if rec else None, _count(rec.get("new")) if rec else None,
                               _count(rec.get("collected")) if rec else None,
                               len(as_list(rec.get("exhausted"))) if rec else None,
                               ";".join(str(i) for i in as_list(rec.get("exhausted"))) if rec else None,
                               rec.get("note") if rec else None, num(rec.get("premem_mean")) if rec else None,
                               p["size"] if p else None, p["test_acc"] if p else None, status,
                               p["run"] if p else None])
        round_tables.append({"name": s, "color": colors[s], "desc": _strategy_desc(s, settings), "rows": rows,
                             "premem": s == "premem"})
    st.csvs["curation_rounds.csv"] = csv_text(
        ["strategy", "round", "chosen", "originals", "drawn_from", "new", "collected", "exhausted_count",
         "exhausted_ids", "note", "premem_mean", "size", "test_acc", "status", "run"], round_rows)

    ctx = st.base_ctx("curation", "Data curation") | {
        "settings": _curation_settings(cur, strategies),
        "strategies": [{"name": s, "color": colors[s], "desc": _strategy_desc(s, settings)} for s in strategies],
        "figure": figure,
        "pending": not finished,
        "has_iid": "iid" in strategies,
        "efficiency": efficiency,
        "rounds": round_tables,
        "n_seeds": len(as_list(cur.get("seeds"))) if several_seeds else None,
    }
    return Page("curation.html", "curation.html.j2", ctx)


# --------------------------------------------------------------------------------------------- run pages


def _answer_format(target: str) -> str | None:
    if "####" in target:
        return "gsm8k"
    if "\\boxed" in target or "\\fbox" in target:
        return "boxed"
    return None


def _sample_verdicts(target: str, samples: Sequence[str], given: Sequence[Any] | None) -> list[str | None]:
    """Per sample: "correct", "incorrect", "no answer" or None (unknown).  Flags given in the summary
    (``correct``: one bool per sample) win; otherwise the sample's final answer is compared with the target's
    in the format the target is written in (``####`` or ``\\boxed{}``)."""
    out: list[str | None] = []
    fmt = _answer_format(target)
    gold = None
    if fmt is not None:
        from premem.data.answers import extract_answer

        gold = extract_answer(target, fmt)
    for k, s in enumerate(samples):
        g = given[k] if given is not None and k < len(given) else None
        if isinstance(g, bool):
            out.append("correct" if g else "incorrect")
            continue
        if gold is None or fmt is None:
            out.append(None)
            continue
        from premem.data.answers import answers_match, extract_answer

        pred = extract_answer(s, fmt)
        out.append("no answer" if pred is None else ("correct" if answers_match(pred, gold, fmt) else "incorrect"))
    return out


def _samples_section(st: _Study, run: Run, root: str) -> dict | None:
    smp = as_dict(run.raw.get("samples"))
    if not smp:
        return None
    examples, rows = [], []
    for ex in (as_dict(e) for e in as_list(smp.get("examples")) if isinstance(e, Mapping)):
        target = None if ex.get("target") is None else str(ex.get("target"))
        samples = ["" if s is None else str(s) for s in as_list(ex.get("samples"))]
        given = as_list(ex.get("correct")) if ex.get("correct") is not None else None
        verdicts = _sample_verdicts(target or "", samples, given)
        acc = num(ex.get("acc"))
        mem = ex.get("memorized")
        examples.append({
            "id": str(ex.get("example_id") if ex.get("example_id") is not None else DASH),
            "question": None if ex.get("question") is None else str(ex.get("question")),
            "target": target,
            "samples": [{"text": s, "verdict": v} for s, v in zip(samples, verdicts)],
            "acc": format_num(acc, 2),
            "correct": None if acc is None else acc >= 0.5,
            "perplexity": format_num(ex.get("perplexity"), 3),
            "nll": format_num(ex.get("nll"), 3),
            "premem_acc": format_num(ex.get("premem_acc"), 2),
            "memorized": mem if isinstance(mem, bool) else None,
        })
        for s, v in zip(samples or [None], verdicts or [None]):
            rows.append([ex.get("example_id"), ex.get("question"), target, s, v, acc, num(ex.get("nll")),
                         num(ex.get("perplexity")), mem if isinstance(mem, bool) else None,
                         num(ex.get("premem_acc"))])
    fname = f"run_{run.slug}_samples.csv"
    st.csvs[fname] = csv_text(["example_id", "question", "target", "sample", "sample_verdict", "acc", "nll",
                               "perplexity", "memorized", "premem_acc"], rows)
    n_mem = sum(1 for e in examples if e["memorized"])
    return {"epoch": format_general(smp.get("epoch")), "p": format_p(smp.get("p")), "examples": examples,
            "n_memorized": n_mem, "csv": f"{root}data/{fname}"}


def _run_page(st: _Study, k: int) -> Page:
    run = st.runs[k]
    root = "../"
    r, cps = run.raw, run.checkpoints
    sett = as_dict(r.get("settings"))
    status, cls, status_text = _status(r)

    # loss: the downsampled training curve if recorded, else the mean loss of each epoch
    figures = []
    curve = [as_dict(x) for x in as_list(r.get("loss_curve"))]
    curve = [c for c in curve if num(c.get("loss")) is not None and num(c.get("step")) is not None]
    loss_csv = f"run_{run.slug}_loss.csv"
    if curve:
        st.csvs[loss_csv] = csv_text(["step", "epoch", "loss"],
                                     [[c.get("step"), c.get("epoch"), num(c.get("loss"))] for c in curve])
        div = num(r.get("diverged_step"))
        chart = svg.line_chart(
            [svg.Series("training loss", [(c.get("step"), c.get("loss")) for c in curve],
                        tooltips=[f"step {format_general(c.get('step'))} (epoch {format_general(c.get('epoch'))})"
                                  f"\nloss {format_num(c.get('loss'), 4)}" for c in curve], color=run.color)],
            title="Training loss", x_label="optimizer step", y_label="loss", markers=False, legend=False,
            vline=div, vline_label=f"diverged at step {int(div)}" if div is not None else None,
            width=560, height=320,
        )
        figures.append({"svg": Markup(chart), "csv": f"{root}data/{loss_csv}",
                        "caption": f"Training loss, {len(curve)} points evenly spaced over the run."})
    elif any(num(c.get("train_loss")) is not None for c in cps):
        st.csvs[loss_csv] = csv_text(["epoch", "mean_loss"], [[c.get("epoch"), num(c.get("train_loss"))] for c in cps])
        chart = svg.line_chart(
            [svg.Series("mean training loss", [(c.get("epoch"), c.get("train_loss")) for c in cps],
                        tooltips=[f"epoch {format_general(c.get('epoch'))}\nmean loss {format_num(c.get('train_loss'), 4)}"
                                  for c in cps], color=run.color)],
            title="Training loss (mean per epoch)", x_label="epoch", y_label="loss", legend=False,
            width=560, height=320, x_integer=True,
        )
        figures.append({"svg": Markup(chart), "csv": f"{root}data/{loss_csv}",
                        "caption": "Mean training loss of each epoch (no per-step curve recorded)."})

    cp_csv = f"run_{run.slug}_checkpoints.csv"
    cols = [(key, head, fmt) for key, head, fmt in st.checkpoint_columns if any(key in c for c in cps)]
    if cps:
        acc_series = []
        for key, label, color, dashed in (("train_acc", "train accuracy", "#7f7f7f", True),
                                          ("test_acc", "test accuracy", "#1f77b4", False),
                                          ("premem_acc", "PreMemAcc", MEMORIZED_COLOR, False)):
            if any(num(c.get(key)) is not None for c in cps):
                acc_series.append(svg.Series(label, [(c.get("epoch"), c.get(key)) for c in cps],
                                             tooltips=[f"epoch {format_general(c.get('epoch'))}\n{label}: "
                                                       f"{with_ci(c.get(key), c.get(key + '_ci'))}" for c in cps],
                                             color=color, dashed=dashed,
                                             y_errors=[ci_bounds(c.get(key + "_ci")) for c in cps], band=True))
        chart = svg.line_chart(acc_series, title="Accuracy by checkpoint", x_label="epoch", y_label="accuracy",
                               y_range=(0, 1), width=560, height=320, marker_radius=3.5, x_integer=True)
        keys = [k for k, _, _ in cols]
        cp_ci = _ci_columns(cps, keys)
        st.csvs[cp_csv] = csv_text(["epoch"] + _columns_with_ci(keys, cp_ci),
                                   [[c.get("epoch")] + _cells_with_ci(c, keys, cp_ci) for c in cps])
        banded = _ci_columns(cps, ["train_acc", "test_acc", "premem_acc"])
        figures.append({"svg": Markup(chart), "csv": f"{root}data/{cp_csv}",
                        "caption": "Train accuracy, test accuracy and PreMemAcc at each checkpoint."
                                   + (" Shaded: each checkpoint's interval." if banded else "")})

    dyn = st.dynamics_figure(run.id, root=root) if st.dynamics_entry(run.id) is not None else None
    err = _error(r)
    ctx = st.base_ctx("runs", run.name, root) | {
        "run": {"name": run.name, "id": run.id, "color": run.color, "status": status, "status_class": cls,
                "status_text": status_text, "error": err},
        "settings": [{"key": str(key), "value": _setting(key, v)} for key, v in sett.items()],
        "figures": figures,
        "columns": [{"key": key, "head": head} for key, head, _ in cols],
        "checkpoints": [{"epoch": format_general(c.get("epoch")),
                         "cells": [_shown(c.get(key), c.get(key + "_ci"), fmt=fmt) for key, _, fmt in cols]}
                        for c in cps],
        "checkpoints_csv": f"{root}data/{cp_csv}" if cps else None,
        "dyn": dyn,
        "dyn_legend": _dyn_legend([dyn] if dyn else []),
        "samples": _samples_section(st, run, root),
        "prev": {"name": st.runs[k - 1].name, "href": f"{st.runs[k - 1].slug}.html"} if k > 0 else None,
        "next": {"name": st.runs[k + 1].name, "href": f"{st.runs[k + 1].slug}.html"}
        if k + 1 < len(st.runs) else None,
    }
    return Page(run.href, "run.html.j2", ctx)


# --------------------------------------------------------------------------------------------- all


def build_report(summary: Mapping[str, Any] | None, dynamics: Mapping[str, Any] | None) -> Report:
    """Every page's context and every CSV file, from the analysis' ``summary`` and ``dynamics``."""
    st = _Study(as_dict(summary), as_dict(dynamics))
    pages = [_index(st), _dynamics_page(st), _measures_page(st), _robustness_page(st)]
    if st.has_curation:
        pages.append(_curation_page(st))
    pages += [_run_page(st, k) for k in range(len(st.runs))]
    csv_links = sorted(st.csvs)
    for page in pages:
        page.ctx["csv_files"] = csv_links
    return Report(pages, st.csvs)
