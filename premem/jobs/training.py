"""What one epoch of a run's training starts from and what it returns: `prepare_training` (the model loaded,
adapters added, the examples encoded, the recipe and start step) and the train job's result
(`train_result`, `diverged_result`).

Both ways of training an epoch use them: in this process (premem.jobs.runners.run_train_epoch) and sharded over several
processes (premem.jobs.sharded), which is why they live below both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from premem.jobs.context import UserError, dataset_splits, job_sections, run_examples
from premem.plan.job import Job
from premem.plan.job_settings import TrainSettings
from premem.store import Store


@dataclass
class TrainingSetup:
    """What one epoch's training starts from: the model (loaded, adapters added), the encoded examples, the
    recipe and the step the epoch starts at; `source` is where the model came from, `resumes` whether an
    optimizer state is to be read there, `lora_base` what a LoRA checkpoint records as its base."""

    loaded: object
    seqs: list
    recipe: object
    start_step: int
    source: object
    resumes: bool
    lora_base: dict | None


def prepare_training(job: Job, store: Store, device: str) -> TrainingSetup:
    """Load the model a train job starts from onto `device` and encode its examples (UserError when the spec or
    the data is at fault)."""
    from premem.engine.models import load_model, max_length_of
    from premem.engine.train import TooLong, encode_examples

    model_spec, ds = job_sections(job)
    s = job.settings
    lora = s.training.get("lora")
    start = job.dep("start")  # the previous epoch's checkpoint, or pretraining's (None: a hub model's first epoch)
    if start:
        source, revision = store.artifact(start), None
    elif model_spec.hf is not None:
        source, revision = model_spec.hf, model_spec.revision
    else:
        raise UserError("a built-in model needs a `pretrain` section (nothing to finetune from)")
    mixed = autocast_dtype(s) is not None
    # mixed precision: full finetuning keeps float32 master weights (a checkpoint of an earlier epoch holds
    # them); LoRA keeps the frozen base in the model's dtype and only its adapters in float32
    dtype = "float32" if mixed and lora is None else model_spec.dtype
    try:
        loaded = load_model(source, device=device, dtype=dtype,
                            trust_remote_code=model_spec.trust_remote_code, revision=revision,
                            trainable_adapter=True)
    except (OSError, ValueError) as e:  # no such hub id or folder, gated repo, remote code refused: the spec's
        raise UserError(f"model {model_spec.hf or source}: {e}") from None
    base = None
    if lora is not None:
        from premem.engine.lora import BASE_FILE, add_adapters, is_adapter

        if s.epoch == 1 or not is_adapter(source):
            loaded.model = add_adapters(loaded.model, lora, seed=s.seed)
            base = {"hf": model_spec.hf, "revision": model_spec.revision} if model_spec.hf is not None \
                else {"artifact": start}
        else:
            import json

            base = json.loads((Path(source) / BASE_FILE).read_text())
        if mixed:
            for p in loaded.model.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
    examples = _training_examples(job, ds, store)
    try:
        seqs = encode_examples(loaded, examples, max_length=max_length_of(loaded, model_spec))
    except (TooLong, ValueError) as e:
        raise UserError(str(e)) from None
    recipe, per_epoch = _recipe(s, len(seqs))
    return TrainingSetup(loaded, seqs, recipe, per_epoch * (s.epoch - 1), source,
                         bool(start) and s.epoch > 1, base)


def _training_examples(job: Job, ds, store: Store) -> list:
    """What a train job trains on: the run's subset of the train split; for a curation round, the originals
    plus every example its collect job gathered; for the IFD scoring model, the split it names."""
    from premem.data.curate import read_collected

    split = job.settings.train_split
    if split is not None:
        return list(getattr(dataset_splits(ds), split))
    examples = run_examples(job, ds)
    collected = job.settings.collected
    if collected is not None:
        examples += read_collected(store.artifact(collected))
    return examples


def autocast_dtype(s: TrainSettings) -> str | None:
    """The dtype a train job's forward and backward passes autocast to (mixed precision: the model's bfloat16 or
    float16), or None when they run in the weights' own dtype (a float32 model, or training.precision pure).
    `s`: the job's settings; a float32 model's recipe names no precision (plan_settings.hashed_training)."""
    dtype = s.model.get("dtype", "float32")
    if dtype == "float32" or s.training.get("precision", "mixed") != "mixed":
        return None
    return dtype


def _recipe(s: TrainSettings, n_examples: int):
    """The run's optimisation recipe (train.Recipe) and its optimizer steps per epoch."""
    from premem.engine.train import Recipe, steps_per_epoch

    t = s.training
    per_epoch = steps_per_epoch(n_examples, t["batch_size"])
    total = per_epoch * s.epochs
    warmup = t["warmup_steps"] if t["warmup_steps"] is not None else \
        int(round((t["warmup_fraction"] or 0.0) * total))
    recipe = Recipe(learning_rate=s.learning_rate, total_steps=total, batch_size=t["batch_size"],
                    optimizer=t["optimizer"], weight_decay=t["weight_decay"], betas=tuple(t["betas"]),
                    schedule=t["schedule"], warmup_steps=warmup, max_grad_norm=t["max_grad_norm"],
                    micro_batch_size=t.get("micro_batch_size"), autocast=autocast_dtype(s))
    return recipe, per_epoch


def diverged_result(s: TrainSettings, e) -> dict:
    """A train job's result when its run diverged (train.Diverged `e`)."""
    return {"diverged": {"epoch": s.epoch, "step": e.step, "loss": str(e.loss)}}


def train_result(s: TrainSettings, out: dict, n_examples: int) -> dict:
    """A train job's result from train_epoch's output `out`."""
    losses = out["losses"]
    return {"epoch": s.epoch, "steps": out["steps"], "end_step": out["end_step"], "tokens": out["tokens"],
            "seconds": out["seconds"], "mean_loss": sum(losses) / len(losses), "losses": downsample(losses),
            "examples": n_examples} | ({"skipped_steps": out["skipped_steps"]} if "skipped_steps" in out else {})


def downsample(xs: list[float], n: int = 200) -> list[float]:
    """At most `n` evenly spaced values of a loss curve (for the report)."""
    if len(xs) <= n:
        return xs
    return [xs[int(i * (len(xs) - 1) / (n - 1))] for i in range(n)]
