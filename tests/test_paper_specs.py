"""The paper specs plan the authors' comparisons (through the real CLI, offline): specs/paper.yaml the classic
measures of Fig. 5, the perturbed prompts of Fig. 6-7 and each dataset's sampling; the curation specs the round
sizes and train samples of the authors' Fig. 8 runs."""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from premem.plan.build import build_plan
from premem.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

# Fig. 5: GSM8K x Llama3-8B, 3 epochs at these learning rates (the authors' gsm8k_orig_line_baselines notebook)
FIG5 = {f"llama3-8b/gsm8k/lr{lr}-ep3-frac1" for lr in ("2e-05", "0.0002", "5e-07")}
FIG7 = {"llama3-8b/gsm8k/lr2e-05-ep6-frac1", "llama3-8b/math/lr2e-05-ep6-frac1"}


def _plan_json(spec: Path, tmp_path) -> list[dict]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    p = subprocess.run([sys.executable, "-m", "premem.cli", "plan", str(spec), "--json"], cwd=tmp_path, env=env,
                       text=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["jobs"]


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory):
    return _plan_json(SPECS / "paper.yaml", tmp_path_factory.mktemp("paper"))


def test_fig5_measures_every_checkpoint_of_the_three_3_epoch_runs(paper_jobs):
    measures = collections.Counter((j["measure"], j["run"]) for j in paper_jobs if j["kind"] == "measure")
    # 3 checkpoints each; the ATC reference (2e-5, 3 epochs) is one of the measured runs
    assert measures == {(m, r): 3 for m in ("gradient_variance", "weight_distance", "atc") for r in FIG5}
    gv = [j for j in paper_jobs if j["kind"] == "measure" and j["measure"] == "gradient_variance"]
    assert {(j["config"]["minibatches"], j["config"]["batch_size"]) for j in gv} == {(5, 128)}  # 640 examples
    analysis = next(j for j in paper_jobs if j["kind"] == "analysis")
    assert analysis["status"] == "to run"


def test_fig7_perturbs_the_final_6_epoch_checkpoints_at_2e5(paper_jobs):
    pert = {(j["run"], j["epoch"], j["preamble"], j["samples"]) for j in paper_jobs if j["kind"] == "perturb"}
    assert pert == {(r, 6, p, 10) for r in FIG7 for p in ("", " First", " We know that")}


def test_each_dataset_samples_as_the_authors_did(paper_jobs):
    seen = collections.defaultdict(set)
    for j in paper_jobs:
        if j["kind"] == "evaluate":
            ev = j["evaluation"]
            seen[j["dataset"]].add((ev["top_p"], ev["max_new_tokens"], ev["temperature"], ev["samples"]))
    assert seen == {"gsm8k": {(0.95, 512, 0.8, 5)}, "math": {(1.0, 1024, 0.8, 5)}}


def test_perturbed_and_atc_sampling_follow_their_dataset():
    plan = build_plan(load_spec(SPECS / "paper.yaml"))
    sampling = {(j.kind, j.run.split("/")[1], j.settings.sampling["top_p"], j.settings.sampling["max_new_tokens"])
                for j in plan.jobs if getattr(j.settings, "sampling", None) is not None}
    assert sampling == {("perturb", "gsm8k", 0.95, 512), ("perturb", "math", 1.0, 1024),
                        ("measure", "gsm8k", 0.95, 512)}


@pytest.mark.parametrize("name, originals, sizes, top_p", [
    # the authors' training-set sizes after each round (reasoning_data: gsm8k_amrith.ipynb, math_amrith.ipynb)
    ("paper-curation-gsm8k", 7473, [14946, 22419, 29892, 44838, 59784], 0.95),
    ("paper-curation-math", 3504, [7008, 14016, 28032, 42048, 49056], 1.0),
])
def test_curation_specs_plan_the_authors_round_sizes(name, originals, sizes, top_p, tmp_path):
    jobs = _plan_json(SPECS / f"{name}.yaml", tmp_path)
    plan = build_plan(load_spec(SPECS / f"{name}.yaml"))
    for strategy, collects in plan.curation.collects.items():
        new = [plan.job(j).settings.new_examples for j in collects]
        assert [originals + sum(new[:r]) for r in range(1, len(new) + 1)] == sizes, strategy
    evals = [j for j in jobs if j["kind"] == "evaluate"]
    assert evals and {(j["evaluation"]["samples"], j["evaluation"]["test_samples"], j["evaluation"]["top_p"])
                      for j in evals} == {(10, 5, top_p)}
    score = next(j for j in plan.jobs if j.kind == "score")
    assert score.settings.unconditional == "bos_only"
