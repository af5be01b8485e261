"""training.precision: mixed (float32 master weights and AdamW state, passes under autocast to the model's dtype)
against pure (everything in the model's dtype), through premem's real train jobs on a tiny Llama written to a
folder (tests/tiny_hf.py, float32 weights with the usual 0.02 initialisation) and named with dtype bfloat16."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from premem.engine.train import OPTIMIZER_FILE
from premem.jobs.runners import run_train_epoch
from premem.plan.build import build_plan
from premem.spec.load import parse_spec
from premem.store import Store
from tests.tiny_hf import FIXTURES, make_tiny_hf


def spec_text(model: Path, dtype: str, precision: str | None, lr: float, epochs: int = 1, extra: str = "") -> str:
    prec = f", precision: {precision}" if precision else ""
    return f"""
name: precision
device: cpu
models: [{{name: m, hf: {model}, dtype: {dtype}}}]
datasets:
  - name: g
    gsm8k: {{train_file: {FIXTURES / 'gsm8k_train.jsonl'}, test_file: {FIXTURES / 'gsm8k_test.jsonl'}}}
training: {{batch_size: 12, schedule: constant, warmup_steps: 0, max_grad_norm: null{prec}{extra}}}
grid: {{learning_rate: [{lr}], epochs: [{epochs}]}}
"""


def train(tmp_path: Path, text: str, name: str) -> tuple[list, Store]:
    """Run every train job of the spec in order (in this process); return the jobs and the store."""
    plan = build_plan(parse_spec(text, "s.yaml"))
    store = Store(tmp_path / name)
    jobs = [j for j in plan.jobs if j.kind == "train"]
    for job in jobs:
        store.record(job, "done", result=run_train_epoch(job, store, lambda m: None))
    return jobs, store


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "model"
    make_tiny_hf(folder, hidden=64)
    return folder


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / "model.safetensors"))


def kept_fraction(model: Path, tmp_path: Path, precision: str, lr: float) -> tuple[float, torch.dtype]:
    """The share of a float32 reference step that a bfloat16 model's step under `precision` keeps: the projection
    of its change of the weights onto the reference's change, over the reference's squared length (1 = all of
    it); and the dtype its checkpoint holds the weights in."""
    w0 = weights(model)
    ref_jobs, ref_store = train(tmp_path, spec_text(model, "float32", None, lr), f"ref-{lr}")
    ref = weights(ref_store.artifact(ref_jobs[0].id))
    jobs, store = train(tmp_path, spec_text(model, "bfloat16", precision, lr), f"{precision}-{lr}")
    got = weights(store.artifact(jobs[0].id))
    dot = sq = 0.0
    for name, w in w0.items():
        start = w if got[name].dtype == torch.float32 else w.to(got[name].dtype)  # pure starts from bf16 weights
        d = got[name].double() - start.double()
        d_ref = ref[name].double() - w.double()
        dot, sq = dot + float((d * d_ref).sum()), sq + float((d_ref * d_ref).sum())
    return dot / sq, next(iter(got.values())).dtype


@pytest.mark.parametrize("lr", [5e-7, 2e-5])
def test_mixed_precision_keeps_small_updates_that_pure_bfloat16_rounds_away(model, tmp_path, lr):
    mixed, mixed_dtype = kept_fraction(model, tmp_path, "mixed", lr)
    pure, pure_dtype = kept_fraction(model, tmp_path, "pure", lr)
    print(f"lr {lr:g}: share of the float32 update kept: mixed {mixed:.3f}, pure {pure:.3f}")
    assert mixed_dtype == torch.float32 and pure_dtype == torch.bfloat16  # mixed checkpoints the master weights
    assert 0.9 < mixed < 1.1
    if lr == 5e-7:
        assert pure < 0.2


def test_mixed_is_the_default_and_the_next_epoch_resumes_float32_state(model, tmp_path):
    jobs, store = train(tmp_path, spec_text(model, "bfloat16", None, 1e-4, epochs=2), "two")
    assert all(j.settings.training["precision"] == "mixed" for j in jobs)
    for job in jobs:
        folder = store.artifact(job.id)
        assert {w.dtype for w in weights(folder).values()} == {torch.float32}
        state = torch.load(folder / OPTIMIZER_FILE, weights_only=True)["state"]
        assert {t.dtype for st in state.values() for k, t in st.items() if k != "step"} == {torch.float32}
    one, two = (weights(store.artifact(j.id)) for j in jobs)
    assert any(not torch.equal(one[k], two[k]) for k in one)


def test_float32_models_hash_no_precision_and_others_always_do(model):
    def train_ids(dtype, precision):
        plan = build_plan(parse_spec(spec_text(model, dtype, precision, 1e-4), "s.yaml"))
        return [(j.id, j.settings.training) for j in plan.jobs if j.kind == "train"]

    f32 = [train_ids("float32", p) for p in (None, "mixed", "pure")]
    assert f32[0] == f32[1] == f32[2] and "precision" not in f32[0][0][1]
    bf = {p: train_ids("bfloat16", p) for p in ("mixed", "pure")}
    assert bf["mixed"] == train_ids("bfloat16", None) and bf["mixed"][0][0] != bf["pure"][0][0]
    assert bf["pure"][0][1]["precision"] == "pure"


def test_an_override_sets_the_precision_of_one_model(model):
    text = spec_text(model, "bfloat16", None, 1e-4, extra=", overrides: [{model: m, precision: pure}]")
    plan = build_plan(parse_spec(text, "s.yaml"))
    assert {j.settings.training["precision"] for j in plan.jobs if j.kind == "train"} == {"pure"}


def test_lora_under_mixed_precision_trains_float32_adapters_on_the_bfloat16_base(model, tmp_path):
    pytest.importorskip("peft")
    jobs, store = train(tmp_path, spec_text(model, "bfloat16", None, 1e-3, epochs=2, extra=", lora: {r: 4}"),
                        "lora")
    for job in jobs:
        adapter = load_file(str(store.artifact(job.id) / "adapter_model.safetensors"))
        assert adapter and {w.dtype for w in adapter.values()} == {torch.float32}


def test_float16_mixed_precision_scales_the_loss_and_keeps_its_scale(model, tmp_path):
    import json

    jobs, store = train(tmp_path, spec_text(model, "float16", None, 1e-4, epochs=2), "fp16")
    states = [json.loads((store.artifact(j.id) / "train_state.json").read_text()) for j in jobs]
    assert all(s["grad_scaler"]["scale"] > 0 for s in states)
    assert {w.dtype for w in weights(store.artifact(jobs[-1].id)).values()} == {torch.float32}


def test_the_report_marks_runs_trained_in_pure_bfloat16(model):
    from premem.analysis.precision import mark_precision

    for precision, marked in (("pure", True), ("mixed", False)):
        plan = build_plan(parse_spec(spec_text(model, "bfloat16", precision, 1e-4), "s.yaml"))
        summary = {"notes": [], "runs": [{"name": r.name, "settings": r.settings()} for r in plan.runs]}
        mark_precision(plan, summary)
        assert (summary["runs"][0]["settings"].get("precision") == "pure bfloat16") == marked
        assert [("pure bfloat16" in n) for n in summary["notes"]] == ([True] if marked else [])


def test_evaluation_scores_perplexity_in_float32_and_samples_in_the_models_dtype(model, tmp_path):
    from premem.data.format import prompt_of, target_of
    from premem.engine.models import load_model
    from premem.engine.sampling import target_nll
    from premem.jobs.context import run_examples
    from premem.jobs.runners import run_evaluate

    evaluation = "\nevaluation: {samples: 1, max_new_tokens: 4, test_examples: 2}\n"
    nlls = {}
    for choice in ("float32", "model"):
        text = spec_text(model, "bfloat16", None, 1e-3) + evaluation.replace("}", f", scoring_dtype: {choice}}}")
        plan = build_plan(parse_spec(text, "s.yaml"))
        store = Store(tmp_path / choice)
        train_job = next(j for j in plan.jobs if j.kind == "train")
        store.record(train_job, "done", result=run_train_epoch(train_job, store, lambda m: None))
        ev = next(j for j in plan.jobs if j.kind == "evaluate")
        assert ev.settings.scoring_dtype == ("float32" if choice == "float32" else "bfloat16")
        rows = [r for r in run_evaluate(ev, store, lambda m: None)["_examples"] if r["split"] == "train"]
        ckpt = load_model(store.artifact(train_job.id), device="cpu", dtype=ev.settings.scoring_dtype)
        from premem.jobs.context import job_sections

        pairs = [(prompt_of(e.question), target_of(e.solution)) for e in run_examples(ev, job_sections(ev)[1])]
        want = [n for n, _ in target_nll(ckpt, pairs)]
        assert [r["nll"] for r in rows] == pytest.approx(want, rel=1e-6)
        nlls[choice] = want
    assert nlls["float32"] != nlls["model"]  # bfloat16 scoring does move them
    f32 = build_plan(parse_spec(spec_text(model, "float32", None, 1e-3) + evaluation, "s.yaml"))
    assert all(j.settings.scoring_dtype is None for j in f32.jobs if j.kind == "evaluate")
