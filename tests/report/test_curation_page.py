"""The curation page (the paper's Fig. 8 and sample efficiency) and what the front page says about it, from
summary["curation"] as premem.analysis.curation.curation_summary writes it. Fast, no browser (test_browser.py
opens the page in Chromium)."""

from __future__ import annotations

import csv
import html
import io
import re
import xml.etree.ElementTree as ET

from premem.report.html import render_pages, write_report
from premem.report.pages import build_report

from .fixtures import curation_section, full_dynamics, full_summary

NS = "{http://www.w3.org/2000/svg}"


def _curation(**over) -> dict:
    """A small hand-built curation section: premem and iid over two rounds, premem's efficiency at two targets
    (one reached by both curves, one by premem only), one exhausted original, a note."""
    cur = {
        "settings": {"model": "m <1>", "dataset": "gsm8k", "rounds": 2, "threshold": 0.75, "p": -1.2,
                     "new_examples": [50, 80], "learning_rate": 2e-5, "epochs": 3, "source": "pool",
                     "ifd": {"split": "test", "epochs": 2, "learning_rate": None, "percent": 50.0},
                     "heuristic": {"percent": 60.0}},
        "strategies": ["premem", "iid"],
        "originals": 100,
        "premem": {
            "curve": [{"round": 0, "size": 100, "test_acc": 0.30, "run": "curation/round0", "status": "done"},
                      {"round": 1, "size": 150, "test_acc": 0.40, "run": "curation/premem/round1", "status": "done"},
                      {"round": 2, "size": 230, "test_acc": 0.46, "run": "curation/premem/round2", "status": "done"}],
            "rounds": [{"round": 1, "chosen": 40, "drawn_from": 35, "new": 50, "collected": 50,
                        "exhausted": ["train-00007"], "note": None, "premem_mean": 0.612},
                       {"round": 2, "chosen": 12, "drawn_from": 12, "new": 80, "collected": 130, "exhausted": [],
                        "note": "no original has PreMemAcc <= 0.75: the 12 with the lowest instead",
                        "premem_mean": 0.804}],
            "efficiency": [{"target": 0.35, "iid_size": 200.0, "size": 125.0, "ratio": 1.6},
                           {"target": 0.45, "iid_size": None, "size": 216.7, "ratio": None}],
            "targets_note": None, "mean_ratio": 1.6},
        "iid": {
            "curve": [{"round": 0, "size": 100, "test_acc": 0.30, "run": "curation/round0", "status": "done"},
                      {"round": 1, "size": 150, "test_acc": 0.33, "run": "curation/iid/round1", "status": "done"},
                      {"round": 2, "size": 230, "test_acc": 0.38, "run": "curation/iid/round2", "status": "done"}],
            "rounds": [{"round": 1, "chosen": 100, "drawn_from": 45, "new": 50, "collected": 50, "exhausted": [],
                        "note": None, "premem_mean": None},
                       {"round": 2, "chosen": 100, "drawn_from": 70, "new": 80, "collected": 130, "exhausted": [],
                        "note": None, "premem_mean": None}]},
    }
    cur.update(over)
    return cur


def _summary(cur: dict | None, runs: bool = True) -> dict:
    s = {"spec": {"name": "cur study"}, "generated_at": "2026-11-27T12:00:00",
         "premem": {"p": -1.2, "r2": 0.9, "r2_line": 0.9}, "train_acc": {"r2": 0.1, "r2_line": 0.2},
         "runs": [{"id": "a", "status": "done", "checkpoints": [{"epoch": 1, "train_acc": 0.6, "test_acc": 0.4,
                                                                   "premem_acc": 0.42}]}] if runs else []}
    if cur is not None:
        s["curation"] = cur
    return s


def _text(page: str) -> str:
    """The page's visible text (no style, script or SVG), tags stripped, spaces collapsed."""
    for tag in ("style", "script", "svg"):
        page = re.sub(rf"<{tag}\b.*?</{tag}>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip())


def _section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}"')
    return page[start: page.index("</section>", start)]


def _chart(page: str) -> ET.Element:
    svgs = re.findall(r"<svg\b.*?</svg>", _section(page, "curves"), re.S)
    assert len(svgs) == 1
    return ET.fromstring(svgs[0])


def test_curation_page_chart_tables_and_csv(tmp_path):
    write_report(_summary(_curation()), {}, tmp_path)
    page = (tmp_path / "curation.html").read_text(encoding="utf-8")
    # the chart: one line per strategy, one marker per model, with its tooltip
    root = _chart(page)
    series = root.findall(f".//{NS}g[@class='series']")
    assert ["".join(g.find(NS + "title").itertext()) for g in series] == ["premem", "iid"]
    for g in series:
        assert len(g.findall(f"{NS}path")) == 1 and len(g.findall(f".//{NS}circle")) == 3
    tips = ["".join(t.itertext()) for t in root.iter(NS + "title")]
    assert ("premem\nround 2\ntraining-set size: 230 examples\ntest acc: 0.460\nrun: curation/premem/round2"
            in tips)
    assert "iid\nround 0 (the originals, shared by every strategy)\ntraining-set size: 100 examples\n" \
           "test acc: 0.300\nrun: curation/round0" in tips
    assert 'stroke-dasharray="6 3"' in ET.tostring(series[1], encoding="unicode")  # iid dashed
    # the CSV under the figure
    fig = re.search(r"<figure\b.*?</figure>", _section(page, "curves"), re.S).group(0)
    assert 'href="data/curation_curves.csv"' in fig
    rows = list(csv.DictReader(io.StringIO((tmp_path / "data" / "curation_curves.csv").read_text())))
    assert len(rows) == 6 and rows[2] == {"strategy": "premem", "round": "2", "size": "230", "test_acc": "0.46",
                                          "status": "done", "run": "curation/premem/round2"}
    # sample efficiency: premem's rows and mean; none for iid itself
    eff = _text(_section(page, "efficiency"))
    assert "premem · mean ratio 1.60× (1 of 2 targets with a ratio)" in eff
    assert "0.350 200 125 1.60×" in eff and "0.450 – 216.7 –" in eff and "Mean ratio 1.60×" in eff
    assert "iid · mean ratio" not in eff
    erows = list(csv.DictReader(io.StringIO((tmp_path / "data" / "curation_efficiency.csv").read_text())))
    assert [(r["strategy"], r["target_test_acc"], r["iid_size"], r["ratio"]) for r in erows] == [
        ("premem", "0.35", "200.0", "1.6"), ("premem", "0.45", "", "")]
    # each round: chosen of originals, drawn from, new, collected, exhausted (ids in the tooltip), note, mean
    rounds = _section(page, "rounds")
    text = _text(rounds)
    assert "1 40 of 100 35 50 50 1 train-00007 – 0.612 150 0.400 done curation/premem/round1" in text
    assert "2 12 of 100 12 80 130 0 no original has PreMemAcc <= 0.75: the 12 with the lowest instead 0.804" in text
    assert "0 the originals only 100 0.300 done curation/round0" in text
    assert 'title="train-00007"' in rounds
    assert text.count("Mean PreMemAcc") == 1  # premem's table only
    rrows = list(csv.DictReader(io.StringIO((tmp_path / "data" / "curation_rounds.csv").read_text())))
    assert rrows[1]["exhausted_ids"] == "train-00007" and rrows[1]["premem_mean"] == "0.612"
    # the settings line
    sett = _text(_section(page, "settings"))
    for item in ("Model m <1>", "Dataset gsm8k", "Originals 100", "Rounds 2", "Threshold t 0.75", "p -1.2",
                 "New examples per round 50, 80", "Learning rate 2e-5", "Epochs 3", "Source of new examples pool"):
        assert item in sett, item
    assert "IFD" not in sett and "Heuristic" not in sett  # neither strategy is in this study


def test_curation_page_settings_of_the_rivals_and_colours():
    cur = _curation(strategies=["premem", "iid", "ifd", "heuristic"])
    for s in ("ifd", "heuristic"):
        cur[s] = {"curve": [dict(p, run=p["run"].replace("iid", s)) for p in cur["iid"]["curve"]],
                  "rounds": [], "efficiency": [], "targets_note": "not enough finished rounds yet"}
    page = render_pages(_summary(cur), {})["curation.html"]
    sett = _text(_section(page, "settings"))
    assert "IFD scoring trained on test · 2 epochs · learning rate 2e-5 (the rounds') · top 50%" in sett
    assert "Heuristic top 60% by difficulty" in sett
    assert "ifd · mean ratio –" in _text(page) and "not enough finished rounds yet" in page
    assert len(_chart(page).findall(f".//{NS}g[@class='series']/{NS}path")) == 4
    assert "No round recorded yet" not in page  # the rounds table still lists the models
    # each strategy keeps its colour whatever the study's order
    swapped = render_pages(_summary(_curation(strategies=["iid", "premem"])), {})["curation.html"]
    def colour(p: str, s: str) -> str:
        return re.search(rf'id="rounds-{s}"><span class="sw" style="background: (#\w+)"', p).group(1)

    assert colour(page, "premem") == colour(swapped, "premem") and colour(page, "iid") == colour(swapped, "iid")


def test_unfinished_points_left_out_and_nothing_finished():
    cur = _curation()
    cur["iid"]["curve"][2] |= {"status": "failed", "test_acc": None}
    cur["premem"]["curve"][2] |= {"status": "incomplete", "test_acc": None}
    page = render_pages(_summary(cur), {})["curation.html"]
    root = _chart(page)
    assert len(root.findall(f".//{NS}circle")) == 4
    assert "Left out: 2 models not finished (1 failed, 1 incomplete)" in _text(page)
    assert '<span class="status failed">failed</span>' in page
    # a diverged model with a test accuracy is still left out of the chart
    cur["premem"]["curve"][1] |= {"status": "diverged"}
    assert len(_chart(render_pages(_summary(cur), {})["curation.html"]).findall(f".//{NS}circle")) == 3
    # nothing finished: no chart, the page says so, and so does the front page
    for s in ("premem", "iid"):
        for p in cur[s]["curve"]:
            p |= {"status": "incomplete", "test_acc": None}
        cur[s]["rounds"] = []
    pages = render_pages(_summary(cur), {})
    page = pages["curation.html"]
    assert "<svg" not in _section(page, "curves")
    assert "The curation has not produced results yet" in page
    assert "The curation has not produced results yet" in _section(pages["index.html"], "curation")


def test_no_curation_no_page_no_nav_entry(tmp_path):
    write_report(_summary(_curation()), {}, tmp_path)  # an earlier report with a curation page
    assert (tmp_path / "curation.html").exists()
    write_report(_summary(None), {}, tmp_path)
    assert not (tmp_path / "curation.html").exists()
    report = build_report(_summary(None), {})
    assert "curation.html" not in {p.path for p in report.pages}
    assert not [c for c in report.csvs if c.startswith("curation")]
    for page in report.pages:
        assert all(item["key"] != "curation" for item in page.ctx["nav"])
    index = render_pages(_summary(None), {})["index.html"]
    assert "curation.html" not in index and 'id="curation"' not in index
    # with curation: the entry sits between Robustness and Runs on every page
    pages = render_pages(full_summary(), full_dynamics(full_summary()))
    for name, page in pages.items():
        nav = re.search(r'<nav class="site".*?</nav>', page, re.S).group(0)
        labels = re.findall(r'class="item[^"]*"[^>]*>([^<]+)<', nav)
        assert labels[3:5] == ["Robustness", "Curation"] and labels[5].startswith("Runs"), (name, labels)
    assert re.search(r'class="item active"[^>]*>Curation<', pages["curation.html"])


def test_index_curation_paragraph():
    index = render_pages(_summary(_curation()), {})["index.html"]
    text = _text(_section(index, "curation"))
    assert ("premem reaches iid's test accuracies with 1.60× fewer examples (mean of iid's training-set size ÷ "
            "premem's at 1 of 2 target test accuracies).") in text
    assert 'href="curation.html"' in _section(index, "curation")
    assert "data curation" in _text(_section(index, "headline"))
    # a strategy slower than iid is said to need more, with its ratio
    cur = curation_section()
    index = render_pages(_summary(cur), {})["index.html"]
    items = [_text(li) for li in re.findall(r"<li>.*?</li>", _section(index, "curation"), re.S)]
    assert [i.split(" ")[0] for i in items] == ["premem", "ifd", "heuristic"]
    assert "fewer examples" in items[0] and "fewer examples" in items[1] and "fewer" not in items[2]
    assert re.fullmatch(r"heuristic needs more examples than iid to reach the same test accuracies: mean ratio "
                        r"0\.\d\d \(iid's training-set size ÷ heuristic's at 3 target test accuracies\)\.", items[2])
    # no iid: nothing to compare with, said once
    cur = _curation(strategies=["premem"])
    cur["premem"] |= {"efficiency": [], "targets_note": "iid is not among the strategies: nothing to compare with"}
    del cur["iid"], cur["premem"]["mean_ratio"]
    pages = render_pages(_summary(cur), {})
    assert "iid is not among the strategies: nothing to compare with." in _text(_section(pages["index.html"],
                                                                                           "curation"))
    assert "No strategy to compare." not in pages["curation.html"]
    assert "iid is not among the strategies" in _section(pages["curation.html"], "efficiency")


def test_curation_only_study_index(tmp_path):
    summary = _summary(curation_section(), runs=False)
    summary["perplexity_gap"] = {"memorized_correct_median_perplexity": None, "threshold_perplexity": 1.35,
                                 "irreducible_perplexity": 1.2}
    write_report(summary, {}, tmp_path)
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    text = _text(index)
    assert "This study has no grid runs" in text and 'href="curation.html"' in _section(index, "headline")
    # no empty figures, no R² cards, no calibration, no "not yet" promises
    assert "<svg" not in index and "<figure" not in index
    assert "R² PreMemAcc" not in text and "No run has checkpoints yet" not in text
    assert 'id="calibration"' not in index and "No checkpoint has both" not in text
    assert 'id="runs"' in index and "This study has no grid runs. Its curation's models" in text  # nav's anchor
    # the perplexity table keeps only what was measured
    perp = _text(_section(index, "perplexity"))
    assert "Perplexity thresholds at p = -1.2" in perp and "1.3500" in perp and "Correct and memorized" not in perp
    dyn = (tmp_path / "dynamics.html").read_text(encoding="utf-8")
    assert "per-example dynamics are recorded for grid runs only" in dyn and 'href="curation.html"' in dyn
    assert "<svg" in (tmp_path / "curation.html").read_text(encoding="utf-8")
    for name in ("measures.html", "robustness.html"):  # not "add a section and apply again": no run to measure
        page = (tmp_path / name).read_text(encoding="utf-8")
        assert "This study has no grid runs" in page and "apply again" not in page, name
    # without curation either, the front page still says there are no grid runs, and links nowhere missing
    index = render_pages(_summary(None, runs=False), {})["index.html"]
    assert "This study has no grid runs" in index and "curation.html" not in index


def test_malformed_curation_values():
    nan = float("nan")
    cur = {"settings": None, "strategies": ["premem", None, "iid", "premem"], "originals": nan,
           "premem": {"curve": [None, {"round": nan, "size": "x", "test_acc": nan, "status": "done"},
                                {"round": 1, "size": 10, "test_acc": 0.5, "status": "done", "run": None}],
                      "rounds": [None, {"round": 1, "chosen": nan, "exhausted": None, "premem_mean": nan}],
                      "efficiency": [None, {"target": nan, "ratio": "x"}], "mean_ratio": nan},
           "iid": None}
    pages = render_pages(_summary(cur), {})
    for name in ("curation.html", "index.html"):
        page = re.sub(r"<script.*?</script>", "", pages[name], flags=re.S)
        assert "nan" not in page.lower(), name
        for svg_text in re.findall(r"<svg\b.*?</svg>", page, re.S):
            ET.fromstring(svg_text)
    assert len(_chart(pages["curation.html"]).findall(f".//{NS}circle")) == 1
