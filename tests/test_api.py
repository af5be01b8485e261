"""premem.api: the notebook API gives the numbers `premem analyze` gives (the real command, run as a process),
loads a table and a study's store, and shows its analysis inline (HTML with the report's SVG figures)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from premem import api
from premem.analysis.analyze import analyze_plan
from premem.analysis.results_table import export_table
from tests.blocks_table import BLOCKS, GRID, block_runs, write_table
from tests.analysis.test_results_table import EXPECTED, P, R2_PREMEM, R2_TRAIN, SPEC, rows, synthetic_store, write

ROOT = Path(__file__).resolve().parents[1]
GRID_TEXT = ":".join(str(x) for x in GRID)


def cli_analyze(table: Path, out: Path, *args: str) -> dict:
    """`premem analyze` as a user runs it; its summary.json."""
    proc = subprocess.run([sys.executable, "-m", "premem.cli", "analyze", str(table), *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=out.parent, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "summary.json").read_text())


def reference(table: Path, resamples: int, pooled=False, ci_level=0.95, ci_seed=0) -> dict:
    """The summary premem's analysis code makes when called directly, as `premem analyze` called it before it
    went through premem.api: what neither the API nor the command may drift from."""
    from premem.analysis.analyze import build_summary
    from premem.analysis.intervals import bootstrap
    from premem.analysis.results_table import read_results

    res = read_results(table)
    names = [r.name for r in res.runs]
    ps = [round(GRID[0] + i * GRID[2], 6) for i in range(round((GRID[1] - GRID[0]) / GRID[2]) + 1)]
    mode = "pooled" if pooled else "per_block"
    boot = bootstrap(res.runs, ps, names, "identity", None, mode, resamples, ci_level, ci_seed)
    entries = [{"id": n, "name": n, "status": "done", "error": None, "settings": r.settings}
               for n, r in zip(names, res.runs)]
    summary, _ = build_summary(res.runs, entries, ps=ps, calibration_runs=names, notes=res.notes,
                               calibrate_mode=mode, boot=boot)
    return json.loads(json.dumps(summary))


def same(a, b):
    """Equal, to the last bit for numbers, recursively (None, lists and dicts alike)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def blocks_csv(tmp_path_factory):
    return Path(write_table(tmp_path_factory.mktemp("blocks") / "results.csv", block_runs(1)))


@pytest.mark.parametrize("flags,kwargs", [
    ([], {}),  # per (model, dataset) block
    (["--pooled", "--ci-level", "0.9", "--ci-seed", "3"], {"pooled": True, "ci_level": 0.9, "ci_seed": 3}),
])
def test_api_and_cli_give_the_same_numbers(blocks_csv, tmp_path, flags, kwargs):
    want = cli_analyze(blocks_csv, tmp_path / "cli", f"--p-grid={GRID_TEXT}", "--resamples", "40", *flags)
    got = api.analyze(api.load_table(blocks_csv), p_grid=GRID_TEXT, resamples=40, **kwargs)
    s = got.summary
    ref = reference(blocks_csv, 40, **kwargs)
    # every number summary.json carries: p, R^2s, their intervals, leave-one-run-out, calibration, every run
    for key in ("premem", "train_acc", "blocks", "intervals", "test_acc_range", "checkpoints", "perplexity_gap"):
        assert same(s[key], want[key]) and same(s[key], ref[key]), key
    assert [r["name"] for r in s["runs"]] == [r["name"] for r in want["runs"]]
    for a, b in zip(s["runs"], want["runs"]):
        assert same(a["checkpoints"], b["checkpoints"]) and a["p"] == b["p"]
    assert same([r["checkpoints"] for r in ref["runs"]], [r["checkpoints"] for r in want["runs"]])
    # and the attributes and tables read them
    assert got.p == want["premem"]["p"] and got.r2 == want["premem"]["r2"]
    assert got.ci("r2") == want["premem"]["r2_ci"] and got.ci("train_r2") == want["train_acc"]["r2_ci"]
    cps = got.checkpoints()
    assert list(cps["premem_acc"]) == [c["premem_acc"] for r in want["runs"] for c in r["checkpoints"]]
    assert list(cps["premem_acc_low"]) == [c["premem_acc_ci"][0] for r in want["runs"] for c in r["checkpoints"]]
    blocks = got.blocks()
    assert list(blocks["p"]) == [b["p"] for b in want["blocks"]]
    if not kwargs:  # per block: each block finds its own true p, R^2 about 1
        for _, b in blocks.iterrows():
            assert abs(b["p"] - BLOCKS[(b["model"], b["dataset"])]) <= GRID[2] + 1e-9 and b["r2"] > 0.999
        assert got.p is None
    else:
        assert got.p is not None and set(blocks["p"]) == {got.p}


def test_hand_computed_premem_acc_per_checkpoint_and_example(tmp_path):
    path = write(tmp_path / "r.parquet", rows())
    per_cp = api.premem_acc(path, P)
    for run, expected in EXPECTED.items():
        got = per_cp[per_cp["run"] == run]
        assert list(got["checkpoint"]) == [e[0] for e in expected]
        for col, k in (("train_acc", 1), ("test_acc", 2), ("premem_acc", 3), ("memorized_frac", 4)):
            assert list(got[col]) == pytest.approx([e[k] for e in expected], abs=1e-12), (run, col)
    ex = api.premem_acc(path, P, per="example")
    full_a = ex[(ex["run"] == "full") & (ex["example_id"] == "a")]
    assert list(full_a["premem_acc"]) == [0.5, 1.0, 1.0] and list(full_a["memorized"]) == [False, False, True]
    # the per-example values average to the per-checkpoint ones
    means = ex.groupby(["run", "checkpoint"], sort=False)["premem_acc"].mean()
    assert list(means) == pytest.approx(list(per_cp["premem_acc"]), abs=1e-12)
    a = api.analyze(path, p=P, p_grid="-5:0.5:0.5", resamples=0)
    assert a.p == P and a.r2 == pytest.approx(R2_PREMEM) and a.train_r2 == pytest.approx(R2_TRAIN)
    assert a.intervals is None and a.ci("r2") is None and "r2_ci" not in a.headline()
    with pytest.raises(ValueError, match="per must be"):
        api.premem_acc(path, P, per="run")


def test_a_table_loads_the_same_from_csv_parquet_and_a_dataframe(tmp_path):
    csv, pq = write(tmp_path / "r.csv", rows()), write(tmp_path / "r.parquet", rows())
    df = api.load_table(csv)
    assert len(df) == len(rows()) and {"run", "checkpoint", "split", "example_id", "perplexity"} <= set(df.columns)
    by = {name: api.analyze(data, p_grid="-5:0.5:0.5", resamples=20).summary
          for name, data in (("csv", csv), ("parquet", pq), ("frame", df), ("frame_pq", api.load_table(pq)))}
    for name in ("parquet", "frame", "frame_pq"):
        for key in ("premem", "train_acc", "blocks", "intervals"):
            assert same(by[name][key], by["csv"][key]), (name, key)
    assert by["frame"]["spec"]["name"] == "DataFrame" and "premem.api.analyze('DataFrame'" in by["frame"]["spec"]["text"]


def test_bad_settings_and_bad_tables_are_refused():
    good = pd.DataFrame(rows())
    for kwargs, option in (({"p_grid": "0:-1:0.1"}, "p_grid"), ({"p_grid": "a:b"}, "p_grid"), ({"p": math.inf}, "p"),
                           ({"ci_level": 1.5}, "ci_level"), ({"resamples": -1}, "resamples"),
                           ({"fit": "cubic"}, "fit")):
        with pytest.raises(api.OptionError) as e:
            api.analyze(good, **kwargs)
        assert e.value.option == option
    bad = good.copy()
    bad.loc[0, "n_samples"] = -1
    with pytest.raises(api.TableError) as e:
        api.analyze(bad)
    assert e.value.problems == ["row 1, column n_samples: must be an integer >= 1, got -1"]
    assert e.value.path == "<DataFrame>"
    with pytest.raises(api.TableError, match="no run named 'nope'"):
        api.analyze(good, calibrate_on=["nope"])
    with pytest.raises(TypeError):
        api.analyze([1, 2, 3])


def test_inline_html_figures_and_the_report(blocks_csv, tmp_path):
    a = api.analyze(blocks_csv, p_grid=GRID_TEXT, resamples=20)
    html = a._repr_html_()
    assert "<svg" in html and "PreMemAcc vs test accuracy" in html
    assert "llama-test / gsm8k" in html and "gsm8k-lr1e-05" in html  # the blocks table, the runs' legend
    assert "&lt;svg" not in html  # figures are inlined, not escaped
    figs = a.figures()
    assert {"premem_vs_test", "train_vs_test", "block1_calibration", "block2_premem_vs_test"} <= set(figs)
    fig = a.figure()
    assert fig.name == "premem_vs_test" and fig._repr_html_().startswith('<div class="premem-figure"><svg')
    saved = fig.save(tmp_path / "fig.svg")
    assert saved.read_text().startswith("<svg") and saved.read_text().endswith("</svg>")
    with pytest.raises(KeyError, match="there are: train_vs_test"):
        a.figure("nope")
    index = a.write_report(tmp_path / "rep")
    assert index.exists() and json.loads((tmp_path / "rep" / "summary.json").read_text())["blocks"] == \
        json.loads(json.dumps(a.summary["blocks"]))
    from premem.report.folder import ReportFolderError
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's")
    with pytest.raises(ReportFolderError):
        a.write_report(tmp_path / "mine")


def test_a_study_loads_from_its_store(tmp_path):
    spec, plan, store = synthetic_store(tmp_path)
    path = tmp_path / "synth.yaml"
    path.write_text(SPEC.format(store=tmp_path / ".premem"))
    df = api.load_study(path)
    assert df.equals(export_table(plan, store).to_pandas())
    assert set(df["run"]) == {r.name for r in plan.runs}
    # the study as `premem report` shows it, and the table analyzed as `premem analyze` would: same figures
    want, _ = analyze_plan(plan, store, str(path))
    study = api.analyze_study(path)
    assert study.p == want["premem"]["p"] and study.r2 == want["premem"]["r2"] and "<svg" in study._repr_html_()
    from_table = api.analyze(df, p_grid="-3:0:0.1", resamples=0)
    assert from_table.p == want["premem"]["p"] and from_table.r2 == pytest.approx(want["premem"]["r2"], abs=1e-12)
    # a store given apart from the spec (the spec's store relative to another folder), and none at all
    moved = tmp_path / "other.yaml"
    moved.write_text(SPEC.format(store=tmp_path / "nowhere"))
    assert api.load_study(moved, store=tmp_path / ".premem").equals(df)
    with pytest.raises(FileNotFoundError, match="premem apply"):
        api.load_study(moved)


def test_the_public_names_are_documented():
    assert sorted(api.__all__) == sorted(set(api.__all__))
    doc = (ROOT / "docs" / "API.md").read_text()
    for name in api.__all__:
        obj = getattr(api, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        if callable(obj) and not isinstance(obj, type) and name not in ("TableError",):
            assert f"{name}(" in doc, f"docs/API.md shows no call of {name}"
