"""premem.cost.memory: a train job's GPU memory per GPU (the formula of its docstring on known configs), `premem plan`
printing it and `premem apply` refusing a job that cannot fit before anything runs."""
import json
from pathlib import Path

import pytest

from premem.cli import main
from premem.cost.memory import GIB, KNOWN_CONFIGS, architecture, from_config, memory_problem, train_memory
from premem.plan.build import build_plan
from premem.spec.load import parse_spec
from tests.tiny_hf import FIXTURES, make_tiny_hf

ROOT = Path(__file__).resolve().parents[2]
LLAMA3_8B = 8_030_261_248  # parameters of meta-llama/Meta-Llama-3-8B (its safetensors index: 16,060,522,496 bytes)


def spec(models: str, training: str = "", resources: str = "train: {gpus: 1}, evaluate: {gpus: 1}",
         device: str = "cuda") -> str:
    return f"""
name: mem
device: {device}
models: {models}
datasets:
  - name: g
    gsm8k: {{train_file: {FIXTURES / 'gsm8k_train.jsonl'}, test_file: {FIXTURES / 'gsm8k_test.jsonl'}}}
training: {{batch_size: 16, micro_batch_size: 4{training}}}
grid: {{learning_rate: [1.0e-5], epochs: [1]}}
resources: {{{resources}}}
"""


def llama(training: str = "", resources: str = "train: {gpus: 1}, evaluate: {gpus: 1}", dtype: str = "bfloat16"):
    s = parse_spec(spec(f"[{{name: llama, hf: meta-llama/Meta-Llama-3-8B, dtype: {dtype}, max_length: 512}}]",
                        training, resources), "s.yaml")
    return s, train_memory(s.models[0], s.datasets[0], s.training.for_run("llama", "g"))


def test_the_table_gives_the_real_parameter_counts():
    assert from_config(KNOWN_CONFIGS["meta-llama/Meta-Llama-3-8B"], "t").params == LLAMA3_8B
    assert from_config(KNOWN_CONFIGS["google/gemma-2-9b"], "t").params == 9_241_705_984
    assert abs(from_config(KNOWN_CONFIGS["deepseek-ai/deepseek-math-7b-base"], "t").params - 6.91e9) < 0.01e9


def test_llama3_8b_mixed_adamw_one_shard_and_four():
    p, h, i, L, V = LLAMA3_8B, 4096, 14336, 32, 128256
    layer = 2 * h * h + 2 * h * 1024 + 3 * h * i
    activations = 4 * 512 * (L * 2 * (16 * h + 4 * i) + V * (2 + 8))  # micro-batch 4 x 512 tokens, bf16 passes
    _, one = llama()
    want = (16 * p + 2 * p + activations) / GIB + 2.0
    assert one.gib == pytest.approx(want, rel=1e-9)
    assert one.parts["weights"] + one.parts["gradients"] + one.parts["optimizer"] == pytest.approx(16 * p / GIB)
    _, four = llama(", shards: 4", "train: {gpus: 4}, evaluate: {gpus: 1}")
    want4 = (16 * p / 4 + 2 * p + 3 * 4 * layer + activations) / GIB + 2.0
    assert four.gib == pytest.approx(want4, rel=1e-9)
    print(f"Llama-3-8B mixed AdamW, micro-batch 4 x 512 tokens: {one.gib:.1f} GiB on one GPU, {four.gib:.1f} GiB "
          "each on four")
    assert one.gib > 141 and four.gib < 80  # more than an H200 alone; fits four 80 GB GPUs


def test_pure_bfloat16_lora_and_float32():
    p = LLAMA3_8B
    _, pure = llama(", precision: pure")
    assert pure.parts["weights"] + pure.parts["gradients"] + pure.parts["optimizer"] == pytest.approx(8 * p / GIB)
    assert "autocast copies" not in pure.parts
    _, lora = llama(", lora: {r: 16}")
    adapters = 32 * 16 * (2 * 4096 + 2 * (4096 + 1024) + 2 * 4096 + 3 * (4096 + 14336))
    assert lora.parts["weights"] == pytest.approx((2 * p + 4 * adapters) / GIB)
    assert lora.parts["optimizer"] == pytest.approx(8 * adapters / GIB)
    _, f32 = llama(dtype="float32")
    assert f32.parts["optimizer"] == pytest.approx(8 * p / GIB) and "autocast copies" not in f32.parts


def test_a_local_folder_counts_its_safetensors_and_an_unknown_hub_model_says_unknown(tmp_path):
    folder = make_tiny_hf(tmp_path / "tiny")
    s = parse_spec(spec(f"[{{name: t, hf: {folder}}}, {{name: u, hf: someone/unknown-model}}]"), "s.yaml")
    import torch
    from transformers import AutoModelForCausalLM

    n = sum(t.numel() for t in AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).parameters())
    assert architecture(s.models[0]).params == n
    unknown = train_memory(s.models[1], s.datasets[0], s.training)
    assert unknown.gib is None and "unknown" in unknown.assumptions[0]
    assert memory_problem(build_plan(s)) is None  # nothing known to refuse


def test_a_hub_model_in_the_local_cache_reads_its_config(tmp_path, monkeypatch):
    import huggingface_hub.constants

    repo = tmp_path / "models--org--small"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    config = {"hidden_size": 64, "num_hidden_layers": 3, "intermediate_size": 128, "num_attention_heads": 4,
              "vocab_size": 1000, "tie_word_embeddings": True}
    (repo / "snapshots" / "abc123" / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    s = parse_spec(spec("[{name: s, hf: org/small}]"), "s.yaml")
    arch = architecture(s.models[0])
    assert arch.source.startswith("config.json in the local") and arch.layers == 3
    assert arch.params == 1000 * 64 + 3 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64


def test_gpu_memory_is_not_part_of_any_job_id():
    a = build_plan(parse_spec(spec("[{name: llama, hf: meta-llama/Meta-Llama-3-8B, dtype: bfloat16}]"), "s.yaml"))
    b = build_plan(parse_spec(spec("[{name: llama, hf: meta-llama/Meta-Llama-3-8B, dtype: bfloat16}]",
                                   resources="train: {gpus: 1, gpu_memory_gib: 40}, evaluate: {gpus: 1}"), "s.yaml"))
    assert [j.id for j in a.jobs] == [j.id for j in b.jobs]


def test_plan_prints_the_paper_specs_memory_per_gpu(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", str(ROOT / "specs" / "paper.yaml")]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("  llama3-8b on gsm8k: about")]
    assert len(lines) == 1 and "4 shards" in lines[0], out[-2000:]
    assert "GPUs of 80 GiB: resources.train.gpu_memory_gib" in out
    assert main(["plan", str(ROOT / "specs" / "paper.yaml"), "--json"]) == 0
    mem = json.loads(capsys.readouterr().out)["train_memory"]
    assert mem["gpu_gib"] == 80 and len(mem["pairs"]) == 4
    assert all(0 < pair["gib_per_gpu"] < 80 for pair in mem["pairs"])  # the shipped spec fits its GPUs


def test_plan_without_a_gpu_spec_says_it_assumes_80_gib(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(spec("[{name: llama, hf: meta-llama/Meta-Llama-3-8B, dtype: bfloat16}]"))
    assert main(["plan", "s.yaml"]) == 0
    out = capsys.readouterr().out
    assert "GPUs of 80 GiB: ASSUMED" in out and "llama on g: about 1" in out  # one GPU: over 100 GiB


def test_apply_refuses_a_train_job_that_cannot_fit_before_anything_runs(tmp_path, monkeypatch, capsys):
    folder = make_tiny_hf(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(spec(f"[{{name: t, hf: {folder}}}]",
                                          resources="train: {gpus: 1, gpu_memory_gib: 0.5}, evaluate: {gpus: 1}"))
    capsys.readouterr()
    assert main(["apply", "s.yaml"]) == 1
    err = capsys.readouterr().err
    assert "premem: train jobs of t on g need about 2.0 GiB per GPU, more than the 0.5 GiB of their GPUs" in err, err
    assert all(w in err for w in ("training.shards", "training.lora", "training.micro_batch_size",
                                  "nothing was run")), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / ".premem" / "premem.db").exists()  # refused before the store was even opened
