"""PreMemAccCallback inside real training: transformers' Trainer (plain, with gradient accumulation) and TRL's
SFTTrainer, on a tiny local Llama and premem's built-in arithmetic task. Nothing is mocked and nothing
downloads: metrics must reach `state.log_history` and a TensorBoard event file, the table must pass the real
`premem analyze`, and every training loss must equal that of the same run without the callback."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from premem.data.format import prompt_of, target_of
from premem.data.synthetic import ArithmeticTask
from premem.engine.models import load_model
from premem.engine.train import encode_examples, padded_batch
from premem.integrations import PreMemAccCallback
from tests.tiny_hf import make_tiny_hf

ROOT = Path(__file__).resolve().parents[2]
QUICK = dict(train_subset=8, test_subset=8, samples=2, max_new_tokens=24, batch_size=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine two threads of tiny matmuls spin-wait on each other (30x
    slower here); the results are the same."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task():
    t = ArithmeticTask(seed=0, max_steps=2, max_value=20, max_operand=6)
    return t.split("train", 32), t.split("test", 16)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, task):
    train, test = task
    texts = [ex.prompt + ex.target for ex in train + test]
    return make_tiny_hf(tmp_path_factory.mktemp("tiny") / "model", texts=texts, hidden=32, layers=2)


def _trainer(model_dir, train, out: Path, callback=None, report_to="none", **args):
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    loaded = load_model(model_dir, device="cpu")
    codec = loaded.codec
    seqs = encode_examples(loaded, train)  # (ids, prompt length) per example

    def collate(batch):
        ids, mask, labels = padded_batch(batch, codec.pad_id, "cpu")  # the prompt is masked out of the loss
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    targs = TrainingArguments(**{**dict(output_dir=str(out), num_train_epochs=2, per_device_train_batch_size=8,
                                        learning_rate=3e-3, logging_steps=1, save_strategy="no", seed=0,
                                        report_to=report_to, use_cpu=True, disable_tqdm=True,
                                        dataloader_num_workers=0), **args})
    torch.manual_seed(0)
    # dropout draws from torch's RNG at every step (accelerate's sampler reseeds the data order per epoch, so
    # dropout is what would change if the callback left the RNG moved)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attention_dropout=0.1)
    trainer = Trainer(model=model, args=targs, train_dataset=seqs,
                      data_collator=collate, processing_class=AutoTokenizer.from_pretrained(model_dir))
    if callback is not None:
        callback.attach(trainer)
    return trainer


def _losses(trainer) -> list[float]:
    """Every logged training loss, in step order (one per optimizer step: logging_steps=1)."""
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def _premem_logs(trainer) -> list[dict]:
    return [e for e in trainer.state.log_history if "premem/train_accuracy" in e]


def _analyze(table: Path, out: Path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "premem.cli", "analyze", str(table), "--out", str(out),
                           "--resamples", "0", *extra], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads((out / "summary.json").read_text())


def test_trainer_logs_to_tensorboard_writes_table_and_leaves_losses_alone(model_dir, task, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (not among premem's dependencies)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train, test = task
    base = _trainer(model_dir, train, tmp_path / "base")
    base.train()

    table = tmp_path / "results.parquet"
    cb = PreMemAccCallback(train, test, p=[-2.3, -1.0], grader="arithmetic", output=table, run_name="lr3e-3",
                           settings={"model": "tiny", "dataset": "arithmetic"}, **QUICK)
    trainer = _trainer(model_dir, train, tmp_path / "run", callback=cb, report_to=["tensorboard"])
    trainer.train()

    assert _losses(trainer) == pytest.approx(_losses(base), abs=1e-6) and len(_losses(base)) == 8
    logs = _premem_logs(trainer)
    assert [round(e["epoch"]) for e in logs] == [1, 2]
    for e in logs:
        for key in ("premem/test_accuracy", "premem/premem_acc_p-2.3", "premem/premem_acc_p-1",
                    "premem/memorized_fraction_p-2.3", "premem/memorized_fraction_p-1"):
            assert 0.0 <= e[key] <= 1.0, key
        # PreMemAcc never exceeds train accuracy; a higher p counts more examples memorized
        assert e["premem/premem_acc_p-1"] <= e["premem/train_accuracy"] + 1e-12
        assert e["premem/memorized_fraction_p-1"] >= e["premem/memorized_fraction_p-2.3"]

    events = sorted((tmp_path / "run").rglob("events.out.tfevents*"))
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    # transformers' TensorBoard and W&B callbacks file every key that is not eval_/test_ under train/
    for tag in ("premem/train_accuracy", "premem/test_accuracy", "premem/premem_acc_p-2.3"):
        assert "train/" + tag in scalars, scalars
    assert [round(s.value, 6) for s in acc.Scalars("train/premem/train_accuracy")] == \
        [round(e["premem/train_accuracy"], 6) for e in logs]

    import pyarrow.parquet as pq

    rows = pq.read_table(table).to_pylist()
    assert len(rows) == 2 * (8 + 8) and {r["checkpoint"] for r in rows} == {1, 2}
    summary = _analyze(table, tmp_path / "report")
    [run] = summary["runs"]
    assert run["name"] == "lr3e-3" and [c["epoch"] for c in run["checkpoints"]] == [1, 2]
    assert run["settings"] == {"model": "tiny", "dataset": "arithmetic", "learning_rate": 3e-3, "epochs": 2}


def test_gradient_accumulation_every_steps_user_grader_csv(model_dir, task, tmp_path):
    train, test = task
    base = _trainer(model_dir, train, tmp_path / "base", gradient_accumulation_steps=2,
                    per_device_train_batch_size=4)
    base.train()

    def grader(completion: str, gold: str):
        # a user's grader that draws from every RNG the trainer uses: the callback must restore them all
        random.random(), np.random.rand(), torch.rand(1)
        tail = completion.rsplit("####", 1)
        return None if len(tail) < 2 else tail[1].replace("\nDone.", "").strip() == gold

    table = tmp_path / "results.csv"
    cb = PreMemAccCallback(train, test, p=-2.3, grader=grader, output=table, every_steps=2, **QUICK)
    trainer = _trainer(model_dir, train, tmp_path / "run", callback=cb, gradient_accumulation_steps=2,
                       per_device_train_batch_size=4)
    trainer.train()

    assert _losses(trainer) == pytest.approx(_losses(base), abs=1e-6) and len(_losses(base)) == 8
    logs = _premem_logs(trainer)
    assert [e["step"] for e in logs] == [2, 4, 6, 8]  # optimizer steps, not micro-batches
    assert all("premem/premem_acc" in e and "premem/memorized_fraction" in e for e in logs)
    assert trainer.model.training  # back in train mode after the evaluation at the last step
    _analyze(table, tmp_path / "report", "--p", "-2.3")


def test_sft_trainer(model_dir, task, tmp_path):
    trl = pytest.importorskip("trl", reason="trl is not installed (not among premem's dependencies)")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train, test = task
    data = Dataset.from_list([{"prompt": prompt_of(ex.question), "completion": target_of(ex.solution)}
                              for ex in train])

    def run(with_callback: bool, out: Path):
        args = trl.SFTConfig(output_dir=str(out), num_train_epochs=2, per_device_train_batch_size=8,
                             learning_rate=3e-3, logging_strategy="epoch", save_strategy="no", report_to="none", seed=0,
                             use_cpu=True, disable_tqdm=True, max_length=256, dataloader_num_workers=0)
        torch.manual_seed(0)
        trainer = trl.SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir, attention_dropout=0.1),
                                 args=args,
                                 train_dataset=data, processing_class=AutoTokenizer.from_pretrained(model_dir))
        if with_callback:  # the SFT rows themselves, in premem's prompt/completion format
            PreMemAccCallback(list(data), [{"question": ex.question, "solution": ex.solution} for ex in test],
                              output=out / "results.parquet", **QUICK).attach(trainer)
        trainer.train()
        return trainer

    base, trainer = run(False, tmp_path / "base"), run(True, tmp_path / "run")
    # logged at epoch ends, right where the callback logs too: its log must not swallow the loss log
    assert _losses(trainer) == pytest.approx(_losses(base), abs=1e-6) and len(_losses(base)) == 2
    assert len(_premem_logs(trainer)) == 2
    _analyze(tmp_path / "run" / "results.parquet", tmp_path / "report", "--p", "-2.3")


def test_runs_share_one_table(model_dir, task, tmp_path):
    """Two runs writing one file: each keeps the other's rows, and analyze sees both."""
    train, test = task
    table = tmp_path / "results.parquet"
    for lr in (1e-3, 3e-3):
        cb = PreMemAccCallback(train, test, output=table, run_name=f"lr{lr:g}", **QUICK)
        _trainer(model_dir, train, tmp_path / f"run{lr:g}", callback=cb, learning_rate=lr).train()
    import pyarrow.parquet as pq

    assert sorted(set(pq.read_table(table).column("run").to_pylist())) == ["lr0.001", "lr0.003"]
    _analyze(table, tmp_path / "report")


def test_own_training_loop(model_dir, task, tmp_path):
    """Without a Trainer: evaluate() at each checkpoint, write() the table; read back by premem's reader."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from premem.analysis.results_table import read_results

    train, test = task
    model, tok = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    model.train()
    cb = PreMemAccCallback(train, test, output=tmp_path / "own.csv", p=-2.3, **QUICK)
    for epoch in (1, 2):
        metrics = cb.evaluate(model, tok, epoch, {"learning_rate": 0.0})
        assert set(metrics) >= {"premem/train_accuracy", "premem/test_accuracy", "premem/premem_acc"}
    assert model.training and tok.pad_token is None  # the caller's model and tokenizer as they were
    [run] = read_results(cb.write("own")).runs
    assert run.epochs == [1, 2] and len(run.example_ids) == 8 and run.settings == {"learning_rate": 0.0}


def test_examples_forms(tmp_path):
    from premem.integrations.transformers import load_examples

    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"question": "What is 2 + 3?", "answer": "2 + 3 = 5\n#### 5"}) + "\n")
    [ex] = load_examples(path)
    assert (ex.id, ex.solution, ex.answer) == ("train-00000", "2 + 3 = 5\n#### 5", "5")
    [ex] = load_examples([{"prompt": "Q?\nAnswer:", "completion": " 1 + 1 = 2\n#### 2\nDone."}], "test")
    assert (ex.id, ex.question, ex.solution, ex.answer) == ("test-00000", "Q?", "1 + 1 = 2\n#### 2", "2")
    with pytest.raises(ValueError, match="prompt must end with"):
        load_examples([{"prompt": "Q?", "completion": " x\nDone."}])
    from premem.spec.schema import DatasetSpec

    ds = DatasetSpec(name="arith", builtin="arithmetic", train_size=6, test_size=3)
    cb = PreMemAccCallback(ds, train_subset=4, test_subset=None)  # a premem dataset: its test split too
    assert (len(cb.train), len(cb.test)) == (4, 3) and cb.train[0].id.startswith("train")
    with pytest.raises(ValueError, match="unknown grader"):
        PreMemAccCallback([{"question": "q", "solution": "#### 1"}], grader="mmlu")
