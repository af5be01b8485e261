"""premem's evaluation against the straightforward approach, on the same checkpoint and the same examples.

    python bench/eval_throughput.py                       # both models, 3 repetitions, 1 torch thread
    python bench/eval_throughput.py --model tiny --reps 5 --threads 2
    python bench/eval_throughput.py --sweep                # perplexity only: batch sizes, bfloat16

Two measures, each timed in this one process, the two approaches alternating (which goes first swaps at
every repetition), and printed as tokens per second (median over repetitions) with their ratio:
- perplexity of target traces: `premem.engine.sampling.target_nll` (length-sorted packed batches) against one
  forward pass per example in float32;
- sampling k completions per prompt: `premem.engine.sampling.TransformersSampler` (batched prompts, one prefill per
  prompt, KV cache, finished rows dropped) against `model.generate(..., num_return_sequences=k, do_sample=True,
  temperature, top_p, top_k=0, StoppingCriteria on the stop string)` prompt by prompt. Both draw from the same
  distribution (tests/engine/test_sampling.py checks it); generated tokens are counted the same way (up to and including
  the stop string, the end-of-sequence token left out). A third line times premem's sampler on a bfloat16 copy of
  the weights (evaluation.sampling_dtype, as the quickstart samples) against the same float32 `generate`.

Models:
- `tiny`: the built-in model (premem.engine.models.build_tiny, the quickstart's size, about 1M parameters) pretrained
  once on 9,000 examples of the built-in task (759k tokens, one epoch; 589 s on the shared 2-core development
  machine, where other work held a core) and cached in --cache, so that its samples end with the stop string
  as the quickstart's do (its accuracy is low, about 0.05); examples from the quickstart's training split.
- `llama`: a Llama-architecture model of about 27M parameters with random weights (transformers.LlamaConfig,
  premem's word vocabulary). Random weights never reach the stop string, so end-of-sequence is switched off for
  both approaches and every sample is exactly --llama-max-new-tokens long: both generate the same tokens.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path("/tmp/premem-bench")
# the quickstart's dataset and model size
TASK = dict(seed=0, max_steps=3, max_value=40, max_operand=10)
TINY = dict(layers=4, hidden=128, heads=4, mlp=512, max_length=192)


# ------------------------------------------------------------------------------------------------ models
def pretrained_tiny(cache: Path = DEFAULT_CACHE, examples: int = 9000, threads: int = 2):
    """The built-in tiny model pretrained briefly on the built-in task (about a minute on 2 cores), cached."""
    from premem.engine.models import load_model

    folder = cache / "tiny-pretrained"
    if not (folder / "config.json").exists():
        from premem.data.synthetic import ArithmeticTask
        from premem.data.tokenizer import WordTokenizer
        from premem.engine.models import LoadedModel, build_tiny, save_model
        from premem.engine.train import Recipe, encode_examples, make_optimizer, pack, steps_per_epoch, train_epoch
        from premem.spec.schema import TinyArchitecture

        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        t0 = time.time()
        codec = WordTokenizer.for_arithmetic_task()
        model = build_tiny(TinyArchitecture(**TINY), codec.vocab_size, seed=0)
        loaded = LoadedModel(model, codec, torch.device("cpu"), torch.float32)
        corpus = ArithmeticTask(**TASK).split("pretrain", examples)
        blocks = pack(encode_examples(loaded, corpus), block=128, sep=codec.eos_id, learn_prompts=False)
        total = steps_per_epoch(len(blocks), 32)
        recipe = Recipe(learning_rate=5e-3, total_steps=total, batch_size=32, optimizer="adamw",
                        weight_decay=0.01, schedule="cosine", warmup_steps=min(100, total // 2))
        out = train_epoch(loaded, make_optimizer(model, recipe), blocks, recipe, seed=0, epoch=1, start_step=0)
        staging = cache / f".tmp-tiny-{os.getpid()}"
        save_model(model, codec, staging)
        os.replace(staging, folder)
        torch.set_num_threads(old)
        print(f"pretrained the tiny model: {out['tokens']:,} tokens in {time.time() - t0:.0f} s, final loss "
              f"{sum(out['losses'][-20:]) / 20:.3f}; cached in {folder}")
    return load_model(folder, device="cpu")


def random_llama(hidden: int = 512, layers: int = 8, heads: int = 8, mlp: int = 1536, seed: int = 0):
    """A Llama-architecture model with random weights and premem's word vocabulary; end-of-sequence off."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from premem.data.tokenizer import WordTokenizer
    from premem.engine.models import LoadedModel

    codec = WordTokenizer.for_arithmetic_task()
    config = LlamaConfig(vocab_size=codec.vocab_size, hidden_size=hidden, intermediate_size=mlp,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=1024, pad_token_id=0, bos_token_id=1, eos_token_id=None,
                         tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = None
    codec.eos_id = None  # premem's sampler: no end-of-sequence token (the sampler compares ids with it)
    return LoadedModel(model, codec, torch.device("cpu"), torch.float32)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------ baselines
@torch.no_grad()
def nll_one_by_one(loaded, pairs) -> list[tuple[float, int]]:
    """Mean target NLL per example, one float32 forward pass per example (the straightforward way)."""
    model, codec = loaded.model, loaded.codec
    model.eval()
    prefix = [codec.bos_id] if codec.bos_id is not None else []
    out = []
    for prompt, target in pairs:
        p, t = prefix + codec.encode(prompt), codec.encode(target)
        ids = torch.tensor([p + t])
        logits = model(input_ids=ids).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).squeeze(-1)[len(p) - 1:]
        out.append((float(-logp.mean()), int(logp.numel())))
    return out


def _stop_criteria(stop_ids: list[int]):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnIds(StoppingCriteria):
        """Per row: True once the row's last tokens are the stop string's ids."""

        def __init__(self, ids):
            self.ids = torch.tensor(ids)

        def __call__(self, input_ids, scores, **kwargs):
            n = len(self.ids)
            if input_ids.shape[1] < n:
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)
            return (input_ids[:, -n:] == self.ids).all(-1)

    return StoppingCriteriaList([StopOnIds(stop_ids)])


def completion_ids(row: list[int], eos: int | None, stop_ids: list[int]) -> list[int]:
    """Generated ids as premem counts them: up to and including the first stop string, before eos."""
    out: list[int] = []
    n = len(stop_ids)
    for t in row:
        if eos is not None and t == eos:
            break
        out.append(t)
        if n and out[-n:] == stop_ids:
            break
    return out


@torch.no_grad()
def sample_with_generate(loaded, prompts, params) -> tuple[list[list[str]], int]:
    """k samples per prompt with `model.generate`, prompt by prompt; (completions, tokens generated)."""
    model, codec = loaded.model, loaded.codec
    stop_ids = codec.encode(params.stop)
    criteria = _stop_criteria(stop_ids)
    prefix = [codec.bos_id] if codec.bos_id is not None else []
    gen_kwargs = dict(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0,
                      max_new_tokens=params.max_new_tokens, num_return_sequences=params.n,
                      pad_token_id=codec.pad_id, stopping_criteria=criteria)
    if codec.eos_id is not None:
        gen_kwargs["eos_token_id"] = codec.eos_id
    out, tokens = [], 0
    for prompt in prompts:
        ids = torch.tensor([prefix + codec.encode(prompt)])
        seqs = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **gen_kwargs)
        comps = []
        for row in seqs[:, ids.shape[1]:].tolist():
            got = completion_ids(row, codec.eos_id, stop_ids)
            tokens += len(got)
            comps.append(codec.decode(got))
        out.append(comps)
    return out, tokens


# ------------------------------------------------------------------------------------------------ the race
def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def accuracy(examples, completions) -> float:
    from premem.engine.evaluate import grade

    return statistics.mean(grade(c, ex.answer)[0] / len(c) for ex, c in zip(examples, completions))


def race(name: str, loaded, examples, params, reps: int, sample_prompts: int) -> dict:
    from premem.data.format import prompt_of, target_of
    from premem.engine.sampling import TransformersSampler, target_nll

    pairs = [(prompt_of(ex.question), target_of(ex.solution)) for ex in examples]
    prompts = [prompt_of(ex.question) for ex in examples[:sample_prompts]]
    from premem.engine.models import with_dtype

    rates: dict[str, list[float]] = {"nll_base": [], "nll_premem": [], "sample_base": [], "sample_premem": [],
                                     "sample_premem_bf16": []}
    info: dict = {}
    bf16 = with_dtype(loaded, "bfloat16")  # evaluation.sampling_dtype: bfloat16, as the quickstart samples
    for rep in range(reps):
        order = ("base", "premem") if rep % 2 == 0 else ("premem", "base")
        for who in order:  # perplexity
            if who == "base":
                nll, dt = _timed(lambda: nll_one_by_one(loaded, pairs))
                info["nll_base"] = nll
            else:
                nll, dt = _timed(lambda: target_nll(loaded, pairs))
                info["nll_premem"] = nll
            rates[f"nll_{who}"].append(sum(n for _, n in nll) / dt)
        for who in order + ("premem_bf16",):  # sampling
            p = params.__class__(**{**params.__dict__, "seed": rep})
            if who == "base":
                torch.manual_seed(rep)
                (comps, tokens), dt = _timed(lambda: sample_with_generate(loaded, prompts, p))
            else:
                sampler = TransformersSampler(bf16 if who == "premem_bf16" else loaded, batch_size=256)
                comps, dt = _timed(lambda: sampler.sample(prompts, p))
                tokens = sampler.tokens_generated
            info.setdefault(f"acc_{who}", []).append(accuracy(examples, comps))
            info.setdefault(f"tokens_{who}", []).append(tokens)
            rates[f"sample_{who}"].append(tokens / dt)
        print(f"  [{name}] rep {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:,.0f} tok/s" for k, v in rates.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    diff = max(abs(a - b) for (a, _), (b, _) in zip(info["nll_base"], info["nll_premem"]))
    return {"name": name, "median": med, "rates": rates, "nll_max_abs_diff": diff,
            "tokens_base": statistics.mean(info["tokens_base"]), "tokens_premem": statistics.mean(info["tokens_premem"]),
            "acc_base": statistics.mean(info["acc_base"]), "acc_premem": statistics.mean(info["acc_premem"]),
            "nll_ratio": med["nll_premem"] / med["nll_base"], "sample_ratio": med["sample_premem"] / med["sample_base"],
            "sample_ratio_bf16": med["sample_premem_bf16"] / med["sample_base"]}


def sweep(name: str, loaded, examples, reps: int) -> None:
    """Perplexity: target_nll's tokens per batch, float32, and bfloat16 weights (with their NLL error)."""
    from premem.data.format import prompt_of, target_of
    from premem.engine.models import with_dtype
    from premem.engine.sampling import target_nll

    pairs = [(prompt_of(ex.question), target_of(ex.solution)) for ex in examples]
    ref = nll_one_by_one(loaded, pairs)
    bf16 = with_dtype(loaded, "bfloat16")
    rates: dict[str, list[float]] = {}
    err = 0.0
    for _ in range(reps):
        for label, fn in [("one by one", lambda: nll_one_by_one(loaded, pairs))] + \
                [(f"{b} tokens", lambda b=b: target_nll(loaded, pairs, max_batch_tokens=b))
                 for b in (512, 1024, 2048, 4096, 8192, 16384)] + \
                [("bf16 2048 tokens", lambda: target_nll(bf16, pairs, max_batch_tokens=2048))]:
            out, dt = _timed(fn)
            rates.setdefault(label, []).append(sum(n for _, n in out) / dt)
            if label.startswith("bf16"):
                err = max(err, max(abs(a - b) for (a, _), (b, _) in zip(out, ref)))
    print(f"{name}: perplexity, target tokens/s (median of {reps}): " +
          ", ".join(f"{k} {statistics.median(v):,.0f}" for k, v in rates.items()) +
          f"; bfloat16 NLL error up to {err:.1e} nats/token")


def _span(r: dict, ours: str, theirs: str) -> str:
    """The range of the per-repetition ratios (the approaches alternate within each repetition)."""
    ratios = [a / b for a, b in zip(r["rates"][ours], r["rates"][theirs])]
    return f"per repetition {min(ratios):.1f} to {max(ratios):.1f}"


def report(r: dict, params, n_examples: int, n_prompts: int) -> None:
    m = r["median"]
    print(f"{r['name']}: {n_examples} targets scored, {n_prompts} prompts x k = {params.n} sampled "
          f"(T = {params.temperature}, top_p = {params.top_p}, max_new_tokens = {params.max_new_tokens}, "
          f"stop {params.stop!r})")
    print(f"  perplexity  one by one (fp32) {m['nll_base']:>10,.0f} tok/s   premem {m['nll_premem']:>10,.0f} tok/s   "
          f"ratio {r['nll_ratio']:.1f}x ({_span(r, 'nll_premem', 'nll_base')}; "
          f"max |NLL difference| {r['nll_max_abs_diff']:.1e})")
    print(f"  sampling    generate          {m['sample_base']:>10,.0f} tok/s   premem {m['sample_premem']:>10,.0f} tok/s   "
          f"ratio {r['sample_ratio']:.1f}x ({_span(r, 'sample_premem', 'sample_base')}; tokens per repetition {r['tokens_base']:,.0f} vs "
          f"{r['tokens_premem']:,.0f}; mean accuracy {r['acc_base']:.3f} vs {r['acc_premem']:.3f})")
    print(f"  sampling    premem, bf16 weights (evaluation.sampling_dtype) {m['sample_premem_bf16']:>10,.0f} tok/s   "
          f"ratio {r['sample_ratio_bf16']:.1f}x to generate in fp32 ({_span(r, 'sample_premem_bf16', 'sample_base')})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["tiny", "llama", "both"], default="both")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (an evaluate job uses 1 per CPU it asks for)")
    ap.add_argument("--examples", type=int, default=256, help="train examples whose targets are scored")
    ap.add_argument("--prompts", type=int, default=128, help="of them, prompts sampled (k each)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--llama-max-new-tokens", type=int, default=32)
    ap.add_argument("--llama-prompts", type=int, default=32)
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    ap.add_argument("--sweep", action="store_true",
                    help="instead: target_nll's tokens per batch (512 to 16384) and bfloat16 scoring, perplexity only")
    args = ap.parse_args()

    from transformers.utils import logging as hf_logging

    from premem.data.synthetic import ArithmeticTask
    from premem.engine.sampling import SamplingParams

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    print(f"{datetime.date.today()} {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({args.threads} thread{'s' if args.threads > 1 else ''}), transformers "
          f"{__import__('transformers').__version__}; {' '.join(sys.argv)}")
    examples = ArithmeticTask(**TASK).split("train", args.examples)
    results = []
    if args.sweep:
        if args.model in ("tiny", "both"):
            sweep("tiny", pretrained_tiny(Path(args.cache)), examples, args.reps)
        if args.model in ("llama", "both"):
            sweep("llama", random_llama(), examples, args.reps)
        return 0
    if args.model in ("tiny", "both"):
        loaded = pretrained_tiny(Path(args.cache))
        params = SamplingParams(n=args.k, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens)
        print(f"tiny: built-in model, {n_params(loaded.model) / 1e6:.2f}M parameters, float32")
        r = race("tiny", loaded, examples, params, args.reps, args.prompts)
        results.append((r, params, args.examples, args.prompts))
    if args.model in ("llama", "both"):
        loaded = random_llama()
        params = SamplingParams(n=args.k, temperature=0.8, top_p=0.95, max_new_tokens=args.llama_max_new_tokens)
        print(f"llama: random weights, {n_params(loaded.model) / 1e6:.1f}M parameters, float32, no end-of-sequence")
        r = race("llama", loaded, examples, params, args.reps, args.llama_prompts)
        results.append((r, params, args.examples, args.llama_prompts))
    print()
    for r, params, n_ex, n_pr in results:
        report(r, params, n_ex, n_pr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
