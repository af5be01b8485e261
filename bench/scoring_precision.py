"""How much scoring target perplexity in bfloat16 moves log(log(perplexity)) against float32, next to the
threshold grid's step (0.05): can bf16 scoring move examples across a threshold p?

A Llama-architecture model (random init, a BPE tokenizer trained on the data) is finetuned in float32 on GSM8K
train examples with premem's own train_epoch, and at several epochs (from barely trained to memorized) every
train target is scored with premem's target_nll three ways: float32 weights and passes (the reference), the
weights rounded to bfloat16 with bfloat16 passes (what evaluation does for a bfloat16 model: a checkpoint loaded
in the model's dtype), and the bfloat16-rounded weights scored in float32 passes. Prints, per epoch, the mean
NLL and the differences of log(mean NLL) (= log(log(perplexity))) against the reference.

    python bench/scoring_precision.py [--examples 64] [--hidden 256] [--layers 4]
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from premem.data.format import prompt_of, target_of  # noqa: E402
from premem.engine.hf import HFCodec  # noqa: E402
from premem.engine.models import LoadedModel  # noqa: E402
from premem.engine.sampling import target_nll  # noqa: E402
from premem.engine.train import Recipe, encode_examples, make_optimizer, train_epoch  # noqa: E402
from tests.tiny_hf import FIXTURES, make_tokenizer  # noqa: E402

SHARED = Path("/work/shared/data/gsm8k/train.jsonl")


class Ex:
    def __init__(self, q, s):
        self.question, self.solution = q, s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--epochs", default="1,4,10,20,40")
    ap.add_argument("--step", type=float, default=0.05)
    args = ap.parse_args()
    torch.set_num_threads(1)
    src = SHARED if SHARED.exists() else FIXTURES / "gsm8k_train.jsonl"
    rows = [json.loads(x) for x in src.read_text().splitlines()[:args.examples]]
    examples = [Ex(r["question"], r["answer"]) for r in rows]
    texts = [prompt_of(e.question) + target_of(e.solution) for e in examples]
    tok = make_tokenizer(texts, vocab_size=2000)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=int(2.75 * args.hidden),
                         num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=1024, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    codec = HFCodec(tok)
    loaded = LoadedModel(model, codec, torch.device("cpu"), torch.float32)
    seqs = encode_examples(loaded, examples)
    marks = sorted(int(e) for e in args.epochs.split(","))
    recipe = Recipe(learning_rate=1e-3, total_steps=10**6, batch_size=8, schedule="constant", max_grad_norm=1.0)
    opt = make_optimizer(model, recipe)
    pairs = [(prompt_of(e.question), target_of(e.solution)) for e in examples]
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters, {len(examples)} examples from {src}; "
          f"p grid step {args.step}")
    print("| epoch | mean NLL | bf16 weights+passes: max / mean abs d loglog | examples moved >= 1 grid bin | "
          "bf16 weights, fp32 passes: max / mean |")
    print("| --- | --- | --- | --- | --- |")
    step = 0
    for epoch in range(1, marks[-1] + 1):
        out = train_epoch(loaded, opt, seqs, recipe, 0, epoch, step)
        step = out["end_step"]
        if epoch not in marks:
            continue
        ref = [n for n, _ in target_nll(loaded, pairs)]
        half = copy.deepcopy(model).to(torch.bfloat16)
        bf = [n for n, _ in target_nll(LoadedModel(half, codec, loaded.device, torch.bfloat16), pairs)]
        rounded = half.to(torch.float32)
        bw = [n for n, _ in target_nll(LoadedModel(rounded, codec, loaded.device, torch.float32), pairs)]
        lr = [math.log(x) for x in ref]
        d_bf = [abs(math.log(x) - r) for x, r in zip(bf, lr)]
        d_bw = [abs(math.log(x) - r) for x, r in zip(bw, lr)]
        moved = sum(math.floor(math.log(x) / args.step) != math.floor(r / args.step) for x, r in zip(bf, lr))
        print(f"| {epoch} | {sum(ref) / len(ref):.3f} | {max(d_bf):.4f} / {sum(d_bf) / len(d_bf):.4f} | "
              f"{moved} of {len(ref)} | {max(d_bw):.4f} / {sum(d_bw) / len(d_bw):.4f} |", flush=True)
        model.train()


if __name__ == "__main__":
    main()
