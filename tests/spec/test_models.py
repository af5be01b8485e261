"""The spec's model and training sections: hf models (hub id or folder), LoRA, overrides, micro-batches."""
import pytest

from premem.plan.build import build_plan
from premem.spec.load import SpecError, parse_spec
from tests.tiny_hf import FIXTURES

DATA = f"""\
datasets:
  - name: g
    gsm8k: {{train_file: {FIXTURES / 'gsm8k_train.jsonl'}, test_file: {FIXTURES / 'gsm8k_test.jsonl'}}}
grid: {{learning_rate: [1.0e-5], epochs: [1]}}
"""


def spec(models: str, extra: str = "") -> str:
    return f"name: t\nmodels:\n{models}{DATA}{extra}"


def problems(text):
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return [str(p) for p in e.value.problems]


def test_hf_hub_id_and_folder(tmp_path):
    s = parse_spec(spec("  - {name: l, hf: meta-llama/Meta-Llama-3-8B, revision: abc123, dtype: bfloat16}\n"))
    m = s.models[0]
    assert (m.hf, m.revision, m.dtype, m.trust_remote_code) == ("meta-llama/Meta-Llama-3-8B", "abc123", "bfloat16", False)
    assert set(m.model_dump(mode="json")) == {"name", "hf", "revision", "max_length", "dtype", "trust_remote_code"}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert parse_spec(spec(f"  - {{name: l, hf: {tmp_path / 'm'}}}\n")).models[0].hf == str(tmp_path / "m")
    out = problems(spec(f"  - {{name: l, hf: {tmp_path / 'nothing'}}}\n"))
    assert any("models.0.hf: no such model folder" in p for p in out), out
    (tmp_path / "e").mkdir()
    out = problems(spec(f"  - {{name: l, hf: {tmp_path / 'e'}}}\n"))
    assert any("has no config.json" in p for p in out), out


def test_hf_and_builtin_fields_do_not_mix():
    out = problems(spec("  - {name: l, hf: org/m, pretrain: {dataset: g, examples: 10}}\n"))
    assert any("`pretrain` is only for built-in models" in p for p in out), out
    out = problems(spec("  - {name: l, hf: org/m, size: {layers: 2}}\n"))
    assert any("`size` is only for built-in models" in p for p in out), out
    out = problems(spec("  - {name: l, builtin: tiny, revision: main, pretrain: {dataset: g, examples: 10}}\n"))
    assert any("revision: only for a Hugging Face" in p for p in out), out


def test_lora_and_micro_batches_and_overrides_resolve_per_run():
    extra = """\
training:
  batch_size: 8
  lora: {r: 8, target_modules: [q_proj, v_proj]}
  overrides:
    - {model: b, batch_size: 4, micro_batch_size: 2, warmup_fraction: 0.1}
"""
    s = parse_spec(spec("  - {name: a, hf: org/a}\n  - {name: b, hf: org/b}\n", extra))
    assert s.training.lora.r == 8 and s.training.lora.alpha == 32 and s.training.lora.target_modules == ["q_proj", "v_proj"]
    t = {j.run.split("/")[0]: j.settings.training for j in build_plan(s).jobs if j.kind == "train"}
    assert t["a"]["batch_size"] == 8 and "micro_batch_size" not in t["a"] and t["a"]["lora"]["r"] == 8
    assert (t["b"]["batch_size"], t["b"]["micro_batch_size"], t["b"]["warmup_fraction"]) == (4, 2, 0.1)
    assert "overrides" not in t["a"] and "overrides" not in t["b"]
    out = problems(spec("  - {name: a, hf: org/a}\n", "training:\n  overrides: [{model: z, batch_size: 2}]\n"))
    assert any("training.overrides.0.model: unknown model 'z'" in p for p in out), out
    out = problems(spec("  - {name: a, hf: org/a}\n", "training:\n  overrides: [{batch_size: 2}]\n"))
    assert any("name a `model` and/or a `dataset`" in p for p in out), out


def test_several_training_gpus_need_as_many_shards():
    out = problems(spec("  - {name: a, hf: org/a}\n", "device: cuda\nresources: {train: {gpus: 4}, evaluate: {gpus: 1}}\n"))
    assert any("training.shards: resources.train.gpus is 4" in p and "shards: 4" in p for p in out), out
    ok = "device: cuda\ntraining: {shards: 4}\nresources: {train: {gpus: 4}, evaluate: {gpus: 1}}\n"
    assert parse_spec(spec("  - {name: a, hf: org/a}\n", ok), "s.yaml").training.shards == 4
    out = problems(spec("  - {name: a, hf: org/a}\n", "device: cuda\ntraining: {shards: 2}\n"
                        "resources: {train: {gpus: 1}, evaluate: {gpus: 1}}\n"))
    assert any("2 shards need 2 GPUs" in p for p in out), out
    out = problems(spec("  - {name: a, hf: org/a}\n", "device: cpu\ntraining: {shards: 2}\n"))
    assert any("ask resources.train.cpus for at least 2" in p for p in out), out
    out = problems(spec("  - {name: a, hf: org/a}\n", "device: cpu\ntraining: {shards: 2, lora: {r: 4}}\n"
                        "resources: {train: {cpus: 2}}\n"))
    assert any("LoRA" in p for p in out), out


def test_one_shard_leaves_training_ids_as_they_were():
    a = build_plan(parse_spec(spec("  - {name: a, hf: org/a}\n", ""), "s.yaml"))
    b = build_plan(parse_spec(spec("  - {name: a, hf: org/a}\n", "training: {shards: 1}\n"), "s.yaml"))
    c = build_plan(parse_spec(spec("  - {name: a, hf: org/a}\n", "training: {shards: 2}\nresources: {train: {cpus: 2}}\n"), "s.yaml"))
    assert [j.id for j in a.jobs] == [j.id for j in b.jobs]
    assert {j.id for j in a.jobs if j.kind == "train"}.isdisjoint(j.id for j in c.jobs if j.kind == "train")
