"""What each kind of job does, given its resolved settings. Runs inside a Ray task (or in-process).

Each function reads its inputs from the store's artifacts (dependencies' checkpoints), writes its own
artifact through a staging folder, and returns its result to the driver, which alone records it.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch

from premem.plan import Job
from premem.store import Store

Progress = Callable[[str], None]


class UserError(Exception):
    """A failure caused by the spec or the user's data, not by infrastructure: retrying will not help."""


def _threads(job: Job) -> None:
    # a job gets as many torch threads as the CPUs it asked Ray for (2 tasks on 2 cores, 1 thread each)
    torch.set_num_threads(max(1, int(job.resources.get("cpus", 1))))


def job_device(job: Job) -> str:
    """The device a job computes on: `auto` means cuda only for a job that asked Ray for a GPU (a job with
    none would otherwise share whatever GPU it happens to see with every other job)."""
    device = job.settings["device"]
    if device == "auto" and not job.resources.get("gpus"):
        return "cpu"
    return device


def _spec_sections(job: Job):
    from pydantic import ValidationError

    from premem.spec import DatasetSpec, ModelSpec

    model = ModelSpec.model_validate({"name": "m", **job.settings["model"]})
    data = dict(job.settings["dataset"])
    data.setdefault("train_size", 1)  # sizes a job's identity leaves out (they do not affect its result)
    data.setdefault("test_size", 1)
    try:
        dataset = DatasetSpec.model_validate({"name": "d", **data})
    except ValidationError as e:  # e.g. a local data file missing where this job runs
        msgs = [f"{'.'.join(map(str, err['loc'])) or 'section'}: {err['msg'].removeprefix('Value error, ')}"
                for err in e.errors()]
        raise UserError("dataset: " + "; ".join(msgs)) from None
    return model, dataset


def run_pretrain(job: Job, store: Store, progress: Progress) -> dict:
    """Build a built-in model from nothing and train it on a broad corpus of its task; publish it."""
    from premem.data.loaders import DATASETS, arithmetic_task
    from premem.data.tokenizer import WordTokenizer
    from premem.models import LoadedModel, build_tiny, resolve_device, save_model
    from premem.train import Recipe, encode_examples, make_optimizer, pack, steps_per_epoch, train_epoch

    _threads(job)
    model_spec, ds = _spec_sections(job)
    pre = model_spec.pretrain
    if ds.builtin is None:
        raise UserError(f"pretraining generates its corpus from a built-in task; `{ds.source}` datasets cannot "
                        "be pretrained on (pretrain.dataset must name a `builtin` dataset)")
    DATASETS.get(ds.builtin)  # a clear error for an unknown dataset before any work
    task = arithmetic_task(ds)
    progress(f"generating {pre.examples} pretraining examples")
    corpus = task.split("pretrain", pre.examples, mix=pre.difficulty_mix) if pre.difficulty_mix else \
        task.split("pretrain", pre.examples)
    codec = WordTokenizer.for_arithmetic_task()
    device = resolve_device(job_device(job))
    model = build_tiny(model_spec.size, codec.vocab_size, seed=job.settings["seed"]).to(device)
    loaded = LoadedModel(model, codec, device, torch.float32)
    # pretraining reads packed blocks with no padding, as a language model does (finetuning masks the prompt)
    seqs = pack(encode_examples(loaded, corpus),  # packing cuts blocks itself: no length limit per example
                block=pre.block, sep=codec.eos_id, learn_prompts=pre.learn_questions)
    total = pre.epochs * steps_per_epoch(len(seqs), pre.batch_size)
    recipe = Recipe(learning_rate=pre.learning_rate, total_steps=total, batch_size=pre.batch_size,
                    optimizer="adamw", weight_decay=pre.weight_decay, schedule="cosine",
                    warmup_steps=min(pre.warmup_steps, total // 2), max_grad_norm=1.0)
    opt = make_optimizer(model, recipe)
    step, losses, tokens, t0 = 0, [], 0, time.time()
    for epoch in range(1, pre.epochs + 1):
        out = train_epoch(loaded, opt, seqs, recipe, job.settings["seed"], epoch, step,
                          progress=lambda m, e=epoch: progress(f"pretrain {m}"))
        step, tokens = out["end_step"], tokens + out["tokens"]
        losses += out["losses"]
    staging = store.staging(job.id)
    save_model(model, codec, staging)  # a base model: weights and tokenizer, no optimizer state
    store.publish(staging, job.id)
    return {"steps": step, "tokens": tokens, "seconds": time.time() - t0, "final_loss": _tail_mean(losses),
            "losses": _downsample(losses)}


def _tail_mean(xs: list[float], n: int = 20) -> float | None:
    tail = xs[-n:]
    return sum(tail) / len(tail) if tail else None


def _downsample(xs: list[float], n: int = 200) -> list[float]:
    """At most `n` evenly spaced values of a loss curve (for the report)."""
    if len(xs) <= n:
        return xs
    return [xs[int(i * (len(xs) - 1) / (n - 1))] for i in range(n)]


def _splits(dataset):
    """The dataset's examples; a problem with the data itself is a UserError (retrying will not help)."""
    from premem.data.loaders import DataError, load_splits

    try:
        return load_splits(dataset)
    except DataError as e:
        raise UserError(str(e)) from None


def _run_examples(job: Job, dataset) -> list:
    from premem.data.loaders import subset_indices

    splits = _splits(dataset)
    idx = subset_indices(len(splits.train), job.settings["dataset_fraction"], job.settings["seed"])
    return [splits.train[i] for i in idx]


def run_train_epoch(job: Job, store: Store, progress: Progress) -> dict:
    """Train one epoch of a run from the previous checkpoint (or the base model); publish the checkpoint."""
    from premem.models import load_model
    from premem.train import (Diverged, Recipe, TooLong, encode_examples, load_optimizer_state, make_optimizer,
                              save_checkpoint, steps_per_epoch, train_epoch)

    _threads(job)
    model_spec, ds = _spec_sections(job)
    s = job.settings
    if not job.deps:
        raise UserError("a built-in model needs a `pretrain` section (nothing to finetune from)")
    source = store.artifact(job.deps[0])
    loaded = load_model(source, device=job_device(job), dtype=model_spec.dtype,
                        trust_remote_code=model_spec.trust_remote_code)
    examples = _run_examples(job, ds)
    try:
        seqs = encode_examples(loaded, examples, max_length=model_spec.size.max_length)
    except TooLong as e:
        raise UserError(str(e)) from None
    t = s["training"]
    per_epoch = steps_per_epoch(len(seqs), t["batch_size"])
    total = per_epoch * s["epochs"]
    warmup = t["warmup_steps"] if t["warmup_steps"] is not None else \
        int(round((t["warmup_fraction"] or 0.0) * total))
    recipe = Recipe(learning_rate=s["learning_rate"], total_steps=total, batch_size=t["batch_size"],
                    optimizer=t["optimizer"], weight_decay=t["weight_decay"], betas=tuple(t["betas"]),
                    schedule=t["schedule"], warmup_steps=warmup, max_grad_norm=t["max_grad_norm"])
    opt = make_optimizer(loaded.model, recipe)
    load_optimizer_state(opt, source)
    start_step = per_epoch * (s["epoch"] - 1)
    try:
        out = train_epoch(loaded, opt, seqs, recipe, s["seed"], s["epoch"], start_step, progress)
    except Diverged as e:
        raise UserError(str(e)) from None
    staging = store.staging(job.id)
    save_checkpoint(loaded, opt, staging, {"epoch": s["epoch"], "step": out["end_step"]})
    store.publish(staging, job.id)
    losses = out["losses"]
    return {"epoch": s["epoch"], "steps": out["steps"], "end_step": out["end_step"], "tokens": out["tokens"],
            "seconds": out["seconds"], "mean_loss": sum(losses) / len(losses), "losses": _downsample(losses),
            "examples": len(seqs)}


def run_evaluate(job: Job, store: Store, progress: Progress) -> dict:
    """Evaluate the checkpoint of the job's train dependency; return its result and per-example rows."""
    from premem.evaluate import evaluate_checkpoint
    from premem.models import load_model
    from premem.sampling import SamplingParams

    _threads(job)
    model_spec, ds = _spec_sections(job)
    s, ev = job.settings, job.settings["evaluation"]
    t0 = time.time()
    loaded = load_model(store.artifact(job.deps[0]), device=job_device(job), dtype=model_spec.dtype,
                        trust_remote_code=model_spec.trust_remote_code)
    train = _run_examples(job, ds)
    if ev["train_examples"] is not None:
        train = train[:ev["train_examples"]]
    test = _splits(ds).test
    if ev["test_examples"] is not None:
        test = test[:ev["test_examples"]]
    seed = s.get("sampling_seed", int(job.id[:8], 16))  # skip_settled: the seed of the job without it
    params = SamplingParams(n=ev["samples"], temperature=ev["temperature"], top_p=ev["top_p"],
                            max_new_tokens=ev["max_new_tokens"], stop=ev["stop"], seed=seed)
    settle_below = s.get("skip_settled_below")
    earlier = _earlier_train_results(store, list(job.deps[1:])) if settle_below is not None else []
    work: dict = {}
    rows = evaluate_checkpoint(loaded, train, test, params, batch_size=ev["batch_size"],
                               sampling_dtype=ev["sampling_dtype"], test_samples=ev["test_samples"],
                               progress=progress, stats=work, settle_below=settle_below, earlier=earlier)
    acc = {sp: _mean([r["n_correct"] / r["n_samples"] for r in rows if r["split"] == sp and r["n_samples"]])
           for sp in ("train", "test")}  # over the examples measured (skipped ones have no accuracy)
    nll = _mean([r["nll"] for r in rows if r["split"] == "train"])
    return {"train_acc": acc["train"], "test_acc": acc["test"], "train_nll": nll, "seconds": time.time() - t0, **work,
            "n_train": len(train), "n_test": len(test), "_examples": rows}


def _earlier_train_results(store: Store, job_ids: list[str]) -> list[dict[str, tuple[int, float | None]]]:
    """Per earlier evaluate job (in the order given): train example id -> (n_correct, nll), read from the store
    through a read-only connection (only the driver writes the store; these jobs are recorded done, since
    they are this job's dependencies)."""
    import sqlite3

    if not job_ids:
        return []
    out: dict[str, dict[str, tuple[int, float | None]]] = {j: {} for j in job_ids}
    con = sqlite3.connect(f"{store.db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        q = (f"SELECT job_id, example_id, n_correct, nll FROM examples WHERE split = 'train' "
             f"AND job_id IN ({','.join('?' * len(job_ids))})")
        for job_id, example_id, n_correct, nll in con.execute(q, job_ids):
            out[job_id][example_id] = (n_correct, nll)
    finally:
        con.close()
    missing = [j[:10] for j in job_ids if not out[j]]
    if missing:  # a dependency recorded done always has its rows: the store is not what the plan expects
        raise RuntimeError(f"no per-example results in the store for earlier evaluations {missing}")
    return [out[j] for j in job_ids]


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else None


RUNNERS = {"pretrain": run_pretrain, "train": run_train_epoch, "evaluate": run_evaluate}


def execute(job: Job, store_root: str, progress: Progress) -> dict:
    """Run `job` and return its result dict (per-example rows, if any, under '_examples')."""
    return RUNNERS[job.kind](job, Store(Path(store_root)), progress)
