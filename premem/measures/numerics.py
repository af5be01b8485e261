"""The classic generalization measures the paper compares PreMemAcc with (Appendix B) that need the model.

- `gradient_variance`: gradients of M minibatches, per-parameter variance across them, mean over parameters.
  Each minibatch's gradient is accumulated over micro-batches and the variance is streamed (Welford), so memory
  holds two parameter-sized buffers besides the model, never M gradients.
- `weight_distance`: sum over parameters of (theta - theta_base)^2, no square root.

ATC's threshold and the correlations of a measure with its target need no torch: premem.metrics.stats (the
analysis and `premem report` import them without loading torch).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

Progress = Callable[[str], None]


def _embedding_params(model: torch.nn.Module) -> set[int]:
    """ids of the input-embedding and output-layer parameters (tied or not)."""
    out: set[int] = set()
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None:
            out.update(id(p) for p in module.parameters())
    return out


def weight_distance(model: torch.nn.Module, base: torch.nn.Module, exclude_embeddings: bool = True) -> dict:
    """Sum over parameters of (theta - theta_base)^2 (float64; no square root), matched by parameter name.

    With `exclude_embeddings`, the input embedding and output layers are left out. Returns {'distance',
    'parameters' (how many scalars entered the sum), 'tensors'}. Raises ValueError when the two models do not
    have the same parameters (names and shapes): the distance would be meaningless.
    """
    skip = _embedding_params(model) if exclude_embeddings else set()
    base_params = dict(base.named_parameters())
    total, count, tensors = 0.0, 0, 0
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if id(p) in seen or id(p) in skip:
            continue  # tied weights counted once
        seen.add(id(p))
        q = base_params.get(name)
        if q is None or q.shape != p.shape:
            raise ValueError(f"parameter {name} {tuple(p.shape)} has no counterpart of that shape in the base model")
        diff = p.detach().to(torch.float64) - q.detach().to(device=p.device, dtype=torch.float64)
        total += float((diff * diff).sum())
        count += p.numel()
        tensors += 1
    return {"distance": total, "parameters": count, "tensors": tensors}


def minibatch_gradients(model: torch.nn.Module, minibatches: Sequence[Sequence[tuple[list[int], int]]],
                        pad_id: int, device, micro_batch: int = 8, progress: Progress | None = None):
    """Yield, per minibatch, the list of parameter gradients (float32, detached) of the mean target NLL over the
    minibatch's target tokens, accumulated over micro-batches of `micro_batch` sequences.

    Each sequence is (token ids, prompt length); tokens from the prompt length on carry loss (as in training).
    The model is put in eval mode (no dropout) so equal minibatches give equal gradients.
    """
    from premem.engine.train import padded_batch

    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    for m, batch in enumerate(minibatches):
        n_tokens = sum(len(ids) - plen for ids, plen in batch)
        if n_tokens <= 0:
            raise ValueError("a minibatch has no target tokens")
        model.zero_grad(set_to_none=True)
        for start in range(0, len(batch), micro_batch):
            ids, _, labels = padded_batch(list(batch[start:start + micro_batch]), pad_id, device)
            logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
            # the sum over this micro-batch's target tokens, divided by the whole minibatch's count: the
            # accumulated gradient is that of the minibatch's mean NLL, whatever the micro-batch size
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                     ignore_index=-100, reduction="sum") / n_tokens
            loss.backward()
        # copied to host memory: the running statistics live there, not beside the model on its device
        yield [p.grad.detach().float().cpu().clone() if p.grad is not None
               else torch.zeros(p.shape, dtype=torch.float32) for p in params]
        if progress:
            progress(f"gradient {m + 1}/{len(minibatches)}")
    model.zero_grad(set_to_none=True)


def streamed_variance(gradients) -> dict:
    """Per-parameter variance across the gradients yielded by `gradients` (an iterable of lists of tensors, one
    list per minibatch), averaged over all parameters (scalars).

    Welford's running mean and sum of squared deviations: two float32 buffers the size of the model (8 bytes
    per parameter, in the memory of the gradients given: host memory from `minibatch_gradients`), whatever the
    number of minibatches. The variance is the sample variance (divided by M - 1); the final sums are taken in
    float64. Returns {'variance', 'minibatches', 'parameters', 'mean_grad_norm'}.
    """
    mean: list[torch.Tensor] | None = None
    m2: list[torch.Tensor] | None = None
    n = 0
    norms = []
    for grads in gradients:
        n += 1
        norms.append(math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads)))
        if mean is None:
            mean = [g.float().clone() for g in grads]
            m2 = [torch.zeros_like(g, dtype=torch.float32) for g in grads]
            continue
        for mu, s, g in zip(mean, m2, grads):
            g = g.float()
            delta = g - mu
            mu.add_(delta / n)
            s.add_(delta * (g - mu))
    if n < 2:
        raise ValueError("gradient variance needs at least 2 minibatches")
    total = sum(float(s.sum(dtype=torch.float64)) for s in m2)
    count = sum(s.numel() for s in m2)
    return {"variance": total / (n - 1) / count, "minibatches": n, "parameters": count,
            "mean_grad_norm": float(np.mean(norms))}


def gradient_minibatches(seqs: Sequence[tuple[list[int], int]], minibatches: int, batch_size: int
                         ) -> list[list[tuple[list[int], int]]]:
    """The first `minibatches` x `batch_size` sequences cut into `minibatches` consecutive minibatches (the
    authors used the first 640 training examples in 5 batches of 128). Raises ValueError when there are too
    few sequences for even two minibatches; with fewer than M x B, it uses as many full minibatches as fit."""
    m = min(minibatches, len(seqs) // batch_size)
    if m < 2:
        raise ValueError(f"gradient variance needs at least 2 minibatches of {batch_size} examples; the run has "
                         f"{len(seqs)} training examples (lower metrics.gradient_variance.batch_size)")
    return [list(seqs[i * batch_size:(i + 1) * batch_size]) for i in range(m)]
