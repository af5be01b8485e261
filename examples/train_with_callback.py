"""Finetune a tiny model with transformers' Trainer while premem's callback logs PreMemAcc.

python examples/train_with_callback.py                      # premem's built-in tiny model and arithmetic task
python examples/train_with_callback.py --model MODEL_DIR --train-file train.jsonl --test-file test.jsonl
Then run the `premem analyze` command it prints for the full report.
"""
import argparse
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from premem.data.synthetic import ArithmeticTask
from premem.data.tokenizer import WordTokenizer
from premem.engine.models import LoadedModel, build_tiny, load_model
from premem.engine.train import encode_examples, padded_batch
from premem.integrations import PreMemAccCallback, load_examples
from premem.spec.schema import TinyArchitecture

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--model", help="a local model folder or hub id (default: premem's built-in tiny model)")
ap.add_argument("--train-file", help="JSONL with question and answer (the solution, ending '#### N')")
ap.add_argument("--test-file", help="the same for held-out examples")
ap.add_argument("--epochs", type=int, default=6)
ap.add_argument("--lr", type=float, default=5e-3)
ap.add_argument("--out", default="premem-callback-run")
a = ap.parse_args()

if a.train_file:
    train, test = load_examples(a.train_file, "train"), load_examples(a.test_file, "test")
else:  # the built-in task: word problems whose traces vary in wording, so memorizing one is visible
    task = ArithmeticTask(seed=0, max_steps=1, max_value=20)
    train, test = task.split("train", 512), task.split("test", 64)
if a.model:
    loaded = load_model(a.model, device="cpu")
else:
    tok = WordTokenizer.for_arithmetic_task()
    model = build_tiny(TinyArchitecture(layers=2, hidden=64, heads=2, mlp=256), tok.vocab_size, seed=0)
    loaded = LoadedModel(model, tok, torch.device("cpu"), torch.float32)


def collate(batch):  # right-padded ids, attention mask, and labels with the prompt masked out of the loss
    return dict(zip(("input_ids", "attention_mask", "labels"), padded_batch(batch, loaded.codec.pad_id, "cpu")))


trainer = Trainer(
    model=loaded.model, train_dataset=encode_examples(loaded, train), data_collator=collate,
    args=TrainingArguments(output_dir=a.out, num_train_epochs=a.epochs, learning_rate=a.lr, logging_steps=8,
                           per_device_train_batch_size=16, save_strategy="no", report_to="none", use_cpu=True))
table = Path(a.out) / "results.parquet"
PreMemAccCallback(train, test, train_subset=32, test_subset=32, samples=4, max_new_tokens=96, p=[-2.3, -1.5],
                  output=table, codec=loaded.codec, run_name=f"lr{a.lr:g}-ep{a.epochs}",
                  settings={"model": a.model or "builtin-tiny", "dataset": a.train_file or "arithmetic"}
                  ).attach(trainer)
trainer.train()
print(f"\nper-example results: {table}\nfull report:  premem analyze {table} --p -2.3 --out {Path(a.out) / 'report'}")
