#!/usr/bin/env bash
# premem's evaluation against the straightforward approach, side by side on CUDA: the GPU counterpart of
# `python bench/eval_throughput.py` (same checkpoint, same examples, one process, alternating, medians).
#
#   bash bench/gpu_eval.sh                  # tiny built-in model and the 27.5M-parameter Llama, 3 repetitions
#   REPS=5 MODEL=llama bash bench/gpu_eval.sh
#
# Prints tokens/s of perplexity (premem's packed batches vs one float32 forward pass per example) and of
# sampling (premem's batched KV-cache sampler vs model.generate prompt by prompt), and, when vLLM is
# installed, vLLM's sampling rate on the same prompts (one engine load, timed apart). Use the figures for
# premem/cost/throughputs-example.yaml. Refuses (exit 2) when no GPU is visible.
# UNVERIFIED: written without a GPU; first run it on a fresh GPU machine and check its output.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_eval: no GPU visible (nvidia-smi finds none): nothing to measure; use bench/eval_throughput.py on a CPU" >&2
  exit 2
fi
if ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_eval: nvidia-smi sees a GPU but torch.cuda.is_available() is False (a CPU-only torch?)" >&2
  exit 2
fi
nvidia-smi -L
python3 - "${MODEL:-both}" "${REPS:-3}" <<'EOF'
import statistics, sys, time

import torch

sys.argv = [sys.argv[0]] + sys.argv[1:]
model_choice, reps = sys.argv[1], int(sys.argv[2])
import bench.eval_throughput as et  # noqa: E402  (the CPU benchmark's models, baselines and race)
from premem.data.synthetic import ArithmeticTask  # noqa: E402
from premem.engine.models import LoadedModel  # noqa: E402
from premem.engine.sampling import SamplingParams  # noqa: E402

print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
dev = torch.device("cuda")


def on_gpu(loaded):
    return LoadedModel(loaded.model.to(dev), loaded.codec, dev, loaded.dtype)


def cuda_timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    value = fn()
    torch.cuda.synchronize()
    return value, time.perf_counter() - t0


et._timed = cuda_timed  # every timing in the race waits for the GPU


@torch.no_grad()
def nll_one_by_one(loaded, pairs):
    """The CPU benchmark's baseline with its tensors on the model's device: one fp32 forward pass an example."""
    model, codec = loaded.model.eval(), loaded.codec
    prefix = [codec.bos_id] if codec.bos_id is not None else []
    out = []
    for prompt, target in pairs:
        p, t = prefix + codec.encode(prompt), codec.encode(target)
        ids = torch.tensor([p + t], device=loaded.device)
        logits = model(input_ids=ids).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).squeeze(-1)[len(p) - 1:]
        out.append((float(-logp.mean()), int(logp.numel())))
    return out


@torch.no_grad()
def sample_with_generate(loaded, prompts, params):
    """The CPU benchmark's generate baseline, prompt by prompt, with its tensors on the model's device."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    model, codec = loaded.model, loaded.codec
    stop_ids = codec.encode(params.stop)
    stop = torch.tensor(stop_ids, device=loaded.device)

    class StopOnIds(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if input_ids.shape[1] < len(stop):
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            return (input_ids[:, -len(stop):] == stop).all(-1)

    prefix = [codec.bos_id] if codec.bos_id is not None else []
    kw = dict(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0,
              max_new_tokens=params.max_new_tokens, num_return_sequences=params.n, pad_token_id=codec.pad_id,
              stopping_criteria=StoppingCriteriaList([StopOnIds()]))
    if codec.eos_id is not None:
        kw["eos_token_id"] = codec.eos_id
    out, tokens = [], 0
    for prompt in prompts:
        ids = torch.tensor([prefix + codec.encode(prompt)], device=loaded.device)
        seqs = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
        comps = []
        for row in seqs[:, ids.shape[1]:].tolist():
            got = et.completion_ids(row, codec.eos_id, stop_ids)
            tokens += len(got)
            comps.append(codec.decode(got))
        out.append(comps)
    return out, tokens


et.nll_one_by_one, et.sample_with_generate = nll_one_by_one, sample_with_generate
examples = ArithmeticTask(**et.TASK).split("train", 256)
cases = []
if model_choice in ("tiny", "both"):
    cases.append(("tiny", on_gpu(et.pretrained_tiny()), 160, 128))
if model_choice in ("llama", "both"):
    cases.append(("llama", on_gpu(et.random_llama()), 32, 32))
results = []
for name, loaded, max_new, n_prompts in cases:
    params = SamplingParams(n=4, temperature=0.8, top_p=0.95, max_new_tokens=max_new)
    r = et.race(name, loaded, examples, params, reps, n_prompts)
    results.append((r, params, n_prompts))
    try:
        import vllm  # noqa: F401
    except ImportError:
        print(f"  [{name}] vLLM not installed: no vLLM figure")
        continue
    import tempfile

    from vllm import LLM
    from vllm import SamplingParams as VParams

    from premem.data.format import prompt_of

    with tempfile.TemporaryDirectory() as d:
        loaded.model.save_pretrained(d)  # vLLM reads a folder; the word tokenizer is not a HF one: token ids in
        t0 = time.perf_counter()
        llm = LLM(model=d, skip_tokenizer_init=True, dtype="float32", gpu_memory_utilization=0.3)
        load = time.perf_counter() - t0
        prefix = [loaded.codec.bos_id] if loaded.codec.bos_id is not None else []
        prompts = [{"prompt_token_ids": prefix + loaded.codec.encode(prompt_of(ex.question))}
                   for ex in examples[:n_prompts]]
        stop = loaded.codec.encode(params.stop)
        rates = []
        for rep in range(reps):
            vp = VParams(n=4, temperature=0.8, top_p=0.95, max_tokens=max_new, seed=rep,
                         stop_token_ids=None if name == "llama" else [stop[-1]], detokenize=False)
            out, dt = cuda_timed(lambda: llm.generate(prompts, vp, use_tqdm=False))
            rates.append(sum(len(c.token_ids) for o in out for c in o.outputs) / dt)
        print(f"  [{name}] vLLM: engine load {load:.1f} s, sampling {statistics.median(rates):,.0f} tok/s "
              f"(median of {reps}; stops on the last token of the stop string, not the whole string)")
        del llm
print()
for r, params, n_prompts in results:
    et.report(r, params, 256, n_prompts)
EOF
