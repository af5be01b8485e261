"""What each kind of job does, given its resolved settings. Runs inside a Ray task (or in-process).

Each function reads its inputs from the store's artifacts (dependencies' checkpoints), writes its own
artifact through a staging folder, and returns its result to the driver, which alone records it. What every kind
needs from where it runs is in premem.jobs.context, the start and result of a train epoch in premem.jobs.training;
curation's kinds are in premem.jobs.curation, sharded training in premem.jobs.sharded.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

# UserError, job_device and Progress live in premem.jobs.context; tests and scripts import them from here too
from premem.jobs.context import (Progress, UserError, dataset_splits, dependency_train_rows, evaluated_train,
                                 job_device, job_sampling_dtype, job_sections, sampler_params, set_job_threads)
from premem.jobs.measure import run_measure
from premem.jobs.training import diverged_result, downsample, prepare_training, train_result
from premem.plan.job import Job, require_every_kind
from premem.store import Store


def run_pretrain(job: Job, store: Store, progress: Progress) -> dict:
    """Build a built-in model from nothing and train it on a broad corpus of its task; publish it."""
    from premem.data.loaders import DATASETS, arithmetic_task
    from premem.data.tokenizer import WordTokenizer
    from premem.engine.models import LoadedModel, build_tiny, resolve_device, save_model
    from premem.engine.train import Recipe, encode_examples, make_optimizer, pack, steps_per_epoch, train_epoch

    set_job_threads(job)
    model_spec, ds = job_sections(job)
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
    model = build_tiny(model_spec.size, codec.vocab_size, seed=job.settings.seed).to(device)
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
        out = train_epoch(loaded, opt, seqs, recipe, job.settings.seed, epoch, step,
                          progress=lambda m, e=epoch: progress(f"pretrain {m}"))
        step, tokens = out["end_step"], tokens + out["tokens"]
        losses += out["losses"]
    staging = store.staging(job.id)
    save_model(model, codec, staging)  # a base model: weights and tokenizer, no optimizer state
    store.publish(staging, job.id)
    return {"steps": step, "tokens": tokens, "seconds": time.time() - t0, "final_loss": _tail_mean(losses),
            "losses": downsample(losses)}


def _tail_mean(xs: list[float], n: int = 20) -> float | None:
    tail = xs[-n:]
    return sum(tail) / len(tail) if tail else None


def run_train_epoch(job: Job, store: Store, progress: Progress) -> dict:
    """Train one epoch of a run from the previous checkpoint (or the base model); publish the checkpoint.

    The base model of epoch 1 is the pretraining job's artifact (a built-in model) or the `hf` model itself,
    loaded by hub id or folder exactly as a user would. With training.lora, epoch 1 puts fresh adapters on
    it and every checkpoint holds the adapter only (premem.engine.lora). With training.shards > 1 the model is
    sharded over that many processes (premem.jobs.sharded)."""
    from premem.engine.train import (Diverged, grad_scaler, load_optimizer_state, make_optimizer, save_checkpoint,
                                     scaler_state)

    s = job.settings
    if s.training.get("shards", 1) > 1:
        from premem.jobs.sharded import train_sharded

        return train_sharded(job, store, progress)
    set_job_threads(job)
    setup = prepare_training(job, store, job_device(job))
    opt = make_optimizer(setup.loaded.model, setup.recipe)
    if setup.resumes:
        load_optimizer_state(opt, setup.source)
    # float16 mixed precision: the loss scale goes on from the previous epoch's
    scaler = grad_scaler(setup.recipe, setup.loaded.device, state=scaler_state(setup.source) if setup.resumes
                         else None)
    try:
        out = _train(job, setup.loaded, opt, setup.seqs, setup.recipe, setup.start_step, progress, scaler)
    except Diverged as e:
        # an outcome of the run, not an error: recorded with its step, the run's later epochs and evaluations
        # are skipped (there is no checkpoint to go on from), and the other runs go on
        return diverged_result(s, e)
    staging = store.staging(job.id)
    state = {"epoch": s.epoch, "step": out["end_step"]}
    if scaler is not None:
        state["grad_scaler"] = scaler.state_dict()
    save_checkpoint(setup.loaded, opt, staging, state)
    if setup.lora_base is not None:
        from premem.engine.lora import write_base

        write_base(staging, setup.lora_base)
    store.publish(staging, job.id)
    return train_result(s, out, len(setup.seqs))


def _train(job: Job, loaded, opt, seqs, recipe, start_step: int, progress: Progress, scaler=None) -> dict:
    from premem.engine.train import train_epoch

    s = job.settings
    return train_epoch(loaded, opt, seqs, recipe, s.seed, s.epoch, start_step, progress, scaler=scaler)


def run_evaluate(job: Job, store: Store, progress: Progress) -> dict:
    """Evaluate the checkpoint of the job's train dependency; return its result and per-example rows."""
    from premem.engine.evaluate import evaluate_checkpoint
    from premem.engine.sampling import SamplingParams
    from premem.engine.vllm_sampler import evaluation_backends

    set_job_threads(job)
    model_spec, ds = job_sections(job)
    s, ev = job.settings, job.settings.evaluation
    t0 = time.time()
    # target perplexity in float32 (evaluation.scoring_dtype; a float32 model's settings do not name it)
    score_dtype = s.scoring_dtype or model_spec.dtype
    loaded, scorer, make_sampler = evaluation_backends(store.artifact(job.dep("checkpoint")), model_spec, ev,
                                                       job_device(job), job.resources.get("gpus", 0), s.seed,
                                                       scoring_dtype=score_dtype)
    sampling_dtype = job_sampling_dtype(ev, job, progress)
    if make_sampler is None and loaded is not None and score_dtype != model_spec.dtype:
        # scored in float32: the transformers sampler then runs in the sampling dtype, else the model's, as
        # before; the weights are cast in place once scoring is done (no second copy beside them)
        make_sampler = _cast_sampler(loaded, sampling_dtype or model_spec.dtype, ev["batch_size"])
    train = evaluated_train(job, ds, ev["train_examples"])
    test = dataset_splits(ds).test
    if ev["test_examples"] is not None:
        test = test[:ev["test_examples"]]
    # skip_settled: the seed of the same job without it
    seed = s.sampling_seed if s.sampling_seed is not None else int(job.id[:8], 16)
    params = SamplingParams(n=ev["samples"], temperature=ev["temperature"], top_p=ev["top_p"],
                            max_new_tokens=ev["max_new_tokens"], stop=ev["stop"], seed=seed)
    settle_below = s.skip_settled_below
    earlier = _earlier_train_results(store, list(job.deps_as("earlier"))) if settle_below is not None else []
    work: dict = {}
    rows = evaluate_checkpoint(loaded, train, test, params, batch_size=ev["batch_size"],
                               sampling_dtype=sampling_dtype, test_samples=ev["test_samples"],
                               progress=progress, stats=work, settle_below=settle_below, earlier=earlier,
                               scorer=scorer, make_sampler=make_sampler)
    acc = {sp: _mean([r["n_correct"] / r["n_samples"] for r in rows if r["split"] == sp and r["n_samples"]])
           for sp in ("train", "test")}  # over the examples measured (skipped ones have no accuracy)
    nll = _mean([r["nll"] for r in rows if r["split"] == "train"])
    from premem.engine.vllm_sampler import auto_sampler

    used = ev.get("sampler", "transformers")
    used = auto_sampler(model_spec, job_device(job)) if used == "auto" else used
    return {"train_acc": acc["train"], "test_acc": acc["test"], "train_nll": nll, "seconds": time.time() - t0, **work,
            "sampler": used, "sampling_dtype": sampling_dtype or model_spec.dtype,
            "n_train": len(train), "n_test": len(test), "_examples": rows}


def _cast_sampler(loaded, dtype: str, batch_size: int):
    """A make_sampler for evaluate_checkpoint: casts `loaded` to `dtype` in place and samples with it."""
    def make():
        from premem.engine.models import DTYPES
        from premem.engine.sampling import TransformersSampler

        loaded.model.to(DTYPES[dtype])
        loaded.dtype = DTYPES[dtype]
        return TransformersSampler(loaded, batch_size=batch_size)

    return make


def _earlier_train_results(store: Store, job_ids: list[str]) -> list[dict[str, tuple[int, float | None]]]:
    """Per earlier evaluate job (in the order given): train example id -> (n_correct, nll)."""
    return [{ex: (correct, nll) for ex, (_, correct, nll) in rows.items()}
            for rows in dependency_train_rows(store, job_ids)]


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else None


def run_perturb(job: Job, store: Store, progress: Progress) -> dict:
    """Sample the job's checkpoint on every evaluated train prompt with the preamble appended after the answer
    cue (the original prompt when the preamble is empty); grade only the continuation. Per-example rows."""
    from premem.data.answers import grade
    from premem.data.format import prompt_of
    from premem.engine.models import load_model, with_dtype
    from premem.engine.sampling import TransformersSampler

    set_job_threads(job)
    model_spec, ds = job_sections(job)
    s, sampling = job.settings, job.settings.sampling
    t0 = time.time()
    loaded = load_model(store.artifact(job.dep("checkpoint")), device=job_device(job), dtype=model_spec.dtype,
                        trust_remote_code=model_spec.trust_remote_code)
    train = evaluated_train(job, ds, sampling["train_examples"])
    prompts = [prompt_of(ex.question) + s.preamble for ex in train]
    dtype = job_sampling_dtype(sampling, job, progress)
    sampler = TransformersSampler(with_dtype(loaded, dtype), batch_size=sampling["batch_size"])
    done = sampler.sample(prompts, sampler_params(sampling, s.samples, int(job.id[:8], 16)), progress=progress)
    rows = []
    for ex, comps in zip(train, done):
        correct, unparseable = grade(comps, ex.answer, getattr(ex, "answer_format", "gsm8k"))
        rows.append({"split": "train", "example_id": ex.id, "n_samples": len(comps), "n_correct": correct,
                     "n_unparseable": unparseable, "samples": list(comps[:2])})
    acc = _mean([r["n_correct"] / r["n_samples"] for r in rows if r["n_samples"]])
    return {"preamble": s.preamble, "train_acc": acc, "n_train": len(train), "seconds": time.time() - t0,
            "sampled_tokens": sampler.tokens_generated, "sampling_dtype": dtype or model_spec.dtype,
            "_examples": rows}


def run_collect(job: Job, store: Store, progress: Progress) -> dict:
    """One curation round's new examples (premem.jobs.curation.collect)."""
    from premem.jobs.curation import collect

    return collect(job, store, progress)


def run_score(job: Job, store: Store, progress: Progress) -> dict:
    """IFD scores of the curated dataset's originals (premem.jobs.curation.score_ifd)."""
    from premem.jobs.curation import score_ifd

    return score_ifd(job, store, progress)


RUNNERS = {"pretrain": run_pretrain, "train": run_train_epoch, "evaluate": run_evaluate, "measure": run_measure,
           "perturb": run_perturb, "collect": run_collect, "score": run_score}
require_every_kind(RUNNERS, "premem.jobs.runners.RUNNERS")


class StoreUnreachable(RuntimeError):
    """The store folder is not there on the node running the job (a shared mount missing on that node)."""


def execute(job: Job, store_root: str, progress: Progress, expected: dict[str, dict] | None = None) -> dict:
    """Run `job` and return its result dict (per-example rows, if any, under '_examples', its artifact's
    checksums under store.CHECKSUM_KEY). `expected`: dependency id -> the checksums recorded with it; each
    such artifact is verified before the job starts (store.CorruptArtifact if it does not match)."""
    from premem.store import CHECKSUM_KEY, artifact_checksums

    store = Store(Path(store_root))
    if not store.db_path.is_file():
        import socket

        raise StoreUnreachable(f"the store {store_root} is not reachable on node {socket.gethostname()}: mount the "
                               "shared file system at the same path on every node")
    for dep, sums in (expected or {}).items():
        store.verify_artifact(dep, sums)
    result = RUNNERS[job.kind](job, store, progress)
    folder = store.artifact(job.id)
    if "diverged" not in result and folder.is_dir():
        result[CHECKSUM_KEY] = artifact_checksums(folder)
    return result
