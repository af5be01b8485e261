"""The throughputs file of `premem plan --cost` (`ThroughputsFile`, read by `load_throughputs`), the error a
file or a plan that cannot be costed raises (`CostError`), and the example file shipped with premem
(`EXAMPLE_THROUGHPUTS`: assumed GPU figures; docs in the file itself)."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from premem.safetext import escape_controls
from premem.spec import yamlfile
from premem.spec.yamlfile import YamlFileError


class _Strict(BaseModel):
    """Base of the throughputs file's sections: unknown keys are errors; no number is NaN or infinite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Rate = float | None
_POS = dict(gt=0, allow_inf_nan=False)


class SideRates(_Strict):
    train_tokens_per_s: Rate = Field(None, **_POS, description="Finetuning tokens (prompt + target) per second.")
    pretrain_tokens_per_s: Rate = Field(None, **_POS, description="Pretraining tokens per second (built-in models; "
                                        "default train_tokens_per_s).")
    sample_tokens_per_s: Rate = Field(None, **_POS, description="Sampled (generated) tokens per second.")
    score_tokens_per_s: Rate = Field(None, **_POS, description="Target tokens scored (perplexity) per second.")
    load_seconds: float | None = Field(None, ge=0, allow_inf_nan=False, description="Seconds per model load.")


class AuthorsRates(SideRates):
    """The authors' approach: absolute rates, or speedups = premem's rate / the authors' (what the benchmarks
    print as a ratio). Not both for one quantity."""

    train_speedup: Rate = Field(None, **_POS)
    sample_speedup: Rate = Field(None, **_POS)
    score_speedup: Rate = Field(None, **_POS)

    @model_validator(mode="after")
    def _one_of(self):
        for q in ("train", "sample", "score"):
            if getattr(self, f"{q}_tokens_per_s") is not None and getattr(self, f"{q}_speedup") is not None:
                raise ValueError(f"give {q}_tokens_per_s or {q}_speedup, not both")
        return self


class ModelRates(SideRates):
    authors: AuthorsRates | None = None


class DatasetSizes(_Strict):
    train_examples: int | None = Field(None, ge=1)
    test_examples: int | None = Field(None, ge=1)
    question_tokens: float | None = Field(None, gt=0, allow_inf_nan=False)
    solution_tokens: float | None = Field(None, gt=0, allow_inf_nan=False)
    completion_tokens: float | None = Field(None, gt=0, allow_inf_nan=False,
                                            description="Mean sampled tokens (default: the target's, capped "
                                            "by max_new_tokens).")


class Cluster(_Strict):
    gpus: int | None = Field(None, ge=0, le=1_000_000)
    cpus: int | None = Field(None, ge=1, le=10_000_000)


class ThroughputsFile(_Strict):
    note: str | None = None
    tokens_per_word: float | None = Field(None, gt=0, allow_inf_nan=False)
    defaults: ModelRates | None = None
    models: dict[str, ModelRates] = Field(default_factory=dict)
    datasets: dict[str, DatasetSizes] = Field(default_factory=dict)
    cluster: Cluster | None = None


class CostError(ValueError):
    """A throughputs file that cannot be used, or a plan whose cost cannot be estimated; `lines` are
    `FILE:LINE: field: message` (or plain messages)."""

    def __init__(self, lines: list[str]):
        self.lines = [escape_controls(line) for line in lines]  # they quote the file's keys and values
        super().__init__("\n".join(lines))


def load_throughputs(path: str | Path | None) -> tuple[ThroughputsFile, str | None]:
    """The validated throughputs file (an empty one when `path` is None or empty) and its path; CostError with
    FILE:LINE for every problem."""
    if not path:
        return ThroughputsFile(), None
    try:
        data, lines = yamlfile.compose(yamlfile.read_text(path, "throughputs"))
    except YamlFileError as e:
        where = f"{path}:{e.line}" if e.line is not None else f"{path}"
        field = f"{'.'.join(map(str, e.path))}: " if e.path else ""
        raise CostError([f"{where}: {field}{e.message}"]) from None
    if data is None:
        return ThroughputsFile(), str(path)
    if not isinstance(data, dict):
        raise CostError([f"{path}:1: a throughputs file is a mapping (defaults:, models:, datasets:, cluster:)"])
    try:
        return ThroughputsFile.model_validate(data), str(path)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-after")))
            line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            out.append(f"{path}:{line}: {'.'.join(map(str, loc))}: {msg}")
        raise CostError(out) from None



EXAMPLE_THROUGHPUTS = Path(__file__).resolve().parent / "throughputs-example.yaml"  # package data
