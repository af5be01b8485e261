"""Bootstrap intervals in the report (issue 15): every headline number is printed with its interval when the
summary has one ("R² 0.830 [0.781, 0.902]"), the figures get error bars, bands and mean whiskers, the CSVs
``_low``/``_high`` columns, and the front page the leave-one-run-out line; a summary without intervals renders
as before. The summary with intervals is tests/report/fixtures.py's ``full_summary_with_intervals``."""

from __future__ import annotations

import csv
import html
import io
import re
import xml.etree.ElementTree as ET

import pytest

from premem.report import svg
from premem.report.common import format_ci, format_p, intervals_note, with_ci
from premem.report.html import report_files

from .fixtures import BINS, INTERVALS, full_dynamics, full_summary, full_summary_with_intervals

SVG_RE = re.compile(r"<svg\b.*?</svg>", re.S)
NS = "{http://www.w3.org/2000/svg}"


def _text(page: str) -> str:
    """A page's visible text: no scripts, styles or charts, tags removed, whitespace collapsed."""
    page = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"</?(a|span|code|strong)\b[^>]*>", "", page)  # inline: no space where they were
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip())


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(f) for f in SVG_RE.findall(page)]


def _chart(page: str, title: str) -> ET.Element:
    for root in _svgs(page):
        t = root.find(NS + "title")
        if t is not None and "".join(t.itertext()) == title:
            return root
    raise AssertionError(f"no chart titled {title!r}")


def _count(root: ET.Element, tag: str, cls: str) -> int:
    return sum(1 for e in root.iter(NS + tag) if cls in (e.get("class") or "").split())


def _titles(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(NS + "title")]


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def with_intervals():
    s = full_summary_with_intervals()
    return s, report_files(s, full_dynamics(s))


@pytest.fixture(scope="module")
def without_intervals():
    s = full_summary()
    return s, report_files(s, full_dynamics(s))


# --------------------------------------------------------------------------------------------- helpers


def test_interval_formatting():
    assert with_ci(0.8534, [0.7812, 0.9021]) == "0.853 [0.781, 0.902]"
    assert with_ci(0.8534, None) == "0.853"
    assert with_ci(0.85, [None, None]) == "0.850"  # a bootstrap that could not be computed: the value alone
    assert with_ci(0.85, [None, 0.9]) == "0.850 [–, 0.900]"
    assert with_ci(0.85, [0.1, 0.2, 0.3]) == "0.850"  # not a pair
    assert with_ci(-1.2, [-1.4, -1.05], fmt=format_p) == "-1.2 [-1.4, -1.05]"
    assert format_ci([0.5, float("nan")], 2) == "[0.50, –]"
    assert intervals_note(None) is None and intervals_note({}) is None
    assert intervals_note(INTERVALS) == ("95 % percentile bootstrap intervals, 1,000 resamples, seed 0 — resampled: "
                                         + INTERVALS["resampled"])


def test_svg_error_bars_and_band():
    pts = [(0.2, 0.3), (0.4, None), (0.6, 0.5)]
    chart = svg.scatter_chart([svg.Series("a", pts, x_errors=[(0.1, 0.3), (0.3, 0.5), None],
                                          y_errors=[(0.25, 0.35), None, (None, 0.9)])])
    root = ET.fromstring(chart)
    bars = [p for g in root.iter(NS + "g") if g.get("class") == "errbars" for p in g.iter(NS + "path")]
    assert len(bars) == 3  # x and y at the first point, y (upper half) at the third; none at the missing point
    # the automatic range covers the intervals
    ticks = [float(t.text) for t in root.iter(NS + "text") if re.fullmatch(r"-?[0-9.]+", t.text or "")]
    assert max(ticks) >= 0.9 and min(ticks) <= 0.1
    line = ET.fromstring(svg.line_chart([svg.Series("b", [(1, 0.3), (2, 0.4), (3, 0.5), (4, 0.6)],
                                                    y_errors=[(0.2, 0.4), (0.3, 0.5), None, (0.5, 0.7)], band=True)]))
    assert _count(line, "path", "band") == 1  # points 1-2; the gap at point 3 leaves point 4 alone
    plain = svg.line_chart([svg.Series("b", [(1, 0.3), (2, 0.4)])])
    assert "band" not in plain and "errbars" not in plain
    v = ET.fromstring(svg.violin_chart(["x"], [("g", "#123456", {"x": svg.Violin([0.2, 0.4, 0.6], mean_ci=(0.3, 0.5))})]))
    assert _count(v, "g", "mean-ci") == 1


# --------------------------------------------------------------------------------------------- index


def test_index_headline_numbers_show_their_intervals(with_intervals):
    s, files = with_intervals
    text = _text(files["index.html"])
    pm, tr = s["premem"], s["train_acc"]
    assert "Intervals in brackets: " + intervals_note(s["intervals"]) in text
    assert text.count("Intervals in brackets") == 1  # once per page
    for value, ci in ((pm["r2"], pm["r2_ci"]), (pm["r2_line"], pm["r2_line_ci"]), (tr["r2"], tr["r2_ci"]),
                      (tr["r2_line"], tr["r2_line_ci"])):
        assert with_ci(value, ci) in text, with_ci(value, ci)
    assert with_ci(pm["p"], pm["p_ci"], fmt=format_p) in text
    assert f"(R² = {with_ci(pm['r2'], pm['r2_ci'])})" in text  # the headline sentence
    # the blocks table: p, R² and train accuracy's R² of each block
    for b in s["blocks"]:
        for value, ci in ((b["r2"], b["r2_ci"]), (b["r2_line"], b["r2_line_ci"]),
                          (b["train_acc"]["r2"], b["train_acc"]["r2_ci"]),
                          (b["train_acc"]["r2_line"], b["train_acc"]["r2_line_ci"])):
            assert with_ci(value, ci) in text
        assert with_ci(b["p"], b["p_ci"], fmt=format_p) in text
    # the panels' annotations and captions
    page = files["index.html"]
    assert f"R² = {with_ci(pm['r2'], pm['r2_ci'])}" in html.unescape(page)
    assert f"R² about y = x {with_ci(tr['r2'], tr['r2_ci'])}" in text


def test_index_leave_one_run_out(with_intervals):
    s, files = with_intervals
    loro = s["premem"]["loro"]
    page = files["index.html"]
    text = _text(page)
    assert (f"without {loro['run']}: R² 0.540 (the smallest of {len(loro['r2_by_run'])} leave-one-run-out fits)"
            in text)
    block = re.search(r'<div class="loro" id="loro">.*?</div>', page, re.S).group(0)
    assert f'<a href="runs/{loro["run"]}.html">{loro["run"]}</a>' in block
    for run in loro["r2_by_run"]:
        assert html.escape(run, quote=False) in block
    # each block's smallest leave-one-run-out R², naming the run
    for b in s["blocks"]:
        assert f"{b['loro']['min_r2']:.3f} without {b['loro']['run']}" in text


def test_index_scatters_have_error_bars_with_interval_tooltips(with_intervals):
    s, files = with_intervals
    page = files["index.html"]
    for title in ("PreMemAcc vs test accuracy", "Train accuracy vs test accuracy"):
        root = _chart(page, title)
        assert _count(root, "g", "errbars") >= 5  # one group per run with checkpoints
    c = s["runs"][0]["checkpoints"][0]
    tips = _titles(_chart(page, "PreMemAcc vs test accuracy"))
    assert any(f"PreMemAcc: {with_ci(c['premem_acc'], c['premem_acc_ci'])}" in t
               and f"test acc: {with_ci(c['test_acc'], c['test_acc_ci'])}" in t for t in tips)


# --------------------------------------------------------------------------------------------- other pages


def test_measures_correlations_show_their_intervals(with_intervals):
    s, files = with_intervals
    page = files["measures.html"]
    text = _text(page)
    assert "Intervals in brackets" in text and s["intervals"]["measures_note"] in text
    for name, b in s["baselines"].items():
        for key in ("pearson_gap", "kendall_gap", "pearson_test", "kendall_test"):
            assert with_ci(b[key], b[key + "_ci"]) in text, (name, key)
    # the panels: r and τ on a line each, with intervals
    b = s["baselines"]["premem"]
    subtitles = [t.text for root in _svgs(page) for t in root.iter(NS + "text")]
    assert f"r = {with_ci(b['pearson_gap'], b['pearson_gap_ci'], 2)}" in subtitles
    assert f"τ = {with_ci(b['kendall_test'], b['kendall_test_ci'], 2)}" in subtitles


def test_robustness_means_show_their_intervals(with_intervals):
    s, files = with_intervals
    page = files["robustness.html"]
    text = _text(page)
    assert "Intervals in brackets" in text
    n_means = 0
    for prompt, bins in s["robustness"].items():
        for b in BINS:
            st = bins[b]
            if st["mean"] is None:
                continue
            n_means += 1
            assert format_ci(st["mean_ci"]) in text, (prompt, b)
    root = _chart(page, "Per-example accuracy under each prompt, by PreMemAcc")
    assert _count(root, "g", "mean-ci") == n_means
    st = s["robustness"]["original"][BINS[2]]
    assert any(f"mean {with_ci(st['mean'], st['mean_ci'])}" in t for t in _titles(root))


def test_curation_bands_and_efficiency_intervals(with_intervals):
    s, files = with_intervals
    cur = s["curation"]
    page = files["curation.html"]
    text = _text(page)
    assert "Intervals in brackets" in text
    root = _chart(page, "Test accuracy against training-set size")
    assert _count(root, "path", "band") == len(cur["strategies"])
    p = cur["premem"]["curve"][1]
    assert any(f"test acc: {with_ci(p['test_acc'], p['test_acc_ci'])}" in t for t in _titles(root))
    x = lambda v: "–" if v is None else f"{v:.2f}×"  # noqa: E731
    for name in cur["strategies"]:
        e = cur[name]
        if name == "iid":
            continue
        assert with_ci(e["mean_ratio"], e["mean_ratio_ci"], fmt=x) in text, name
        for row in e["efficiency"]:
            if row["ratio"] is not None:
                assert with_ci(row["ratio"], row["ratio_ci"], fmt=x) in text
    # the front page's sentence
    e = cur["premem"]
    assert f"{e['mean_ratio']:.2f}× {format_ci(e['mean_ratio_ci'], 2)} fewer examples" in _text(files["index.html"])


def test_run_page_bands_and_checkpoint_intervals(with_intervals):
    s, files = with_intervals
    run = s["runs"][0]
    page = files[f"runs/{run['name']}.html"]
    root = _chart(page, "Accuracy by checkpoint")
    assert _count(root, "path", "band") == 3  # train, test, PreMemAcc
    text = _text(page)
    c = run["checkpoints"][-1]
    assert with_ci(c["test_acc"], c["test_acc_ci"]) in text
    assert "Intervals in brackets" in text


# --------------------------------------------------------------------------------------------- CSV


def test_csv_low_high_columns(with_intervals):
    s, files = with_intervals
    rows = _csv(files["data/premem_vs_test.csv"])
    c = s["runs"][0]["checkpoints"][0]
    assert list(rows[0])[3:] == ["premem_acc", "premem_acc_low", "premem_acc_high", "test_acc", "test_acc_low",
                                 "test_acc_high"]
    assert float(rows[0]["premem_acc_low"]) == c["premem_acc_ci"][0]
    assert float(rows[0]["test_acc_high"]) == c["test_acc_ci"][1]
    for name, cols in (("checkpoints.csv", ["train_acc_low", "test_acc_high", "premem_acc_low"]),
                       ("train_vs_test.csv", ["train_acc_low", "train_acc_high"]),
                       ("runs.csv", ["final_test_acc_low", "final_test_acc_high"]),
                       ("blocks.csv", ["p_low", "r2_low", "r2_line_high", "train_r2_low", "train_r2_line_high",
                                       "loro_min_r2", "loro_run"]),
                       ("measures_correlations.csv", ["pearson_gap_low", "kendall_test_high"]),
                       ("robustness.csv", ["mean_low", "mean_high"]),
                       ("curation_curves.csv", ["test_acc_low", "test_acc_high"]),
                       ("curation_efficiency.csv", ["ratio_low", "ratio_high", "mean_ratio_low", "mean_ratio_high"])):
        header = list(_csv(files[f"data/{name}"])[0])
        assert set(cols) <= set(header), (name, header)
    pm = _csv(files["data/measures_correlations.csv"])[0]
    assert float(pm["pearson_gap_low"]) == s["baselines"]["premem"]["pearson_gap_ci"][0]
    rob = {(r["prompt"], r["premem_bin"]): r for r in _csv(files["data/robustness.csv"])}
    st = s["robustness"]["original"][BINS[1]]
    assert float(rob[("original", BINS[1])]["mean_high"]) == st["mean_ci"][1]


# --------------------------------------------------------------------------------------------- without


def test_without_intervals_nothing_changes(without_intervals):
    s, files = without_intervals
    for name, text in files.items():
        if name.endswith(".html"):
            body = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
            for mark in ('class="ci"', "errbars", 'class="band"', "mean-ci", 'id="intervals"', 'id="loro"'):
                assert mark not in body, (name, mark)
        elif name.endswith(".csv"):
            header = text.splitlines()[0] if text else ""
            assert "_low" not in header and "_high" not in header and "loro" not in header, name
    # headline numbers without brackets
    text = _text(files["index.html"])
    assert "0.830 [" not in text and "R² about y = x 0.830 ·" in text
