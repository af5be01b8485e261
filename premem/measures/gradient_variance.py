"""Gradient variance at a checkpoint (the paper's Appendix B): the gradients of M minibatches of the run's first
M x B training examples, the per-parameter variance across the M, averaged over parameters."""
from __future__ import annotations

from pydantic import Field

from premem.errors import UserError
from premem.measures.base import Checkpoint, Measure, MeasureJob, Sizes
from premem.spec.base import Strict


class GradientVariance(Strict):
    """Gradient variance at a checkpoint (Appendix B): gradients of M minibatches of the run's first M x B
    training examples, per-parameter variance across the M, mean over parameters."""

    minibatches: int = Field(5, ge=2, le=1000, description="Minibatches M (the paper: 5).")
    batch_size: int | None = Field(None, ge=1, le=100_000, description="Examples per minibatch B; null = the "
                                   "training batch size.")
    micro_batch: int = Field(8, ge=1, le=100_000, description="Examples per forward/backward pass while a "
                             "minibatch's gradient is accumulated (bounds memory; the result is the same).")


def plan(config: dict, at: Checkpoint) -> MeasureJob:
    # B defaults to the batch size the run trains with (training.overrides included)
    return MeasureJob(at.with_data, config | {"batch_size": config["batch_size"] or at.batch_size}, {"checkpoint": at.train})


def run(ctx) -> dict:
    from premem.engine.train import encode_examples
    from premem.measures.numerics import gradient_minibatches, minibatch_gradients, streamed_variance

    conf, loaded = ctx.config, ctx.checkpoint()
    seqs = encode_examples(loaded, ctx.train_examples())
    try:
        batches = gradient_minibatches(seqs, conf["minibatches"], conf["batch_size"])
    except ValueError as e:
        raise UserError(str(e)) from None
    out = streamed_variance(minibatch_gradients(loaded.model, batches, loaded.codec.pad_id, loaded.device,
                                                conf["micro_batch"], ctx.progress))
    return {"value": out["variance"], **out}


def work(config: dict, sizes: Sizes) -> dict:
    trained = min(sizes.run_examples, config["minibatches"] * config["batch_size"]) * sizes.example_tokens
    return {"trained": trained, "loads": 1, "authors_loads": 1}


MEASURE = Measure(
    name="gradient_variance", settings=GradientVariance, description="Gradient variance; {} for defaults.",
    label="Gradient variance", axis="gradient variance (mean over parameters)", plan=plan, run=run, work=work,
    dumped_when_off=True)
