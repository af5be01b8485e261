"""Tests of the HTML report (premem.report.html) and its SVG helpers (premem.report.svg). Fast, no network.

The pages added for the measures, robustness and run pages are tested in test_pages.py; the whole report in a
real browser in test_browser.py."""

from __future__ import annotations

import csv
import json
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from premem.report import svg
from premem.report.html import format_lr, format_num, prepare_dynamics, render_html, write_report

SVG_RE = re.compile(r"<svg\b.*?</svg>", re.S)
NS = "{http://www.w3.org/2000/svg}"

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Balance(HTMLParser):
    """Checks that every opened element is closed, in order (void and self-closing elements excepted)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.titles: list[str] = []
        self._in_title = 0

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "title":
            self._in_title += 1
            self.titles.append("")

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}> at {self.getpos()}")
            return
        self.stack.pop()
        if tag == "title":
            self._in_title -= 1

    def handle_data(self, data):
        if self._in_title:
            self.titles[-1] += data


def _summary() -> dict:
    runs = []
    for k, lr in enumerate((5e-5, 2e-5)):
        cps = []
        for e in (1, 2, 3):
            cps.append({
                "epoch": e,
                "train_acc": 0.3 + 0.2 * e,
                "test_acc": 0.2 + 0.05 * e + 0.02 * k,
                "premem_acc": 0.21 + 0.05 * e + 0.02 * k,
                "train_nll": 1.0 / e,
                "memorized_frac": e / 3,
                "train_loss": 0.5 / e,
            })
        runs.append({
            "id": f"run-{k}",
            "name": f"Run <{k}> & lr {lr:g}",
            "status": "done",
            "settings": {"model": "tiny", "dataset": "synthetic", "learning_rate": lr, "epochs": 3,
                         "dataset_fraction": 1.0},
            "error": None,
            "checkpoints": cps,
        })
    runs[1]["checkpoints"][1]["premem_acc"] = None  # a missing value somewhere
    runs[1]["checkpoints"].reverse()  # out of epoch order on purpose
    runs.append({
        "id": "run-failed",
        "name": "Broken run",
        "status": "failed",
        "settings": {"learning_rate": 2e-4, "epochs": 3, "dataset_fraction": 0.5},
        "error": "RuntimeError: out of memory <boom>",
        "checkpoints": [],
    })
    return {
        "spec": {"name": "unit study", "path": "specs/unit.yaml",
                 "text": "name: unit study\n# <script>alert('x')</script>\nruns: [a, b]\n"},
        "generated_at": "2025-01-01T00:00:00+00:00",
        "premem": {
            "p": -2.4, "r2": 0.9137, "r2_line": 0.9421,
            "calibration_runs": ["run-0", "run-1"],
            "calibration": [{"p": p, "r2": 0.9 - (p + 2.4) ** 2, "r2_line": 0.95 - (p + 2.2) ** 2}
                            for p in (-3.0, -2.8, -2.6, -2.4, -2.2, -2.0, -1.8)],
        },
        "train_acc": {"r2": -1.2345, "r2_line": 0.31},
        "perplexity_gap": {
            "memorized_correct_median_perplexity": 1.031,
            "unmemorized_correct_median_perplexity": 1.42,
            "irreducible_perplexity": None,
            "threshold_perplexity": math.exp(math.exp(-2.4)),
        },
        "notes": ["targets not reached: <spread> too small"],
        "runs": runs,
    }


def _dynamics() -> dict:
    out = {}
    for k in range(2):
        cats = [[(i + e + k) % 4 for e in range(3)] for i in range(100)]
        out[f"run-{k}"] = {"epochs": [1, 2, 3], "example_ids": list(range(100)), "categories": cats}
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    summary = _summary()
    index = write_report(summary, _dynamics(), out)
    return out, index, summary, index.read_text(encoding="utf-8")


def _pages(out) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in out.rglob("*.html")}


# --------------------------------------------------------------------------------------------- write_report


def test_files_exist(report):
    out, index, _, _ = report
    assert index == out / "index.html" and index.is_file()
    assert (out / "summary.json").is_file()
    csvs = sorted(p.name for p in (out / "data").glob("*.csv"))
    for name in ("train_vs_test.csv", "premem_vs_test.csv", "calibration.csv", "runs.csv", "checkpoints.csv",
                 "dynamics_run-0.csv", "dynamics_run-1.csv"):
        assert name in csvs
    assert not list(out.glob(".*.tmp")) and not list((out / "data").glob(".*.tmp"))


def test_csvs_linked_and_parse(report):
    out, _, _, page = report
    for name, html in _pages(out).items():
        hrefs = re.findall(r'href="((?:\.\./)?data/[^"]+\.csv)"', html)
        for href in hrefs:
            assert (out / name).parent.joinpath(href).resolve().is_file(), (name, href)
    assert "download CSV" in page
    with open(out / "data" / "premem_vs_test.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert any(r["premem_acc"] == "" for r in rows)  # the None value is an empty cell
    with open(out / "data" / "runs.csv", newline="") as fh:
        runs = list(csv.DictReader(fh))
    assert runs[2]["status"] == "failed" and "out of memory" in runs[2]["error"]


def test_summary_round_trips(report):
    out, _, summary, _ = report
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == summary


def test_html_balanced(report):
    out, _, _, _ = report
    pages = _pages(out)
    assert {"index.html", "dynamics.html", "measures.html", "robustness.html"} <= set(pages)
    for name, page in pages.items():
        p = _Balance()
        p.feed(page)
        p.close()
        assert not p.errors, (name, p.errors[:5])
        assert p.stack == [], name
        assert page.lstrip().lower().startswith("<!doctype html>")


def test_every_svg_is_well_formed(report):
    out, _, _, page = report
    # two panels and calibration on the front page; the legend and two heatmaps on the dynamics page
    assert len(SVG_RE.findall(page)) == 3
    assert len(SVG_RE.findall((out / "dynamics.html").read_text(encoding="utf-8"))) == 3
    for name, html in _pages(out).items():
        for frag in SVG_RE.findall(html):
            root = ET.fromstring(frag)
            assert root.tag == NS + "svg"


def test_no_external_urls(report):
    out, _, _, _ = report
    for name, page in _pages(out).items():
        urls = re.findall(r"https?://[^\s\"'<>)]*", page)
        assert set(urls) <= {"http://www.w3.org/2000/svg"}, (name, set(urls))
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S | re.I)
        assert len(scripts) == 1, name  # the inline tooltip script, nothing loaded
        attrs, body = scripts[0]
        assert "src" not in attrs
        assert "fetch(" not in body and "XMLHttpRequest" not in body and "import" not in body
        assert "<link" not in page.lower() and "@import" not in page and "url(http" not in page
        assert "<iframe" not in page.lower() and "<img" not in page.lower()


def test_numbers_and_tooltips(report):
    out, _, _, page = report
    assert "0.914" in page  # R2 PreMemAcc
    assert "-1.234" in page  # R2 train acc
    assert "0.942" in page  # R2 fitted line
    assert "-2.4" in page  # chosen p
    assert "2e-5" in page and "5e-5" in page  # learning rates
    assert "1.0310" in page  # perplexity gap
    # tooltips (<title> in the SVG markers) name the run, escaped
    titles = []
    for frag in SVG_RE.findall(page):
        titles += ["".join(t.itertext()) for t in ET.fromstring(frag).iter(NS + "title")]
    run_tips = [t for t in titles if t.startswith("Run <1> & lr 2e-05") and "epoch 2" in t]
    assert run_tips and any("PreMemAcc: –" in t for t in run_tips)
    dyn_titles = []
    for frag in SVG_RE.findall((out / "dynamics.html").read_text(encoding="utf-8")):
        dyn_titles += ["".join(t.itertext()) for t in ET.fromstring(frag).iter(NS + "title")]
    assert any("example 5" in t for t in dyn_titles)  # heatmap cells


def test_escaping(report):
    _, _, _, page = report
    assert "&lt;script&gt;alert(" in page
    assert "<script>alert" not in page
    assert "Run &lt;0&gt; &amp; lr" in page
    assert "&lt;boom&gt;" in page  # error of the failed run
    assert "&lt;spread&gt;" in page  # note


def test_failed_run_and_counts(report):
    out, _, _, page = report
    assert "Broken run" in page and "failed" in page
    assert "RuntimeError: out of memory" in page
    assert "64 of 100 examples shown" in (out / "dynamics.html").read_text(encoding="utf-8")
    assert 'id="dynamics"' not in page  # the heatmaps have a page of their own
    # section order
    order = [page.index(s) for s in ('<nav class="site"', "<h1>unit study", 'class="notes"', 'id="headline"',
                                     "<title>Train accuracy vs test accuracy", "<title>PreMemAcc vs test accuracy",
                                     'id="calibration"', 'id="perplexity"', 'id="runs"', 'id="spec"')]
    assert order == sorted(order)


def test_rewrite_is_atomic_and_idempotent(report, tmp_path):
    summary = _summary()
    a = write_report(summary, _dynamics(), tmp_path).read_text(encoding="utf-8")
    b = write_report(summary, _dynamics(), tmp_path).read_text(encoding="utf-8")
    strip = lambda s: re.sub(r"premem-clip-\d+", "", s)  # noqa: E731
    assert strip(a) == strip(b)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_minimal_and_odd_inputs(tmp_path):
    # nothing but an empty dict: every section degrades, nothing crashes
    index = write_report({}, {}, tmp_path / "empty")
    page = index.read_text(encoding="utf-8")
    assert "–" in page
    for frag in SVG_RE.findall(page):
        ET.fromstring(frag)
    assert json.loads((tmp_path / "empty" / "summary.json").read_text()) == {}
    # NaN, None everywhere, strings for numbers, dynamics for an unknown run, ragged categories
    summary = {
        "premem": {"p": None, "r2": float("nan"), "calibration": [{"p": -2.0, "r2": None}]},
        "train_acc": None,
        "runs": [{"id": "x", "checkpoints": [{"epoch": None, "train_acc": "oops", "test_acc": float("inf")}],
                  "settings": None, "status": None}],
    }
    dyn = {"ghost": {"epochs": [1, 2], "example_ids": ["a"], "categories": [[1], [3, 2, 9], None]}}
    write_report(summary, dyn, tmp_path / "odd")
    for page in _pages(tmp_path / "odd").values():
        for frag in SVG_RE.findall(page):
            ET.fromstring(frag)
    saved = json.loads((tmp_path / "odd" / "summary.json").read_text())
    assert saved["premem"]["r2"] is None  # NaN becomes null, the file stays valid JSON
    assert "ghost" in (tmp_path / "odd" / "dynamics.html").read_text(encoding="utf-8")


def test_render_html_matches_written_page(tmp_path):
    page = render_html(_summary(), _dynamics())
    assert "PreMemAcc vs test accuracy" in page


# --------------------------------------------------------------------------------------------- dynamics


def test_prepare_dynamics_sorts_and_samples():
    cats = [[0, 0, 0], [0, 1, 3], [2, 3, 3], [1, 1, 1], [0, 2, 2]]
    prep = prepare_dynamics({"epochs": [1, 2, 3], "example_ids": list("abcde"), "categories": cats})
    # first memorized epoch, then first correct epoch; never memorized last
    assert prep.example_ids == ["c", "e", "b", "d", "a"]
    assert prep.n_total == 5
    big = prepare_dynamics({"epochs": [1], "example_ids": list(range(500)),
                            "categories": [[i % 4] for i in range(500)]}, max_rows=64)
    assert len(big.rows) == 64 and big.n_total == 500
    assert len(set(big.example_ids)) == 64
    # evenly spaced: every category is represented in proportion
    counts = [sum(1 for r in big.rows if r[0] == c) for c in range(4)]
    assert all(12 <= n <= 20 for n in counts), counts


# --------------------------------------------------------------------------------------------- formatting


def test_formatting():
    assert format_num(0.91234) == "0.912"
    assert format_num(None) == "–" and format_num(float("nan")) == "–" and format_num("x") == "–"
    assert format_num(-0.0001) == "0.000"
    assert format_lr(2e-5) == "2e-5"
    assert format_lr(2.5e-4) == "2.5e-4"
    assert format_lr(None) == "–"


# --------------------------------------------------------------------------------------------- svg helpers


def test_escape():
    assert svg.escape('<a href="x">&\'</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    assert svg.escape(None) == ""
    assert svg.escape("bad\x00\x07char") == "badchar"


def test_axis_range_and_ticks():
    assert svg.axis_range([]) == (0.0, 1.0)
    assert svg.axis_range([None, float("nan"), "x"]) == (0.0, 1.0)
    assert svg.axis_range([0.23, 0.71]) == (0.2, 0.8)
    lo, hi = svg.axis_range([5.0])
    assert lo < 5.0 < hi
    lo, hi = svg.axis_range([-3.0, -1.0], include=[0])
    assert lo <= -3.0 and hi >= 0.0
    assert svg.nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    t = svg.nice_ticks(-3.1, -0.9)
    assert t[0] >= -3.1 and t[-1] <= -0.9 and len(t) >= 3
    assert svg.nice_ticks(2, 2) == [2.0]


def _parse(s: str) -> ET.Element:
    root = ET.fromstring(s)
    assert root.tag == NS + "svg"
    return root


def test_scatter_chart_content():
    s = svg.scatter_chart(
        [svg.Series("a <b>", [(0.1, 0.2), (None, 0.3), (0.5, 0.4)]),
         {"name": "c", "points": [(0.3, 0.3)], "tooltips": ["custom & tip"]}],
        title="T & t", x_label="x", y_label="y", x_range=(0, 1), y_range=(0, 1), diagonal=True,
        annotation="R² = 0.91",
    )
    root = _parse(s)
    titles = ["".join(t.itertext()) for t in root.iter(NS + "title")]
    assert "T & t" in titles
    assert any(t.startswith("a <b>") for t in titles)
    assert "custom & tip" in titles
    assert "R² = 0.91" in "".join(root.itertext())
    assert len(list(root.iter(NS + "circle"))) == 3  # the missing point has no marker
    assert root.find(f".//{NS}line[@class='diagonal']") is not None
    # tick labels of the fixed 0..1 axes
    texts = ["".join(t.itertext()) for t in root.iter(NS + "text")]
    assert "0" in texts and "1.0" in texts and "0.4" in texts


def test_empty_series():
    for s in (svg.scatter_chart([]), svg.scatter_chart([svg.Series("only none", [(None, None)])]),
              svg.line_chart([]), svg.bar_chart([], []), svg.histogram([]), svg.legend([]),
              svg.heatmap([], categories=[("a", "#000")])):
        root = _parse(s)
    assert "no data" in svg.scatter_chart([])
    assert "no data" in svg.heatmap([], categories=[("a", "#000")])


def test_line_chart_vline_and_clip():
    s = svg.line_chart([svg.Series("R²", [(-3, -5.0), (-2, 0.9), (-1, 0.2)])], y_range=(-1, 1), vline=-2,
                       vline_label="chosen p = -2")
    root = _parse(s)
    assert root.find(f".//{NS}line[@class='vline']") is not None
    assert root.find(f".//{NS}clipPath") is not None
    assert "chosen p = -2" in "".join(root.itertext())


def test_many_series_cycle_palette():
    series = [svg.Series(f"s{i}", [(i, i)]) for i in range(25)]
    root = _parse(svg.scatter_chart(series, legend=True))
    assert len(svg.PALETTE) >= 20
    assert svg.color_for(0) == svg.color_for(len(svg.PALETTE))
    # markers beyond the palette use another shape, so repeated colours stay distinguishable
    assert len(list(root.iter(NS + "circle"))) == 20
    assert len(list(root.iter(NS + "rect"))) > 5


def test_heatmap():
    cats = [("no", "#eee"), ("yes", "#0a0")]
    s = svg.heatmap([[0, 1], [1, None], [7]], categories=cats, col_labels=["1", "2"],
                    row_labels=["ex <1>", "ex 2", "ex 3"], title="run & co")
    root = _parse(s)
    cells = root.find(f".//{NS}g[@class='cells']")
    assert len(list(cells.iter(NS + "rect"))) == 6
    text = "".join(root.itertext())
    assert "ex <1> · 1: no" in text and "missing" in text and "run & co" in text


def test_bar_and_histogram():
    root = _parse(svg.bar_chart(["a", "b", "c"], [1.0, None, -2.0], title="bars"))
    assert "–" in "".join(root.itertext())
    root = _parse(svg.histogram([0.1, 0.2, 0.25, 0.9], bins=4, value_range=(0, 1)))
    tips = ["".join(t.itertext()) for t in root.iter(NS + "title")]
    assert "[0, 0.25): 2" in tips and "[0.75, 1]: 1" in tips
