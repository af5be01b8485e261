"""The report's pages beyond the front page: dynamics, measures (Fig. 5), robustness (Fig. 7), one page per run,
the navigation between them, and their CSV files. Fast, no browser (test_browser.py opens them in Chromium)."""

from __future__ import annotations

import csv
import html
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from premem.report import svg
from premem.report.html import render_pages, write_report
from premem.report.pages import _sample_verdicts

from .fixtures import BINS, full_dynamics, full_summary

SVG_RE = re.compile(r"<svg\b.*?</svg>", re.S)
NS = "{http://www.w3.org/2000/svg}"
TOP = ["index.html", "dynamics.html", "measures.html", "robustness.html"]
#: written only when the summary has its section (the full summary has)
OPTIONAL = ["curation.html"]


def _pages(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in out.rglob("*.html")}


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page)]


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(f) for f in SVG_RE.findall(page)]


def _chart_title(root: ET.Element) -> str:
    t = root.find(NS + "title")
    return "" if t is None else "".join(t.itertext())


def _titles(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(NS + "title")]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = full_summary()
    write_report(summary, full_dynamics(summary), out)
    return out, summary, _pages(out)


# --------------------------------------------------------------------------------------------- every page


def test_every_page_written_and_every_link_resolves(full):
    out, summary, pages = full
    slugs = ["lr1e-4-ep3", "lr3e-4-ep3", "lr1e-3-ep6", "lr_3e-3_frac_0.5_ep6", "lr1e-2-ep6", "lr3e-2-ep3"]
    assert set(pages) == set(TOP + OPTIONAL) | {f"runs/{s}.html" for s in slugs}
    for name, page in pages.items():
        base = (out / name).parent
        for href in _links(page):
            assert not re.match(r"[a-z]+:", href), (name, href)  # relative links only: works from disk
            path = href.split("#")[0]
            if path:
                assert (base / path).resolve().is_file(), (name, href)
            if "#" in href and href.split("#")[1]:
                target = (base / path).read_text(encoding="utf-8") if path else page
                assert f'id="{href.split("#")[1]}"' in target, (name, href)


def test_nav_bar_on_every_page(full):
    _, _, pages = full
    for name, page in pages.items():
        nav = re.search(r'<nav class="site".*?</nav>', page, re.S).group(0)
        root = "../" if name.startswith("runs/") else ""
        hrefs = _links(nav)
        for target in TOP + OPTIONAL:
            assert root + target in hrefs, (name, target)
        assert root + "index.html#runs" in hrefs
        assert "absent" not in nav  # every section is present in the full summary
        active = re.findall(r'class="item active"[^>]*>([^<]+)<', nav)
        assert len(active) == 1, (name, active)
    assert re.search(r'class="item active"[^>]*>Measures<', pages["measures.html"])
    assert re.search(r'class="item active"[^>]*>Runs \(6\)<', pages["runs/lr1e-4-ep3.html"])


def test_every_svg_well_formed_and_every_figure_has_its_csv(full):
    out, _, pages = full
    for name, page in pages.items():
        for root in _svgs(page):
            assert root.tag == NS + "svg"
        # every figure (a <figure> with a chart) links a CSV that exists, beside it or in its section
        for fig in re.findall(r"<figure\b.*?</figure>", page, re.S):
            if "<svg" not in fig:
                continue
            section = page[page.rfind("<section", 0, page.index(fig)):]
            section = section[: section.find("</section>")] if "</section>" in section else section
            hrefs = [h for h in _links(fig) + _links(section) if h.endswith(".csv")]
            assert hrefs, (name, fig[:120])
            for h in hrefs:
                assert ((out / name).parent / h).resolve().is_file()


# --------------------------------------------------------------------------------------------- measures


def test_measures_page(full):
    out, summary, pages = full
    page = pages["measures.html"]
    roots = _svgs(page)
    assert len(roots) == 8  # four measures, against the gap and against test accuracy
    titles = [_chart_title(r) for r in roots]
    assert titles == ["PreMemAcc", "Gradient variance", "Distance from initialization", "ATC"] * 2
    texts = ["".join(r.itertext()) for r in roots]
    assert "r = 0.91 · τ = 0.78" in texts[0] and "r = -0.87 · τ = -0.70" in texts[4]
    assert "r = – · τ = –" in texts[5]  # no correlation with test accuracy (None and NaN)
    # a marker per checkpoint of the runs used (the failed run has none), each a link to its run's page
    n_cps = sum(len(r["checkpoints"]) for r in summary["runs"])
    links = roots[0].findall(f".//{NS}a")
    assert len(links) == n_cps
    assert {a.get("href") for a in links} == {f"runs/{s}.html" for s in
                                              ("lr1e-4-ep3", "lr3e-4-ep3", "lr1e-3-ep6", "lr_3e-3_frac_0.5_ep6",
                                               "lr1e-2-ep6")}
    # the gradient variance is missing at one checkpoint: one marker fewer
    assert len(roots[1].findall(f".//{NS}a")) == n_cps - 1
    tips = _titles(roots[0])
    assert any(t.startswith("lr=3e-3 / <frac 0.5> & ep6\nepoch 6\ntrain acc − PreMemAcc:") for t in tips)
    # against test accuracy PreMemAcc and ATC are plotted as the accuracy they predict
    assert any("\nPreMemAcc: " in t for t in _titles(roots[4]))
    assert "ATC-predicted accuracy" in texts[7]
    # the table of correlations, the strongest against the gap shaded
    assert re.search(r'<tr class="best"[^>]*>\s*<td>PreMemAcc</td>', page)
    for v in ("0.912", "0.781", "-0.874", "-0.702", "0.214", "0.550", "-0.580"):
        assert f">{v}<" in page
    assert "fitted on <a href=\"runs/lr1e-3-ep6.html\">lr1e-3-ep6</a>, epoch 6" in page
    rows = _csv(out / "data" / "measures.csv")
    assert len(rows) == n_cps
    assert {"gap", "premem_gap", "premem_acc", "gradient_variance", "weight_distance", "atc_gap", "atc_acc"} <= set(rows[0])
    assert sum(1 for r in rows if r["gradient_variance"] == "") == 1
    corr = _csv(out / "data" / "measures_correlations.csv")
    assert [r["measure"] for r in corr] == ["premem", "gradient_variance", "weight_distance", "atc"]
    assert corr[1]["pearson_test"] == "" and corr[1]["kendall_test"] == ""  # None and NaN
    assert float(corr[0]["pearson_gap"]) == pytest.approx(0.912)


def test_measures_only_the_named_runs(tmp_path):
    summary = full_summary()
    summary["baselines_meta"]["runs"] = ["lr1e-4-ep3", "no such run"]
    write_report(summary, {}, tmp_path)
    page = (tmp_path / "measures.html").read_text(encoding="utf-8")
    root = _svgs(page)[0]
    assert {a.get("href") for a in root.iter(NS + "a")} == {"runs/lr1e-4-ep3.html"}
    assert "Not in this report: no such run." in page
    assert len(_csv(tmp_path / "data" / "measures.csv")) == 3


# --------------------------------------------------------------------------------------------- robustness


def test_robustness_page(full):
    out, summary, pages = full
    page = pages["robustness.html"]
    (root,) = _svgs(page)
    violins = root.findall(f".//{NS}g[@class='violin']")
    assert len(violins) == 3 * 5  # three prompts x five bins
    bodies = root.findall(f".//{NS}path[@class='violin-body']")
    assert len(bodies) == 3 * 5 - 1  # "We know that" has no example in the first bin
    labels = ["".join(t.itertext()) for t in root.iter(NS + "text")]
    assert labels.count("n=0") == 1 and "n=22" in labels
    for b in BINS:
        assert b in labels
    tips = _titles(root)
    assert any(t.startswith("preamble “First,” · PreMemAcc 0.8-1.0\nn = 22\nmedian") for t in tips)
    assert "<code>\\nAnswer: First,</code>" in page  # the preamble as text, its newline visible
    # the table: n, median and quartiles per prompt and bin; the mean's change against the original prompt
    rob = summary["robustness"]
    s = rob["First,"]["0.4-0.6"]
    assert f"{s['n']} · {s['median']:.2f} ({s['q1']:.2f}–{s['q3']:.2f})" in page
    delta = s["mean"] - rob["original"]["0.4-0.6"]["mean"]
    assert f"({'+' if delta > 0 else ''}{delta:.3f})" in page
    stats = _csv(out / "data" / "robustness.csv")
    assert len(stats) == 15 and stats[0]["prompt"] == "original" and stats[0]["premem_bin"] == "0.0-0.2"
    values = _csv(out / "data" / "robustness_values.csv")
    assert len(values) == sum(c["n"] for p in rob.values() for c in p.values())
    assert "lr1e-3-ep6</a> epoch 6" in page and "10 samples per example and prompt" in page


def test_robustness_stats_computed_from_values_when_absent(tmp_path):
    summary = {"robustness": {"original": {"0.0-0.2": {"values": [0.0, 0.5, 1.0, 1.0]}},
                              "Hmm,": {"0.8-1.0": {"n": 2, "values": [1.0, None, "x"]}}}}
    write_report(summary, {}, tmp_path)
    page = (tmp_path / "robustness.html").read_text(encoding="utf-8")
    assert "4 · 0.75 (0.38–1.00)" in page  # median and quartiles of the four values
    rows = {(r["prompt"], r["premem_bin"]): r for r in _csv(tmp_path / "data" / "robustness.csv")}
    assert float(rows[("original", "0.0-0.2")]["mean"]) == pytest.approx(0.625)
    assert rows[("Hmm,", "0.8-1.0")]["n"] == "2" and rows[("Hmm,", "0.0-0.2")]["n"] == "0"


# --------------------------------------------------------------------------------------------- run pages


def test_run_page(full):
    out, summary, pages = full
    page = pages["runs/lr_3e-3_frac_0.5_ep6.html"]
    assert "<h1>" in page and "lr=3e-3 / &lt;frac 0.5&gt; &amp; ep6</h1>" in page
    assert "<dt>learning_rate</dt><dd>3e-3</dd>" in page and "<dt>dataset_fraction</dt><dd>0.5</dd>" in page
    roots = _svgs(page)
    titles = [_chart_title(r) for r in roots]
    assert "Training loss" in titles and "Accuracy by checkpoint" in titles
    loss = roots[titles.index("Training loss")]
    assert loss.find(f".//{NS}path") is not None
    # the checkpoint table shows every measure the checkpoints carry
    for head in ("Gradient variance", "Distance from init.", "ATC acc", "Gap (train − test)"):
        assert head in page
    assert "9.513e-6" in page or re.search(r"\d\.\d{3}e-6", page)
    # samples beside their targets: memorized ones marked, each sample judged against the target's answer
    examples = re.findall(r'<div class="example( memorized)?">', page)
    assert len(examples) == 6 and sum(1 for m in examples if m) == 2
    assert page.count("✓ correct") > 0 and page.count("✗ incorrect") > 0
    assert page.count("no final answer") == 1
    assert "What is &lt;b&gt;2 &amp; 3&lt;/b&gt;?" in page
    rows = _csv(out / "data" / "run_lr_3e-3_frac_0.5_ep6_samples.csv")
    assert len(rows) == 6 * 3 and {r["sample_verdict"] for r in rows} == {"correct", "incorrect", "no answer"}
    assert len(_csv(out / "data" / "run_lr_3e-3_frac_0.5_ep6_loss.csv")) == len(summary["runs"][3]["loss_curve"])
    # its dynamics, and the neighbours
    assert "64 of 96 examples shown" in page
    assert 'href="lr1e-3-ep6.html" rel="prev"' in page and 'href="lr1e-2-ep6.html" rel="next"' in page


def test_diverged_and_failed_runs(full):
    out, _, pages = full
    assert '<span class="status diverged">diverged at step 137</span>' in pages["index.html"]
    div = pages["runs/lr1e-2-ep6.html"]
    assert "diverged at step 137" in div
    (loss,) = [r for r in _svgs(div) if _chart_title(r) == "Training loss"]
    assert loss.find(f".//{NS}line[@class='vline']") is not None  # where it diverged
    runs = {r["run_name"]: r for r in _csv(out / "data" / "runs.csv")}
    assert runs["lr1e-2-ep6"]["diverged_step"] == "137" and runs["lr1e-2-ep6"]["status"] == "diverged"
    failed = pages["runs/lr3e-2-ep3.html"]
    assert "CUDA out of memory" in failed and "No training loss and no evaluated checkpoint recorded." in failed
    assert "No sample outputs recorded for this run." in failed
    assert 'rel="next"' not in failed


def test_loss_per_epoch_when_no_curve(tmp_path):
    summary = {"runs": [{"id": "a", "status": "done", "checkpoints": [
        {"epoch": 1, "train_loss": 0.9, "train_acc": 0.5, "test_acc": 0.4},
        {"epoch": 2, "train_loss": 0.6, "train_acc": 0.7, "test_acc": 0.45}]}]}
    write_report(summary, {}, tmp_path)
    page = (tmp_path / "runs" / "a.html").read_text(encoding="utf-8")
    assert "Training loss (mean per epoch)" in page
    (root,) = [r for r in _svgs(page) if "mean per epoch" in _chart_title(r)]
    ticks = ["".join(t.itertext()) for t in root.iter(NS + "text")]
    assert "1" in ticks and "2" in ticks and "1.5" not in ticks  # whole epochs only
    assert _csv(tmp_path / "data" / "run_a_loss.csv")[1] == {"epoch": "2", "mean_loss": "0.6"}


# --------------------------------------------------------------------------------------------- degraded input


def test_absent_sections_say_what_would_compute_them(tmp_path):
    summary = full_summary()
    for key in ("baselines", "baselines_meta", "robustness", "robustness_meta"):
        del summary[key]
    for r in summary["runs"]:
        for key in ("loss_curve", "samples", "diverged_step"):
            r.pop(key, None)
    write_report(summary, full_dynamics(summary), tmp_path)
    pages = _pages(tmp_path)
    assert set(TOP) <= set(pages)  # still written: no link breaks
    m, rb = pages["measures.html"], pages["robustness.html"]
    assert "Not computed" in m and "<code>metrics:</code>" in m and "<svg" not in m
    assert "Not computed" in rb and "<code>perturbations:</code>" in rb and "<svg" not in rb
    for name, page in pages.items():
        nav = re.search(r'<nav class="site".*?</nav>', page, re.S).group(0)
        assert re.search(r'class="item[^"]*absent"[^>]*>Measures<', nav), name
        assert re.search(r'class="item[^"]*absent"[^>]*>Robustness<', nav), name
        assert not re.search(r'class="item[^"]*absent"[^>]*>Dynamics<', nav), name
    assert "(not computed)" in pages["index.html"]
    data = {p.name for p in (tmp_path / "data").iterdir()}
    assert not data & {"measures.csv", "measures_correlations.csv", "robustness.csv", "robustness_values.csv"}
    run = pages["runs/lr1e-4-ep3.html"]
    assert "No sample outputs recorded for this run." in run
    assert "Training loss (mean per epoch)" in run  # the per-epoch losses stand in for the curve
    assert '<span class="status diverged">diverged</span>' in pages["index.html"]  # no step: just the status


def test_nan_and_none_everywhere(tmp_path):
    nan = float("nan")
    summary = {
        "runs": [{"id": "r", "name": None, "status": "diverged", "diverged_step": nan, "settings": {"learning_rate": nan},
                  "checkpoints": [{"epoch": 1, "train_acc": nan, "test_acc": None, "gap": nan, "gradient_variance": "x"},
                                  None, {"epoch": None}],
                  "loss_curve": [{"step": 1, "loss": nan}, {"step": None, "loss": 1.0}, None, {"step": 3, "loss": 2.0}],
                  "samples": {"epoch": None, "p": nan, "examples": [
                      {"example_id": None, "question": None, "target": None, "samples": [None, "x"], "acc": nan,
                       "memorized": None, "perplexity": float("inf")}, None]}}],
        "baselines": {"premem": {"label": None, "value_key": None, "pearson_gap": nan, "n": None},
                      "weird": {}},
        "baselines_meta": {"runs": None, "atc_reference": {"run": None}},
        "robustness": {"original": {"0.0-0.2": None, "odd bin": {"n": nan, "values": [nan, None]}}},
        "robustness_meta": {"preambles": None, "checkpoints": [None, {"run": "ghost", "epoch": nan}], "bins": None},
    }
    write_report(summary, {"r": {"categories": [[nan, 1]]}}, tmp_path)
    pages = _pages(tmp_path)
    assert set(pages) == set(TOP) | {"runs/r.html"}
    for page in pages.values():
        for root in _svgs(page):
            assert root.tag == NS + "svg"
        assert "nan" not in re.sub(r"<script.*?</script>", "", page, flags=re.S).lower().replace("nano", "")
    assert '<span class="status diverged">diverged</span>' in pages["index.html"]
    assert "odd bin" in pages["robustness.html"] and "weird" in pages["measures.html"]
    assert pages["runs/r.html"].count("text not available") == 2  # no question, no target
    assert "not measured" in pages["dynamics.html"]  # the legend names the empty cell
    assert "not measured" not in _pages(tmp_path)["index.html"]


def test_odd_run_names(tmp_path):
    names = ["../../etc/passwd", "a/b", "A/B", "", "ünï cødé ✓", 'quote"d <tag> & amp', "x" * 200, "CON"]
    runs = [{"id": n, "name": n, "status": "done",
             "checkpoints": [{"epoch": 1, "train_acc": 0.5, "test_acc": 0.4, "premem_acc": 0.41}]} for n in names]
    write_report({"runs": runs}, {n: {"epochs": [1], "example_ids": ["e"], "categories": [[1]]} for n in names}, tmp_path)
    written = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(written) == len(names) == len({w.lower() for w in written})
    for p in (tmp_path / "runs").iterdir():
        assert p.parent == tmp_path / "runs" and re.fullmatch(r"[A-Za-z0-9._-]+\.html", p.name)
        assert len(p.name) <= 80
    assert not (tmp_path.parent / "etc").exists()
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "quote&#34;d &lt;tag&gt; &amp; amp" in index or "quote&quot;d &lt;tag&gt; &amp; amp" in index
    for href in re.findall(r'href="(runs/[^"]+)"', index):
        assert (tmp_path / html.unescape(href)).is_file()
    dyn = {p.name for p in (tmp_path / "data").glob("dynamics_*.csv")}
    assert len(dyn) == len(names)


def test_many_runs(tmp_path):
    n = 60
    runs = [{"id": f"run-{k:02d}", "status": "done", "settings": {"learning_rate": 1e-4 * (k + 1)},
             "checkpoints": [{"epoch": e, "train_acc": 0.3 + 0.01 * k, "test_acc": 0.2 + 0.1 * e, "premem_acc": 0.25,
                              "weight_distance": k * e} for e in (1, 2)]} for k in range(n)]
    summary = {"runs": runs, "baselines": {"weight_distance": {"label": "Distance", "value_key": "weight_distance",
                                                               "x_label": "d", "pearson_gap": 0.1, "n": 2 * n}}}
    write_report(summary, {}, tmp_path)
    assert len(list((tmp_path / "runs").glob("*.html"))) == n
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    legend = re.search(r'<div class="legend".*?</div>', index, re.S).group(0)
    assert legend.count("<a ") == n
    assert "Runs (60)" in index
    m = (tmp_path / "measures.html").read_text(encoding="utf-8")
    root = _svgs(m)[0]
    assert len(root.findall(f".//{NS}a")) == 2 * n
    # past the palette, markers change shape so runs of one colour stay apart
    assert root.findall(f".//{NS}circle") and root.findall(f".//{NS}rect[@class='pt']")
    last = (tmp_path / "runs" / "run-59.html").read_text(encoding="utf-8")
    assert 'href="run-58.html" rel="prev"' in last


def test_stale_pages_and_csvs_removed(tmp_path):
    two = {"runs": [{"id": i, "status": "done", "checkpoints": [{"epoch": 1, "train_loss": 1.0}]} for i in ("a", "b")]}
    write_report(two, {}, tmp_path)
    assert (tmp_path / "runs" / "b.html").is_file() and (tmp_path / "data" / "run_b_loss.csv").is_file()
    (tmp_path / "data" / "mine.txt").write_text("kept")
    write_report({"runs": two["runs"][:1]}, {}, tmp_path)
    assert not (tmp_path / "runs" / "b.html").exists() and not (tmp_path / "data" / "run_b_loss.csv").exists()
    assert (tmp_path / "runs" / "a.html").is_file() and (tmp_path / "data" / "mine.txt").is_file()


def test_render_pages_matches_written(tmp_path):
    summary = full_summary()
    dyn = full_dynamics(summary)
    pages = render_pages(summary, dyn)
    write_report(summary, dyn, tmp_path)
    strip = lambda s: re.sub(r"premem-clip-\d+", "", s)  # noqa: E731
    for name, text in pages.items():
        assert strip(text) == strip((tmp_path / name).read_text(encoding="utf-8")), name


# --------------------------------------------------------------------------------------------- pieces


def test_sample_verdicts():
    target = "3 + 4 = 7.\n#### 7\nDone."
    assert _sample_verdicts(target, ["x\n#### 7", "#### 8", "no answer here"], None) == [
        "correct", "incorrect", "no answer"]
    assert _sample_verdicts(target, ["#### 7.0", "#### 1,000"], None) == ["correct", "incorrect"]
    assert _sample_verdicts("so \\boxed{\\frac{1}{2}}", ["\\boxed{0.5}", "\\boxed{2}", "1/2"], None) == [
        "correct", "incorrect", "no answer"]
    assert _sample_verdicts("free text answer", ["anything"], None) == [None]  # no format to judge by
    assert _sample_verdicts(target, ["#### 8", "#### 7"], [True, None]) == ["correct", "correct"]  # given flags win


def test_violin_chart():
    s = svg.violin_chart(
        ["lo", "hi"],
        [("a <1>", "#123456", {"lo": svg.Violin([0.0, 0.1, 0.1, 2.0, None, "x"]), "hi": svg.Violin([])}),
         ("b", "#654321", {"hi": svg.Violin([1.0], stats={"n": 1, "median": 1.0, "q1": 1.0, "q3": 1.0})})],
        title="V & v", y_label="acc",
    )
    root = ET.fromstring(s)
    groups = root.findall(f".//{NS}g[@class='violin']")
    assert len(groups) == 4
    assert len(root.findall(f".//{NS}path[@class='violin-body']")) == 2
    texts = ["".join(t.itertext()) for t in root.iter(NS + "text")]
    assert "n=4" in texts and texts.count("n=0") == 2 and "n=1" in texts and "V & v" in texts
    tips = _titles(root)
    assert any(t.startswith("a <1> · lo\nn = 4\nmedian 0.100") for t in tips)
    # values are clipped to the range: every point of every violin lies inside the plot
    for path in root.findall(f".//{NS}path[@class='violin-body']"):
        ys = [float(p.split(",")[1]) for p in re.findall(r"[\d.]+,[\d.]+", path.get("d"))]
        assert min(ys) >= 0 and max(ys) <= 420
    assert "no data" in svg.violin_chart(["a"], [("g", "#000", {})])
    ET.fromstring(svg.violin_chart([], []))


def test_scatter_links_and_subtitle():
    s = svg.scatter_chart([svg.Series("a", [(0.1, 0.2), (None, 1), (0.3, 0.4)], href="runs/a&b.html"),
                           svg.Series("b", [(0.5, 0.5)])], legend=True, title="T", subtitle="r = 1 · τ = 1")
    root = ET.fromstring(s)
    links = root.findall(f".//{NS}a")
    assert len(links) == 3  # two markers and the legend entry of "a"; "b" has no page
    assert {a.get("href") for a in links} == {"runs/a&b.html"}
    assert "r = 1 · τ = 1" in "".join(root.itertext())


def test_format_sig():
    from premem.report.common import format_sig

    assert format_sig(2.5e-6) == "2.5e-6" and format_sig(12.3456) == "12.35" and format_sig(None) == "–"
    assert format_sig(0) == "0" and format_sig(float("nan")) == "–" and format_sig(123456.0) == "1.235e5"
    assert not math.isnan(float(format_sig(-0.5)))
