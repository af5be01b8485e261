"""The study's HTML report: one self-contained page (inline CSS and SVG, no network), its data as CSV, and the
summary as JSON.

Public entry point: :func:`write_report`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2
from markupsafe import Markup

from premem.atomic import write_text

from . import svg

__all__ = [
    "CATEGORIES",
    "MAX_DYNAMICS_ROWS",
    "format_lr",
    "format_num",
    "prepare_dynamics",
    "render_html",
    "write_report",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "index.html.j2"
MAX_DYNAMICS_ROWS = 64
DASH = "–"

#: category code -> (label, colour) for the per-example dynamics pictures.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("incorrect, not memorized", "#e3e3e3"),
    ("correct, not memorized", "#1b9e77"),
    ("incorrect, memorized", "#d95f02"),
    ("correct, memorized", "#7570b3"),
)


# --------------------------------------------------------------------------------------------- formatting


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_num(v: Any, decimals: int = 3) -> str:
    """``v`` with ``decimals`` decimals; "–" when missing or not a finite number."""
    f = _num(v)
    if f is None:
        return DASH
    s = f"{f:.{decimals}f}"
    if s.lstrip("-").strip("0.") == "":
        s = s.lstrip("-")  # no "-0.000"
    return s


def format_lr(v: Any) -> str:
    """Learning rate in scientific notation: 2e-5, 2.5e-4; "–" when missing."""
    f = _num(v)
    if f is None:
        return DASH
    if f == 0:
        return "0"
    m, e = f"{f:.2e}".split("e")
    m = m.rstrip("0").rstrip(".")
    return f"{m}e{int(e)}"


def _format_general(v: Any) -> str:
    f = _num(v)
    if f is None:
        return DASH if v is None or isinstance(v, float) else str(v)
    if f == int(f) and abs(f) < 1e15:
        return str(int(f))
    return f"{f:.4g}"


def _format_p(v: Any) -> str:
    f = _num(v)
    if f is None:
        return DASH
    s = f"{f:.3f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


# --------------------------------------------------------------------------------------------- I/O


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v for v in r])
    return buf.getvalue()


def _jsonable(obj: Any) -> Any:
    """A JSON-safe copy: numpy scalars/arrays to Python, paths to str, NaN/inf to None, keys to str."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return _jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return _jsonable(obj.item())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def _slug(s: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")[:60] or "run"
    out, k = base, 2
    while out.lower() in taken:
        out = f"{base}_{k}"
        k += 1
    taken.add(out.lower())
    return out


def _as_dict(v: Any) -> dict:
    return dict(v) if isinstance(v, Mapping) else {}


def _as_list(v: Any) -> list:
    if v is None or isinstance(v, (str, bytes, Mapping)):
        return []
    if hasattr(v, "tolist"):
        v = v.tolist()
    try:
        return list(v)
    except TypeError:
        return []


# --------------------------------------------------------------------------------------------- dynamics


@dataclass
class PreparedDynamics:
    epochs: list[Any]
    example_ids: list[Any]  # shown rows, sorted
    rows: list[list[int | None]]  # shown rows, sorted
    n_total: int
    all_example_ids: list[Any] = field(default_factory=list)  # every example, input order
    all_rows: list[list[int | None]] = field(default_factory=list)


def _code(v: Any) -> int | None:
    f = _num(v)
    if f is None or f != int(f) or not 0 <= int(f) <= 3:
        return None
    return int(f)


def prepare_dynamics(entry: Mapping[str, Any] | None, max_rows: int = MAX_DYNAMICS_ROWS) -> PreparedDynamics:
    """Clean one run's dynamics, sort its examples (first epoch memorized, then first epoch correct; never
    memorized / never correct last) and keep at most ``max_rows`` of them, evenly spaced in that order."""
    entry = _as_dict(entry)
    cats = [_as_list(r) for r in _as_list(entry.get("categories"))]
    epochs = _as_list(entry.get("epochs"))
    n_cols = max([len(epochs)] + [len(r) for r in cats]) if (epochs or cats) else 0
    if len(epochs) < n_cols:
        epochs = epochs + [f"#{k + 1}" for k in range(len(epochs), n_cols)]
    rows = [[_code(v) for v in r] + [None] * (n_cols - len(r)) for r in cats]
    ids = _as_list(entry.get("example_ids"))
    ids = [ids[i] if i < len(ids) else f"#{i}" for i in range(len(rows))]

    big = n_cols + 1

    def key(i: int) -> tuple[int, int, int]:
        r = rows[i]
        first_mem = next((j for j, c in enumerate(r) if c in (2, 3)), big)
        first_cor = next((j for j, c in enumerate(r) if c in (1, 3)), big)
        return (first_mem, first_cor, i)

    order = sorted(range(len(rows)), key=key)
    n = len(order)
    if n > max_rows > 0:
        if max_rows == 1:
            picks = [order[0]]
        else:
            picks = [order[round(k * (n - 1) / (max_rows - 1))] for k in range(max_rows)]
    else:
        picks = order
    return PreparedDynamics(
        epochs=epochs,
        example_ids=[ids[i] for i in picks],
        rows=[rows[i] for i in picks],
        n_total=n,
        all_example_ids=ids,
        all_rows=rows,
    )


# --------------------------------------------------------------------------------------------- view model


def _checkpoints(run: Mapping[str, Any]) -> list[dict]:
    cps = [_as_dict(c) for c in _as_list(run.get("checkpoints"))]
    cps = [c for c in cps if c]

    def ek(c: dict) -> tuple[int, float]:
        e = _num(c.get("epoch"))
        return (0, e) if e is not None else (1, 0.0)

    return sorted(cps, key=ek)


def _r2_text(v: Any) -> str:
    return f"R² = {format_num(v)}"


def _run_tip(name: str, run_id: str, c: Mapping[str, Any]) -> str:
    lines = [name if name == run_id else f"{name} ({run_id})", f"epoch {_format_general(c.get('epoch'))}"]
    for key, lbl in (("train_acc", "train acc"), ("test_acc", "test acc"), ("premem_acc", "PreMemAcc"),
                     ("memorized_frac", "memorized"), ("train_nll", "train NLL")):
        if key in c:
            lines.append(f"{lbl}: {format_num(c.get(key))}")
    return "\n".join(lines)


def _headline_sentence(r2_pm: float | None, r2_tr: float | None, n_points: int, n_runs: int) -> str:
    if n_points == 0 and r2_pm is None and r2_tr is None:
        return "No checkpoint has both PreMemAcc and test accuracy yet."
    base = (f"R² is measured about the line y = x over {n_points} checkpoint{'s' if n_points != 1 else ''} of "
            f"{n_runs} run{'s' if n_runs != 1 else ''}: 1 means the measure equals test accuracy, 0 or less means "
            f"it predicts test accuracy no better than a constant.")
    if r2_pm is None or r2_tr is None:
        return base
    if r2_pm >= 0.8 and r2_pm > r2_tr:
        verdict = (f" PreMemAcc lies close to y = x (R² = {format_num(r2_pm)}) while plain train accuracy does not "
                   f"(R² = {format_num(r2_tr)}): pre-memorization accuracy predicts test accuracy.")
    elif r2_pm > r2_tr:
        verdict = (f" PreMemAcc tracks test accuracy better than train accuracy does (R² {format_num(r2_pm)} vs "
                   f"{format_num(r2_tr)}), but not closely.")
    else:
        verdict = (f" Here PreMemAcc (R² = {format_num(r2_pm)}) does not predict test accuracy better than train "
                   f"accuracy (R² = {format_num(r2_tr)}).")
    return base + verdict


def _build(summary: Mapping[str, Any], dynamics: Mapping[str, Any]) -> tuple[dict, dict[str, str]]:
    """The template context and the CSV files (name -> text)."""
    csvs: dict[str, str] = {}
    spec = _as_dict(summary.get("spec"))
    premem = _as_dict(summary.get("premem"))
    train = _as_dict(summary.get("train_acc"))
    runs_in = [_as_dict(r) for r in _as_list(summary.get("runs"))]
    notes = [str(n) for n in _as_list(summary.get("notes")) if n is not None and str(n).strip()]

    # runs
    runs = []
    for k, r in enumerate(runs_in):
        rid = str(r.get("id") if r.get("id") is not None else f"run-{k + 1}")
        name = str(r.get("name") if r.get("name") is not None else rid)
        runs.append({"id": rid, "name": name, "raw": r, "checkpoints": _checkpoints(r), "color": svg.color_for(k)})

    # scatter panels
    n_points = 0
    panels = []
    for key, label, slug, r2 in (
        ("train_acc", "Train accuracy", "train_vs_test", train.get("r2")),
        ("premem_acc", "PreMemAcc", "premem_vs_test", premem.get("r2")),
    ):
        series, rows = [], []
        for run in runs:
            pts, tips = [], []
            for c in run["checkpoints"]:
                pts.append((c.get(key), c.get("test_acc")))
                tips.append(_run_tip(run["name"], run["id"], c))
                rows.append([run["id"], run["name"], c.get("epoch"), _num(c.get(key)), _num(c.get("test_acc"))])
            series.append(svg.Series(name=run["name"], points=pts, tooltips=tips, color=run["color"]))
        if key == "premem_acc":
            n_points = sum(1 for r in rows if r[3] is not None and r[4] is not None)
        csvs[f"{slug}.csv"] = _csv_text(["run_id", "run_name", "epoch", key, "test_acc"], rows)
        chart = svg.scatter_chart(
            series,
            title=f"{label} vs test accuracy",
            x_label=label,
            y_label="Test accuracy",
            x_range=(0, 1),
            y_range=(0, 1),
            diagonal=True,
            annotation=_r2_text(r2),
            width=470,
            height=440,
        )
        panels.append({"title": f"{label} vs test accuracy", "svg": Markup(chart), "csv": f"data/{slug}.csv",
                       "r2": format_num(r2)})
    legend_runs = [{"name": r["name"], "color": r["color"], "id": r["id"]} for r in runs if r["checkpoints"]]

    # calibration
    calib = [_as_dict(c) for c in _as_list(premem.get("calibration"))]
    calib = sorted([c for c in calib if _num(c.get("p")) is not None], key=lambda c: _num(c.get("p")))
    p = _num(premem.get("p"))
    calibration = None
    if calib:
        csvs["calibration.csv"] = _csv_text(
            ["p", "r2", "r2_line", "chosen"],
            [[_num(c.get("p")), _num(c.get("r2")), _num(c.get("r2_line")),
              int(p is not None and abs(_num(c.get("p")) - p) < 1e-12)] for c in calib],
        )
        yvals = [v for c in calib for v in (_num(c.get("r2")), _num(c.get("r2_line"))) if v is not None]
        floor = -1.0
        clipped = bool(yvals) and min(yvals) < floor
        y_range = (floor, 1.0) if clipped else (min(min(yvals, default=0.0), 0.0), 1.0)
        ser = [
            svg.Series(
                name="R² about y = x",
                points=[(c.get("p"), c.get("r2")) for c in calib],
                tooltips=[f"p = {_format_p(c.get('p'))}\nR² about y = x: {format_num(c.get('r2'))}" for c in calib],
                color="#1f77b4",
            ),
            svg.Series(
                name="R² of fitted line",
                points=[(c.get("p"), c.get("r2_line")) for c in calib],
                tooltips=[f"p = {_format_p(c.get('p'))}\nR² of fitted line: {format_num(c.get('r2_line'))}"
                          for c in calib],
                color="#ff7f0e",
                dashed=True,
            ),
        ]
        chart = svg.line_chart(
            ser,
            title="Calibration: R² against p",
            x_label="p (log of mean target NLL)",
            y_label="R² (calibration runs)",
            y_range=y_range,
            vline=p,
            vline_label=f"chosen p = {_format_p(p)}" if p is not None else None,
            width=720,
            height=340,
        )
        calibration = {"svg": Markup(chart), "csv": "data/calibration.csv", "clipped": clipped, "floor": floor}
    cal_ids = [str(x) for x in _as_list(premem.get("calibration_runs"))]
    names_by_id = {r["id"]: r["name"] for r in runs}
    calibration_runs = [names_by_id.get(i, i) for i in cal_ids]

    # perplexity gap
    gap = _as_dict(summary.get("perplexity_gap"))
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
            if key in gap:
                gap_rows.append({"label": label, "value": format_num(gap.get(key), 4), "expl": expl})
        csvs["perplexity_gap.csv"] = _csv_text(["quantity", "value"], [[k, _num(v)] for k, v in gap.items()])

    # dynamics
    dyn_in = _as_dict(dynamics)
    ordered_ids = [r["id"] for r in runs if r["id"] in dyn_in] + [str(k) for k in dyn_in if str(k) not in names_by_id]
    taken: set[str] = set()
    dyn_figs = []
    for rid in ordered_ids:
        entry = dyn_in.get(rid)
        if entry is None:
            # keys that are not strings in the input
            entry = next((v for k, v in dyn_in.items() if str(k) == rid), None)
        prep = prepare_dynamics(entry)
        name = names_by_id.get(rid, rid)
        slug = _slug(rid, taken)
        fname = f"dynamics_{slug}.csv"
        csvs[fname] = _csv_text(
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
            missing=("no value", "#ffffff"),
        )
        dyn_figs.append({"name": name, "id": rid, "svg": Markup(chart), "csv": f"data/{fname}",
                         "shown": len(prep.rows), "total": prep.n_total})
    dyn_legend = Markup(svg.legend(list(CATEGORIES), columns=4)) if dyn_figs else None

    # runs table
    table = []
    run_rows = []
    for run in runs:
        r, cps = run["raw"], run["checkpoints"]
        st = _as_dict(r.get("settings"))
        last = cps[-1] if cps else {}
        status = str(r.get("status") or "unknown")
        err = r.get("error")
        err = None if err is None or str(err).strip() == "" else str(err)
        settings_tip = "; ".join([f"id: {run['id']}"] + [f"{k}: {v}" for k, v in st.items()])
        table.append({
            "name": run["name"],
            "id": run["id"],
            "color": run["color"],
            "tip": settings_tip,
            "lr": format_lr(st.get("learning_rate")),
            "epochs": _format_general(st.get("epochs")),
            "fraction": _format_general(st.get("dataset_fraction")),
            "status": status,
            "status_class": status if status in ("done", "failed", "incomplete") else "other",
            "n_checkpoints": len(cps),
            "train": format_num(last.get("train_acc")),
            "test": format_num(last.get("test_acc")),
            "premem": format_num(last.get("premem_acc")),
            "error": err,
            "error_short": None if err is None else _short(err),
        })
        run_rows.append([run["id"], run["name"], status, st.get("model"), st.get("dataset"),
                         _num(st.get("learning_rate")), st.get("epochs"), _num(st.get("dataset_fraction")),
                         len(cps), _num(last.get("train_acc")), _num(last.get("test_acc")),
                         _num(last.get("premem_acc")), err])
    csvs["runs.csv"] = _csv_text(
        ["run_id", "run_name", "status", "model", "dataset", "learning_rate", "epochs", "dataset_fraction",
         "n_checkpoints", "final_train_acc", "final_test_acc", "final_premem_acc", "error"], run_rows)
    csvs["checkpoints.csv"] = _csv_text(
        ["run_id", "run_name", "epoch", "train_acc", "test_acc", "premem_acc", "train_nll", "memorized_frac",
         "train_loss"],
        [[run["id"], run["name"], c.get("epoch")] + [_num(c.get(k)) for k in
         ("train_acc", "test_acc", "premem_acc", "train_nll", "memorized_frac", "train_loss")]
         for run in runs for c in run["checkpoints"]],
    )

    n_runs_with_points = len({r[0] for r in _premem_points(runs)})
    r2_pm, r2_tr = _num(premem.get("r2")), _num(train.get("r2"))
    ctx = {
        "study_name": str(spec.get("name") or "premem study"),
        "spec_path": str(spec.get("path") or ""),
        "spec_text": None if spec.get("text") is None else str(spec.get("text")),
        "generated_at": str(summary.get("generated_at") or DASH),
        "notes": notes,
        "headline": {
            "p": _format_p(p),
            "threshold": format_num(gap.get("threshold_perplexity") if gap else
                                    (math.exp(math.exp(p)) if p is not None and p < 5 else None), 4),
            "r2_premem": format_num(r2_pm),
            "r2_premem_line": format_num(premem.get("r2_line")),
            "r2_train": format_num(r2_tr),
            "r2_train_line": format_num(train.get("r2_line")),
            "sentence": _headline_sentence(r2_pm, r2_tr, n_points, n_runs_with_points),
        },
        "panels": panels,
        "legend_runs": legend_runs,
        "calibration": calibration,
        "calibration_runs": calibration_runs,
        "gap_rows": gap_rows,
        "dyn_figs": dyn_figs,
        "dyn_legend": dyn_legend,
        "max_rows": MAX_DYNAMICS_ROWS,
        "runs": table,
        "n_runs": len(runs),
        "n_failed": sum(1 for t in table if t["status"] == "failed"),
        "csv_files": sorted(csvs),
    }
    return ctx, csvs


def _premem_points(runs: list[dict]) -> list[tuple[str, Any]]:
    return [(r["id"], c.get("epoch")) for r in runs for c in r["checkpoints"]
            if _num(c.get("premem_acc")) is not None and _num(c.get("test_acc")) is not None]


def _short(err: str, n: int = 90) -> str:
    first = err.strip().splitlines()[0] if err.strip() else err
    return first if len(first) <= n else first[: n - 1] + "…"


# --------------------------------------------------------------------------------------------- rendering


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(summary: Mapping[str, Any] | None, dynamics: Mapping[str, Any] | None) -> str:
    """The report page as a string (no files written)."""
    ctx, _ = _build(_as_dict(summary), _as_dict(dynamics))
    return _env().get_template(TEMPLATE_NAME).render(**ctx)


def write_report(summary: Mapping[str, Any], dynamics: Mapping[str, Any] | None, out_dir: Path) -> Path:
    """Write ``out_dir/index.html``, ``out_dir/summary.json`` and ``out_dir/data/*.csv``; return the page's path.

    Every file is written atomically (temp file in the same folder, then ``os.replace``); the page is written
    last so it never links to a file that is not there yet.  Missing optional keys in ``summary`` and
    ``dynamics`` are tolerated (shown as "–" or left out).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_d = _as_dict(summary)
    ctx, csvs = _build(summary_d, _as_dict(dynamics))
    page = _env().get_template(TEMPLATE_NAME).render(**ctx)
    data_dir = out_dir / "data"
    for name, text in csvs.items():
        write_text(data_dir / name, text)
    write_text(
        out_dir / "summary.json",
        json.dumps(_jsonable(summary_d), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
    )
    index = out_dir / "index.html"
    write_text(index, page)
    return index
