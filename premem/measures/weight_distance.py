"""Distance from initialization: the sum over parameters of (theta - theta_base)^2 (no square root), the base
being the model the run started from."""
from __future__ import annotations

from pydantic import Field

from premem.errors import UserError
from premem.measures.base import Checkpoint, Measure, MeasureJob, Sizes
from premem.spec.base import Strict


class WeightDistance(Strict):
    """Distance from initialization: sum over parameters of (theta - theta_base)^2, no square root."""

    exclude_embeddings: bool = Field(True, description="Leave out the input embedding and output layers (as "
                                     "the authors did).")


def plan(config: dict, at: Checkpoint) -> MeasureJob:
    # the distance to the run's base: a pretrain job's model (a dependency), or the hub model named in `model`
    return MeasureJob(at.without_data, config, {"checkpoint": at.train} | ({"base": at.base} if at.base else {}))


def run(ctx) -> dict:
    from premem.measures.numerics import weight_distance

    try:
        out = weight_distance(ctx.checkpoint().model, ctx.base_model().model, ctx.config["exclude_embeddings"])
    except ValueError as e:
        raise UserError(f"weight distance: {e}") from None
    return {"value": out["distance"], **out}


def work(config: dict, sizes: Sizes) -> dict:
    return {"loads": 2, "authors_loads": 2}


MEASURE = Measure(
    name="weight_distance", settings=WeightDistance, description="Distance from initialization; {} for defaults.",
    label="Distance from initialization", axis="Σ (θ − θ₀)²", plan=plan, run=run, work=work, dumped_when_off=True)
