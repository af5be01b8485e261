"""What the cost model knows of a dataset (`DataStats`: split sizes, mean prompt, target and completion tokens):
built-in tasks counted exactly with their tokenizer, local files as words x a tokens-per-word factor, known hub
datasets from their published sizes with assumed lengths (each assumption stated beside it); the throughputs file
can override any of them (`dataset_stats`)."""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from premem.cost.throughputs import CostError, DatasetSizes


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
