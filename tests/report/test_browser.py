"""The report in a real browser: headless Chromium (Debian's `chromium`) through Playwright's Python API.

A full report (every section present, several runs and a data-curation study, built from
tests/report/fixtures.py) is opened page by page from disk (file://), offline; so is a curation-only report (no
grid runs). The test fails on any console error or warning, any uncaught exception, any failed request and any
request that is not file:// or data: (the report must need no network). On every page each chart must be drawn
(nonzero size, with its markers, lines, violins or cells). Hovering a marker must show its tooltip; clicking a
marker or a run's legend entry must open that run's page. A full-page screenshot of each page is saved under
$PREMEM_TEST_ARTIFACTS (default: the test's temporary folder).

Without chromium or playwright the test is skipped, unless $CI is set: then it fails.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from premem.report.html import write_report

from .fixtures import curation_section, full_dynamics, full_summary, full_summary_with_intervals

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

CHROMIUM = shutil.which("chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
]
LOCAL_SCHEMES = ("file:", "data:", "about:")
#: the elements that draw data in a chart: markers, series lines, violins, heatmap cells
DATA_MARKS = ".pt, g.series path, path.violin-body, g.cells rect"


def _need_browser() -> None:
    reason = None
    if sync_playwright is None:
        reason = "playwright is not installed (it is in the dev extra: pip install -e '.[dev]')"
    elif CHROMIUM is None:
        reason = "chromium is not installed (Debian: apt-get install chromium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the browser test must run")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-report")
    summary = full_summary()
    write_report(summary, full_dynamics(summary), out)
    return out, summary, report_pages(out)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    env = os.environ.get("PREMEM_TEST_ARTIFACTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class _Watch:
    """Every console message, page error and request of one page; what breaks the rules is a problem."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"uncaught exception: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"))
        page.on("request", self._request)

    def _console(self, msg) -> None:
        if msg.type in ("error", "warning", "assert"):
            self.problems.append(f"console {msg.type}: {msg.text}")

    def _request(self, req) -> None:
        if not req.url.startswith(LOCAL_SCHEMES):
            self.problems.append(f"network request: {req.url}")


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    pg = ctx.new_page()
    watch = _Watch(pg)
    yield pg, watch
    ctx.close()


def _open(pg, watch, path: Path) -> None:
    pg.goto(path.resolve().as_uri(), wait_until="load")
    assert pg.evaluate("document.readyState") == "complete"


def _shot_name(rel: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", rel.replace("/", "__")).replace(".html", ".png")


def assert_pages_render(browser, out: Path, pages: list[str], artifacts: Path, chartless=lambda rel: False) -> None:
    """Open every page of the report in `out` offline; fail on any problem (see the module's docstring), on a
    chart with no size or a figure with nothing drawn, or on a page wider than the window; save a full-page
    screenshot of each under `artifacts`. `chartless(rel)` names pages that may have no chart."""
    problems: dict[str, list[str]] = {}
    for rel in pages:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
        pg = ctx.new_page()
        watch = _Watch(pg)
        try:
            _open(pg, watch, out / rel)
            charts = pg.evaluate(
                """(marks) => Array.from(document.querySelectorAll('svg.chart')).map((s) => {
                       const r = s.getBoundingClientRect();
                       return {w: r.width, h: r.height, inFigure: !!s.closest('figure'),
                               marks: s.querySelectorAll(marks).length,
                               label: s.getAttribute('aria-label')};
                   })""",
                DATA_MARKS,
            )
            assert charts or chartless(rel), rel
            for c in charts:
                assert c["w"] > 20 and c["h"] > 10, (rel, c)
                if c["inFigure"]:
                    assert c["marks"] > 0, (rel, c)  # a figure with nothing drawn in it
            # the tooltip script ran: chart elements carry their tooltips, the page has its tooltip box
            if any(c["inFigure"] for c in charts):
                assert pg.locator("svg.chart [data-tip]").count() > 0, rel
                assert pg.locator("div.tip").count() == 1, rel
            # the nav bar is there (Curation only in a report with a curation page) and the page fits the
            # window (wide tables scroll inside their box)
            assert pg.locator("nav.site a.item").count() == 5 + (out / "curation.html").is_file(), rel
            assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), rel
            pg.screenshot(path=str(artifacts / _shot_name(rel)), full_page=True)
        finally:
            ctx.close()
        if watch.problems:
            problems[rel] = watch.problems
    assert not problems, problems
    assert sorted(p.name for p in artifacts.glob("*.png")) >= sorted(_shot_name(r) for r in pages)


def report_pages(out: Path) -> list[str]:
    """The pages of the report in `out`: the four study pages, the curation page if written, then one per run."""
    pages = ["index.html", "dynamics.html", "measures.html", "robustness.html"]
    pages += ["curation.html"] if (out / "curation.html").is_file() else []
    return pages + sorted(p.relative_to(out).as_posix() for p in (out / "runs").glob("*.html"))


def test_every_page_renders_offline_without_errors(report, artifacts, browser):
    out, summary, pages = report
    assert "curation.html" in pages
    assert len(pages) == 5 + len(summary["runs"])
    # only the failed run's page has no chart
    assert_pages_render(browser, out, pages, artifacts, chartless=lambda rel: rel.startswith("runs/lr3e-2"))


def test_report_with_intervals_renders(tmp_path, artifacts, browser):
    """The full report with bootstrap intervals (issue 15): error bars, bands, mean whiskers and the intervals
    printed beside the numbers still render cleanly and fit the window."""
    summary = full_summary_with_intervals()
    write_report(summary, full_dynamics(summary), tmp_path)
    pages = report_pages(tmp_path)
    shots = artifacts / "intervals"
    shots.mkdir(exist_ok=True)
    assert_pages_render(browser, tmp_path, pages, shots, chartless=lambda rel: rel.startswith("runs/lr3e-2"))


def test_curation_only_report_renders(tmp_path, artifacts, browser):
    """A study with no grid runs: every page still renders cleanly; only the curation page has a chart."""
    summary = {"spec": {"name": "curation only", "text": "name: curation only\n"},
               "generated_at": "2026-11-27T12:00:00",
               "premem": {"p": -1.2, "r2": None, "r2_line": None, "calibration_runs": [], "calibration": []},
               "train_acc": {"r2": None, "r2_line": None}, "runs": [], "notes": [],
               "curation": curation_section()}
    write_report(summary, {}, tmp_path)
    pages = report_pages(tmp_path)
    assert pages == ["index.html", "dynamics.html", "measures.html", "robustness.html", "curation.html"]
    shots = artifacts / "curation-only"
    shots.mkdir(exist_ok=True)
    assert_pages_render(browser, tmp_path, pages, shots, chartless=lambda rel: rel != "curation.html")


def _topmost(pg, selector: str) -> dict:
    """The first element matching ``selector`` that is on top at its centre (markers of several runs can
    overlap), scrolled into view: its centre in the window and its tooltip text."""
    found = pg.evaluate(
        """(sel) => {
               for (const el of document.querySelectorAll(sel)) {
                   el.scrollIntoView({block: 'center'});
                   const r = el.getBoundingClientRect();
                   const x = r.left + r.width / 2, y = r.top + r.height / 2;
                   const hit = document.elementFromPoint(x, y);
                   if (hit === el || el.contains(hit)) {
                       const t = el.closest('[data-tip]');
                       return {x, y, tip: t ? t.getAttribute('data-tip') : null,
                               href: el.closest('a') ? el.closest('a').getAttribute('href') : null};
                   }
               }
               return null;
           }""",
        selector,
    )
    assert found is not None, f"no element {selector} is on top anywhere"
    return found


def _hover_shows_tip(pg, selector: str) -> tuple[str, dict]:
    """Hover the first visible ``selector``; the tooltip box must appear with that element's tooltip."""
    el = _topmost(pg, selector)
    pg.mouse.move(el["x"], el["y"])
    tip = pg.locator("div.tip")
    tip.wait_for(state="visible", timeout=3000)
    text = tip.inner_text()
    assert text == el["tip"], (text, el)
    return text, el


def test_hover_shows_tooltip_and_click_opens_the_run(report, page):
    out, summary, _ = report
    pg, watch = page
    _open(pg, watch, out / "index.html")
    # a marker of the PreMemAcc panel: its tooltip names its run and epoch and gives its values
    text, el = _hover_shows_tip(pg, "figure.panel:nth-of-type(2) svg.chart a .pt")
    run = next(r for r in summary["runs"] if text.startswith(r["name"] + "\n"))
    assert re.search(r"\nepoch \d+\n", text) and "PreMemAcc: " in text and "test acc: " in text, text
    # moving away hides it
    pg.mouse.move(5, 300)
    pg.locator("div.tip").wait_for(state="hidden", timeout=3000)
    # clicking the marker opens its run's page
    with pg.expect_navigation():
        pg.mouse.click(el["x"], el["y"])
    assert pg.url.endswith("/" + el["href"]), (pg.url, el)
    assert pg.locator("h1").inner_text().strip().endswith(run["name"])
    assert not watch.problems, watch.problems


def test_measures_marker_and_legend_open_run_pages(report, page):
    out, summary, _ = report
    pg, watch = page
    _open(pg, watch, out / "measures.html")
    text, _ = _hover_shows_tip(pg, "#against-gap svg.chart a .pt")
    assert "\nepoch " in text and "\ngap: " in text and "train acc − PreMemAcc: " in text, text
    odd = next(r for r in summary["runs"] if "<" in r["name"])
    with pg.expect_navigation():
        pg.locator("#against-gap .legend a", has_text=odd["name"]).click()
    assert pg.url.endswith("/runs/lr_3e-3_frac_0.5_ep6.html"), pg.url
    assert pg.locator("h1").inner_text().strip().endswith(odd["name"])
    # and back through the nav bar
    with pg.expect_navigation():
        pg.locator("nav.site a.item", has_text="Robustness").click()
    assert pg.url.endswith("/robustness.html")
    text, _ = _hover_shows_tip(pg, "svg.chart g.violin path.violin-body")
    assert text.startswith("original prompt · PreMemAcc 0.0-0.2\nn = 7\nmedian "), text
    assert not watch.problems, watch.problems


def test_dynamics_cell_tooltip_and_run_link(report, page):
    out, summary, _ = report
    pg, watch = page
    _open(pg, watch, out / "dynamics.html")
    text, _ = _hover_shows_tip(pg, "svg.chart g.cells rect")
    assert re.fullmatch(r"example train-\d+ · \d+: .+", text), text
    with pg.expect_navigation():
        pg.locator(".dyn-grid h3 a").first.click()
    assert pg.url.endswith(f"/runs/{summary['runs'][0]['name']}.html")
    # the run page's own charts answer to the pointer too
    text, _ = _hover_shows_tip(pg, "svg.chart .pt")
    assert re.match(r"epoch \d+\n(train accuracy|test accuracy|PreMemAcc): ", text), text
    assert not watch.problems, watch.problems


def test_curation_marker_tooltip_and_nav(report, page):
    out, summary, _ = report
    cur = summary["curation"]
    pg, watch = page
    _open(pg, watch, out / "index.html")
    # the front page's curation paragraph links to the page, as does the nav bar
    assert pg.locator("#curation li").count() == len(cur["strategies"]) - 1
    with pg.expect_navigation():
        pg.locator("nav.site a.item", has_text="Curation").click()
    assert pg.url.endswith("/curation.html")
    assert pg.locator("nav.site a.item.active").inner_text().strip() == "Curation"
    # one line per strategy, a marker per finished model
    n_done = sum(1 for s in cur["strategies"] for p in cur[s]["curve"] if p["status"] == "done")
    assert pg.locator("#curves svg.chart g.series path").count() == len(cur["strategies"])
    assert pg.locator("#curves svg.chart .pt").count() == n_done
    text, _ = _hover_shows_tip(pg, "#curves svg.chart .pt")
    m = re.fullmatch(r"(\w+)\nround (\d+)( \(the originals, shared by every strategy\))?\n"
                     r"training-set size: (\d+) examples\ntest acc: (\d\.\d{3})\nrun: (\S+)", text)
    assert m, text
    point = next(p for p in cur[m.group(1)]["curve"] if p["round"] == int(m.group(2)))
    assert (point["size"], f"{point['test_acc']:.3f}", point["run"]) == (int(m.group(4)), m.group(5), m.group(6))
    # the exhausted originals' ids are in the count's tooltip
    cell = pg.locator("#rounds td[title*='train-00042']")
    assert cell.count() == 1 and cell.inner_text().startswith("3")
    assert not watch.problems, watch.problems
