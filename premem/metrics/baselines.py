"""The classic generalization measures the paper compares PreMemAcc with (Appendix B), and their correlations.

- `gradient_variance`: gradients of M minibatches, per-parameter variance across them, mean over parameters.
  Each minibatch's gradient is accumulated over micro-batches and the variance is streamed (Welford), so memory
  holds two parameter-sized buffers besides the model, never M gradients.
- `weight_distance`: sum over parameters of (theta - theta_base)^2, no square root.
- `atc_threshold` / `atc_accuracy` / `atc_reproduction_bound`: Average Thresholded Confidence. Scores are per
  train prompt (the likelihood of one greedy sample); a threshold fitted on a reference checkpoint turns any
  checkpoint's scores into a predicted accuracy; on the reference itself it gives back the reference's accuracy
  within the bound.
- `correlations`: Pearson r and Kendall tau of a measure against a target (the generalization gap or test
  accuracy) over checkpoints.
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
    from premem.train import padded_batch

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


def _ranked(scores: Sequence[float]) -> tuple[np.ndarray, int]:
    """`scores` sorted from highest to lowest, with prompts that have no score (an empty greedy sample: -inf)
    put together just below every scored prompt, and how many were scored. Raises ValueError when empty."""
    s = np.sort(np.asarray(scores, dtype=float))[::-1]
    if s.size == 0:
        raise ValueError("ATC needs at least one score")
    finite = s[np.isfinite(s)]
    return np.where(np.isfinite(s), s, (finite.min() - 1.0) if finite.size else 0.0), int(finite.size)


def atc_threshold(scores: Sequence[float], accuracy: float) -> float:
    """The threshold t such that the fraction of `scores` strictly above t equals `accuracy` (as closely as the
    number of scores allows: round(accuracy x n) of them are above it). t lies midway between the two scores
    that straddle the cut, so scores of other checkpoints are not judged by a tie with one of the reference's.
    Where scores tie across the cut (prompts with no score, -inf, tie with each other) no threshold gives the
    exact fraction: `atc_accuracy` on the reference then says what it reproduces."""
    s, _ = _ranked(scores)
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy {accuracy} is not in [0, 1]")
    k = int(round(accuracy * s.size))
    if k == 0:
        return float(s[0])  # nothing strictly above the highest score
    if k == s.size:
        return float(s[-1] - 1.0)
    mid = (s[k - 1] + s[k]) / 2.0
    # two neighbouring floats have no float between them: the midpoint rounds onto the upper one, which would
    # then not count as above; the lower one keeps exactly k above (unless they tie)
    return float(mid if mid < s[k - 1] else s[k])


def atc_reproduction_bound(scores: Sequence[float], accuracy: float) -> float:
    """How far, at most, `atc_accuracy(scores, atc_threshold(scores, accuracy))` can lie from `accuracy`
    (a fraction in [0, 1]): the rounding of accuracy x n to a whole number of prompts, plus the share of prompts
    whose scores tie with each other across the cut, which no threshold can split (empty samples, -inf, tie
    with each other and lie above no threshold). 0.0 when accuracy x n is a whole number and no scores tie across
    the cut."""
    s, n_finite = _ranked(scores)
    k = int(round(accuracy * s.size))
    bound = abs(k / s.size - accuracy)
    if 0 < k < s.size and s[k - 1] == s[k]:
        # the threshold then sits on the tied value: the tied prompts above the cut are not counted above it
        bound += float(np.sum(s[:k] == s[k])) / s.size
    elif k == s.size:
        bound += float(s.size - n_finite) / s.size  # an empty sample is above no threshold
    return bound


def atc_accuracy(scores: Sequence[float], threshold: float) -> float:
    """ATC's predicted accuracy: the fraction of `scores` strictly above `threshold`."""
    s = np.asarray(scores, dtype=float)
    if s.size == 0:
        raise ValueError("ATC needs at least one score")
    return float(np.mean(s > threshold))


def correlations(x: Sequence[float | None], y: Sequence[float | None]) -> dict:
    """Pearson r and Kendall tau (tau-b) of x against y over the pairs where both are finite numbers.

    Returns {'pearson', 'kendall', 'n'}; a coefficient is None with fewer than 3 pairs or when either side is
    constant (the correlation is undefined, not zero).
    """
    from scipy import stats

    pairs = [(float(a), float(b)) for a, b in zip(x, y)
             if a is not None and b is not None and math.isfinite(float(a)) and math.isfinite(float(b))]
    out = {"pearson": None, "kendall": None, "n": len(pairs)}
    if len(pairs) < 3:
        return out
    xa, ya = np.array(pairs).T
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return out
    out["pearson"] = float(stats.pearsonr(xa, ya).statistic)
    out["kendall"] = float(stats.kendalltau(xa, ya).statistic)
    return out
