"""The settings a train job's identity is made of, shared by the grid's runs (premem.plan.build) and curation's
rounds (premem.plan.curation): a (model, dataset) pair's sections as hashed (`Pair`, `Pairs`), a run's recipe as
hashed (`hashed_training`: training.precision only for a non-float32 model), one epoch's train-job settings
(`train_settings`), and the scoring dtype an evaluate job names (`scoring_dtype`, likewise).

What goes into these dicts is hashed into job ids (premem.plan.job.content_hash), so any change here changes
stored studies' ids: tests/test_job_ids.py pins them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from premem.data.loaders import dataset_fingerprint
from premem.engine.hf import model_fingerprint
from premem.plan.job import section_content
from premem.plan.job_settings import TrainSettings

if TYPE_CHECKING:  # annotations only
    from premem.spec.runs import Run
    from premem.spec.schema import Spec


class Pair:
    """What every job of one (model, dataset) pair shares, computed once: the sections as hashed (plain data),
    the data files' fingerprints, the pair's own training recipe and its dataset's evaluation settings. Jobs of
    the pair share these dicts (a job's settings are read-only), so planning costs the same per job whatever the
    sections hold."""

    def __init__(self, spec: Spec, model, ds, overrides: dict | None = None):
        self.model, self.dataset = model, ds
        self.model_content = section_content(model)
        self.dataset_content = section_content(ds)
        # training never sees the test split, so its size is not part of a training job's identity
        self.train_data = {k: v for k, v in self.dataset_content.items() if k != "test_size"}
        self.files = dataset_fingerprint(ds)  # local files: their content, not just their path
        self.train_files = dataset_fingerprint(ds, splits=("train",))
        matching = None
        if overrides is not None:  # Training.overrides_by_pair: the pair's overrides, in order
            keys = ((None, None), (model.name, None), (None, ds.name), (model.name, ds.name))
            matching = [spec.training.overrides[i] for i in sorted(i for k in keys for i in overrides.get(k, ()))]
        recipe = spec.training.for_run(model.name, ds.name, matching)  # training.overrides resolved
        self.training = hashed_training(recipe, model)
        self.batch_size = recipe.batch_size
        # evaluation.overrides resolved for this dataset; a dataset no override names dumps exactly as a spec
        # without overrides. skip_settled is hashed only when on (premem.plan.build adds what it changes), so turning
        # it off leaves every evaluation's id as it was
        self.evaluation = spec.evaluation.for_dataset(ds.name)
        self.evaluation_content = hashed_evaluation(self.evaluation)


def hashed_evaluation(evaluation) -> dict:
    """A dataset's evaluation settings (overrides resolved) as an evaluate job hashes them: without
    skip_settled (premem.plan.build hashes what it changes, only when on) and scoring_dtype (hashed beside the section
    as `scoring_dtype`'s value, for non-float32 models only)."""
    return evaluation.model_dump(mode="json", exclude={"skip_settled", "scoring_dtype"})


def scoring_dtype(spec: Spec, model) -> str | None:
    """The dtype an evaluate job scores target perplexity in, as its settings name it: "float32" or the model's
    dtype (evaluation.scoring_dtype) for a model whose dtype is not float32; None (not hashed) for a float32 model
    (it scores in float32 either way, so its ids are those of studies made before the option) and under
    evaluation.scoring vllm (which scores in the model's dtype)."""
    if model.dtype == "float32" or spec.evaluation.scoring != "transformers":
        return None
    return "float32" if spec.evaluation.scoring_dtype == "float32" else model.dtype


def hashed_training(recipe, model) -> dict:
    """A run's training recipe (spec.Training, overrides resolved) as its train jobs hash it: fixed_step_epochs
    left out (it only chooses a run's epochs, which are hashed themselves), and `precision` in only for a model
    whose dtype is not float32 (a float32 model trains the same under mixed and pure, so its ids are those of
    studies made before the option existed; a bfloat16/float16 model's recipe always names it)."""
    out = recipe.model_dump(mode="json", exclude={"fixed_step_epochs"})
    out.pop("precision", None)
    if model.dtype != "float32":
        out["precision"] = recipe.precision
    return out


class Pairs:
    """The Pair of each (model, dataset) of a spec, made on first use."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.models = {m.name: m for m in reversed(spec.models)}  # the first of a name wins, as Spec.model
        self.datasets = {d.name: d for d in reversed(spec.datasets)}
        self.overrides = spec.training.overrides_by_pair()
        self._pairs: dict[tuple[str, str], Pair] = {}

    def of(self, run: Run) -> Pair:
        """The pair `run` trains."""
        key = (run.model, run.dataset)
        if key not in self._pairs:
            self._pairs[key] = Pair(self.spec, self.models[run.model], self.datasets[run.dataset], self.overrides)
        return self._pairs[key]


def train_settings(spec: Spec, model, ds, training: dict, learning_rate: float, epochs: int, fraction: float,
                   epoch: int, pair: Pair | None = None, seed: int | None = None) -> TrainSettings:
    """The settings of one epoch's train job (what its checkpoint depends on besides its dependencies); `pair`
    holds what they share with the pair's other jobs (made here when not given). `seed`: the run's (grid.seeds,
    a run's seed, curation.seeds); None = the spec's. It is hashed under the one key "seed", so a run whose seed
    is the spec's has the id it had before seeds were an axis."""
    pair = pair or Pair(spec, model, ds)
    # a local model folder: its content (later epochs chain on)
    fingerprint = model_fingerprint(model.hf) if epoch == 1 and model.hf is not None else {}
    return TrainSettings(model=pair.model_content, dataset=pair.train_data, training=training,
                         learning_rate=learning_rate, epochs=epochs, dataset_fraction=fraction, epoch=epoch,
                         seed=spec.seed if seed is None else seed, device=spec.device,
                         data_files=pair.train_files or None, model_sha256=fingerprint.get("model_sha256"))
