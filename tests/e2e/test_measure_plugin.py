"""End to end: a new classic measure is its own module plus one registration. A toy measure (the parameter norm
of a checkpoint) lives in a package of its own, outside premem, registered through the `premem.measures` entry
point group; with it installed (on PYTHONPATH, with its dist-info), the real CLI validates a spec that names it,
plans and costs its jobs, runs them on a real local Ray (whose workers load the plugin themselves) and the
report shows it beside the built-in measures. Nothing in premem names it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from premem.engine.models import load_model
from tests.e2e.test_cli_apply import workdir  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

PLUGIN = '''
"""A toy measure: the L2 norm of a checkpoint's parameters (or its square)."""
from pydantic import Field

from premem.measures import Measure, MeasureJob
from premem.spec.base import Strict


class ParamNorm(Strict):
    """The parameter norm of a checkpoint."""

    squared: bool = Field(False, description="The squared norm instead of the norm.")


def plan(config, at):
    return MeasureJob(at.without_data, config, {"checkpoint": at.train})


def run(ctx):
    total = sum(float((p.detach().double() ** 2).sum()) for p in ctx.checkpoint().model.parameters())
    ctx.progress("summed")
    return {"value": total if ctx.config["squared"] else total ** 0.5}


def work(config, sizes):
    return {"loads": 1, "authors_loads": 1}


MEASURE = Measure(name="param_norm", settings=ParamNorm, description="Parameter norm; {} for defaults.",
                  label="Parameter norm", axis="||theta||", plan=plan, run=run, work=work)
'''


def install_plugin(root: Path) -> dict:
    """The toy measure as an installed distribution under `root`; the environment that sees it."""
    root.mkdir()
    (root / "premem_toy_measure.py").write_text(PLUGIN)
    info = root / "premem_toy_measure-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: premem-toy-measure\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[premem.measures]\nparam_norm = premem_toy_measure:MEASURE\n")
    repo = Path(__file__).resolve().parents[2]
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(root), str(repo), os.environ.get("PYTHONPATH", "")])}


def cli(*args, cwd, env, check=True):
    proc = subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"premem {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_a_measure_from_another_package_runs_through_plan_apply_and_the_report(workdir, tmp_path):  # noqa: F811
    env = install_plugin(tmp_path / "site")
    spec = workdir / "smoke.yaml"
    # the smoke study made smaller still (one run, a short pretraining): the plumbing is what is tested
    small = spec.read_text().replace("examples: 4000", "examples: 500").replace(
        "learning_rate: [1.0e-3, 3.0e-3]", "learning_rate: [3.0e-3]")
    assert "examples: 500" in small and "[3.0e-3]" in small
    spec.write_text(small + "metrics:\n  param_norm: {}\n  weight_distance: {}\n")

    typo = workdir / "typo.yaml"
    typo.write_text(spec.read_text().replace("param_norm: {}", "param_nrom: {}"))
    bad = cli("validate", "typo.yaml", cwd=workdir, env=env, check=False)
    assert bad.returncode != 0 and "param_nrom" in bad.stdout + bad.stderr
    assert "param_norm" in bad.stdout + bad.stderr  # the registered names are offered

    plan = json.loads(cli("plan", "smoke.yaml", "--json", cwd=workdir, env=env).stdout)
    jobs = [j for j in plan["jobs"] if j["kind"] == "measure"]
    assert sorted({j["measure"] for j in jobs}) == ["param_norm", "weight_distance"]
    assert sum(j["measure"] == "param_norm" for j in jobs) == 2  # 1 run x 2 epochs
    cli("plan", "smoke.yaml", "--cost", cwd=workdir, env=env)  # the cost model reads the measure's work

    cli("apply", "smoke.yaml", cwd=workdir, env=env)
    summary = json.loads((workdir / "reports" / "summary.json").read_text())
    entry = summary["baselines"]["param_norm"]
    assert entry["label"] == "Parameter norm" and entry["n"] == 2
    assert list(summary["baselines"]) == ["premem", "weight_distance", "param_norm"]  # registration order

    # each value is the norm of the checkpoint the run's train job stored, computed here again
    import sqlite3

    con = sqlite3.connect(workdir / ".premem" / "premem.db")
    rows = con.execute("SELECT run, epoch, result FROM jobs WHERE kind = 'measure' AND status = 'done'").fetchall()
    con.close()
    checkpoint_of = {(j["run"], j["epoch"]): j["full_id"] for j in plan["jobs"] if j["kind"] == "train"}
    norms = {}
    for run, epoch, result in rows:
        result = json.loads(result)
        if result["measure"] != "param_norm":
            continue
        model = load_model(workdir / ".premem" / "artifacts" / checkpoint_of[(run, epoch)], device="cpu").model
        expected = sum(float((p.detach().double() ** 2).sum()) for p in model.parameters()) ** 0.5
        assert result["value"] == pytest.approx(expected, rel=1e-9)
        norms[(run, epoch)] = result["value"]
    assert len(norms) == 2 and len(set(norms.values())) == 2  # each checkpoint its own value
    for r in summary["runs"]:
        for c in r["checkpoints"]:
            assert c["param_norm"] == pytest.approx(norms[(r["name"], c["epoch"])], rel=1e-12)

    measures_page = (workdir / "reports" / "measures.html").read_text()
    assert "Parameter norm" in measures_page
    run_page = next((workdir / "reports" / "runs").glob("*.html")).read_text()
    assert "Parameter norm" in run_page  # a column of its own on each run's page

    # without the plugin installed, the same spec is refused with a clear message, not a crash
    plain = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    refused = cli("validate", "smoke.yaml", cwd=workdir, env=plain, check=False)
    assert refused.returncode != 0 and "param_norm" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
