"""specs/paper.yaml: the paper's Appendix A, validated and planned here, offline (no dataset or model is read)."""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

from premem.plan.build import build_plan
from premem.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "specs" / "paper.yaml"

LLAMA = {"optimizer": "adamw", "schedule": "linear", "warmup_steps": 20, "warmup_fraction": None, "max_grad_norm": 2.0}
GEMMA = {"optimizer": "adam", "schedule": "cosine", "warmup_steps": None, "warmup_fraction": 0.1, "max_grad_norm": 1.0}
RECIPES = {("llama3-8b", "gsm8k"): {**LLAMA, "batch_size": 128, "weight_decay": 0.01},  # their gsm8k_train.py
           ("llama3-8b", "math"): {**LLAMA, "batch_size": 24, "weight_decay": 0.0},
           ("gemma2-9b", "gsm8k"): {**GEMMA, "batch_size": 32}, ("gemma2-9b", "math"): {**GEMMA, "batch_size": 32}}
# Fig. 6-7's MATH run (the authors' math_orig_6epochs_full2_lr2e-05_bs24), beside Appendix A's 52
FIG7_MATH = {("llama3-8b", "math", 2e-5, 6, 1.0)}


def appendix_a() -> set[tuple]:
    """The 52 runs of Appendix A as (model, dataset, learning rate, epochs, fraction)."""
    runs = set()
    llama_full = {"gsm8k": [(5e-5, 6), (2e-5, 6), (5e-7, 6), (2e-4, 6), (5e-5, 3), (2e-5, 3), (5e-7, 3), (2e-4, 3),
                            (5e-5, 1), (5e-7, 1), (2e-4, 1)],
                  "math": [(lr, e) for e in (6, 3, 1) for lr in (5e-5, 5e-7, 2e-4)]}
    for d, full in llama_full.items():
        runs |= {("llama3-8b", d, lr, e, 1.0) for lr, e in full}
        runs |= {("llama3-8b", d, 2e-5, 6, 0.5), ("llama3-8b", d, 2e-5, 12, 0.25)}
    for d in ("gsm8k", "math"):
        runs |= {("gemma2-9b", d, lr, e, 1.0) for e in (6, 3, 1) for lr in (5e-4, 5e-5, 5e-6, 5e-7)}
        runs |= {("gemma2-9b", d, 5e-5, 6, 0.5), ("gemma2-9b", d, 5e-5, 12, 0.25)}
    return runs


def test_paper_spec_is_appendix_a():
    spec = load_spec(PAPER)
    assert spec.device == "cuda" and spec.evaluation.sampler == "vllm"
    assert (spec.evaluation.samples, spec.evaluation.temperature, spec.evaluation.top_p) == (5, 0.8, 0.95)
    assert {m.name: m.hf for m in spec.models} == {"llama3-8b": "meta-llama/Meta-Llama-3-8B",
                                                  "gemma2-9b": "google/gemma-2-9b"}
    assert all(m.dtype == "bfloat16" and m.pretrain is None and not m.trust_remote_code for m in spec.models)
    assert spec.dataset("gsm8k").gsm8k.hub == "openai/gsm8k" and spec.dataset("gsm8k").gsm8k.config == "main"
    assert spec.dataset("math").math.hub == "EleutherAI/hendrycks_math"
    assert spec.training.lora is None  # full finetuning, the paper's choice
    assert spec.resources.train.gpus >= 1 and spec.resources.evaluate.gpus >= 1

    plan = build_plan(spec)
    got = {(r.model, r.dataset, r.learning_rate, r.epochs, r.dataset_fraction) for r in plan.runs}
    assert len(plan.runs) == 53 and got == appendix_a() | FIG7_MATH
    per_block = collections.Counter((r.model, r.dataset) for r in plan.runs)
    assert per_block == {("llama3-8b", "gsm8k"): 13, ("llama3-8b", "math"): 12, ("gemma2-9b", "gsm8k"): 14,
                         ("gemma2-9b", "math"): 14}
    # every epoch is a checkpoint; each train job carries its block's recipe
    trains = [j for j in plan.jobs if j.kind == "train"]
    evals = [j for j in plan.jobs if j.kind == "evaluate"]
    assert len(trains) == len(evals) == sum(r.epochs for r in plan.runs)
    for j in trains:
        model, dataset = j.run.split("/")[:2]
        t = j.settings.training
        assert {k: t[k] for k in RECIPES[(model, dataset)]} == RECIPES[(model, dataset)], (j.run, t)
        assert t.get("lora") is None and "overrides" not in t


def test_paper_spec_validates_and_plans_through_the_cli_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=300, stdin=subprocess.DEVNULL)

    v = cli("validate", str(PAPER))
    assert v.returncode == 0, v.stdout + v.stderr
    p = cli("plan", str(PAPER), "--json")
    assert p.returncode == 0, p.stderr
    jobs = json.loads(p.stdout)["jobs"]
    runs = {(j["model"], j["dataset"], j["learning_rate"], j["epochs"], j["dataset_fraction"])
            for j in jobs if j["kind"] == "train"}
    assert runs == appendix_a() | FIG7_MATH
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.safetensors"))
