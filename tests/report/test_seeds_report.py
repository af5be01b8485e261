"""The report with a seeds axis: the runs table's seed column, the seed in the scatter tooltips, the index page's
seeds table (mean and 95 % t-interval at the last epoch) and the curation page's seed-mean bands."""
from __future__ import annotations

import copy
import re

from premem.report.html import render_pages
from premem.report.pages import build_report

from .test_curation_page import _curation, _summary, _text


def _seed_summary() -> dict:
    runs = []
    for seed, test in ((0, 0.40), (1, 0.44)):
        runs.append({"id": f"m/d/lr1e-05-ep2-frac1/seed{seed}", "name": f"m/d/lr1e-05-ep2-frac1/seed{seed}",
                     "status": "done", "seed": seed, "seed_group": "m/d/lr1e-05-ep2-frac1",
                     "settings": {"model": "m", "dataset": "d", "learning_rate": 1e-5, "epochs": 2,
                                  "dataset_fraction": 1.0, "seed": seed},
                     "checkpoints": [{"epoch": 1, "train_acc": 0.5, "test_acc": test - 0.1, "premem_acc": test - 0.1},
                                     {"epoch": 2, "train_acc": 0.7, "test_acc": test, "premem_acc": test + 0.01}]})
    s = _summary(None)
    s["runs"] = runs
    s["seed_groups"] = [{"name": "m/d/lr1e-05-ep2-frac1", "runs": [r["name"] for r in runs], "seeds": [0, 1],
                         "checkpoints": [{"epoch": 2, "n": 2, "test_acc": 0.42, "test_acc_ci": [0.166, 0.674],
                                          "premem_acc": 0.43, "premem_acc_ci": [0.176, 0.684], "train_acc": 0.7,
                                          "train_acc_ci": [0.7, 0.7]}]}]
    return s


def test_index_shows_seeds_table_seed_column_and_seed_in_tooltips():
    pages = render_pages(_seed_summary(), {})
    page = pages["index.html"]
    seeds = page[page.index('<section id="seeds"'):]
    seeds = seeds[:seeds.index("</section>")]
    text = _text(seeds)
    assert "m/d/lr1e-05-ep2-frac1 0, 1 2 2 0.420 [0.166, 0.674] 0.430 [0.176, 0.684]" in text
    assert "<th class=\"num\">Seed</th>" in page
    assert "seed: 1" in page  # the PreMemAcc-vs-test marker of seed 1 says so
    csvs = build_report(_seed_summary(), {}).csvs
    assert csvs["seed_groups.csv"].splitlines()[1].startswith("m/d/lr1e-05-ep2-frac1,2,2,0.42,0.166,0.674")
    assert csvs["runs.csv"].splitlines()[0].endswith(",seed")


def test_no_seeds_no_seeds_section_or_column():
    page = render_pages(_summary(None), {})["index.html"]
    assert 'id="seeds"' not in page and ">Seed</th>" not in page
    assert "seed_groups.csv" not in build_report(_summary(None), {}).csvs


def test_curation_page_draws_seed_mean_bands_with_several_seeds():
    cur = _curation()
    for s in ("premem", "iid"):
        for p in cur[s]["curve"]:
            p |= {"test_acc_ci": [p["test_acc"] - 0.05, p["test_acc"] + 0.05], "n": 2}
    cur["premem"]["efficiency"][0] |= {"ratio_ci": [1.2, 2.0]}
    cur["premem"]["mean_ratio_ci"] = [1.2, 2.0]
    cur |= {"seeds": [0, 1], "per_seed": {}}
    page = render_pages(_summary(cur), {})["curation.html"]
    assert page.count('class="band"') == 2
    assert "test acc: 0.460 [0.410, 0.510]" in page and "mean over 2 seeds, 95% t-interval over seeds" in page
    assert "1.60× [1.20×, 2.00×]" in _text(page)
    plain = render_pages(_summary(copy.deepcopy(_curation())), {})["curation.html"]
    assert 'class="band"' not in plain and not re.search("mean over", plain)
