"""What a plan will cost: compute hours per job kind, premem's way and the authors', from work x throughput.

`premem plan SPEC --cost [THROUGHPUTS.yaml]` prints it. Two parts, kept apart so each can be checked:

- Work, counted from the plan alone (no model, no download): per job, tokens trained (examples x mean tokens
  per example x epochs), target tokens scored (perplexity), tokens sampled (prompts x k x mean completion
  tokens) and model loads. Dataset sizes and mean lengths come from the built-in task's generator (exact
  token counts with its tokenizer), from local data files (words x a words-to-tokens factor), or from a small
  registry of known hub datasets (below); the throughputs file can override any of them.
- Throughputs, per model: tokens per second for training, sampling and scoring, and seconds per model load,
  for premem and for the authors' approach. On a CPU, the built-in model has defaults measured in this
  project's benchmarks (bench/README.md); GPU figures (and hub models anywhere) come from the user's file.

The authors' approach (Kang et al.'s public code): perplexity one example at a time in float32; sampling with
`model.generate` or vLLM, with its own model load per checkpoint on top of the one for perplexity; and
checkpoints evaluated only once GPUs are free, i.e. after the run's training, never overlapping it. Training
itself is the same for both unless the file says otherwise.

Hours of a job = its seconds / 3600 x the GPUs its kind asks Ray for (GPU-hours), or x its CPUs when it asks
for no GPU (CPU core-hours). A wall-clock estimate on a cluster of the file's size comes from replaying the
plan's dependency graph with greedy list scheduling (premem: a checkpoint's jobs start when its epoch is
trained; the authors': when the run's last epoch is).
"""
from __future__ import annotations

import heapq
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from premem.engine.hardware import resolve_sampling_dtype
from premem.measures import MEASURES, Sizes
from premem.plan.build import Plan
from premem.plan.job import JOB_KINDS, STORED_KINDS, Job, require_every_kind
from premem.plan.job_settings import EvaluateSettings, MeasureSettings, PerturbSettings
from premem.safetext import escape_controls
from premem.spec import yamlfile
from premem.spec.yamlfile import YamlFileError
from premem.wording import counted

KINDS = STORED_KINDS
EVAL_KINDS = tuple(k for k in KINDS if JOB_KINDS[k].reads_checkpoint)  # the jobs that read a finished checkpoint
#: the kinds `work` computes the work of (a new kind must be added there: importing this module says so)
COSTED_KINDS = ("pretrain", "train", "evaluate", "measure", "perturb", "collect", "score")
require_every_kind(COSTED_KINDS, "premem.cost.model's work model")

# ----------------------------------------------------------------------------------------- CPU defaults
# Measured on this project's development machine (2 vCPUs, Intel Xeon with AVX-512/AMX-BF16, torch 2.13.0+cpu),
# the built-in model at the quickstart's size (4 layers, hidden 128, 1.08M parameters), 1 torch thread unless
# said otherwise. They apply only to built-in models on jobs that ask for no GPU.
CPU_BUILTIN = {
    # bench/README.md, 2026-11-27, `python bench/eval_throughput.py` (3 repetitions, medians, 1 thread):
    # target_nll 13,078 target tokens/s against 8,836 for one float32 forward pass per example;
    # premem's sampler 4,900 tokens/s (float32) and 8,940 (bfloat16 weights) against 697 for model.generate
    # prompt by prompt (float32).
    "score_tokens_per_s": 13_078.0,
    "sample_tokens_per_s": 4_900.0,
    "sample_tokens_per_s_bf16": 8_940.0,
    "authors_score_tokens_per_s": 8_836.0,
    "authors_sample_tokens_per_s": 697.0,
    # bench/README.md, "The study's cost" (2026-11-27): the job records (tokens, seconds) of the quickstart
    # store behind its `evaluation.skip_settled` section (`premem apply base.yaml`, a copy of
    # specs/quickstart.yaml): 46 finetuning epochs, 778,880 tokens in 162.8 s of training (4,785 tokens/s,
    # 1 thread each, two jobs sharing the 2 cores); pretraining 3,029,248 tokens in 244.7 s (12,382 tokens/s,
    # 2 threads); 138 evaluations spent 20.6 s outside scoring and sampling (0.15 s each: the model load,
    # grading and bookkeeping).
    "train_tokens_per_s": 4_785.0,
    "pretrain_tokens_per_s": 12_382.0,
    "load_seconds": 0.15,
}

# ---------------------------------------------------------------------------------- hub datasets' sizes
# Split sizes are the datasets' published sizes. Token lengths are ASSUMPTIONS (no tokenizer can be
# downloaded here): measured lengths in words or characters times an assumed factor, as stated.
TOKENS_PER_WORD = 1.4  # assumption: a Llama-3/Gemma-2-style BPE on GSM8K's text; see the GSM8K note below
HUB_DATASETS: dict[str, dict[str, Any]] = {
    # GSM8K "main": 7,473 train / 1,319 test. Measured 2026-11-27 on /work/shared/data/gsm8k (the same content
    # as openai/gsm8k main) by splitting on whitespace: questions 45.09 words (234.5 characters) on average,
    # answers 51.71 words (287.5 characters) on the train split; test 46.25 / 52.78 words. Tokens = words x
    # TOKENS_PER_WORD (1.4, assumed; the rule of thumb of 4 characters a token gives 1.30 tokens a word on the
    # questions and 1.39 on the answers, whose `<<48/2=24>>` annotations split into many tokens).
    "gsm8k": {"train_examples": 7473, "test_examples": 1319, "question_words": 45.09, "solution_words": 51.71,
              "note": "GSM8K: 7,473 / 1,319 examples; lengths measured in words on the local copy, x tokens_per_word"},
    # MATH (Hendrycks et al.): 7,500 train / 5,000 test. Lengths ASSUMED: the Hub card of
    # hendrycks/competition_math gives 5,984,772 bytes for the 7,500 train rows (problem, level, type,
    # solution), about 770 characters of problem + solution a row; assumed 220 of problem and 550 of solution,
    # at 3.5 characters a token (LaTeX splits finer than prose): 63 and 157 tokens.
    "math": {"train_examples": 7500, "test_examples": 5000, "question_tokens": 63.0, "solution_tokens": 157.0,
             "note": "MATH: 7,500 / 5,000 examples; lengths ASSUMED (63 problem, 157 solution tokens)"},
}
# MATH per level, train and test (levels 1-5). ASSUMPTION, recalled from the original release and not verified
# here (they add up to 7,498 + 2 rows of level "?" and 5,000); the levels filter scales the split by them.
MATH_LEVELS = {"train": (564, 1348, 1592, 1690, 2304), "test": (437, 894, 1131, 1214, 1324)}
PROMPT_EXTRA_TOKENS = 4  # assumption for hub data: bos + "\nAnswer:" around the question
TARGET_EXTRA_TOKENS = 4  # assumption for hub data: " " + "\nDone." around the solution
STATS_SAMPLE = 5000  # examples of a built-in split whose lengths are counted (the mean of the first ones)


# --------------------------------------------------------------------------------------- the YAML file
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


# ------------------------------------------------------------------------------------------- the work
@dataclass
class DataStats:
    """What the cost model needs of a dataset: split sizes and mean lengths in tokens."""

    train: int
    test: int
    prompt_tokens: float  # bos + question + answer cue
    target_tokens: float  # " " + solution + "\nDone."
    completion_tokens: float | None = None  # mean sampled tokens, when known better than the target's
    pretrain_tokens: dict[tuple, float] = field(default_factory=dict)  # built-in: (mix) -> mean tokens + sep
    source: str = ""


def _builtin_stats(ds) -> DataStats:
    from premem.data.format import prompt_of, target_of
    from premem.data.loaders import arithmetic_task
    from premem.data.tokenizer import WordTokenizer

    task, codec = arithmetic_task(ds), WordTokenizer.for_arithmetic_task()
    bos = 1 if codec.bos_id is not None else 0
    ex = task.split("train", min(ds.train_size, STATS_SAMPLE))
    prompt = statistics.fmean(bos + len(codec.encode(prompt_of(e.question))) for e in ex)
    target = statistics.fmean(len(codec.encode(target_of(e.solution))) for e in ex)
    return DataStats(ds.train_size, ds.test_size, prompt, target,
                     source=f"built-in task, token counts of its first {len(ex):,} train examples")


def builtin_pretrain_tokens(ds, examples: int, mix) -> float:
    """Mean tokens (bos + prompt + target + separator) of the built-in task's pretraining corpus."""
    from premem.data.format import prompt_of, target_of
    from premem.data.loaders import arithmetic_task
    from premem.data.tokenizer import WordTokenizer

    task, codec = arithmetic_task(ds), WordTokenizer.for_arithmetic_task()
    bos = 1 if codec.bos_id is not None else 0
    n = min(examples, STATS_SAMPLE)
    ex = task.split("pretrain", n, mix=mix) if mix else task.split("pretrain", n)
    return statistics.fmean(bos + len(codec.encode(prompt_of(e.question))) + len(codec.encode(target_of(e.solution)))
                            + 1 for e in ex)


def _words(path: str, column: str) -> tuple[int, float]:
    """Rows and mean whitespace-separated words of `column` in a local JSONL/JSON/Parquet file; a CostError naming
    the file (and the line of a JSONL file) when it cannot be read as one."""
    try:
        values = _column(path, column)
    except (OSError, EOFError, ValueError, TypeError, KeyError) as e:  # pyarrow's errors are ValueErrors
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CostError([f"{path}: cannot count the words of its {column!r} column: {why}"]) from None
    values = [str(v) for v in values if v is not None]
    return len(values), (statistics.fmean(len(v.split()) for v in values) if values else 0.0)


def _column(path: str, column: str) -> list:
    """The values of `column` in a local data file (None where a row lacks it)."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=[column]).column(column).to_pylist()
    if path.endswith(".arrow"):  # Arrow IPC, as `datasets` writes it: the stream format, or the file format
        import pyarrow as pa

        try:
            table = pa.ipc.open_stream(path).read_all()
        except pa.ArrowInvalid:
            table = pa.ipc.open_file(path).read_all()
        return table.column(column).to_pylist()
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".json", ".json.gz")) and text.lstrip().startswith("["):
        rows = json.loads(text)
        where = [f"item {i} of its list" for i in range(1, len(rows) + 1)] if isinstance(rows, list) else []
    else:
        rows, where = [], []
        for i, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise ValueError(f"line {i} is not JSON ({getattr(e, 'msg', e)})") from None
                where.append(f"line {i}")
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise ValueError(f"{where[bad]} is not a JSON object (a row of named columns)")
    return [r.get(column) for r in rows]


def dataset_stats(ds, override: DatasetSizes | None, tokens_per_word: float) -> DataStats:
    """Sizes and mean token lengths of a spec dataset: generated, read from local files, or from the registry;
    then the throughputs file's `datasets.<name>` entry over them."""
    if ds.builtin is not None:
        st = _builtin_stats(ds)
    else:
        src = getattr(ds, ds.source)
        qcol, scol = ("question", "answer") if ds.source == "gsm8k" else ("problem", "solution")
        if ds.source == "jsonl":
            qcol, scol = src.question_field, src.solution_field
        if getattr(src, "train_file", None):
            n_tr, q_w = _words(src.train_file, qcol)
            _, s_w = _words(src.train_file, scol)
            n_te, _ = _words(src.test_file, qcol)
            st = DataStats(n_tr, n_te, PROMPT_EXTRA_TOKENS + q_w * tokens_per_word,
                           TARGET_EXTRA_TOKENS + s_w * tokens_per_word,
                           source=f"local files: {n_tr:,} / {n_te:,} rows, words x {tokens_per_word:g} tokens a word")
        elif ds.source in HUB_DATASETS:
            reg = HUB_DATASETS[ds.source]
            n_tr, n_te = reg["train_examples"], reg["test_examples"]
            if ds.source == "math" and ds.math.levels:
                n_tr = sum(MATH_LEVELS["train"][lv - 1] for lv in set(ds.math.levels))
                n_te = sum(MATH_LEVELS["test"][lv - 1] for lv in set(ds.math.levels))
            q = reg.get("question_tokens") or reg["question_words"] * tokens_per_word
            s = reg.get("solution_tokens") or reg["solution_words"] * tokens_per_word
            levels = f", levels {list(ds.math.levels)} ({n_tr:,} / {n_te:,}, ASSUMED counts)" \
                if ds.source == "math" and ds.math.levels else ""
            st = DataStats(n_tr, n_te, PROMPT_EXTRA_TOKENS + q, TARGET_EXTRA_TOKENS + s, source=reg["note"] + levels)
        else:
            if override is None or None in (override.train_examples, override.test_examples,
                                            override.question_tokens, override.solution_tokens):
                raise CostError([f"dataset {ds.name!r}: no sizes known for a `{ds.source}` dataset from the hub: give "
                                 f"datasets.{ds.name}: {{train_examples, test_examples, question_tokens, "
                                 "solution_tokens}} in the throughputs file"])
            st = DataStats(0, 0, 0.0, 0.0, source="throughputs file")
        if ds.train_size is not None:
            st.train = min(st.train, ds.train_size)
        if ds.test_size is not None:
            st.test = min(st.test, ds.test_size)
    if override is not None:
        if override.train_examples is not None:
            st.train = override.train_examples
        if override.test_examples is not None:
            st.test = override.test_examples
        if override.question_tokens is not None:
            st.prompt_tokens = PROMPT_EXTRA_TOKENS + override.question_tokens
        if override.solution_tokens is not None:
            st.target_tokens = TARGET_EXTRA_TOKENS + override.solution_tokens
        st.completion_tokens = override.completion_tokens
        if any(v is not None for v in override.model_dump().values()):
            st.source += "; overridden by the throughputs file"
    return st


@dataclass
class Work:
    """What one job computes."""

    trained: float = 0.0  # tokens through forward + backward (pretrain, train, gradient variance)
    scored: float = 0.0  # target tokens scored (perplexity)
    sampled: float = 0.0  # tokens generated
    loads: int = 0  # model loads, premem's way
    authors_loads: int = 0  # model loads, the authors' way
    pretrain: bool = False
    evaluation: bool = False  # the authors' evaluation code (their load time); training and measures share code

    def __add__(self, o: "Work") -> "Work":
        return Work(self.trained + o.trained, self.scored + o.scored, self.sampled + o.sampled,
                    self.loads + o.loads, self.authors_loads + o.authors_loads)


def run_size(n: int, fraction: float) -> int:
    """Training examples of a run on `fraction` of `n` (premem.data.loaders.subset_indices)."""
    return n if fraction >= 1 else min(n, max(1, round(n * fraction)))


def job_work(job: Job, plan: Plan, stats: dict[str, DataStats]) -> Work:
    """The work of one job, from its settings and the datasets' sizes and lengths."""
    spec, s = plan.spec, job.settings
    if job.kind == "pretrain":
        m = spec.model(job.model)
        pre = m.pretrain
        ds = spec.dataset(pre.dataset)
        key = (pre.dataset, pre.examples, tuple(pre.difficulty_mix or ()))
        st = stats[pre.dataset]
        if key not in st.pretrain_tokens:
            st.pretrain_tokens[key] = builtin_pretrain_tokens(ds, pre.examples, pre.difficulty_mix)
        return Work(trained=pre.examples * st.pretrain_tokens[key] * pre.epochs, pretrain=True)
    if job.run not in plan.runs_by_name():
        return _curation_work(job, plan, stats)
    run = plan.runs_by_name()[job.run]
    st = stats[run.dataset]
    n_run = run_size(st.train, run.dataset_fraction)
    example = st.prompt_tokens + st.target_tokens
    # the settings the job samples with: an evaluation's own, or an ATC / perturb job's (both with the run's
    # dataset's evaluation.overrides applied); other jobs sample nothing
    ev: dict = {}
    if isinstance(s, EvaluateSettings):
        ev = s.evaluation
    elif isinstance(s, (MeasureSettings, PerturbSettings)):
        ev = s.sampling or {}  # a measure that does not sample has none
    completion = st.completion_tokens or min(st.target_tokens, ev.get("max_new_tokens", st.target_tokens))
    n_eval = min(n_run, ev["train_examples"]) if ev.get("train_examples") else n_run
    if job.kind == "train":
        return Work(trained=n_run * example, loads=1, authors_loads=1)
    if job.kind == "evaluate":
        n_test = min(st.test, ev["test_examples"]) if ev["test_examples"] else st.test
        k_test = ev["test_samples"] or ev["samples"]
        # premem: one load for scoring and sampling; the authors': one for perplexity, one for the sampler
        return Work(scored=n_eval * st.target_tokens, sampled=(n_eval * ev["samples"] + n_test * k_test) * completion,
                    loads=1, authors_loads=2, evaluation=True)
    if job.kind == "measure":
        sizes = Sizes(run_examples=n_run, example_tokens=example, evaluated=n_eval, completion_tokens=completion)
        return Work(**MEASURES.get(s.measure).work(s.config, sizes))
    if job.kind == "perturb":
        return Work(sampled=n_eval * s.samples * completion, loads=1, authors_loads=1, evaluation=True)
    return Work()


def _curation_work(job: Job, plan: Plan, stats: dict[str, DataStats]) -> Work:
    """The work of a curation job: a round's model trains on the originals plus every example collected by its
    round; its evaluations sample every original (when PreMemAcc selects) and the test split (final epoch); the
    IFD score job scores every original twice; a generating collect job samples `tries` per wanted example."""
    c, s = plan.spec.curation, job.settings
    ds_name = plan.spec.curation_pair()[1]
    st = stats[ds_name]
    example = st.prompt_tokens + st.target_tokens
    max_new = plan.spec.evaluation.for_dataset(ds_name).max_new_tokens  # its evaluation.overrides applied
    completion = st.completion_tokens or min(st.target_tokens, max_new)
    if job.kind == "train":
        if s.train_split is not None:
            n = st.test if s.train_split == "test" else st.train
        else:
            r = plan.curation.round_of(job.run)
            n = st.train + sum(c.per_round()[:r])
        return Work(trained=n * example, loads=1, authors_loads=1)
    if job.kind == "evaluate":
        ev = s.evaluation
        n_eval = st.train if ev["train_examples"] is None else ev["train_examples"]
        n_test = st.test if ev["test_examples"] is None else min(st.test, ev["test_examples"])
        return Work(scored=n_eval * st.target_tokens,
                    sampled=(n_eval * ev["samples"] + n_test * (ev["test_samples"] or ev["samples"])) * completion,
                    loads=1, authors_loads=2, evaluation=True)
    if job.kind == "score":
        return Work(scored=2 * st.train * st.target_tokens, loads=1, authors_loads=1)
    if job.kind == "collect" and s.source["kind"] == "generate":
        return Work(sampled=s.new_examples * s.source["tries"] * s.source["max_new_tokens"], loads=1,
                    authors_loads=1)
    return Work()


# ------------------------------------------------------------------------------------------ throughputs
@dataclass(frozen=True)
class Rates:
    train: float
    pretrain: float
    sample: float
    score: float
    load: float


@dataclass
class ModelRatesResolved:
    premem: Rates
    authors: Rates
    origin: str  # where the figures came from, for the assumptions list


def _uses_gpu(spec, kind: str) -> bool:
    return _resources(spec, kind).gpus > 0 or spec.device == "cuda"


def _resources(spec, kind: str):
    """What a job of `kind` asks Ray for (spec.JobResources)."""
    return getattr(spec.resources, JOB_KINDS[kind].resources)


def resolve_rates(spec, tp: ThroughputsFile, file: str | None) -> dict[str, ModelRatesResolved]:
    """Per model of the spec: premem's and the authors' rates, from the file (the model's entry by name or hub
    id, then `defaults`), else the CPU defaults for a built-in model whose jobs ask for no GPU."""
    out, missing = {}, []
    for m in spec.models:
        entries = [e for e in (tp.models.get(m.name), tp.models.get(m.hf) if m.hf else None, tp.defaults)
                   if e is not None]
        cpu_ok = m.builtin is not None and not any(_uses_gpu(spec, k) for k in KINDS)
        # `auto` as it would resolve on this machine's CPU (the built-in CPU rates are for CPU jobs)
        sampling_dtype = resolve_sampling_dtype(spec.evaluation.sampling_dtype, "cpu")[0]
        bf16 = sampling_dtype == "bfloat16" or (sampling_dtype is None and m.dtype == "bfloat16")
        cpu = dict(CPU_BUILTIN, sample_tokens_per_s=CPU_BUILTIN["sample_tokens_per_s_bf16" if bf16 else
                                                               "sample_tokens_per_s"]) if cpu_ok else {}

        def pick(fname: str, entries=entries, cpu=cpu):
            for e in entries:
                v = getattr(e, fname)
                if v is not None:
                    return v, "file"
            return cpu.get(fname), ("measured CPU default" if fname in cpu else None)

        vals, origins = {}, set()
        for f in ("train_tokens_per_s", "sample_tokens_per_s", "score_tokens_per_s", "load_seconds"):
            v, o = pick(f)
            if v is None:
                missing.append(f"model {m.name!r}: no {f}" + (" (its jobs ask for GPUs)" if not cpu_ok and
                                                                m.builtin else ""))
            vals[f], origins = v, origins | {o}
        pre, _ = pick("pretrain_tokens_per_s")
        vals["pretrain_tokens_per_s"] = pre or vals["train_tokens_per_s"]
        if any(v is None for v in vals.values()):
            continue
        premem = Rates(vals["train_tokens_per_s"], vals["pretrain_tokens_per_s"], vals["sample_tokens_per_s"],
                       vals["score_tokens_per_s"], vals["load_seconds"])
        authors_entries = [e.authors for e in entries if e.authors is not None]

        def authors(q: str, base: float, default: float | None):
            for e in authors_entries:
                if getattr(e, f"{q}_tokens_per_s") is not None:
                    return getattr(e, f"{q}_tokens_per_s")
                if getattr(e, f"{q}_speedup") is not None:
                    return base / getattr(e, f"{q}_speedup")
            return default

        a_sample = authors("sample", premem.sample, cpu.get("authors_sample_tokens_per_s"))
        a_score = authors("score", premem.score, cpu.get("authors_score_tokens_per_s"))
        for q, v in (("sample", a_sample), ("score", a_score)):
            if v is None:
                missing.append(f"model {m.name!r}: no authors' {q} rate (authors.{q}_tokens_per_s or "
                               f"authors.{q}_speedup)")
        if a_sample is None or a_score is None:
            continue
        a_load = next((e.load_seconds for e in authors_entries if e.load_seconds is not None), premem.load)
        a_train = authors("train", premem.train, premem.train)
        a_pre = next((e.pretrain_tokens_per_s for e in authors_entries if e.pretrain_tokens_per_s is not None),
                     premem.pretrain)
        origin = " and ".join(sorted(o for o in origins if o)) or "file"
        out[m.name] = ModelRatesResolved(premem, Rates(a_train, a_pre, a_sample, a_score, a_load), origin)
    if missing:
        where = file or "a throughputs file"
        raise CostError([f"{msg}: give it in {where} under models.<name> or defaults" for msg in missing] +
                        ["(CPU defaults exist only for built-in models whose jobs ask for no GPU; see "
                         "premem/cost/throughputs-example.yaml for the fields)"])
    return out


def job_seconds(w: Work, r: Rates, authors: bool, premem_load: float | None = None) -> float:
    """Seconds of a job with rates `r` (`authors`: its load count; a job outside evaluation loads as premem
    does, `premem_load` seconds)."""
    train_rate = r.pretrain if w.pretrain else r.train
    load = r.load if not authors or w.evaluation or premem_load is None else premem_load
    return ((w.authors_loads if authors else w.loads) * load + w.trained / train_rate + w.scored / r.score
            + w.sampled / r.sample)


# ------------------------------------------------------------------------------------------ wall clock
def wall_clock(plan: Plan, seconds: dict[str, float], gpus: int, cpus: int, serialize: bool) -> float:
    """Hours until every job is done on a cluster of `gpus` GPUs and `cpus` CPUs: greedy list scheduling in plan
    order of the dependency graph (`serialize`: a checkpoint's jobs also wait for the run's last epoch).

    Each time a job ends, the jobs whose inputs are all done start in plan order, each that fits in what is
    free. Free resources only shrink while jobs start, so that is the same as repeatedly starting the
    earliest-planned ready job that fits; ready jobs are kept in one heap per resource request (a job kind's),
    so the replay costs O(jobs log jobs) however many jobs wait, not a scan of every waiting job per event."""
    jobs = [j for j in plan.jobs if j.kind != "analysis"]
    last_train: dict[str, str] = {}
    for j in jobs:
        if j.kind == "train":
            last_train[j.run] = j.id
    order = {j.id: i for i, j in enumerate(jobs)}
    waiting_on: dict[str, int] = {}  # job -> how many of its inputs are not done yet
    dependents: dict[str, list[str]] = {}
    for j in jobs:
        d = set(j.deps)
        if serialize and j.kind in EVAL_KINDS:
            d.add(last_train[j.run])
        d = {x for x in d if x in seconds}
        waiting_on[j.id] = len(d)
        for x in d:
            dependents.setdefault(x, []).append(j.id)
    need_of_kind = {}
    for kind in {j.kind for j in jobs}:
        res = _resources(plan.spec, kind)
        need_of_kind[kind] = (min(res.gpus, gpus) if res.gpus else 0.0, min(res.cpus, cpus))
    need = {j.id: need_of_kind[j.kind] for j in jobs}
    ready: dict[tuple[float, float], list[int]] = {n: [] for n in need_of_kind.values()}  # plan indexes
    for j in jobs:
        if not waiting_on[j.id]:
            heapq.heappush(ready[need[j.id]], order[j.id])
    running: list[tuple[float, str]] = []
    t, free_g, free_c = 0.0, float(gpus), float(cpus)
    left = len(jobs)
    while left:
        while True:  # start the earliest-planned ready job that fits, as long as one does
            fits = [(q[0], n) for n, q in ready.items() if q and n[0] <= free_g + 1e-9 and n[1] <= free_c + 1e-9]
            if not fits:
                break
            _, n = min(fits)
            jid = jobs[heapq.heappop(ready[n])].id
            free_g, free_c = free_g - n[0], free_c - n[1]
            heapq.heappush(running, (t + seconds[jid], jid))
        if not running:
            break  # nothing can start (cannot happen with valid resources)
        t, jid = heapq.heappop(running)
        left -= 1
        free_g, free_c = free_g + need[jid][0], free_c + need[jid][1]
        for x in dependents.get(jid, ()):
            waiting_on[x] -= 1
            if not waiting_on[x]:
                heapq.heappush(ready[need[x]], order[x])
    return t / 3600


# ---------------------------------------------------------------------------------------------- estimate
@dataclass
class KindCost:
    jobs: int = 0
    work: Work = field(default_factory=Work)
    premem_h: float = 0.0  # device-hours (GPU-h or CPU core-h)
    authors_h: float = 0.0
    todo_jobs: int = 0
    todo_premem_h: float = 0.0
    todo_authors_h: float = 0.0
    unit: str = "GPU-h"


@dataclass
class Estimate:
    kinds: dict[str, KindCost]
    stats: dict[str, DataStats]
    rates: dict[str, ModelRatesResolved]
    file: str | None
    note: str | None
    tokens_per_word: float
    wall: dict[str, float] | None
    cluster: tuple[int, int] | None
    same_sampler_ratio: float | None
    sampler: str = "transformers"
    scoring: str = "transformers"

    def totals(self, todo: bool = False) -> dict[str, tuple[float, float]]:
        """Per unit: (premem, authors) device-hours, of the jobs to run or of the whole study."""
        out: dict[str, tuple[float, float]] = {}
        for k in self.kinds.values():
            if not k.jobs:
                continue
            p, a = (k.todo_premem_h, k.todo_authors_h) if todo else (k.premem_h, k.authors_h)
            op, oa = out.get(k.unit, (0.0, 0.0))
            out[k.unit] = (op + p, oa + a)
        return out


def _unit_factor(spec, kind: str) -> tuple[str, float]:
    res = _resources(spec, kind)
    return ("GPU-h", res.gpus) if res.gpus > 0 else ("CPU-h", res.cpus)


def estimate(plan: Plan, status: dict[str, str] | None = None, throughputs: str | Path | None = None) -> Estimate:
    """The cost of `plan`, whole and of the jobs not yet done (`status`: job id -> status as `premem plan`
    shows it; None: everything is still to run)."""
    tp, file = load_throughputs(throughputs)
    spec = plan.spec
    tpw = tp.tokens_per_word or TOKENS_PER_WORD
    stats = {d.name: dataset_stats(d, tp.datasets.get(d.name) or tp.datasets.get(d.source), tpw)
             for d in spec.datasets}
    rates = resolve_rates(spec, tp, file)
    kinds = {k: KindCost(unit=_unit_factor(spec, k)[0]) for k in KINDS}
    sec_p, sec_a = {}, {}
    sec_same = {}
    for j in plan.jobs:
        if j.kind == "analysis":
            continue
        w = job_work(j, plan, stats)
        r = rates[j.model]
        sp, sa = job_seconds(w, r.premem, False), job_seconds(w, r.authors, True, r.premem.load)
        same = Rates(r.authors.train, r.authors.pretrain, r.premem.sample, r.authors.score, r.authors.load)
        sec_p[j.id], sec_a[j.id], sec_same[j.id] = sp, sa, job_seconds(w, same, True, r.premem.load)
        unit, factor = _unit_factor(spec, j.kind)
        k = kinds[j.kind]
        k.jobs += 1
        k.work = k.work + w
        k.premem_h += sp / 3600 * factor
        k.authors_h += sa / 3600 * factor
        if status is None or status.get(j.id) not in ("done", "diverged", "skipped"):
            k.todo_jobs += 1
            k.todo_premem_h += sp / 3600 * factor
            k.todo_authors_h += sa / 3600 * factor
    same_total = sum(sec_same[j.id] / 3600 * _unit_factor(spec, j.kind)[1] for j in plan.jobs if j.id in sec_same)
    premem_total = sum(k.premem_h for k in kinds.values())
    cluster = None
    wall = None
    uses_gpu = any(_uses_gpu(spec, k) and _unit_factor(spec, k)[0] == "GPU-h" for k in KINDS)
    gpus = tp.cluster.gpus if tp.cluster and tp.cluster.gpus is not None else None
    cpus = tp.cluster.cpus if tp.cluster and tp.cluster.cpus is not None else None
    if uses_gpu and gpus is None:
        pass  # no cluster size: no wall clock
    else:
        gpus = gpus or 0
        # a CPU study: this machine's cores unless the file says; a GPU study: CPUs never the bottleneck unless given
        cpus = (cpus or os.cpu_count() or 1) if not uses_gpu else (cpus or 1_000_000)
        cluster = (gpus, cpus)
        wall = {"premem": wall_clock(plan, sec_p, gpus, cpus, serialize=False),
                "authors": wall_clock(plan, sec_a, gpus, cpus, serialize=True)}
    return Estimate(kinds, stats, rates, file, tp.note, tpw, wall, cluster,
                    premem_total / same_total if same_total else None,
                    getattr(spec.evaluation, "sampler", "transformers"), getattr(spec.evaluation, "scoring", "transformers"))


# ------------------------------------------------------------------------------------------------ text
def _h(x: float) -> str:
    if x == 0:
        return "0"
    if x < 0.01:
        return f"{x:.4f}"
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def _wall(hours: float) -> str:
    return f"{hours:,.2f} h ({hours * 60:,.0f} min)" if hours < 2 else f"{hours:,.1f} h"


def _n(x: float) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:,.2f}{suffix}"
    return f"{x:,.0f}"


def _ratio(p: float, a: float) -> str:
    return f"{p / a:.2f}" if a else "n/a"


EXAMPLE_THROUGHPUTS = Path(__file__).resolve().parent / "throughputs-example.yaml"  # package data


def plan_footer(plan: Plan, status: dict[str, str], spec_path: str) -> list[str]:
    """The lines `premem plan` ends with: the study's work (runs, checkpoints, tokens to train and to sample) and
    its device-hours under stated assumptions: this project's measured CPU throughputs for a built-in model, else
    the example GPU figures of premem/cost/throughputs-example.yaml (shipped with premem)."""
    lines, assumed = [], None
    try:
        est = estimate(plan, status)
    except CostError:
        try:
            est = estimate(plan, status, EXAMPLE_THROUGHPUTS)
        except CostError as e:
            return ["Cost: " + e.lines[0]]
        assumed = "the example GPU throughputs of premem/cost/throughputs-example.yaml, all assumptions"
    work = sum((k.work for k in est.kinds.values()), Work())
    ckpts = sum(1 for j in plan.jobs if j.kind == "evaluate")
    lines.append(f"Work: {counted(len(plan.runs), 'grid run')}, {counted(ckpts, 'checkpoint evaluation')}; "
                 f"{_n(work.trained)} tokens trained on, {_n(work.sampled)} tokens sampled, {_n(work.scored)} target "
                 "tokens scored.")
    whole = est.totals()
    hours = "; ".join(f"{_h(p)} {unit} (the authors' way: {_h(a)})" for unit, (p, a) in whole.items())
    src = assumed or ("throughputs measured on this project's CPU" if est.file is None else est.file)
    lines.append(f"Hours: {hours}, with {src}. Details and assumptions: premem plan {spec_path} --cost")
    return lines


def format_estimate(est: Estimate, spec_path: str) -> str:
    out = []
    src = est.file or "no throughputs file (measured CPU defaults)"
    out.append(f"Cost estimate for {spec_path} (throughputs: {src})")
    if est.note:
        out.append(f"  note from the throughputs file: {est.note.strip()}")
    out.append("")
    out.append("Work (whole study; from the plan and the datasets' sizes):")
    out.append(f"  {'kind':<9} {'jobs':>6} {'tokens trained':>15} {'target tokens scored':>21} "
               f"{'tokens sampled':>15} {'model loads (premem / authors)':>31}")
    for name, k in est.kinds.items():
        if k.jobs:
            w = k.work
            out.append(f"  {name:<9} {k.jobs:>6,} {_n(w.trained):>15} {_n(w.scored):>21} {_n(w.sampled):>15} "
                       f"{f'{w.loads:,} / {w.authors_loads:,}':>31}")
    out.append("")
    out.append("Hours (device-hours: GPU-h = hours x the GPUs a job asks for; CPU-h = hours x its CPUs):")
    out.append(f"  {'kind':<9} {'unit':<6} {'premem':>10} {'authors':>10} {'premem/authors':>15}   "
               f"{'to run: jobs':>12} {'premem':>10} {'authors':>10}")
    for name, k in est.kinds.items():
        if k.jobs:
            out.append(f"  {name:<9} {k.unit:<6} {_h(k.premem_h):>10} {_h(k.authors_h):>10} "
                       f"{_ratio(k.premem_h, k.authors_h):>15}   {k.todo_jobs:>12,} {_h(k.todo_premem_h):>10} "
                       f"{_h(k.todo_authors_h):>10}")
    whole, todo = est.totals(), est.totals(todo=True)
    for unit, (p, a) in whole.items():
        tp_, ta = todo[unit]
        out.append(f"  {'total':<9} {unit:<6} {_h(p):>10} {_h(a):>10} {_ratio(p, a):>15}   {'':>12} {_h(tp_):>10} "
                   f"{_h(ta):>10}")
    main = "GPU-h" if "GPU-h" in whole else "CPU-h"
    p, a = whole[main]
    if a:
        verdict = "met" if p <= 0.5 * a else "NOT met"
        out.append(f"premem needs {p / a:.2f} x the authors' {main} for the whole study (goal: 0.5 or less: {verdict}).")
    if est.same_sampler_ratio is not None:
        out.append(f"  Were the authors' sampler as fast as premem's (e.g. vLLM), the ratio would be "
                   f"{est.same_sampler_ratio:.2f}.")
    if est.wall:
        g, c = est.cluster
        where = f"{g:,} GPUs" if g else f"{c:,} CPUs"
        out.append(f"Wall clock on {where}: premem {_wall(est.wall['premem'])} (a checkpoint is evaluated while the "
                   f"next epoch trains), authors {_wall(est.wall['authors'])} (checkpoints evaluated after their "
                   f"run's training); {_ratio(est.wall['premem'], est.wall['authors'])} x.")
        if g:
            out.append(f"  Reserving the {g:,} GPUs for the whole study: premem {_h(g * est.wall['premem'])} GPU-h, "
                       f"authors {_h(g * est.wall['authors'])} GPU-h.")
    else:
        out.append("Wall clock: not estimated (give cluster: {gpus: N} in the throughputs file).")
    out.append("")
    out.append("Assumptions:")
    for name, st in est.stats.items():
        comp = f", completions {st.completion_tokens:,.1f}" if st.completion_tokens else ""
        out.append(f"  - dataset {name}: {st.train:,} train / {st.test:,} test examples; mean prompt "
                   f"{st.prompt_tokens:,.1f} and target {st.target_tokens:,.1f} tokens{comp} ({st.source}).")
    for name, r in est.rates.items():
        p, a = r.premem, r.authors
        out.append(f"  - model {name} ({r.origin}): premem trains {p.train:,.0f} tok/s (pretraining {p.pretrain:,.0f}), "
                   f"samples {p.sample:,.0f} tok/s, scores {p.score:,.0f} target tok/s, {p.load:g} s a load; "
                   f"the authors' {a.train:,.0f} / {a.sample:,.0f} / {a.score:,.0f} tok/s, {a.load:g} s a load.")
    out += ["  - Sampled completions are as long as the targets on average (capped by max_new_tokens): on the "
            "quickstart 53.4 tokens a sample against 55.0 target tokens an example (bench/README.md).",
            "  - premem loads a model once per job; the authors' approach loads it twice per checkpoint evaluation "
            "(perplexity in fp32 one example at a time, then generate/vLLM) and once more per ATC measure.",
            f"  - premem samples with evaluation.sampler = {est.sampler} and scores with evaluation.scoring = "
            f"{est.scoring}: the throughputs must be that backend's.",
            "  - Training costs the same both ways; evaluation.skip_settled savings are not counted (an upper bound "
            "for premem); the driver's overhead (about 11 ms a job, 5 s to start Ray) is left out.",
            f"  - Hub datasets' token lengths: words x {est.tokens_per_word:g} tokens a word, or the lengths assumed "
            "in premem/cost/model.py (override with datasets.<name> in the throughputs file)."]
    if any("file" in r.origin for r in est.rates.values()):
        out.append("  - Throughputs from the file are the user's figures: check the file's own notes on which are "
                   "measured and which assumed.")
    return "\n".join(out)
