"""From a spec's dataset section to train and test examples (through the dataset registry).

Sources (spec.DatasetSpec): the built-in generated task (`builtin: arithmetic`), GSM8K and MATH (from the
Hugging Face Hub or local files) and your own files (`jsonl`). Every real source goes through
`datasets.load_dataset` (the hub id, or the `json`/`parquet`/`arrow` builders for local files), so local files
and the hub share one code path. Each example is a `TextExample` (or the built-in task's `Example`) with id,
question, solution, answer, difficulty and, for real sources, its `answer_format` (how grading reads and
compares final answers, see premem.data.answers).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import re
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

from premem.data.answers import extract_answer, extract_boxed, extract_gsm8k, normalize_number, solution_lines
from premem.registry import Registry

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "test")


@dataclass(frozen=True)
class Splits:
    """A dataset's examples: `train` and `test` lists of objects with id, question, solution, answer,
    difficulty; `task` is the generator when the dataset has one (the built-in task), else None.
    `skipped` counts, per split, rows left out because their gold answer does not parse (MATH rows with no
    \\boxed answer, or `jsonl` with on_unparseable: skip); `answer_format` is how answers are graded."""

    train: list
    test: list
    task: object | None = None
    skipped: dict = field(default_factory=dict, compare=False, hash=False)
    answer_format: str = "gsm8k"


@dataclass(frozen=True)
class TextExample:
    """One problem of a real dataset. `id` is `<split>-<index of the row in its split>` (`train-00012`),
    stable whatever filter or cap is applied; `solution` is the trace trained on (ending with the final
    answer in `answer_format`); `answer` the gold final answer; `difficulty` the paper's heuristic (GSM8K:
    solution lines before `####`; MATH: the level)."""

    id: str
    question: str
    solution: str
    answer: str
    difficulty: int
    answer_format: str = "gsm8k"


class DataError(ValueError):
    """A dataset that cannot be used as the spec describes it (missing column, unparseable gold answer,
    unknown hub id or configuration, malformed file): fixing the data or the spec is the remedy."""


DATASETS: Registry = Registry("dataset")


# ------------------------------------------------------------------------------------------ built-in task
def arithmetic_task(ds):
    """The built-in task generator a dataset section (spec.DatasetSpec) describes."""
    from premem.data.synthetic import ArithmeticTask

    return ArithmeticTask(seed=ds.seed, max_steps=ds.max_steps, max_value=ds.max_value, max_operand=ds.max_operand)


def _arithmetic(ds) -> Splits:
    task = arithmetic_task(ds)
    return Splits(train=task.split("train", ds.train_size), test=task.split("test", ds.test_size), task=task)


# ------------------------------------------------------------------------------------ reading with datasets
def _builder(path: str) -> str:
    """The `datasets` packaged builder for a local file, by its suffix."""
    name = path.lower()
    if name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
        return "json"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".arrow"):
        return "arrow"
    raise DataError(f"{path}: unknown file type (use .jsonl, .json, .parquet or .arrow)")


@contextlib.contextmanager
def _datasets_errors(where: str) -> Iterator[None]:
    """Quiet `datasets` (no progress bars or info logs) and turn its data errors into DataError."""
    import datasets
    from datasets.utils import logging as dlog

    bars = dlog.is_progress_bar_enabled()
    verbosity = dlog.get_verbosity()
    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    try:
        yield
    except DataError:
        raise
    except (datasets.exceptions.DatasetsError, ValueError, FileNotFoundError) as e:
        raise DataError(f"{where}: {type(e).__name__}: {e}") from e
    finally:
        dlog.set_verbosity(verbosity)
        if bars:
            dlog.enable_progress_bar()


def _columns(table, columns: list[str], where: str) -> dict[str, list]:
    """The named columns of a `datasets.Dataset` as lists; a DataError naming what is there otherwise."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(f"{where}: no column {', '.join(repr(c) for c in missing)}; "
                        f"its columns: {', '.join(table.column_names)}")
    return table.select_columns(columns).to_dict()


def read_file_columns(path: str, columns: list[str]) -> dict[str, list]:
    """The named columns of a local file, read with `datasets.load_dataset` (json/parquet/arrow builder).

    Built in a private temporary cache: `datasets` keys its cache of local files by modification time only,
    which can serve stale rows after an edit; parsing afresh costs little (about 0.1 s for GSM8K's 4 MB), and
    no two jobs ever rebuild one cache folder at once."""
    import datasets

    with tempfile.TemporaryDirectory(prefix="premem-data-") as tmp, _datasets_errors(path):
        table = datasets.load_dataset(_builder(path), data_files=path, split="train", cache_dir=tmp,
                                      keep_in_memory=True)
        return _columns(table, columns, path)


def _read_hub(hub: str, configs, revision: str | None, columns: list[str]) -> dict[str, tuple[str, dict]]:
    """Per split: (a label for messages, the columns) of `hub`, its `configs` concatenated in order
    (None: the hub dataset's default configuration)."""
    import datasets

    out: dict[str, tuple[str, dict]] = {}
    for cfg in configs:
        label = f"{hub}" + (f" ({cfg})" if cfg else "") + (f" @{revision}" if revision else "")
        with _datasets_errors(label):
            dd = datasets.load_dataset(hub, cfg, revision=revision)
        for split in SPLIT_NAMES:
            if split not in dd:
                raise DataError(f"{label}: no {split!r} split; it has {', '.join(dd)}")
            cols = _columns(dd[split], columns, f"{label} {split}")
            if split in out:
                _, prev = out[split]
                out[split] = (f"{hub} {split}", {c: prev[c] + cols[c] for c in columns})
            else:
                out[split] = (f"{label} {split}", cols)
    return out


def _read_source(src, configs, columns: list[str]) -> dict[str, tuple[str, dict]]:
    """Per split: (label, columns) from the source's local files, or else its hub dataset."""
    if getattr(src, "train_file", None) is not None:
        return {split: (getattr(src, f"{split}_file"), read_file_columns(getattr(src, f"{split}_file"), columns))
                for split in SPLIT_NAMES}
    return _read_hub(src.hub, configs, src.revision, columns)


def _text(value, what: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: {what} is {'empty' if isinstance(value, str) else repr(value)}")
    return value


def _cap(examples: list, n: int | None, seed: int, split: str) -> list:
    """At most `n` of `examples`: a seeded draw (nested as `n` grows), kept in their original order."""
    if n is None or n >= len(examples):
        return examples
    order = list(range(len(examples)))
    random.Random(f"premem-data|{seed}|{split}").shuffle(order)
    return [examples[i] for i in sorted(order[:n])]


def _finish(ds, examples: dict[str, list], skipped: dict[str, int], answer_format: str, what: str,
            why: str = "") -> Splits:
    if any(skipped.values()):
        log.warning("%s: skipped %s rows %s", what, " and ".join(f"{n} {s}" for s, n in skipped.items()), why)
    for split in SPLIT_NAMES:
        if not examples[split]:
            raise DataError(f"{what}: no {split} examples left" + (" after the levels filter"
                            if getattr(getattr(ds, "math", None), "levels", None) else ""))
    return Splits(train=_cap(examples["train"], ds.train_size, ds.seed, "train"),
                  test=_cap(examples["test"], ds.test_size, ds.seed, "test"),
                  skipped=dict(skipped), answer_format=answer_format)


# ------------------------------------------------------------------------------------------------- GSM8K
def _gsm8k(ds) -> Splits:
    src = ds.gsm8k
    tables = _read_source(src, (src.config,), ["question", "answer"])
    examples: dict[str, list] = {}
    for split, (label, cols) in tables.items():
        out = []
        for i, (q, sol) in enumerate(zip(cols["question"], cols["answer"])):
            ex_id = f"{split}-{i:05d}"
            where = f"{label}, row {i + 1} (id {ex_id})"
            sol = _text(sol, "the answer", where)
            gold = extract_gsm8k(sol)
            if gold is None:
                tail = sol.strip().splitlines()[-1][:80] if sol.strip() else ""
                raise DataError(f"{where}: no final answer after '####' in the answer field (last line: {tail!r})")
            out.append(TextExample(ex_id, _text(q, "the question", where), sol, gold,
                                   solution_lines(sol, "gsm8k"), "gsm8k"))
        examples[split] = out
    return _finish(ds, examples, {}, "gsm8k", "gsm8k")


# -------------------------------------------------------------------------------------------------- MATH
_LEVEL = re.compile(r"(?:level\s*)?([1-5])", re.IGNORECASE)


def math_level(value) -> int | None:
    """The level (1-5) of a MATH row's `level` field (`Level 3`, `3` or 3); None when it has none
    (a few MATH rows say `Level ?`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 5 else None
    if isinstance(value, str):
        m = _LEVEL.fullmatch(value.strip())
        return int(m.group(1)) if m else None
    return None


def _math(ds) -> Splits:
    src = ds.math
    configs = src.configs if src.configs is not None else (None,)
    tables = _read_source(src, configs, ["problem", "solution", "level"])
    levels = set(src.levels) if src.levels else None
    examples: dict[str, list] = {}
    skipped: dict[str, int] = {}
    for split, (label, cols) in tables.items():
        out, bad = [], 0
        for i, (q, sol, lev) in enumerate(zip(cols["problem"], cols["solution"], cols["level"])):
            level = math_level(lev)
            if levels is not None and level not in levels:
                continue
            ex_id = f"{split}-{i:05d}"
            where = f"{label}, row {i + 1} (id {ex_id})"
            sol = _text(sol, "the solution", where)
            gold = extract_boxed(sol)
            if gold is None:  # a few MATH solutions state the answer without \boxed{}: not gradable
                bad += 1
                continue
            out.append(TextExample(ex_id, _text(q, "the problem", where), sol, gold, level or 0, "boxed"))
        examples[split], skipped[split] = out, bad
    return _finish(ds, examples, skipped, "boxed", "math", "whose solution has no \\boxed{} final answer")


# ------------------------------------------------------------------------------------------ your own data
def _jsonl(ds) -> Splits:
    src = ds.jsonl
    fmt = src.answer_format
    columns = list(dict.fromkeys(c for c in (src.question_field, src.solution_field, src.answer_field,
                                             src.difficulty_field) if c is not None))
    examples: dict[str, list] = {}
    skipped: dict[str, int] = {}
    for split in SPLIT_NAMES:
        path = getattr(src, f"{split}_file")
        cols = read_file_columns(path, columns)
        out, bad = [], 0
        for i in range(len(cols[src.question_field])):
            ex_id = f"{split}-{i:05d}"
            where = f"{path}, row {i + 1} (id {ex_id})"
            question = _text(cols[src.question_field][i], f"{src.question_field!r}", where)
            sol = _text(cols[src.solution_field][i], f"{src.solution_field!r}", where)
            in_solution = extract_answer(sol, fmt)
            if src.answer_field is not None:
                raw = cols[src.answer_field][i]
                gold = None if raw is None else str(raw).strip()
                gold = (normalize_number(gold) if fmt == "gsm8k" else gold) or None
            else:
                gold = in_solution
            problem = None
            if in_solution is None:
                problem = ("the solution has no final answer " + ("after '####'" if fmt == "gsm8k" else "in \\boxed{}")
                           + " (the model learns to write its answer as the solutions do, and grading reads it there)")
            elif gold is None:
                problem = f"no gold answer in {src.answer_field!r}"
            if problem is not None:
                if src.on_unparseable == "error":
                    raise DataError(f"{where}: {problem}; fix the row or set on_unparseable: skip")
                bad += 1
                continue
            if src.difficulty_field is not None:
                raw = cols[src.difficulty_field][i]
                try:
                    difficulty = int(raw)
                except (TypeError, ValueError):
                    raise DataError(f"{where}: difficulty {src.difficulty_field!r} is {raw!r}, "
                                    "not an integer") from None
            else:
                difficulty = solution_lines(sol, fmt)
            out.append(TextExample(ex_id, question, sol, gold, difficulty, fmt))
        examples[split], skipped[split] = out, bad
    return _finish(ds, examples, skipped, fmt, "jsonl", "with no parseable final answer (on_unparseable: skip)")


DATASETS.register("arithmetic", _arithmetic)
DATASETS.register("gsm8k", _gsm8k)
DATASETS.register("math", _math)
DATASETS.register("jsonl", _jsonl)


# ---------------------------------------------------------------------------------------- loading, caching
def data_files(ds) -> dict[str, str]:
    """The local files a dataset section reads, by split ({} for the built-in task and hub datasets)."""
    src = getattr(ds, ds.source) if ds.builtin is None else None
    if src is None or getattr(src, "train_file", None) is None:
        return {}
    return {split: getattr(src, f"{split}_file") for split in SPLIT_NAMES}


def _stat_key(path: str) -> tuple:
    """What tells whether a file may have changed: inode, size, modification and status-change times (the
    last cannot be set back by hand, so an edit that restores size and mtime is still seen)."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


@lru_cache(maxsize=64)
def _sha256(path: str, stat_key: tuple) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes (cached per process while the file's `_stat_key` stays the same)."""
    return _sha256(os.path.abspath(path), _stat_key(path))


def dataset_fingerprint(ds, splits: tuple[str, ...] = SPLIT_NAMES) -> dict:
    """What a job's identity needs beyond the dataset section itself: the sha256 of the content of each local
    data file of `splits` ({"train_sha256": ..., "test_sha256": ...}), so editing a file reruns the jobs that
    read it. {} for the built-in task and for hub datasets (pin their `revision` to make them reproducible)."""
    files = data_files(ds)
    return {f"{split}_sha256": file_sha256(files[split]) for split in splits if split in files}


def _files_state(ds) -> tuple:
    out = []
    for path in data_files(ds).values():
        try:
            out.append((path, _stat_key(path)))
        except OSError:
            out.append((path, None))
    return tuple(out)


@lru_cache(maxsize=8)
def _load(ds, files_state: tuple) -> Splits:
    return DATASETS.get(ds.loader)(ds)


def load_splits(ds) -> Splits:
    """The train and test examples of dataset section `ds` (a spec.DatasetSpec; cached per process, and
    reloaded when one of its local files changes). Raises DataError when the data cannot be used."""
    return _load(ds, _files_state(ds))


def subset_indices(n: int, fraction: float, seed: int) -> list[int]:
    """Indices of the training examples a run on `fraction` of `n` examples uses (sorted; seeded draw).

    Full runs use every example; smaller fractions are nested for the same seed, so a quarter run's
    examples are a subset of the half run's.
    """
    m = max(1, round(n * fraction))
    if m >= n:
        return list(range(n))
    order = list(range(n))
    random.Random(f"subset-{seed}").shuffle(order)
    return sorted(order[:m])
