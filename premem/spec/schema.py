"""The study spec's schema: one pydantic model per section (`Spec` at the top), each field with its default and
the description `premem schema` and docs/SPEC.md show, and its JSON Schema (`json_schema`).

Each model checks its own fields; checks across sections are premem.spec.checks', and reading a file into a
`Spec` with every problem at its line is premem.spec.load's.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, create_model, field_validator, model_serializer, model_validator

from premem.measures import MEASURES
from premem.registry import did_you_mean
from premem.spec.base import PositiveFloat, RunSelector, Strict

BUILTIN_MODELS = ("tiny",)  # architectures premem can build from nothing (premem/engine/models.py)
BUILTIN_DATASETS = ("arithmetic",)  # tasks premem can generate (data/)


# --------------------------------------------------------------------------------------------- models
class TinyArchitecture(Strict):
    """Size of the built-in tiny Llama-architecture model."""

    layers: int = Field(4, ge=1, le=48, description="Number of transformer blocks.")
    hidden: int = Field(128, ge=8, le=8192, description="Width of the residual stream.")
    heads: int = Field(4, ge=1, le=128, description="Attention heads; must divide `hidden`.")
    mlp: int = Field(512, ge=8, le=32768, description="Width of the feed-forward layer.")
    max_length: int = Field(256, ge=16, le=65536, description="Longest sequence (prompt + target) in tokens.")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        return self


class Pretrain(Strict):
    """Pretraining of a built-in model on a broad corpus of its dataset, so it starts with partial skill."""

    dataset: str = Field(..., description="Name of a dataset in `datasets` whose generator provides the corpus.")
    examples: int = Field(..., ge=1, le=50_000_000, description="Size of the pretraining corpus, in examples.")
    epochs: int = Field(1, ge=1, le=1000, description="Passes over the corpus.")
    learning_rate: PositiveFloat = Field(3e-3, description="Peak learning rate (AdamW, warmup then cosine decay).")
    batch_size: int = Field(32, ge=1, le=65536, description="Packed blocks of `block` tokens per step.")
    block: int = Field(128, ge=8, le=65536, description="Length of the packed blocks, in tokens (at most size.max_length).")
    learn_questions: bool = Field(
        False, description="Also learn to model the questions. Off: only solutions carry loss, so a small model "
        "spends its capacity on solving rather than on the random names and numbers of questions.")
    warmup_steps: int = Field(100, ge=0, description="Linear warmup steps.")
    weight_decay: float = Field(0.01, ge=0, le=1, description="AdamW weight decay.")
    difficulty_mix: list[float] | None = Field(
        None,
        description="Share of problems by number of steps (1, 2, ...) in the corpus; "
        "an easy-skewed mix learns faster. Default: the generator's own.",
    )


def _hf_source(v: str | None) -> str | None:
    """A Hugging Face model: a hub id (`org/name`) or a local folder. A value that names an existing path, or
    that looks like one (starts with `.`, `/` or `~`), is a local folder: it must exist and is stored absolute
    (so Ray workers elsewhere read the same folder); anything else is a hub id, resolved where the job runs."""
    if v is None:
        return None
    v = v.strip()
    if not v:
        raise ValueError("empty: give a hub id such as meta-llama/Meta-Llama-3-8B or a local folder")
    p = Path(os.path.expanduser(v))
    if p.exists() or v.startswith((".", "/", "~")):
        full = Path(os.path.abspath(p))
        if not full.is_dir():
            where = "" if p.is_absolute() else f" (relative paths are relative to the working directory, {os.getcwd()})"
            raise ValueError(f"no such model folder: {v}{where}" if not full.exists() else f"{v} is not a folder")
        if not (full / "config.json").exists():
            raise ValueError(f"{v} has no config.json: not a folder written by save_pretrained")
        return str(full)
    if v.count("/") > 1 or " " in v:
        raise ValueError(f"{v!r} is neither an existing folder nor a hub id of the form org/name")
    return v


class LoraSpec(Strict):
    """LoRA (peft): train low-rank adapters on frozen base weights instead of every weight."""

    r: int = Field(16, ge=1, le=4096, description="Rank of the adapters.")
    alpha: PositiveFloat = Field(32, description="Scaling numerator (the update is scaled by alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: Literal["all-linear"] | list[Annotated[str, Field(min_length=1)]] = Field(
        "all-linear", min_length=1, description="Modules that get adapters: `all-linear` (every linear layer but "
        "the output head) or names such as [q_proj, v_proj].")


class ModelSpec(Strict):
    """One model of the study: a built-in architecture (trained from nothing) or a Hugging Face causal LM."""

    name: str = Field(..., min_length=1, description="Label used in run names, plots and `runs` selectors.")
    builtin: str | None = Field(None, description=f"A built-in architecture: one of {', '.join(BUILTIN_MODELS)}.")
    hf: Annotated[str | None, AfterValidator(_hf_source)] = Field(
        None, description="A Hugging Face causal LM: a hub id (e.g. meta-llama/Meta-Llama-3-8B) or a local folder "
        "written by save_pretrained, loaded with AutoModelForCausalLM / AutoTokenizer.from_pretrained.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) of an `hf` model; null = "
                                 "latest. Pin it for reproducible studies: job ids cannot see hub updates.")
    max_length: int | None = Field(None, ge=16, le=1_048_576, description="Longest training sequence (prompt + "
                                   "target) of an `hf` model, in tokens; null = the model's max_position_embeddings. "
                                   "A longer example is an error, never cut.")
    size: TinyArchitecture = Field(default_factory=TinyArchitecture, description="Size of a built-in model.")
    pretrain: Pretrain | None = Field(None, description="Pretraining stage for a built-in model.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights' dtype while training "
                                                             "and scoring (bfloat16 for 7-9B models on GPUs).")
    trust_remote_code: bool = Field(False, description="Allow a hub model's own Python code to run (off by default).")

    @field_validator("builtin")
    @classmethod
    def _known_builtin(cls, v):
        if v is not None and v not in BUILTIN_MODELS:
            raise ValueError(f"unknown built-in model {v!r}{did_you_mean(v, BUILTIN_MODELS)}; known: {', '.join(BUILTIN_MODELS)}")
        return v

    @model_validator(mode="after")
    def _block_fits(self):
        if self.pretrain is not None and self.pretrain.block > self.size.max_length:
            raise ValueError(f"pretrain.block ({self.pretrain.block}) exceeds size.max_length ({self.size.max_length})")
        return self

    @model_validator(mode="after")
    def _one_source(self):
        if (self.builtin is None) == (self.hf is None):
            raise ValueError("give exactly one of `builtin` (a built-in architecture) or `hf` (a hub id or local path)")
        if self.hf is not None:
            if self.pretrain is not None:
                raise ValueError("`pretrain` is only for built-in models: a Hugging Face model starts from its own "
                                 "weights")
            if "size" in self.model_fields_set:
                raise ValueError("`size` is only for built-in models (a Hugging Face model has its own config)")
        else:
            stray = [k for k in ("revision", "max_length") if getattr(self, k) is not None]
            if stray:
                raise ValueError(f"{', '.join(stray)}: only for a Hugging Face (`hf`) model; a built-in model's "
                                 "length is size.max_length")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # Only what applies to the source: a built-in model dumps exactly as it did before `hf` models existed,
        # so the content hashes (job ids) of existing studies do not change.
        d = handler(self)
        drop = ("revision", "max_length") if self.builtin is not None else ("builtin", "size", "pretrain")
        for k in drop:
            d.pop(k, None)
        return d


# ------------------------------------------------------------------------------------------- datasets
DATA_FILE_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet", ".arrow")
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus")
DEFAULT_MATH_HUB = "EleutherAI/hendrycks_math"  # the original hendrycks/competition_math is gone from the Hub


def _data_file(v: str | None) -> str | None:
    """A local data file: must exist and have a known suffix; relative paths resolve against the working
    directory and are stored absolute (so jobs running elsewhere, e.g. Ray workers, read the same file)."""
    if v is None:
        return None
    p = Path(os.path.expanduser(v))
    if not p.name.lower().endswith(DATA_FILE_SUFFIXES):
        raise ValueError(f"{v!r}: unknown file type; use one of {', '.join(DATA_FILE_SUFFIXES)}")
    full = Path(os.path.abspath(p))
    if not full.exists():
        where = "" if p.is_absolute() else f" (relative paths are relative to the working directory, {os.getcwd()})"
        raise ValueError(f"no such file: {v}{where}")
    if not full.is_file():
        raise ValueError(f"{v} is not a file")
    try:  # planning hashes its content: a file that cannot be read must be refused here, not as a traceback there
        os.close(os.open(full, os.O_RDONLY))
    except OSError as e:
        raise ValueError(f"cannot read {v}: {e.strerror or e}") from None
    return str(full)


DataFile = Annotated[str | None, AfterValidator(_data_file)]


class _FilesOrHub(Strict):
    """Shared rule of the hub-backed sources: local files (both of them) replace the hub."""

    hub_keys: ClassVar[tuple[str, ...]] = ()  # the settings that only matter when loading from the hub

    @model_validator(mode="after")
    def _files_or_hub(self):
        files = (self.train_file is not None, self.test_file is not None)
        if any(files) and not all(files):
            raise ValueError("give both train_file and test_file (or neither, to load from the hub)")
        hub_keys = sorted(self.model_fields_set & set(self.hub_keys))
        if all(files) and hub_keys:
            raise ValueError(f"give local files or hub settings ({', '.join(hub_keys)}), not both")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # only what is used: the files, or the hub settings (this also lets a dump validate again)
        d = handler(self)
        drop = self.hub_keys if self.train_file is not None else ("train_file", "test_file")
        for k in drop:
            d.pop(k, None)
        return d


class Gsm8kSource(_FilesOrHub):
    """GSM8K: rows with `question` and `answer` (a step-by-step solution ending in `#### N`), from the Hub or
    from local files with the same columns."""

    hub_keys: ClassVar[tuple[str, ...]] = ("hub", "config", "revision")
    hub: str = Field("openai/gsm8k", min_length=1, description="Hub dataset id (or a local dataset folder) for "
                     "`datasets.load_dataset`; used unless train_file and test_file are given.")
    config: str | None = Field("main", description="Hub configuration (`main` or `socratic` for openai/gsm8k).")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to pin; null = latest. "
                                 "Pin it for reproducible studies: job ids cannot see hub updates.")
    train_file: DataFile = Field(None, description="Local train split (.jsonl, .json, .parquet or .arrow, "
                                 "optionally .gz for JSON) with `question` and `answer` columns, instead of the hub.")
    test_file: DataFile = Field(None, description="Local test split, same format as train_file.")


class MathSource(_FilesOrHub):
    """MATH (Hendrycks et al.): rows with `problem`, `solution` (final answer in \\boxed{}), `level`
    (`Level 1`..`Level 5`) and `type`, from the Hub or from local files with the same columns."""

    hub_keys: ClassVar[tuple[str, ...]] = ("hub", "configs", "revision")
    hub: str = Field(DEFAULT_MATH_HUB, min_length=1, description="Hub dataset id (or a local dataset folder). "
                     f"Default {DEFAULT_MATH_HUB}: the mirror lm-evaluation-harness uses since "
                     "hendrycks/competition_math left the Hub; the original 7,500/5,000 split in one "
                     "configuration per subject, as Parquet (no loading script).")
    configs: tuple[str, ...] | None = Field(
        MATH_SUBJECTS, min_length=1, description="Hub configurations to load and concatenate, in this order (the "
        "default: the seven subjects of EleutherAI/hendrycks_math). null = the hub dataset's default "
        "configuration, for mirrors that hold every subject in one.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to pin; null = latest.")
    levels: tuple[Annotated[int, Field(ge=1, le=5)], ...] | None = Field(
        None, min_length=1, description="Keep only these difficulty levels, e.g. [1, 2, 3]; null = all (rows "
        "without a level 1-5 are then kept with difficulty 0).")
    train_file: DataFile = Field(None, description="Local train split (.jsonl, .json, .parquet or .arrow) with "
                                 "`problem`, `solution`, `level` and `type` columns, instead of the hub.")
    test_file: DataFile = Field(None, description="Local test split, same format as train_file.")


class JsonlSource(Strict):
    """Your own reasoning data: local files of question/solution rows with configurable column names."""

    train_file: DataFile = Field(..., description="Train split: JSONL (one object a line; .json, .parquet and "
                                 ".arrow also work).")
    test_file: DataFile = Field(..., description="Test split, same format.")
    question_field: str = Field("question", min_length=1, description="Column holding the question (the prompt).")
    solution_field: str = Field("answer", min_length=1, description="Column holding the solution trace the model "
                                "is trained on; it must end with the final answer in `answer_format`.")
    answer_field: str | None = Field(None, description="Column holding the gold final answer; null = extract it "
                                     "from the solution with `answer_format`.")
    answer_format: Literal["gsm8k", "boxed"] = Field(
        "gsm8k", description="How final answers are written and graded: `gsm8k` (the text after `####`, exact "
        "match after removing commas and `$`) or `boxed` (the last \\boxed{...}, MATH-style equivalence).")
    difficulty_field: str | None = Field(None, description="Integer column used as the example's difficulty; "
                                         "null = the number of solution lines before the final answer.")
    on_unparseable: Literal["error", "skip"] = Field(
        "error", description="A row whose solution has no final answer in `answer_format` (or, with "
        "answer_field, no gold answer): `error` stops with the row named; `skip` leaves it out and counts it.")


DATASET_SOURCES = ("builtin", "gsm8k", "math", "jsonl")
_BUILTIN_ONLY = ("max_steps", "max_value", "max_operand")


class DatasetSpec(Strict):
    """One dataset: train and test splits of reasoning problems with a final answer to grade. Exactly one
    source: `builtin` (a generated task), `gsm8k`, `math` or `jsonl` (your own files)."""

    name: str = Field(..., min_length=1, description="Label used in run names and `runs` selectors.")
    builtin: str | None = Field(None, description=f"A built-in task: one of {', '.join(BUILTIN_DATASETS)}.")
    gsm8k: Gsm8kSource | None = Field(None, description="GSM8K from the Hub or local files (`gsm8k: {}` for "
                                      "openai/gsm8k, config main).")
    math: MathSource | None = Field(None, description="MATH from the Hub or local files, optionally some levels "
                                    f"only (`math: {{}}` for {DEFAULT_MATH_HUB}, every level).")
    jsonl: JsonlSource | None = Field(None, description="Your own data: local files with configurable columns.")
    train_size: int | None = Field(None, ge=1, le=10_000_000, description="Training examples (the full-data runs "
                                   "use all). Required for a built-in task; for the other sources a cap "
                                   "(null = every row; a cap draws a seeded subset, kept in file order).")
    test_size: int | None = Field(None, ge=1, le=10_000_000, description="Held-out test examples. Required for "
                                  "a built-in task; for the other sources a cap (null = every row).")
    seed: int = Field(0, description="Seed of the task generator (fixes which problems are drawn); for the other "
                      "sources, of the subset a train_size/test_size cap draws.")
    max_steps: int = Field(4, ge=1, le=8, description="Most reasoning steps in a built-in problem.")
    max_value: int = Field(99, ge=10, le=100_000, description="Largest value any quantity of a built-in problem reaches.")
    max_operand: int = Field(20, ge=2, le=100_000, description="Largest start value or added/removed amount.")

    @field_validator("builtin")
    @classmethod
    def _known_builtin(cls, v):
        if v is not None and v not in BUILTIN_DATASETS:
            raise ValueError(f"unknown built-in dataset {v!r}{did_you_mean(v, BUILTIN_DATASETS)}; known: {', '.join(BUILTIN_DATASETS)}")
        return v

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in DATASET_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            empty = [k for k in DATASET_SOURCES if k in self.model_fields_set and getattr(self, k) is None]
            hint = f"; `{empty[0]}:` is empty: write `{empty[0]}: {{}}` for its defaults" if empty and not given else ""
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one source: `builtin`, `gsm8k`, `math` or `jsonl`{found}{hint}")
        if self.builtin is not None:
            missing = [k for k in ("train_size", "test_size") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"a built-in task needs {' and '.join(missing)} (how many examples to generate)")
        else:
            stray = [k for k in _BUILTIN_ONLY if k in self.model_fields_set]
            if stray:
                raise ValueError(f"{', '.join(stray)}: only for a built-in task, not for `{given[0]}`")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # Only the chosen source and the fields that apply to it: a built-in dataset dumps exactly as it did
        # before other sources existed, so the content hashes (job ids) of existing studies do not change.
        d = handler(self)
        for k in DATASET_SOURCES:
            if d.get(k) is None:
                d.pop(k, None)
        if self.builtin is None:
            for k in _BUILTIN_ONLY:
                d.pop(k, None)
        return d

    @property
    def source(self) -> str:
        """Which source: `builtin`, `gsm8k`, `math` or `jsonl`."""
        return next(k for k in DATASET_SOURCES if getattr(self, k) is not None)

    @property
    def loader(self) -> str:
        """Name of the dataset's loader in premem.data.loaders.DATASETS (the built-in task's name, or the source)."""
        return self.builtin if self.builtin is not None else self.source

    @property
    def answer_format(self) -> str:
        """How its final answers are written and graded: `gsm8k` (`####`) or `boxed`."""
        if self.math is not None:
            return "boxed"
        if self.jsonl is not None:
            return self.jsonl.answer_format
        return "gsm8k"


# ------------------------------------------------------------------------------------------- training
class TrainingOverride(Strict):
    """Fields of `training` that differ for runs of one model and/or dataset."""

    model: str | None = Field(None, description="Model name this applies to; null = every model.")
    dataset: str | None = Field(None, description="Dataset name this applies to; null = every dataset.")
    optimizer: Literal["adamw", "adam"] | None = Field(None, description="adamw or adam.")
    weight_decay: float | None = Field(None, ge=0, le=1, description="Weight decay.")
    betas: tuple[float, float] | None = Field(None, description="Adam betas.")
    schedule: Literal["linear", "cosine", "constant"] | None = Field(None, description="Decay after warmup.")
    warmup_steps: int | None = Field(None, ge=0, description="Warmup in optimizer steps.")
    warmup_fraction: float | None = Field(None, ge=0, lt=1, description="Warmup as a fraction of all steps.")
    batch_size: int | None = Field(None, ge=1, le=65536, description="Examples per optimizer step.")
    max_grad_norm: PositiveFloat | None = Field(None, description="Gradient clipping norm.")
    micro_batch_size: int | None = Field(None, ge=1, le=65536, description="Examples per forward/backward pass.")
    precision: Literal["mixed", "pure"] | None = Field(None, description="mixed or pure (see training.precision).")

    @model_validator(mode="after")
    def _one_warmup(self):
        if self.warmup_steps is not None and self.warmup_fraction is not None:
            raise ValueError("give warmup_steps or warmup_fraction, not both")
        if self.model is None and self.dataset is None:
            raise ValueError("name a `model` and/or a `dataset` (without either, change `training` itself)")
        return self


class Training(Strict):
    """The finetuning recipe shared by every run (the grid varies learning rate, epochs and data size)."""

    optimizer: Literal["adamw", "adam"] = Field("adamw", description="adamw (decoupled weight decay) or adam.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="Weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam betas.")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warmup.")
    warmup_steps: int | None = Field(None, ge=0, description="Warmup in optimizer steps (or use warmup_fraction).")
    warmup_fraction: float | None = Field(None, ge=0, lt=1, description="Warmup as a fraction of all steps.")
    batch_size: int = Field(16, ge=1, le=65536, description="Examples per optimizer step.")
    max_grad_norm: PositiveFloat | None = Field(1.0, description="Gradient clipping norm; null for none.")
    fixed_step_epochs: int | None = Field(
        None,
        ge=1,
        description="The fixed-step rule: a run on a fraction f < 1 of the data that names no epochs trains "
        "round(fixed_step_epochs / f) epochs, keeping the step count of that many full epochs.",
    )
    lora: LoraSpec | None = Field(
        None, description="Train LoRA adapters (peft) instead of every weight; null = full finetuning (the "
        "paper's choice). Checkpoints then hold the adapter, evaluated on the base model.")
    micro_batch_size: int | None = Field(
        None, ge=1, le=65536, description="Examples per forward/backward pass; a step accumulates the gradients "
        "of batch_size / micro_batch_size passes (the same update as one pass over the batch). null = the whole "
        "batch at once. 7-9B models on one GPU need a few examples per pass.")
    precision: Literal["mixed", "pure"] = Field(
        "mixed", description="How a model whose `dtype` is bfloat16 or float16 is trained. mixed (the paper's "
        "way, and the default): float32 master weights and float32 AdamW state, forward and backward passes under "
        "autocast to the model's dtype (float16 with a gradient scaler); checkpoints keep the float32 weights, "
        "evaluation reads them in the model's dtype; LoRA keeps its adapters in float32 on base weights in the "
        "model's dtype. pure: weights, gradients and optimizer state all in the model's dtype, which halves "
        "the memory of full finetuning but rounds away small updates (bfloat16 keeps 8 bits of mantissa: a "
        "5e-7 learning-rate step of a weight near 0.02 is lost). A float32 model trains the same either way.")
    shards: int = Field(
        1, ge=1, le=64, description="Processes a training job shards the model over with FSDP (weights, gradients "
        "and optimizer state split between them): one per GPU on cuda (ask resources.train.gpus for as many), one "
        "per CPU core on cpu. 1 = no sharding. A 7-9B model's full finetuning needs it: under mixed precision "
        "weights, gradients and AdamW state take 16 bytes a parameter (`premem plan` prints the memory per GPU).")
    overrides: list[TrainingOverride] = Field(
        default_factory=list, description="Recipes of particular models and datasets (the paper trains Llama3 "
        "and Gemma2 differently): each names a `model` and/or `dataset` and the fields it changes; the last "
        "matching entry wins over earlier ones and over this section.")

    # full finetuning without overrides dumps as before these options existed (a run's own recipe, for_run, is
    # what its jobs hash); precision matters only for a bfloat16/float16 model (premem.plan.settings)
    hash_neutral: ClassVar[dict[str, Any]] = {"lora": None, "micro_batch_size": None, "precision": "mixed",
                                              "shards": 1, "overrides": []}

    def for_run(self, model: str, dataset: str, matching: list[TrainingOverride] | None = None) -> "Training":
        """The recipe of runs of `model` on `dataset`: this section with every matching override applied.
        `matching`: those overrides, in order, when the caller has found them (see `overrides_by_pair`)."""
        if not self.overrides:
            return self
        if matching is None:
            matching = [o for o in self.overrides if o.model in (None, model) and o.dataset in (None, dataset)]
        fields: dict = {}
        for o in matching:
            fields.update({k: getattr(o, k) for k in o.model_fields_set if k not in ("model", "dataset")})
        if "warmup_steps" in fields and "warmup_fraction" not in fields:
            fields["warmup_fraction"] = None  # an override's warmup replaces the other kind of warmup
        if "warmup_fraction" in fields and "warmup_steps" not in fields:
            fields["warmup_steps"] = None
        return self.model_copy(update={**fields, "overrides": []})

    def overrides_by_pair(self) -> dict[tuple[str | None, str | None], list[int]]:
        """{(model or None, dataset or None): indexes of the overrides naming exactly that}, so the overrides of
        a (model, dataset) pair are four lookups rather than a scan of every override per pair."""
        out: dict[tuple[str | None, str | None], list[int]] = {}
        for i, o in enumerate(self.overrides):
            out.setdefault((o.model, o.dataset), []).append(i)
        return out

    @field_validator("betas")
    @classmethod
    def _betas(cls, v):
        if not all(0 <= b < 1 for b in v):
            raise ValueError("betas must lie in [0, 1)")
        return v

    @model_validator(mode="after")
    def _one_warmup(self):
        if self.warmup_steps is not None and self.warmup_fraction is not None:
            raise ValueError("give warmup_steps or warmup_fraction, not both")
        return self


class Grid(Strict):
    """Runs = models x datasets x learning rates x epochs x dataset fractions."""

    learning_rate: list[PositiveFloat] = Field(default_factory=list, description="Peak learning rates.")
    epochs: list[Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=list, description="Epochs per run.")
    dataset_fraction: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [1.0],
        description="Fractions of the training set; with `training.fixed_step_epochs`, fractions below 1 "
        "take their epochs from the fixed-step rule instead of the epochs list.",
    )
    seeds: list[int] | None = Field(
        None, min_length=1, description="Seeds to repeat every grid run with (data order, sampling, any random "
        "initialisation), each its own run named .../seed<s>; null = the spec's `seed` alone, names unchanged.")

    hash_neutral: ClassVar[dict[str, Any]] = {"seeds": None}  # as before seeds were an axis


class RunSpec(Strict):
    """One extra run that a grid cannot express (e.g. the paper's half-data 6-epoch run)."""

    learning_rate: PositiveFloat = Field(..., description="Peak learning rate.")
    epochs: int | None = Field(None, ge=1, le=1000, description="Epochs; default from the fixed-step rule.")
    dataset_fraction: float = Field(1.0, gt=0, le=1, description="Fraction of the training set.")
    model: str | None = Field(None, description="Model name; default every model.")
    dataset: str | None = Field(None, description="Dataset name; default every dataset.")
    seed: int | None = Field(None, description="Seed of this run (its name gains .../seed<s>); null = the spec's "
                             "`seed`.")

    hash_neutral: ClassVar[dict[str, Any]] = {"seed": None}  # as before seeds were an axis


# ----------------------------------------------------------------------------------------- evaluation
_NOT_NULL_EVAL = ("samples", "temperature", "top_p", "max_new_tokens", "stop", "batch_size")


class EvaluationOverride(Strict):
    """Sampling settings of `evaluation` that differ on one dataset (the authors sample MATH with top_p 1.0 and
    up to 1,024 tokens, GSM8K with top_p 0.95 and 512). A field left out keeps the section's value."""

    text_fields: ClassVar[frozenset[str]] = frozenset({"stop"})

    dataset: str = Field(..., min_length=1, description="Dataset name this applies to.")
    samples: int | None = Field(None, ge=1, le=1000, description="Samples per train query (k).")
    test_samples: int | None = Field(None, ge=1, le=1000, description="Samples per test query; null = `samples`.")
    temperature: float | None = Field(None, ge=0, le=10, description="Sampling temperature; 0 is greedy.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int | None = Field(None, ge=1, le=32768, description="Longest sampled continuation, in tokens.")
    stop: str | None = Field(None, min_length=1, description="Generation stops after this string.")
    train_examples: int | None = Field(None, ge=1, description="Train examples evaluated per checkpoint; null = "
                                       "all the run trained on.")
    test_examples: int | None = Field(None, ge=1, description="Test examples evaluated per checkpoint; null = all.")
    batch_size: int | None = Field(None, ge=1, le=1_000_000, description="Prompts per sampling batch.")

    @model_validator(mode="after")
    def _no_null_where_required(self):
        bad = [k for k in _NOT_NULL_EVAL if k in self.model_fields_set and getattr(self, k) is None]
        if bad:
            raise ValueError(f"{', '.join(bad)}: give a value (null is not one for this field), or leave it out to "
                             "keep the evaluation section's")
        return self


class Evaluation(Strict):
    """How every checkpoint is evaluated (the paper: k = 5 samples at temperature 0.8, top_p 0.95)."""

    text_fields: ClassVar[frozenset[str]] = frozenset({"stop"})

    samples: int = Field(5, ge=1, le=1000, description="Samples per query (k).")
    test_samples: int | None = Field(None, ge=1, le=1000, description="Samples per test query; null = `samples`. "
                                     "Test accuracy is a mean over examples, so it needs fewer per example.")
    temperature: float = Field(0.8, ge=0, le=10, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(512, ge=1, le=32768, description="Longest sampled continuation, in tokens.")
    stop: str = Field("\nDone.", min_length=1, description="Generation stops after this string.")
    train_examples: int | None = Field(None, ge=1, description="Train examples evaluated per checkpoint; null = all the run trained on.")
    test_examples: int | None = Field(None, ge=1, description="Test examples evaluated per checkpoint; null = all.")
    batch_size: int = Field(256, ge=1, le=1_000_000, description="Prompts per sampling batch (each with k samples).")
    sampler: Literal["transformers", "vllm", "auto"] = Field(
        "transformers", description="Sampling backend: `transformers` (premem's batched KV-cache sampler, CPU or "
        "GPU), `vllm` (a CUDA GPU and `pip install -e .[gpu]`; Hugging Face models only) or `auto` (vLLM where "
        "the job finds a GPU, vLLM installed and a Hugging Face model, else transformers; each evaluation "
        "records which it used).")
    scoring: Literal["transformers", "vllm"] = Field(
        "transformers", description="How target perplexity is computed: batched transformers forward passes, or "
        "vLLM's prompt logprobs (a CUDA GPU and vLLM; Hugging Face models only).")
    sampling_dtype: Literal["float32", "bfloat16", "float16", "auto"] | None = Field(
        None, description="Dtype of the weights while sampling (null: the model's). `auto` decides where each "
        "job runs: bfloat16 on a GPU that supports it (else float16) and on a CPU with native bfloat16 (AMX-BF16 "
        "or AVX512-BF16, where it samples about 1.7x faster), float32 on other CPUs (AVX2-only: there bfloat16 "
        "matmuls are emulated, about 60x slower); each evaluation records the dtype it used. Perplexity is "
        "computed as `scoring_dtype` says.")
    scoring_dtype: Literal["float32", "model"] = Field(
        "float32", description="Dtype of the weights and passes that compute target perplexity (transformers "
        "scoring): float32 (the default: a checkpoint's float32 master weights, scored exactly), or `model`, the "
        "model's own dtype. Scoring a bfloat16 model in bfloat16 moves log(log(perplexity)) of memorized "
        "examples by up to about one 0.05 step of the p grid (bench/scoring_precision.py), so examples cross "
        "thresholds. A float32 model scores the same either way.")
    skip_settled: bool = Field(
        False, description="Skip sampling a train example at a checkpoint when its PreMemAcc there is already "
        "settled at 0: memorized now (log(log(perplexity)) below every p the analysis uses: the smallest of "
        "premem.p_grid and premem.p) and never correct while unmemorized at an earlier checkpoint of the run. "
        "PreMemAcc and its calibration are unchanged; train accuracy of a skipped example is not measured "
        "(n_samples 0). Each checkpoint's evaluation then waits for the run's earlier ones.")
    overrides: list[EvaluationOverride] = Field(
        default_factory=list, description="Sampling settings of particular datasets (the authors: MATH top_p 1.0 "
        "and 1,024 tokens, GSM8K top_p 0.95 and 512): each names a `dataset` and the fields it changes; the last "
        "matching entry wins over earlier ones and over this section. Used by the dataset's evaluations, its "
        "perturbed-prompt sampling and its ATC samples.")

    # a dataset's own settings (for_dataset) are what its jobs hash; they hash scoring_dtype beside the section,
    # for non-float32 models only
    hash_neutral: ClassVar[dict[str, Any]] = {"scoring": "transformers", "overrides": [], "scoring_dtype": "float32"}

    def for_dataset(self, dataset: str) -> "Evaluation":
        """The evaluation settings of `dataset`: this section with every override naming it applied, in order, and
        no overrides left (so a dataset no override names dumps exactly as a spec without overrides)."""
        if not self.overrides:
            return self
        fields: dict = {}
        for o in self.overrides:
            if o.dataset == dataset:
                fields.update({k: getattr(o, k) for k in o.model_fields_set if k != "dataset"})
        return self.model_copy(update={**fields, "overrides": []})


class PGrid(Strict):
    start: float = Field(-3.0, description="Smallest p (log of mean per-token NLL).")
    stop: float = Field(-0.5, description="Largest p.")
    step: PositiveFloat = Field(0.05, description="Spacing of the grid.")

    @model_validator(mode="after")
    def _order(self):
        if self.stop < self.start:
            raise ValueError("stop must be >= start")
        if (self.stop - self.start) / self.step > 10_000:
            raise ValueError("the p grid has more than 10,000 points; use a larger step")
        return self

    def values(self) -> list[float]:
        """The grid's p values, start to stop inclusive, rounded to 6 decimals."""
        n = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [round(self.start + i * self.step, 6) for i in range(n)]


class Intervals(Strict):
    """Bootstrap intervals of the headline figures (premem.analysis.intervals): percentile bootstrap over each (model,
    dataset) block's train and test examples, p calibrated again in every resample."""

    level: float = Field(0.95, gt=0, lt=1, description="Coverage of each interval (0.95: 95 %).")
    resamples: int = Field(1000, ge=0, le=100_000, description="Bootstrap resamples; 0 = no intervals.")
    seed: int = Field(0, ge=0, description="Seed of the resampling (the same seed gives the same intervals).")


class PreMem(Strict):
    """PreMemAcc: the grid of thresholds p, the runs that calibrate p and whether p is calibrated per (model,
    dataset) block or pooled."""

    p_grid: PGrid = Field(default_factory=PGrid, description="Thresholds p on the log(log(perplexity)) scale.")
    p: float | None = Field(None, description="Use this p instead of calibrating.")
    calibrate_on: Literal["all"] | list[RunSelector] = Field(
        "all", description="Runs that calibrate p: `all`, or selectors such as [{epochs: 6}]."
    )
    fit: Literal["identity", "line"] = Field(
        "identity", description="Calibrate by R^2 about y = x (identity) or of a fitted line (line)."
    )
    calibrate: Literal["per_block", "pooled"] = Field(
        "per_block", description="per_block: calibrate p separately for each (model, dataset) block of runs, on "
        "that block's calibration runs (calibrate_on within the block), as the paper does per task and model; "
        "each run's PreMemAcc, memorized fraction and dynamics use its own block's p, and the report gives each "
        "block its p and R^2. pooled: one p calibrated on all calibration runs together (the same as per_block "
        "when the study has one model and one dataset)."
    )
    # the analysis job is recomputed on each apply, never stored; with one block both calibrations agree
    hash_neutral: ClassVar[dict[str, Any]] = {"calibrate": "per_block",
                                              "intervals": {"level": 0.95, "resamples": 1000, "seed": 0}}
    intervals: Intervals = Field(default_factory=Intervals, description="Bootstrap intervals of p, R^2 and the "
                                 "other headline figures (resamples 0: none).")


# ------------------------------------------------------------------------------ classic measures
class _Metrics(Strict):
    """Classic generalization measures computed at every checkpoint of the selected runs, compared with
    PreMemAcc against the generalization gap (train accuracy - test accuracy). A measure left out is off."""

    def enabled(self) -> list[str]:
        """Names of the measures switched on, in report order (the order premem.measures registers them)."""
        return [m.name for m in MEASURES.in_order() if getattr(self, m.name, None) is not None]

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        d = Strict._dump(self, handler)
        for m in MEASURES.in_order():  # see Measure.dumped_when_off
            if not m.dumped_when_off and m.name in d and d[m.name] is None:
                d.pop(m.name)
        return d


# one optional field per registered measure (its own section model), then the runs they are computed on
Metrics = create_model(
    "Metrics", __base__=_Metrics, __module__=__name__, __doc__=_Metrics.__doc__,
    **{m.name: (m.settings | None, Field(None, description=m.description)) for m in MEASURES.in_order()},
    runs=(Literal["all"] | list[RunSelector], Field(
        "all", description="Runs whose checkpoints get the measures and enter the correlations: `all` or "
        "selectors.")))


# ------------------------------------------------------------------------------------ perturbations
BUILTIN_PREAMBLES = (" First,", " Let us think step by step.")  # in the built-in task's vocabulary
PAPER_PREAMBLES = (" First", " We know that")


class Perturbations(Strict):
    """Per-example robustness (Section 5.1): train prompts with a preamble appended after the answer cue
    (`question + "\nAnswer:" + preamble`), sampled k times at the chosen checkpoints; only the continuation
    is graded. Accuracy per example is binned by the example's PreMemAcc there."""

    text_fields: ClassVar[frozenset[str]] = frozenset({"preambles"})

    preambles: list[str] | None = Field(
        None, min_length=1, description="Preambles appended after \"Answer:\" (start them with a space); null = "
        f"defaults: the built-in task {list(BUILTIN_PREAMBLES)}, other datasets the paper's {list(PAPER_PREAMBLES)}.")
    samples: int = Field(10, ge=1, le=1000, description="Samples per prompt (the paper: 10).")
    runs: Literal["all"] | list[RunSelector] = Field("all", description="Runs perturbed: `all` or selectors.")
    epochs: Literal["final", "all"] | list[int] = Field(
        "final", description="Checkpoints perturbed: `final` (each run's last epoch), `all`, or a list of epochs.")
    hash_neutral: ClassVar[dict[str, Any]] = {"perfect_bin": False}  # it only regroups the figure
    perfect_bin: bool = Field(
        False, description="Give PreMemAcc = 1.0 a bin of its own: six bins ([0, 0.2), ..., [0.8, 1.0), 1.0) as the "
        "authors' GSM8K panel of Fig. 7; false: five, the last closed ([0.8, 1.0]).")

    @field_validator("preambles")
    @classmethod
    def _distinct(cls, v):
        if v is not None:
            if any(not p.strip() for p in v):
                raise ValueError("a preamble must contain some text")
            stripped = [p.strip() for p in v]
            dup = sorted(p for p, n in Counter(stripped).items() if n > 1)  # not list.count per item: quadratic
            if dup:  # the report labels a prompt by its text without surrounding spaces
                raise ValueError(f"duplicate preambles (spaces aside): {dup}")
            if "original" in stripped:
                raise ValueError("\"original\" names the unperturbed prompt in the report; choose another preamble")
        return v

    def for_dataset(self, builtin: bool) -> list[str]:
        """The preambles used on a dataset: the spec's, or the defaults for its kind."""
        if self.preambles is not None:
            return list(self.preambles)
        return list(BUILTIN_PREAMBLES if builtin else PAPER_PREAMBLES)


# ----------------------------------------------------------------------------------------- curation
CURATION_STRATEGIES = ("premem", "iid", "ifd", "heuristic")


class PoolSource(Strict):
    """Pre-written variants in a local JSONL file, each row keyed by the id of the original train example it
    rephrases (`train-00012`: premem's ids, `<split>-<row index>`)."""

    file: DataFile = Field(..., description="JSONL (or .json/.parquet/.arrow) of variants.")
    original_field: str = Field("original_id", min_length=1, description="Column holding the original's id.")
    question_field: str = Field("question", min_length=1, description="Column holding the variant's question.")
    solution_field: str = Field("answer", min_length=1, description="Column holding the variant's solution trace, "
                                "ending with its final answer in the dataset's answer format.")


class GenerateSource(Strict):
    """New examples written by a model through premem's sampler: `prompt` is filled with the original's
    {question} and {solution}. `output: solution` keeps the original question and takes the completion as a new
    solution, accepted only when its final answer equals the original's; `output: example` reads a new
    "Question: ...\nAnswer: ..." pair from the completion, accepted when its solution has a final answer."""

    text_fields: ClassVar[frozenset[str]] = frozenset({"prompt"})

    model: str = Field(..., description="A model of the spec that writes the new examples.")
    prompt: str = Field("{question}\nAnswer:", min_length=1, description="Template with {question} and/or "
                        "{solution}.")
    output: Literal["solution", "example"] = Field("solution", description="What a completion holds.")
    tries: int = Field(8, ge=1, le=1000, description="Samples drawn per wanted example before an original counts "
                       "as exhausted.")
    temperature: float = Field(1.0, ge=0, le=10, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(256, ge=1, le=32768, description="Longest completion, in tokens.")

    @field_validator("prompt")
    @classmethod
    def _fields(cls, v):
        import string

        names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        unknown = sorted(names - {"question", "solution"})
        if unknown:
            raise ValueError(f"unknown template fields {unknown}; use {{question}} and {{solution}} "
                             "(double a brace to write it literally)")
        if not names:
            raise ValueError("the template names neither {question} nor {solution}")
        return v


class IfdScoring(Strict):
    """The IFD rival (Li et al.): ppl(answer | question) / ppl(answer) under a model briefly trained on
    another split; the originals with the highest ratios are drawn from."""

    split: Literal["test", "train"] = Field("test", description="Split the scoring model trains on (the "
                                           "authors: test; it is used for scoring only, never for evaluation).")
    epochs: int = Field(2, ge=1, le=100, description="Epochs of the scoring model (the paper: 2).")
    learning_rate: PositiveFloat | None = Field(None, description="Its learning rate; null = curation's.")
    percent: float = Field(50, gt=0, le=100, description="Keep the top this percent of originals (the paper: 50 "
                           "for GSM8K, 75 for MATH).")
    unconditional: Literal["after_cue", "bos_only"] = Field(
        "after_cue", description="What ppl(answer), the ratio's denominator, conditions the solution on: "
        "`after_cue` (the answer cue \"\\nAnswer:\" after the BOS token: every tokenizer, with a BOS token or "
        "without, gives the first solution token a context) or `bos_only` (the BOS token alone, as the authors' "
        "gsm8k_eval_perplexity3.py did; needs a tokenizer that puts a BOS token first).")

    hash_neutral: ClassVar[dict[str, Any]] = {"unconditional": "after_cue"}


class HeuristicScoring(Strict):
    """The difficulty rival: GSM8K solution lines, MATH level, the built-in task's difficulty field."""

    percent: float = Field(50, gt=0, le=100, description="Keep the top this percent of originals by difficulty.")


class Curation(Strict):
    """Data curation by PreMemAcc (Algorithm 1) against iid, IFD and difficulty rivals at matched sizes.
    Round 0 trains on the originals; each round r then adds new_examples[r-1] examples drawn as variants of
    the originals a strategy picks, and trains a fresh model (from the base) on everything so far."""

    model: str | None = Field(None, description="Model name; default the spec's only model.")
    dataset: str | None = Field(None, description="Dataset name; default the spec's only dataset.")
    rounds: int = Field(5, ge=1, le=50, description="Rounds of collection n (the paper: 5).")
    threshold: float = Field(0.75, ge=0, le=1, description="premem draws from originals with PreMemAcc <= this t "
                             "(the paper: 0.75).")
    new_examples: int | list[Annotated[int, Field(ge=1, le=10_000_000)]] = Field(
        ..., description="New examples per round (N'_1..N'_n): one number for every round, or a list of `rounds`.")
    p: float | None = Field(None, description="Memorization threshold on log(log(perplexity)) for PreMemAcc; "
                            "null = premem.p.")
    learning_rate: PositiveFloat = Field(..., description="Learning rate of each round's model (the paper: 2e-5).")
    epochs: int = Field(3, ge=1, le=1000, description="Epochs of each round's model (the paper: 3).")
    batch_size: int | None = Field(None, ge=1, description="Batch size of each round's model; null = training's "
                                   "(the paper: 128).")
    strategies: list[str] = Field(default_factory=lambda: list(CURATION_STRATEGIES), min_length=1,
                                  description=f"Strategies compared: {', '.join(CURATION_STRATEGIES)}.")
    source: Literal["variants", "pool", "generate"] = Field(
        "variants", description="Where new examples come from: `variants` (the built-in task generates them), "
        "`pool` (a file of pre-written variants) or `generate` (a model writes them).")
    pool: PoolSource | None = Field(None, description="With source: pool.")
    generate: GenerateSource | None = Field(None, description="With source: generate.")
    ifd: IfdScoring = Field(default_factory=IfdScoring, description="The IFD rival.")
    heuristic: HeuristicScoring = Field(default_factory=HeuristicScoring, description="The difficulty rival.")
    targets: list[Annotated[float, Field(ge=0, le=1)]] | None = Field(
        None, description="Test accuracies at which sample efficiency is read; null = three between round 0's "
        "accuracy and the highest both curves reach.")
    seeds: list[int] | None = Field(
        None, min_length=1, description="Seeds to repeat the whole curation study with (round 0, the IFD scorer "
        "and every strategy's rounds, names .../seed<s>); the report averages curves and efficiency ratios over "
        "them with intervals. null = the spec's `seed` alone.")

    hash_neutral: ClassVar[dict[str, Any]] = {"seeds": None}  # as before seeds were an axis

    @field_validator("strategies")
    @classmethod
    def _known(cls, v):
        for s in v:
            if s not in CURATION_STRATEGIES:
                raise ValueError(f"unknown strategy {s!r}{did_you_mean(s, CURATION_STRATEGIES)}")
        if len(set(v)) != len(v):
            raise ValueError("a strategy is listed twice")
        return v

    @model_validator(mode="after")
    def _source_section(self):
        for name in ("pool", "generate"):
            given = getattr(self, name) is not None
            if given and self.source != name:
                raise ValueError(f"`{name}` is given but source is {self.source!r}: set source: {name}")
            if not given and self.source == name:
                raise ValueError(f"source is {name!r}: give its `{name}` section")
        if isinstance(self.new_examples, list) and len(self.new_examples) != self.rounds:
            raise ValueError(f"new_examples lists {len(self.new_examples)} numbers for {self.rounds} rounds")
        if isinstance(self.new_examples, int) and not 1 <= self.new_examples <= 10_000_000:
            raise ValueError("new_examples must lie in 1..10,000,000")
        return self

    def per_round(self) -> list[int]:
        """N'_1..N'_n: new examples added in each round."""
        n = self.new_examples
        return list(n) if isinstance(n, list) else [n] * self.rounds


RAY_UNIT = 0.0001  # Ray counts resources in units of 0.0001 and refuses a request for less than one, at submission


class JobResources(Strict):
    cpus: float = Field(1, ge=RAY_UNIT, description="CPU cores a job asks Ray for (also its torch threads).")
    gpus: float = Field(0, ge=0, description="GPUs a job asks Ray for.")
    gpu_memory_gib: PositiveFloat | None = Field(
        None, description="Memory of each GPU these jobs get, in GiB (train jobs: `premem plan` compares each "
        "one's estimated peak with it and `premem apply` refuses a job that cannot fit). null = this machine's "
        "GPU when it has one, else 80 GiB assumed. Not part of any job's identity.")

    @field_validator("gpus")
    @classmethod
    def _ray_unit(cls, v):
        if 0 < v < RAY_UNIT:
            raise ValueError(f"Ray counts GPUs in units of {RAY_UNIT}: ask for 0 or at least {RAY_UNIT}")
        return v


class Resources(Strict):
    """What each kind of job asks Ray for."""

    pretrain: JobResources = Field(default_factory=JobResources, description="Pretraining jobs.")
    train: JobResources = Field(default_factory=JobResources, description="Finetuning epoch jobs.")
    evaluate: JobResources = Field(default_factory=JobResources, description="Checkpoint evaluation jobs, and "
                                   "the classic measures and perturbed-prompt sampling of a checkpoint.")


# ------------------------------------------------------------------------------------------- tracking
class TensorBoardTracker(Strict):
    log_dir: str = Field("runs", min_length=1, description="Folder of the event files: one sub-folder per run "
                         "(relative paths: to the working directory).")


class MlflowTracker(Strict):
    tracking_uri: str = Field("mlruns", min_length=1, description="MLflow tracking URI: a server (http://...), a "
                              "database (sqlite:///...), or a local folder (relative paths: to the working "
                              "directory).")
    experiment: str | None = Field(None, min_length=1, description="Experiment the runs go to; null = the "
                                   "study's name.")


class WandbTracker(Strict):
    project: str | None = Field(None, min_length=1, description="W&B project; null = the study's name.")
    entity: str | None = Field(None, min_length=1, description="W&B entity (user or team); null = your default.")
    mode: Literal["online", "offline", "disabled"] = Field(
        "online", description="online logs to the W&B server; offline writes files to sync later (`wandb sync`); "
        "disabled logs nothing.")
    dir: str | None = Field(None, min_length=1, description="Folder W&B writes its files under (relative paths: "
                            "to the working directory); null = W&B's default (./wandb).")


class Tracking(Strict):
    """Experiment trackers every run is logged to during `premem apply` (premem.tracking). Not part of any job's
    identity: tracking is not compute."""

    tensorboard: TensorBoardTracker | None = Field(None, description="TensorBoard event files; {} for the "
                                                   "defaults, absent = off.")
    mlflow: MlflowTracker | None = Field(None, description="MLflow runs; {} for the defaults, absent = off.")
    wandb: WandbTracker | None = Field(None, description="Weights & Biases runs; {} for the defaults, absent = "
                                       "off.")

    @model_validator(mode="after")
    def _at_least_one(self):
        if self.tensorboard is None and self.mlflow is None and self.wandb is None:
            raise ValueError("name at least one tracker (tensorboard, mlflow, wandb), or leave `tracking` out")
        return self

    def named(self) -> list[str]:
        """The trackers the section names, in a fixed order."""
        return [n for n in ("tensorboard", "mlflow", "wandb") if getattr(self, n) is not None]


class Spec(Strict):
    """A whole study: what to train, how to evaluate, and how to analyse it."""

    name: str = Field(..., min_length=1, description="Name of the study, shown in the report.")
    seed: int = Field(0, description="Seed for data order, initialisation and sampling.")
    store: str = Field(".premem", description="Results store folder (relative paths: to the working directory).")
    report: str = Field("reports", description="Report folder (relative paths: to the working directory).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where jobs compute; auto = cuda if present.")
    models: list[ModelSpec] = Field(..., min_length=1, description="Models of the study.")
    datasets: list[DatasetSpec] = Field(..., min_length=1, description="Datasets of the study.")
    training: Training = Field(default_factory=Training, description="Finetuning recipe.")
    grid: Grid = Field(default_factory=Grid, description="The grid of runs.")
    runs: list[RunSpec] = Field(default_factory=list, description="Extra runs beyond the grid.")
    evaluation: Evaluation = Field(default_factory=Evaluation, description="Checkpoint evaluation.")
    premem: PreMem = Field(default_factory=PreMem, description="PreMemAcc settings.")
    metrics: Metrics = Field(default_factory=Metrics, description="Classic generalization measures (off unless named).")
    perturbations: Perturbations | None = Field(None, description="Per-example robustness under perturbed prompts; "
                                                "{} for the defaults, absent = off.")
    curation: Curation | None = Field(None, description="Data curation by PreMemAcc against its rivals; absent = "
                                      "off.")
    resources: Resources = Field(default_factory=Resources, description="Ray resources per job kind.")
    tracking: Tracking | None = Field(None, description="Experiment trackers (TensorBoard, MLflow, W&B) every run "
                                      "is logged to; absent = none. Not part of any job's identity.")

    # tracking is not compute: a spec without it dumps as before the section existed (no job id depends on it)
    hash_neutral: ClassVar[dict[str, Any]] = {"tracking": None}

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def dataset(self, name: str) -> DatasetSpec:
        return next(d for d in self.datasets if d.name == name)

    def curation_pair(self) -> tuple[str, str]:
        """(model name, dataset name) the curation section works on (its defaults resolved)."""
        c = self.curation
        return (c.model or self.models[0].name, c.dataset or self.datasets[0].name)


def json_schema() -> dict:
    """The spec's JSON Schema (for editors), with every field's description."""
    return Spec.model_json_schema()
