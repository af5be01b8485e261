"""End to end with a Hugging Face model: a tiny Llama-architecture model and a real HF tokenizer written to a
folder (tests/tiny_hf.py), named by `hf:` in a spec with the GSM8K fixtures, through the real `premem apply`
CLI and a real local Ray: full finetuning, then the same study with LoRA."""
import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_apply import premem
from tests.tiny_hf import FIXTURES, make_tiny_hf

pytestmark = pytest.mark.slow

SPEC = """\
name: hf-smoke
device: cpu
models:
  - name: tiny-llama
    hf: ./tiny-llama
datasets:
  - name: gsm8k
    gsm8k: {{train_file: {train}, test_file: {test}}}
training: {{batch_size: 4, warmup_steps: 0{lora}}}
grid: {{learning_rate: [1.0e-3], epochs: [2]}}
evaluation: {{samples: 2, max_new_tokens: 24, batch_size: 16}}
premem: {{p_grid: {{start: -3.0, stop: 1.0, step: 0.5}}}}
"""


def write_spec(workdir: Path, lora: str = "") -> None:
    (workdir / "spec.yaml").write_text(SPEC.format(train=FIXTURES / "gsm8k_train.jsonl",
                                                   test=FIXTURES / "gsm8k_test.jsonl", lora=lora))


@pytest.fixture()
def workdir(tmp_path):
    make_tiny_hf(tmp_path / "tiny-llama")
    return tmp_path


def checkpoints(workdir: Path) -> list[list[str]]:
    return [sorted(p.name for p in d.iterdir()) for d in sorted((workdir / ".premem" / "artifacts").iterdir())
            if not d.name.startswith(".")]


def test_apply_a_local_hf_model_on_gsm8k_files(workdir):
    write_spec(workdir)
    out = premem("apply", "spec.yaml", cwd=workdir)
    assert "Applied: 4 done, 0 failed" in out.stdout, out.stdout  # 2 epochs x (train, evaluate); no pretraining
    summary = json.loads((workdir / "reports" / "summary.json").read_text())
    (run,) = summary["runs"]
    assert [cp["epoch"] for cp in run["checkpoints"]] == [1, 2]
    for cp in run["checkpoints"]:
        assert cp["train_nll"] > 0 and 0 <= cp["train_acc"] <= 1 and 0 <= cp["test_acc"] <= 1
    assert (workdir / "reports" / "index.html").exists()
    for files in checkpoints(workdir):  # full weights and the HF tokenizer in every checkpoint
        assert "model.safetensors" in files and "tokenizer.json" in files and "optimizer.pt" in files

    # LoRA: new training jobs (the recipe changed), checkpoints that hold adapters, the same report
    write_spec(workdir, lora=", lora: {r: 4, alpha: 8}")
    out = premem("apply", "spec.yaml", cwd=workdir)
    assert "Applied: 4 done, 0 failed" in out.stdout, out.stdout
    adapters = [f for f in checkpoints(workdir) if "adapter_model.safetensors" in f]
    assert len(adapters) == 2 and all("premem_base.json" in f and "model.safetensors" not in f for f in adapters)
    summary = json.loads((workdir / "reports" / "summary.json").read_text())
    assert [cp["epoch"] for cp in summary["runs"][0]["checkpoints"]] == [1, 2]


def test_apply_with_the_model_sharded_over_two_processes(workdir):
    """training.shards: 2 on the CPU: each train job's Ray task runs two gloo processes holding half the model;
    the gathered checkpoints evaluate like any other."""
    write_spec(workdir, lora=", shards: 2")
    text = (workdir / "spec.yaml").read_text() + "resources: {train: {cpus: 2}}\n"
    (workdir / "spec.yaml").write_text(text)
    out = premem("apply", "spec.yaml", cwd=workdir)
    assert "Applied: 4 done, 0 failed" in out.stdout, out.stdout
    summary = json.loads((workdir / "reports" / "summary.json").read_text())
    (run,) = summary["runs"]
    assert [cp["epoch"] for cp in run["checkpoints"]] == [1, 2]
    assert all(0 <= cp["test_acc"] <= 1 and cp["train_nll"] > 0 for cp in run["checkpoints"])
    for files in checkpoints(workdir):
        assert "model.safetensors" in files and "optimizer_full.pt" in files and "optimizer.pt" not in files
