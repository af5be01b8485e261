"""The study's HTML report: a few self-contained pages (inline CSS, SVG and a little JavaScript, no network),
every figure's data as CSV, and the summary as JSON.

Public entry points: :func:`write_report` (all files) and :func:`render_pages` / :func:`render_html` (the
pages as strings).  What each page shows is built in :mod:`premem.report.pages`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import jinja2
from markupsafe import Markup, escape

from premem.atomic import write_text

from .common import DASH, as_dict, format_lr, format_num, jsonable
from .dynamics import CATEGORIES, MAX_DYNAMICS_ROWS, PreparedDynamics, prepare_dynamics
from .pages import build_report

__all__ = [
    "CATEGORIES",
    "DASH",
    "MAX_DYNAMICS_ROWS",
    "PreparedDynamics",
    "format_lr",
    "format_num",
    "prepare_dynamics",
    "render_html",
    "render_pages",
    "write_report",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
#: pages written only when the summary has their section; a previous report's copy is removed otherwise
OPTIONAL_PAGES = ("curation.html",)


def _ticks(text: str) -> Markup:
    """Escaped ``text`` with `backticked` spans as <code>."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ticks"] = _ticks
    return env


def _render(summary: Mapping[str, Any] | None, dynamics: Mapping[str, Any] | None) -> tuple[dict[str, str], dict]:
    report = build_report(as_dict(summary), as_dict(dynamics))
    env = _env()
    pages = {p.path: env.get_template(p.template).render(**p.ctx) for p in report.pages}
    return pages, report.csvs


def render_pages(summary: Mapping[str, Any] | None, dynamics: Mapping[str, Any] | None) -> dict[str, str]:
    """Every page as a string, by its path relative to the report's folder (no files written)."""
    return _render(summary, dynamics)[0]


def render_html(summary: Mapping[str, Any] | None, dynamics: Mapping[str, Any] | None) -> str:
    """The report's front page (``index.html``) as a string (no files written)."""
    return render_pages(summary, dynamics)["index.html"]


def _remove_stale(folder: Path, suffix: str, keep: set[str]) -> None:
    """Files of a previous report (a renamed run's page, a dropped figure's CSV) that this one does not write."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.is_file() and p.name.endswith(suffix) and p.name not in keep:
            p.unlink(missing_ok=True)


def write_report(summary: Mapping[str, Any], dynamics: Mapping[str, Any] | None, out_dir: Path) -> Path:
    """Write the report's pages (``index.html``, ``dynamics.html``, ``measures.html``, ``robustness.html``,
    ``curation.html`` when the summary has a curation section, ``runs/<run>.html``), ``summary.json`` and
    ``data/*.csv`` under ``out_dir``; return ``index.html``'s path.

    Every file is written atomically (temp file in the same folder, then ``os.replace``); the data first and
    ``index.html`` last, so no page links to a file that is not there yet.  Pages and CSV files a previous
    report left that this one does not write are removed.  Missing optional keys in ``summary`` and
    ``dynamics`` are tolerated (shown as "–", or a page says what was not computed).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_d = as_dict(summary)
    pages, csvs = _render(summary_d, dynamics)
    data_dir = out_dir / "data"
    for name, text in csvs.items():
        write_text(data_dir / name, text)
    _remove_stale(data_dir, ".csv", set(csvs))
    write_text(
        out_dir / "summary.json",
        json.dumps(jsonable(summary_d), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
    )
    for path in sorted(pages, key=lambda p: (p == "index.html", p)):
        write_text(out_dir / path, pages[path])
    _remove_stale(out_dir / "runs", ".html", {Path(p).name for p in pages if p.startswith("runs/")})
    for name in OPTIONAL_PAGES:
        if name not in pages:
            (out_dir / name).unlink(missing_ok=True)
    return out_dir / "index.html"
