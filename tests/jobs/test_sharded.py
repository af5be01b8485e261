"""Training with the model sharded over processes (premem.jobs.sharded, FSDP) on this CPU with gloo: the same
updates as unsharded training, a checkpoint that loads like any other, the next epoch resuming its sharded
optimizer state, and a user error in a process reported as such. Real torch.distributed, two processes."""
import dataclasses
from pathlib import Path

import pytest
import torch

from premem.engine.models import load_model
from premem.jobs.runners import UserError, run_train_epoch
from premem.plan.build import build_plan
from premem.spec.load import parse_spec
from premem.store import Store
from tests.tiny_hf import FIXTURES, make_tiny_hf

pytestmark = pytest.mark.slow


def spec_text(model: Path, shards: int, batch: int = 5, micro: str = "", dtype: str = "float32") -> str:
    return f"""
name: shard
device: cpu
models: [{{name: m, hf: {model}, dtype: {dtype}}}]
datasets:
  - name: g
    gsm8k: {{train_file: {FIXTURES / 'gsm8k_train.jsonl'}, test_file: {FIXTURES / 'gsm8k_test.jsonl'}}}
training: {{batch_size: {batch}, shards: {shards}, warmup_steps: 1, max_grad_norm: 1.0{micro}}}
grid: {{learning_rate: [3.0e-3], epochs: [2]}}
resources: {{train: {{cpus: 2}}}}
"""


def train_jobs(tmp_path, model, shards, **kw):
    plan = build_plan(parse_spec(spec_text(model, shards, **kw), "s.yaml"))
    return [j for j in plan.jobs if j.kind == "train"]


def run(job, store):
    out = run_train_epoch(job, store, lambda m: None)
    store.record(job, "done", result=out)
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "model"
    make_tiny_hf(folder)
    return folder


@pytest.mark.parametrize("batch,micro", [(5, ""), (4, ", micro_batch_size: 1")])
def test_sharded_epochs_make_the_same_updates_as_unsharded_ones(model, tmp_path, batch, micro):
    # batch 5 over 2 processes: one takes 3 examples and the other 2 (and the last batch is short)
    results = {}
    for shards in (1, 2):
        store = Store(tmp_path / f"s{shards}")
        jobs = train_jobs(tmp_path, model, shards, batch=batch, micro=micro)
        outs = [run(j, store) for j in jobs]  # two epochs: the second resumes the first's optimizer state
        results[shards] = (outs, load_model(store.artifact(jobs[-1].id), device="cpu").model.state_dict())
    (one, w1), (two, w2) = results[1], results[2]
    for a, b in zip(one, two):
        assert a["steps"] == b["steps"] and a["tokens"] == b["tokens"] and a["examples"] == b["examples"]
        assert a["losses"] == pytest.approx(b["losses"], rel=1e-4, abs=1e-5)
    assert two[0]["shards"] == 2
    for name in w1:
        torch.testing.assert_close(w1[name], w2[name], rtol=1e-3, atol=1e-4)
    assert (tmp_path / "s2" / "artifacts").exists()


def test_a_sharded_run_cannot_go_on_from_an_unsharded_epoch(model, tmp_path):
    store = Store(tmp_path / "s")
    one = train_jobs(tmp_path, model, 1)
    two = train_jobs(tmp_path, model, 2)
    run(one[0], store)
    # epoch 2 of a sharded run whose epoch-1 checkpoint was written unsharded (as if resources changed midway)
    job = dataclasses.replace(two[1], deps=(one[0].id,))
    with pytest.raises(UserError, match="holds no sharded optimizer state"):
        run_train_epoch(job, store, lambda m: None)


def test_sharded_mixed_precision_keeps_float32_master_weights_and_state(model, tmp_path):
    # a bfloat16 model under the default training.precision (mixed): both sharded epochs run their passes under
    # autocast on float32 weights, the checkpoints keep float32 weights and optimizer state, and the weights
    # follow the unsharded run's (bfloat16 passes over other splits of the batch: close, not equal)
    results = {}
    for shards in (1, 2):
        store = Store(tmp_path / f"s{shards}")
        jobs = train_jobs(tmp_path, model, shards, dtype="bfloat16")
        assert jobs[0].settings.training["precision"] == "mixed"
        for j in jobs:
            run(j, store)
        folder = store.artifact(jobs[-1].id)
        from safetensors.torch import load_file

        results[shards] = load_file(str(folder / "model.safetensors"))
        assert {w.dtype for w in results[shards].values()} == {torch.float32}
    osd = torch.load(folder / "optimizer_full.pt", weights_only=True)["state"]
    assert {t.dtype for st in osd.values() for k, t in st.items() if k != "step"} == {torch.float32}
    base = load_model(model, device="cpu").model.state_dict()
    for name, w in results[1].items():
        moved = (w - base[name]).norm()
        assert (results[2][name] - w).norm() <= 0.1 * moved + 1e-6, name


def test_sharded_float16_mixed_precision_scales_the_loss_across_processes(model, tmp_path):
    # float16 passes need a gradient scaler; sharded, every process must skip the same steps (ShardedGradScaler
    # agrees on non-finite gradients): both epochs finish and the checkpoint keeps the scale and float32 weights
    import json

    from safetensors.torch import load_file

    store = Store(tmp_path / "s")
    jobs = train_jobs(tmp_path, model, 2, dtype="float16")
    outs = [run(j, store) for j in jobs]
    assert all("diverged" not in o for o in outs)
    folder = store.artifact(jobs[-1].id)
    assert json.loads((folder / "train_state.json").read_text())["grad_scaler"]["scale"] > 0
    assert {w.dtype for w in load_file(str(folder / "model.safetensors")).values()} == {torch.float32}
