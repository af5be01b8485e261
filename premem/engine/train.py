"""Finetuning (and pretraining) of a causal LM with the prompt masked out of the loss.

A finetuning run is a chain of epoch jobs: each loads the previous epoch's checkpoint (weights, optimizer
and schedule position), trains one epoch, and writes a new checkpoint. So a crash loses at most one epoch,
and every epoch's checkpoint is there to evaluate. Data order depends only on (seed, epoch), never on
what ran before, so a resumed run sees the same batches as an undisturbed one.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from premem.data.format import prompt_of, target_of
from premem.engine.models import LoadedModel, save_model

Progress = Callable[[str], None]
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "train_state.json"


class Diverged(RuntimeError):
    """The loss became NaN or infinite; `step` is the optimizer step where it happened."""

    def __init__(self, step: int, loss: float, what: str = "loss"):
        self.step, self.loss = step, loss
        super().__init__(f"diverged: {what} {loss} at step {step}")


@dataclass(frozen=True)
class Recipe:
    """Everything about the optimisation of one run (spec.Training plus the run's own settings)."""

    learning_rate: float
    total_steps: int
    batch_size: int
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "linear"
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0
    micro_batch_size: int | None = None  # examples per forward/backward pass (gradient accumulation)
    # mixed precision: forward and backward passes under torch.autocast to this dtype ("bfloat16" or "float16",
    # the latter with a gradient scaler) while weights and optimizer state stay in their own dtype (float32);
    # None: every pass in the weights' dtype
    autocast: str | None = None


class TooLong(ValueError):
    """Examples longer than the model's context; silently cutting them would bias every measure."""


def encode_examples(loaded: LoadedModel, examples: Sequence, max_length: int | None = None) -> list[tuple[list[int], int]]:
    """Token ids of bos + prompt + target for each example, with the prompt's length (tokens not trained on).

    Raises TooLong, naming how many and the longest, when an example exceeds `max_length` tokens: a cut
    trace never learns its final answer and its perplexity would be scored on untrained positions.
    """
    codec = loaded.codec
    prefix = [codec.bos_id] if codec.bos_id is not None else []
    out = []
    for ex in examples:
        p = prefix + codec.encode(prompt_of(ex.question))
        ids = p + codec.encode(target_of(ex.solution))
        out.append((ids, len(p)))
    if max_length is not None:
        long = [len(ids) for ids, _ in out if len(ids) > max_length]
        if long:
            raise TooLong(f"{len(long)} of {len(out)} examples are longer than the model's max_length "
                          f"({max(long)} > {max_length} tokens): raise the model's size.max_length")
    return out


def pack(seqs: list[tuple[list[int], int]], block: int, sep: int,
         learn_prompts: bool = True) -> list[tuple[list[int], list[bool]]]:
    """Concatenate sequences (each followed by `sep`) into blocks of exactly `block` tokens, no padding.

    Returns (ids, learn) per block, `learn` marking the tokens that carry loss: every token, or with
    `learn_prompts=False` only targets (and separators), so capacity goes to solving, not to modelling
    the random names and numbers of questions.
    """
    stream: list[int] = []
    learn: list[bool] = []
    for ids, plen in seqs:
        stream.extend(ids)
        stream.append(sep)
        learn.extend([learn_prompts or i >= plen for i in range(len(ids))] + [True])
    return [(stream[i:i + block], learn[i:i + block]) for i in range(0, len(stream) - block + 1, block)]


def lr_factor(step: int, recipe: Recipe) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based): warmup, then decay."""
    if recipe.warmup_steps and step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    if recipe.schedule == "constant":
        return 1.0
    span = max(1, recipe.total_steps - recipe.warmup_steps)
    t = min(1.0, (step - recipe.warmup_steps) / span)
    if recipe.schedule == "linear":
        return max(0.0, 1.0 - t)
    return 0.5 * (1.0 + math.cos(math.pi * t))


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW (decoupled decay) or Adam (L2 decay) over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=recipe.learning_rate, betas=recipe.betas, weight_decay=recipe.weight_decay)


def padded_batch(seqs: list[tuple[list[int], int | list[bool]]], pad_id: int, device
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (ids, mask, labels). Each sequence comes with its prompt length (tokens from there
    on carry loss) or with an explicit per-token learn mask (packed pretraining blocks)."""
    width = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for r, (s, learn) in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
        if isinstance(learn, int):
            labels[r, learn:len(s)] = ids[r, learn:len(s)]  # only the target is trained on
        else:
            keep = torch.tensor(learn, dtype=torch.bool)
            labels[r, :len(s)] = torch.where(keep, ids[r, :len(s)], torch.full_like(ids[r, :len(s)], -100))
    return ids.to(device), mask.to(device), labels.to(device)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of the `n` examples in epoch `epoch` (1-based): a function of (seed, epoch) only."""
    order = list(range(n))
    random.Random(f"order-{seed}-{epoch}").shuffle(order)
    return order


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def autocast_context(recipe: Recipe, device: torch.device | str):
    """The context the forward passes of `recipe` run in: torch.autocast to recipe.autocast on `device`'s kind
    (mixed precision), or a context that does nothing."""
    if recipe.autocast is None:
        return contextlib.nullcontext()
    from premem.engine.models import DTYPES

    return torch.autocast(torch.device(device).type, dtype=DTYPES[recipe.autocast])


def grad_scaler(recipe: Recipe, device: torch.device | str, sharded: bool = False, state: dict | None = None):
    """The gradient scaler float16 autocast needs (its small gradients would underflow), restored from `state`
    (a scaler's state_dict, as a checkpoint's train_state.json keeps it); None without float16 autocast. A
    sharded model's scaler agrees across processes on whether a step had non-finite gradients."""
    if recipe.autocast != "float16":
        return None
    kind = torch.device(device).type
    if sharded:
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

        scaler = ShardedGradScaler(kind)
    else:
        scaler = torch.amp.GradScaler(kind)
    if state:
        scaler.load_state_dict(state)
    return scaler


def train_epoch(loaded: LoadedModel, optimizer: torch.optim.Optimizer, seqs: list[tuple[list[int], int]],
                recipe: Recipe, seed: int, epoch: int, start_step: int,
                progress: Progress | None = None, shard: tuple[int, int] | None = None, scaler=None) -> dict:
    """Train one epoch over `seqs`; return {'steps', 'end_step', 'losses' (mean target NLL per step, nats),
    'tokens', 'seconds', 'skipped_steps' (steps a float16 gradient scaler skipped for non-finite gradients)}.
    Raises Diverged on a non-finite loss (or, without a scaler, a non-finite gradient norm).

    `shard` = (rank, world): this process is one of `world` that hold a sharded model (premem.jobs.sharded); each
    takes every world-th example of each batch, and losses and token counts are summed over the processes, so
    every process sees the same figures (and diverges at the same step). With recipe.autocast the passes run
    under torch.autocast (mixed precision); `scaler` (grad_scaler) scales the loss of float16 passes."""
    model = loaded.model
    model.train()
    cast = functools.partial(autocast_context, recipe, loaded.device)  # a fresh context per pass
    skipped = 0
    order = epoch_order(len(seqs), seed, epoch)
    losses: list[float] = []
    step = start_step
    tokens = 0
    t0 = time.time()
    last = t0
    n_steps = steps_per_epoch(len(seqs), recipe.batch_size)
    for b in range(n_steps):
        chunk = [seqs[i] for i in order[b * recipe.batch_size:(b + 1) * recipe.batch_size]]
        for g in optimizer.param_groups:
            g["lr"] = recipe.learning_rate * lr_factor(step, recipe)
        if shard is None:
            value, n_tokens = _accumulate(model, chunk, loaded, recipe.micro_batch_size, cast, scaler)
        else:
            value, n_tokens = _accumulate_shard(model, chunk, loaded, recipe.micro_batch_size, *shard, cast=cast,
                                                scaler=scaler)
        if not math.isfinite(value):
            raise Diverged(step, value)
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients
        if recipe.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
            norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # a sharded model's: a DTensor
            if not math.isfinite(norm) and scaler is None:
                # a finite loss with an infinite gradient: the step would write NaN weights (a scaler skips it)
                raise Diverged(step, norm, what="gradient norm")
        if scaler is not None:
            scale = scaler.get_scale()
            scaler.step(optimizer)  # skipped when the scaled gradients overflowed
            scaler.update()
            skipped += scaler.get_scale() < scale
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(value)
        tokens += n_tokens
        step += 1
        now = time.time()
        if progress and (now - last > 1.0 or b == n_steps - 1):
            progress(f"epoch {epoch} step {b + 1}/{n_steps} loss {value:.3f}")
            last = now
    out = {"steps": n_steps, "end_step": step, "losses": losses, "tokens": tokens, "seconds": time.time() - t0}
    if scaler is not None:
        out["skipped_steps"] = int(skipped)
    return out


def _accumulate(model: torch.nn.Module, chunk: list, loaded: LoadedModel, micro: int | None, cast=None,
                scaler=None) -> tuple[float, int]:
    """Forward and backward over one optimizer step's examples, `micro` at a time (all at once when None);
    return (mean loss per loss-carrying token over the whole batch, tokens read). Each pass's mean loss is
    weighted by its share of the batch's loss-carrying tokens, so the accumulated gradient is the gradient of
    the batch's mean loss: the same update as one pass over the whole batch."""
    micro = micro or len(chunk)
    parts = [chunk[i:i + micro] for i in range(0, len(chunk), micro)]
    batches = [padded_batch(part, loaded.codec.pad_id, loaded.device) for part in parts]
    counts = [int((labels[:, 1:] != -100).sum()) for _, _, labels in batches]
    total = max(1, sum(counts))
    value, tokens = 0.0, 0
    for (ids, mask, labels), n in zip(batches, counts):
        if n == 0:
            continue
        # right padding needs no attention mask under causal attention: real tokens never see the pads after
        # them, and pads carry no loss; leaving the mask out keeps attention on its fast causal path
        with (cast or contextlib.nullcontext)():
            loss = model(input_ids=ids, labels=labels, use_cache=False).loss * (n / total)
        part = float(loss.detach())
        if not math.isfinite(part):
            return part, tokens
        (scaler.scale(loss) if scaler is not None else loss).backward()
        value += part
        tokens += int(mask.sum())
    return value, tokens


def _loss_tokens(seq: tuple[list[int], int | list[bool]]) -> int:
    """Tokens of one sequence that carry loss (those after its prompt, or its learn mask's, the first excepted)."""
    ids, learn = seq
    return len(ids) - max(learn, 1) if isinstance(learn, int) else sum(learn[1:])


def _accumulate_shard(model: torch.nn.Module, chunk: list, loaded: LoadedModel, micro: int | None, rank: int,
                      world: int, cast=None, scaler=None) -> tuple[float, int]:
    """_accumulate for one of `world` processes holding a sharded model: this process's share of the batch
    (every world-th example), weighted by its share of the whole batch's loss-carrying tokens and by `world`
    (the sharded model averages gradients over the processes, so the sum is the batch's mean-loss gradient).
    Every process makes the same number of passes (a zero-weight pass where its share is short), since each
    pass is a collective; none stops early on a non-finite loss for the same reason. Returns the batch's mean
    loss and tokens read, summed over the processes."""
    import torch.distributed as dist

    total = max(1, sum(_loss_tokens(q) for q in chunk))
    mine = chunk[rank::world]
    micro = micro or -(-len(chunk) // world)
    n_passes = -(-(-(-len(chunk) // world)) // micro)
    parts = [mine[i * micro:(i + 1) * micro] for i in range(n_passes)]
    value, tokens = 0.0, 0
    for part in parts:
        weight = 1.0 if part else 0.0
        ids, mask, labels = padded_batch(part or chunk[:1], loaded.codec.pad_id, loaded.device)
        n = int((labels[:, 1:] != -100).sum())
        with (cast or contextlib.nullcontext)():
            loss = model(input_ids=ids, labels=labels, use_cache=False).loss * (weight * n / total * world)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        value += float(loss.detach()) / world
        tokens += int(mask.sum()) if part else 0
    stats = torch.tensor([value, float(tokens)], dtype=torch.float64)
    dist.all_reduce(stats)
    return float(stats[0]), int(stats[1])


def save_checkpoint(loaded: LoadedModel, optimizer: torch.optim.Optimizer, folder: Path, state: dict) -> None:
    """Write weights, optimizer state and `state` (step, epoch, ...) into `folder`."""
    save_model(loaded.model, loaded.codec, folder)
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    (folder / STATE_FILE).write_text(json.dumps(state))


def scaler_state(folder: Path) -> dict | None:
    """The float16 gradient scaler's state a checkpoint in `folder` recorded (None when it has none), so the
    next epoch goes on with the scale the last one reached."""
    path = Path(folder) / STATE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("grad_scaler")


def load_optimizer_state(optimizer: torch.optim.Optimizer, folder: Path) -> bool:
    """Restore optimizer state saved in `folder`; False when the folder holds none (a base model)."""
    path = folder / OPTIMIZER_FILE
    if not path.exists():
        return False
    optimizer.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return True
