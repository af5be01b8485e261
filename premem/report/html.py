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

from .common import DASH, as_dict, format_lr, format_num, jsonable
from .dynamics import CATEGORIES, MAX_DYNAMICS_ROWS, PreparedDynamics, prepare_dynamics
from .folder import ReportFolderError, publish
from .pages import build_report

__all__ = [
    "CATEGORIES",
    "DASH",
    "MAX_DYNAMICS_ROWS",
    "PreparedDynamics",
    "ReportFolderError",
    "format_lr",
    "format_num",
    "prepare_dynamics",
    "render_html",
    "render_pages",
    "report_files",
    "write_report",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"


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


def report_files(summary: Mapping[str, Any], dynamics: Mapping[str, Any] | None) -> dict[str, str]:
    """Every file of the report by its path relative to the report's folder: the pages, ``summary.json`` and
    ``data/*.csv`` (no files written)."""
    summary_d = as_dict(summary)
    pages, csvs = _render(summary_d, dynamics)
    files = {f"data/{name}": text for name, text in csvs.items()}
    files["summary.json"] = json.dumps(jsonable(summary_d), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    files.update(pages)
    return files


def write_report(summary: Mapping[str, Any], dynamics: Mapping[str, Any] | None, out_dir: Path,
                 kept: list[str] | None = None) -> Path:
    """Write the report's pages (``index.html``, ``dynamics.html``, ``measures.html``, ``robustness.html``,
    ``curation.html`` when the summary has a curation section, ``runs/<run>.html``), ``summary.json`` and
    ``data/*.csv`` under ``out_dir``; return ``index.html``'s path.

    The folder must be premem's (new, empty, or holding a report premem wrote: :mod:`premem.report.folder`),
    else ReportFolderError is raised before anything is written. The report is replaced whole: a reader (or a
    run killed half-way) sees the old report or the new one, never a mix. Files of the previous report that
    this one does not write are removed; files premem did not write are never removed (their paths are added
    to ``kept`` when they had to be left beside the folder).  Missing optional keys in ``summary`` and
    ``dynamics`` are tolerated (shown as "–", or a page says what was not computed).
    """
    left = publish(Path(out_dir), report_files(summary, dynamics))
    if kept is not None:
        kept.extend(left)
    return Path(out_dir) / "index.html"
