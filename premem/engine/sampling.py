"""Sampling completions and scoring target traces.

One `Sampler` interface; this module holds the transformers backend, which runs on CPU and GPU alike.
It is built for many prompts x k samples at once: prompts of similar length are batched together, each
prompt is prefilled once and its KV cache copied k times, and sequences that have hit the stop string
leave the batch so the remaining ones decode faster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch

from premem.engine.models import LoadedModel, cache_kwarg

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: k completions per prompt at a temperature and nucleus mass, up to a stop string."""

    n: int = 5
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 512
    stop: str = "\nDone."
    seed: int = 0


class Sampler(Protocol):
    def sample(self, prompts: Sequence[str], params: SamplingParams,
               progress: Progress | None = None) -> list[list[str]]:
        """Return, for each prompt, `params.n` completions (text after the prompt, stop string included
        when it was reached)."""
        ...


def _filter_top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tail of each row's distribution beyond nucleus mass `top_p` and renormalise."""
    if top_p >= 1.0:
        return probs
    sorted_p, idx = torch.sort(probs, dim=-1, descending=True)
    cum = torch.cumsum(sorted_p, dim=-1)
    # keep a token while the mass before it is below top_p (so the first token is always kept)
    keep_sorted = (cum - sorted_p) < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, idx, keep_sorted)
    probs = probs * keep
    return probs / probs.sum(-1, keepdim=True)


def next_tokens(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> torch.Tensor:
    """Draw one token id per row of `logits` (rows x vocab) with temperature and top_p; greedy at T = 0."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    probs = _filter_top_p(probs, top_p)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def _growing_cache(config):
    """A DynamicCache whose full-attention layers grow into preallocated buffers instead of concatenating.

    transformers' DynamicLayer copies the whole cache at every decoding step (torch.cat); on small models
    that copying costs more than the model itself. Layers of any other kind (sliding windows, ...) are kept.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states):
            self.device = key_states.device
            self._k = self._v = None
            self._len = 0
            self.is_initialized = True

        def _views(self):
            self.keys = self._k[:, :, :self._len]
            self.values = self._v[:, :, :self._len]

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = key_states.shape[-2]
            if self._k is None or self._len + n > self._k.shape[-2]:
                cap = max(64, 2 * (self._len + n))
                shape = (*key_states.shape[:2], cap, key_states.shape[-1])
                k = key_states.new_empty(shape)
                v = value_states.new_empty((*value_states.shape[:2], cap, value_states.shape[-1]))
                if self._len:
                    k[:, :, :self._len] = self._k[:, :, :self._len]
                    v[:, :, :self._len] = self._v[:, :, :self._len]
                self._k, self._v = k, v
            self._k[:, :, self._len:self._len + n] = key_states
            self._v[:, :, self._len:self._len + n] = value_states
            self._len += n
            self._views()
            return self.keys, self.values

        def get_seq_length(self):
            return self._len if self.is_initialized else 0

        def batch_repeat_interleave(self, repeats):
            if self.get_seq_length():
                self._k = self._k[:, :, :self._len].repeat_interleave(repeats, dim=0)
                self._v = self._v[:, :, :self._len].repeat_interleave(repeats, dim=0)
                self._views()

        def batch_select_indices(self, indices):
            if self.get_seq_length():
                self._k, self._v = self._k[indices], self._v[indices]
                self._views()

    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


class TransformersSampler:
    """Batched KV-cache sampling with any transformers causal LM (CPU or GPU)."""

    def __init__(self, loaded: LoadedModel, batch_size: int = 256):
        self.loaded = loaded
        self.batch_size = batch_size  # prompts per batch; each expands to k rows after prefill
        self.tokens_generated = 0  # running count over every call, for throughput figures
        self._cache_arg = cache_kwarg(loaded.model)

    def _prefix(self) -> list[int]:
        bos = self.loaded.codec.bos_id
        return [bos] if bos is not None else []

    @torch.no_grad()
    def sample(self, prompts: Sequence[str], params: SamplingParams,
               progress: Progress | None = None) -> list[list[str]]:
        codec = self.loaded.codec
        encoded = [self._prefix() + codec.encode(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        stop_ids = codec.encode(params.stop)
        out: list[list[str]] = [[] for _ in prompts]
        gen = torch.Generator(device=self.loaded.device)
        gen.manual_seed(params.seed)
        done = 0
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            texts = self._sample_batch([encoded[i] for i in chunk], params, stop_ids, gen)
            for j, i in enumerate(chunk):
                out[i] = texts[j * params.n:(j + 1) * params.n]
            done += len(chunk)
            if progress:
                progress(f"sampled {done}/{len(prompts)} prompts x {params.n}")
        return out

    def _sample_batch(self, batch: list[list[int]], params: SamplingParams, stop_ids: list[int],
                      gen: torch.Generator) -> list[str]:
        model, codec, dev = self.loaded.model, self.loaded.codec, self.loaded.device
        model.eval()
        width = max(len(x) for x in batch)
        ids = torch.full((len(batch), width), codec.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, x in enumerate(batch):  # left padding: every prompt ends at the last column
            ids[r, width - len(x):] = torch.tensor(x)
            mask[r, width - len(x):] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _growing_cache(model.config)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                       logits_to_keep=1, **{self._cache_arg: cache}).logits[:, -1, :]
        k = params.n
        if k > 1:  # one prefill per prompt, then k copies of its cache
            cache.batch_repeat_interleave(k)
            logits = logits.repeat_interleave(k, 0)
            mask = mask.repeat_interleave(k, 0)
            pos = pos.repeat_interleave(k, 0)
        rows = torch.arange(len(batch) * k, device=dev)  # which output row each live batch row is
        next_pos = pos[:, -1] + 1
        generated: list[list[int]] = [[] for _ in range(len(batch) * k)]
        live = [True] * (len(batch) * k)  # per output row: still generating
        n_stop = len(stop_ids)
        eos = codec.eos_id
        # a sub-word tokenizer may spell the stop string with other tokens than encode(stop) gives, so it is
        # looked for in the decoded tail, after tokens whose text holds the stop string's last character
        by_text = getattr(codec, "stop_by_text", False)
        last_char = params.stop[-1:]
        window = 2 * n_stop + 4
        for step in range(params.max_new_tokens):
            tok = next_tokens(logits, params.temperature, params.top_p, gen)
            tok_list = tok.tolist()
            n_dead = 0
            for b, t in enumerate(tok_list):
                r = int(rows[b])
                if not live[r]:
                    n_dead += 1
                    continue
                g = generated[r]
                if t == eos:
                    live[r] = False
                    n_dead += 1
                    continue
                g.append(t)
                if n_stop and len(g) >= n_stop and g[-n_stop:] == stop_ids:
                    live[r] = False
                    n_dead += 1
                elif by_text and last_char in codec.piece(t) and params.stop in codec.decode(g[-window:]):
                    live[r] = False
                    n_dead += 1
            if step == params.max_new_tokens - 1 or n_dead == len(tok_list):
                break
            # finished rows keep decoding (ignored) until they are a quarter of the batch: dropping them
            # copies the cache, so it is done in bulk rather than at every step
            if n_dead * 4 >= len(tok_list):
                keep = torch.tensor([live[int(r)] for r in rows.tolist()], dtype=torch.bool)
                sel = keep.nonzero().squeeze(-1).to(dev)
                cache.batch_select_indices(sel)
                rows, tok, mask, next_pos = rows[sel], tok[sel], mask[sel], next_pos[sel]
            mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype, device=dev)], dim=1)
            logits = model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                           use_cache=True, **{self._cache_arg: cache}).logits[:, -1, :]
            next_pos = next_pos + 1
        self.tokens_generated += sum(len(g) for g in generated)
        texts = [codec.decode(g) for g in generated]
        if by_text:  # a token may run past the stop string: the completion ends with it, as vLLM's does
            texts = [cut_after_stop(t, params.stop) for t in texts]
        return texts


def cut_after_stop(text: str, stop: str) -> str:
    """`text` up to and including the first `stop` in it (all of it when there is none)."""
    i = text.find(stop)
    return text if i < 0 else text[:i + len(stop)]


@torch.no_grad()
def target_nll(loaded: LoadedModel, pairs: Sequence[tuple[str, str]], max_batch_tokens: int | None = None,
               progress: Progress | None = None) -> list[tuple[float, int]]:
    """Mean negative log-likelihood (nats per token) of each target given its prompt, with its token count.

    perplexity = exp(mean NLL). Examples are sorted by length and packed into batches of at most
    `max_batch_tokens` padded tokens, so little compute goes to padding. By default 1024 on a CPU (a batch's
    activations then stay in the core's cache: about 1.5x faster than 16384 there, `bench/eval_throughput.py
    --sweep`) and 16384 on a GPU.
    """
    model, codec, dev = loaded.model, loaded.codec, loaded.device
    if max_batch_tokens is None:
        max_batch_tokens = 1024 if torch.device(dev).type == "cpu" else 16384
    model.eval()
    prefix = [codec.bos_id] if codec.bos_id is not None else []
    seqs = []
    for prompt, target in pairs:
        p, t = prefix + codec.encode(prompt), codec.encode(target)
        seqs.append((p + t, len(p)))
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    out: list[tuple[float, int]] = [(float("nan"), 0)] * len(seqs)
    i = 0
    while i < len(order):
        width = len(seqs[order[i]][0])
        j = i
        while j < len(order) and (j - i + 1) * len(seqs[order[j]][0]) <= max(max_batch_tokens, width):
            j += 1
        chunk = order[i:j]
        width = len(seqs[chunk[-1]][0])
        ids = torch.full((len(chunk), width), codec.pad_id, dtype=torch.long)
        for r, idx in enumerate(chunk):
            s = seqs[idx][0]
            ids[r, :len(s)] = torch.tensor(s)
        ids = ids.to(dev)
        # right padding: causal attention never lets a real token see the pads after it, so no mask is needed
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        for r, idx in enumerate(chunk):
            s, plen = seqs[idx]
            tok_lp = logp[r, plen - 1:len(s) - 1]
            out[idx] = (float(-tok_lp.mean()), int(tok_lp.numel()))
        i = j
        if progress:
            progress(f"scored {i}/{len(order)} targets")
    return out
