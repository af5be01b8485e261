"""The vLLM backend of the Sampler interface (evaluation.sampler: vllm), and target scoring through vLLM's
prompt logprobs (evaluation.scoring: vllm). Install with `pip install -e .[gpu]`; vLLM is imported only when a
spec chooses it, and needs a CUDA GPU.

It serves a checkpoint folder as premem wrote it: full weights with their tokenizer, or a LoRA adapter, which
is served on its base model through vLLM's LoRA support (no merged copy written). Prompts go in as token ids
encoded by premem's own codec (bos + prompt, exactly as training saw them), so what is sampled and scored
follows the same tokenization as training and the transformers backend. Each prompt draws `n` samples sharing
its prefill (SamplingParams(n=k)); stopping at the stop string is vLLM's, on decoded text, with the stop string
kept in the output (include_stop_str_in_output), as premem's own sampler does.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from premem.engine.hardware import resolve_sampling_dtype
from premem.engine.sampling import SamplingParams

Progress = Callable[[str], None]
SEED_SPACE = 2 ** 31 - 1


def _vllm():
    try:
        import vllm
    except ImportError:
        raise ImportError("evaluation.sampler/scoring vllm needs vLLM: pip install -e '.[gpu]' on a machine with a "
                          "CUDA GPU") from None
    return vllm


def prompt_seed(seed: int, index: int) -> int:
    """The seed of prompt `index`'s samples: distinct per prompt (one shared seed would give every prompt the
    same random draws), a function of the job's seed and the prompt's position only."""
    return (seed * 1_000_003 + index) % SEED_SPACE


class VLLMBackend:
    """Samples completions and scores target traces of one checkpoint with vLLM.

    `folder` is a checkpoint written by premem (or any folder with an HF model and tokenizer). `gpus` > 1
    shards the model by tensor parallelism. Built lazily: nothing is imported or loaded before construction.
    """

    def __init__(self, folder: str | Path, dtype: str = "bfloat16", seed: int = 0, trust_remote_code: bool = False,
                 gpus: int = 1, gpu_memory_utilization: float = 0.85, max_model_len: int | None = None):
        from premem.engine.hf import HFCodec, load_tokenizer
        from premem.engine.lora import ADAPTER_CONFIG, is_adapter, read_base

        vllm = _vllm()
        folder = Path(folder)
        self.codec = HFCodec(load_tokenizer(folder, trust_remote_code=trust_remote_code))
        self.lora_request = None
        kwargs: dict = {}
        model, revision = str(folder), None
        if is_adapter(folder):
            from vllm.lora.request import LoRARequest

            model, revision = read_base(folder)
            rank = json.loads((folder / ADAPTER_CONFIG).read_text())["r"]
            kwargs.update(enable_lora=True, max_lora_rank=_lora_rank_slot(rank), max_loras=1)
            self.lora_request = LoRARequest("checkpoint", 1, str(folder))
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        self.llm = vllm.LLM(model=model, tokenizer=str(folder), revision=revision, dtype=dtype, seed=seed,
                            trust_remote_code=trust_remote_code, tensor_parallel_size=gpus,
                            gpu_memory_utilization=gpu_memory_utilization, **kwargs)
        self.tokens_generated = 0

    def _prompt(self, text: str) -> dict:
        prefix = [self.codec.bos_id] if self.codec.bos_id is not None else []
        return {"prompt_token_ids": prefix + self.codec.encode(text)}  # a vllm.inputs.TokensPrompt

    def _generate(self, prompts: list[dict], params: list):
        return self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.lora_request)

    def sample(self, prompts: Sequence[str], params: SamplingParams,
               progress: Progress | None = None) -> list[list[str]]:
        """For each prompt, `params.n` completions (the text after the prompt, ending with the stop string
        when it was reached)."""
        vllm = _vllm()
        if not prompts:
            return []
        per_prompt = [vllm.SamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                          max_tokens=params.max_new_tokens, stop=[params.stop],
                                          include_stop_str_in_output=True, seed=prompt_seed(params.seed, i))
                      for i in range(len(prompts))]
        outputs = self._generate([self._prompt(p) for p in prompts], per_prompt)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(outputs)} results for {len(prompts)} prompts")
        out: list[list[str]] = []
        for o in outputs:
            completions = sorted(o.outputs, key=lambda c: c.index)
            if len(completions) != params.n:
                raise RuntimeError(f"vLLM returned {len(completions)} samples for a prompt, not n = {params.n}")
            out.append([c.text for c in completions])
            self.tokens_generated += sum(len(c.token_ids) for c in completions)
        if progress:
            progress(f"sampled {len(prompts)}/{len(prompts)} prompts x {params.n}")
        return out

    def target_nll(self, pairs: Sequence[tuple[str, str]], progress: Progress | None = None
                   ) -> list[tuple[float, int]]:
        """Mean NLL (nats per token) of each target given its prompt, with its token count: the prompt logprobs
        vLLM computes for the sequence bos + prompt + target (raw model logprobs, not temperature-scaled)."""
        vllm = _vllm()
        if not pairs:
            return []
        seqs = []
        for prompt, target in pairs:
            p = self._prompt(prompt)["prompt_token_ids"]
            seqs.append((p + self.codec.encode(target), len(p)))
        # prompt_logprobs=1: every position's dict holds the logprob of the token actually there (and the top 1)
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outputs = self._generate([{"prompt_token_ids": ids} for ids, _ in seqs], params)
        out = []
        for (ids, plen), o in zip(seqs, outputs):
            lps = o.prompt_logprobs  # one entry per prompt token; the first is None (nothing predicts it)
            if lps is None or len(lps) != len(ids):
                raise RuntimeError("vLLM returned no prompt logprobs for a scored sequence")
            tok = [lps[j][ids[j]].logprob for j in range(plen, len(ids))]
            out.append((-sum(tok) / len(tok), len(tok)))
        if progress:
            progress(f"scored {len(pairs)}/{len(pairs)} targets")
        return out

    def close(self) -> None:
        """Free the engine's GPU memory (the job ends soon after; this makes it prompt)."""
        self.llm = None
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


def _lora_rank_slot(rank: int) -> int:
    """vLLM accepts max_lora_rank from a fixed set of sizes: the smallest that holds `rank`."""
    for slot in (1, 8, 16, 32, 64, 128, 256, 320, 512):
        if rank <= slot:
            return slot
    raise ValueError(f"LoRA rank {rank} is above what vLLM serves (512)")


def auto_sampler(model_spec, device: str) -> str:
    """What `sampler: auto` means where the job runs: "vllm" for a Hugging Face model on a CUDA GPU with vLLM
    installed, else "transformers" (premem's own sampler; the built-in model's word tokenizer is its own)."""
    import importlib.util

    import torch

    from premem.engine.models import resolve_device

    if model_spec.hf is None or resolve_device(device).type != "cuda" or not torch.cuda.is_available():
        return "transformers"
    return "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"


def evaluation_backends(folder: str | Path, model_spec, evaluation: dict, device: str, gpus: float, seed: int,
                        scoring_dtype: str | None = None):
    """What evaluates a checkpoint under evaluation.sampler/scoring: (loaded, scorer, make_sampler) for
    `premem.engine.evaluate.evaluate_checkpoint`. All-transformers: the loaded model and (None, None). With vLLM
    anywhere, one engine serves it; when scoring stays with transformers, the transformers model is scored
    with first and moved off the GPU before the engine starts (both would not fit beside a 7-9B model).
    `scoring_dtype`: the dtype the transformers model is loaded in when it scores (None: the model's)."""
    from premem.engine.models import load_model

    sampler, scoring = evaluation.get("sampler", "transformers"), evaluation.get("scoring", "transformers")
    if sampler == "auto":
        sampler = auto_sampler(model_spec, device)
    score_dtype = scoring_dtype or model_spec.dtype
    if sampler != "vllm" and scoring != "vllm":
        return load_model(folder, device=device, dtype=score_dtype,
                          trust_remote_code=model_spec.trust_remote_code), None, None
    # vLLM serves in the sampling dtype when one is set, else the model's (float32 is its slow path)
    dtype = resolve_sampling_dtype(evaluation.get("sampling_dtype"), "cuda")[0] or model_spec.dtype
    gpus = max(1, int(gpus))
    state: dict = {}

    def engine() -> VLLMBackend:
        if "engine" not in state:
            state["engine"] = VLLMBackend(folder, dtype=dtype, seed=seed, trust_remote_code=model_spec.trust_remote_code,
                                          gpus=gpus)
        return state["engine"]

    if scoring == "vllm":
        if sampler == "vllm":
            return None, engine().target_nll, engine
        loaded = load_model(folder, device=device, dtype=model_spec.dtype,
                            trust_remote_code=model_spec.trust_remote_code)
        return loaded, engine().target_nll, None
    loaded = load_model(folder, device=device, dtype=score_dtype, trust_remote_code=model_spec.trust_remote_code)

    def after_scoring() -> VLLMBackend:
        _release(loaded)
        return engine()

    return loaded, None, after_scoring


def _release(loaded) -> None:
    """Move a transformers model off the GPU and free its memory for the vLLM engine."""
    import gc

    import torch

    loaded.model.to("cpu")
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
