"""Per-example results as one long table: what `premem analyze` reads and `premem export` writes.

The format (README, "Bring your own evaluations"): one row per (run, checkpoint, split, example), as Parquet,
CSV or JSONL, with columns
  run (string), checkpoint (integer ordering a run's checkpoints: an epoch or a step), split (train | test),
  example_id (string or integer; always compared as a string), n_samples and n_correct (integers) or
  accuracy (float in [0, 1]), perplexity (float > 1 of the example's target trace; required on train rows),
and optionally n_unparseable and run settings (learning_rate, epochs, dataset_fraction, model, dataset, or
any column constant within each run), either as columns or in a second table keyed by `run`.

`read_results` validates the table and turns it into `premem.analysis.results.RunData` (one per run, aligned on the
run's train examples) plus each run's settings. It is vectorised with numpy: no Python loop per row.
`export_table` builds the same table from a spec's store.

In the CSV files premem writes, a text cell that a spreadsheet would run as a formula (one that starts with
=, +, -, @, a tab or a carriage return and is not a number) gets a leading single quote; `read_table` takes
that quote off again, so `premem analyze` reads an exported CSV exactly as exported (premem/csvsafe.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from premem.analysis.results import RunData
from premem.atomic import replacing
from premem.csvsafe import safe_table, unquote_table
from premem.safetext import escape_controls

KEYS = ("run", "checkpoint", "split", "example_id")
SETTINGS = ("model", "dataset", "learning_rate", "epochs", "dataset_fraction")
MEASURES = ("n_samples", "n_correct", "accuracy", "perplexity", "n_unparseable")
MAX_PROBLEMS = 50
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv", ".tsv": "tsv",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}


class TableError(Exception):
    """The table is not valid: `problems` lists the first MAX_PROBLEMS of `total`, each naming its row and
    column (rows count from 1 and leave out a CSV file's header)."""

    def __init__(self, path: str, problems: list[str], total: int | None = None):
        self.path = str(path)
        self.problems = problems
        self.total = len(problems) if total is None else total
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        out = [escape_controls(f"{self.path}: {p}") for p in self.problems]  # they quote the table's values
        if self.total > len(self.problems):
            out.append(f"{self.path}: ... and {self.total - len(self.problems)} more problems")
        return out


@dataclass
class Results:
    """A validated results table: one RunData per run (in order of first appearance) and their settings."""

    path: str
    runs: list[RunData]
    n_rows: int
    notes: list[str] = field(default_factory=list)

    def select(self, items: list[str] | None) -> list[str]:
        """Run names for `--calibrate-on`: each item is a run's name or a selector `key=value[,key=value]`
        on run settings (numbers compare as numbers). None or empty: every run. Raises TableError."""
        if not items:
            return [r.name for r in self.runs]
        names = [r.name for r in self.runs]
        chosen: set[str] = set()
        problems = []
        for item in items:
            if item in names:
                chosen.add(item)
                continue
            if "=" not in item:
                problems.append(f"no run named {item!r} (runs: {_listing(names)})")
                continue
            conds = []
            for part in item.split(","):
                key, _, value = part.partition("=")
                conds.append((key.strip(), value.strip()))
            hits = [r.name for r in self.runs if all(_matches(r.settings.get(k), v) for k, v in conds)]
            if not hits:
                problems.append(f"no run has {item}")
            chosen.update(hits)
        if problems:
            raise TableError("--calibrate-on", problems)
        return [n for n in names if n in chosen]


def _listing(names: list[str], n: int = 8) -> str:
    shown = ", ".join(repr(x) for x in names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _matches(value, wanted: str) -> bool:
    if value is None:
        return False
    try:
        return math.isclose(float(value), float(wanted), rel_tol=1e-9, abs_tol=0.0)
    except (TypeError, ValueError):
        return str(value) == wanted


# --------------------------------------------------------------------------------------------- reading


def table_format(path: str | Path) -> str | None:
    name = str(path).lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return FORMATS[ext]
    return None


def read_table(path: str | Path) -> pa.Table:
    """A Parquet, CSV (.csv, .csv.gz, .tsv) or JSONL file as an Arrow table; TableError if it cannot be read.
    In CSV files `run`, `split`, `example_id`, `model` and `dataset` are read as strings, and the single quote
    premem's CSV writer puts before text that starts like a formula (`'=x`, `'-abc`) is taken off again
    (premem/csvsafe.py), so an exported CSV reads back as exported."""
    path = Path(path)
    fmt = table_format(path)
    if fmt is None:
        raise TableError(path, ["unknown file type: name it .parquet, .csv (or .csv.gz, .tsv) or .jsonl"])
    if not path.is_file():
        raise TableError(path, ["no such file"])
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if fmt in ("csv", "tsv"):
            import pyarrow.csv as pacsv

            strings = {c: pa.string() for c in ("run", "split", "example_id", "model", "dataset")}
            table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
                                   convert_options=pacsv.ConvertOptions(column_types=strings))
            return unquote_table(table)  # the quote premem puts before formula-like text (premem/csvsafe.py)
        import pyarrow.json as pajson

        return pajson.read_json(path)
    except (pa.ArrowException, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ""
        if "changed from" in msg:
            hint = " (a column must hold one type in every line: e.g. every example_id a string, or every one a number)"
        raise TableError(path, [f"cannot read it as {fmt}: {msg}{hint}"]) from None


class _Problems:
    """Problems found so far: per check, the first MAX_PROBLEMS rows and a count of all."""

    def __init__(self):
        self.items: list[tuple[int, int, str]] = []  # (row or -1, order, message)
        self.total = 0
        self.flagged: dict[str, np.ndarray] = {}  # column -> rows already reported in it

    def rows(self, mask: np.ndarray, column: str, message) -> None:
        """Every row where `mask` holds has a problem in `column`; `message(i)` describes row i (0-based).
        A cell already reported is not reported again."""
        seen = self.flagged.get(column)
        if seen is None:
            seen = self.flagged[column] = np.zeros(len(mask), dtype=bool)
        mask = mask & ~seen
        seen |= mask
        idx = np.flatnonzero(mask)
        if not idx.size:
            return
        self.total += int(idx.size)
        for i in idx[:MAX_PROBLEMS]:
            self.items.append((int(i), len(self.items), f"row {int(i) + 1}, column {column}: {message(int(i))}"))

    def add(self, message: str) -> None:
        self.total += 1
        self.items.append((-1, len(self.items), message))

    def __bool__(self) -> bool:
        return self.total > 0

    def raise_if_any(self, path) -> None:
        if self:
            items = sorted(self.items)[:MAX_PROBLEMS]
            raise TableError(path, [m for _, _, m in items], self.total)


def _isnull(col: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.is_null(col, nan_is_null=False).to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(table: pa.Table, name: str, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with NaN where missing or not a number, null mask). Values that are not numbers
    are reported."""
    col = table.column(name)
    null = _isnull(col)
    t = col.type
    if pa.types.is_null(t):
        return np.full(len(col), np.nan), null
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(vals, dtype=float), null
    try:
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(vals, dtype=float), null
    except pa.ArrowException:
        pass
    # the error path only: find the values that are not numbers
    py = col.to_pylist()
    vals = np.full(len(py), np.nan)
    bad = np.zeros(len(py), dtype=bool)
    for i, v in enumerate(py):
        if v is None:
            continue
        try:
            vals[i] = float(v)
        except (TypeError, ValueError):
            bad[i] = True
    problems.rows(bad, name, lambda i: f"{py[i]!r} is not a number")
    return vals, null | bad


EXACT = 2**53  # the largest float64 below which every integer is exact


def _integers(table: pa.Table, name: str, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, 0 where not valid; mask of valid rows). Integers are read as integers, never through
    float64, which holds them exactly only below 2**53 (two checkpoints 2**53 and 2**53 + 1 must stay two);
    missing values, non-integers and integers that do not fit in 64 bits, or that came as floats too large to
    be exact, are reported."""
    col = table.column(name)
    n = len(col)
    null = _isnull(col)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:  # integers written as text (JSONL with mixed types): parsed as integers when they all are
            col = pc.cast(col, pa.int64())
        except pa.ArrowException:
            pass
    problems.rows(null, name, lambda i: "missing value")
    if pa.types.is_integer(col.type):
        if pa.types.is_uint64(col.type):
            over = pc.fill_null(pc.greater(col, pa.scalar(2**63 - 1, pa.uint64())), False)
            huge = np.asarray(over.to_numpy(zero_copy_only=False), dtype=bool)
            problems.rows(huge, name, lambda i: f"must fit in 64 bits (at most {2**63 - 1}), got {col[i].as_py()}")
            col = pc.if_else(over, pa.scalar(0, pa.uint64()), col)
        vals = np.asarray(pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        ok = ~null & ~(problems.flagged.get(name, np.zeros(n, dtype=bool)))
        return np.where(ok, vals, 0), ok
    f, f_null = _numbers(table, name, problems)
    bad = ~f_null & (~np.isfinite(f) | (f != np.round(f)))
    problems.rows(bad, name, lambda i: f"must be an integer, got {float(f[i])!r}")
    big = ~f_null & ~bad & (np.abs(f) > EXACT)
    problems.rows(big, name, lambda i: f"{float(f[i])!r} is too large to be read exactly as a decimal number: write "
                  "checkpoints as whole numbers below 2**63, with no value in the column beyond that")
    ok = ~f_null & ~bad & ~big
    return np.where(ok, f, 0).astype(np.int64), ok


def _strings(table: pa.Table, name: str, problems: _Problems) -> pa.Array:
    """The column as one string Array; missing (null or empty) values are reported."""
    col = table.column(name)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        try:
            col = pc.cast(col, pa.string())
        except pa.ArrowException:
            problems.add(f"column {name}: values must be strings or integers, not {col.type}")
            problems.flagged[name] = np.ones(len(col), dtype=bool)  # no per-row problems on top of that
            return pa.array([""] * len(col), pa.string())
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        problems.rows(_isnull(arr), name, lambda i: "missing value")
        arr = pc.fill_null(arr, "")
    empty = np.asarray(pc.equal(pc.utf8_trim_whitespace(arr), "").to_numpy(zero_copy_only=False), dtype=bool)
    problems.rows(empty & ~_isnull(table.column(name)), name, lambda i: "empty value")
    return arr


def _encode(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(codes in order of first appearance, dictionary)."""
    enc = pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, enc.dictionary


def _fmt(v: float) -> str:
    return str(int(v)) if np.isfinite(v) and v == int(v) else repr(float(v))


def read_results(path: str | Path, runs_path: str | Path | None = None, table: pa.Table | None = None) -> Results:
    """Read and validate a results table (and an optional runs table); raise TableError listing every problem
    (the first MAX_PROBLEMS of them, with a count of the rest). `table`: the results already in memory (a
    notebook's DataFrame as Arrow), validated the same way; `path` then only names them in messages."""
    table = read_table(path) if table is None else table
    n = table.num_rows
    cols = set(table.column_names)
    problems = _Problems()

    # ------------------------------------------------------------------ columns
    for c in KEYS:
        if c not in cols:
            problems.add(f"column {c} is missing (required)")
    has_counts = "n_samples" in cols and "n_correct" in cols
    if ("n_samples" in cols) != ("n_correct" in cols):
        problems.add(f"column {'n_correct' if 'n_samples' in cols else 'n_samples'} is missing "
                     "(n_samples and n_correct go together)")
    elif not has_counts and "accuracy" not in cols:
        problems.add("columns n_samples and n_correct, or accuracy, are missing (one of them is required)")
    if n == 0 and not problems:
        problems.add("the table has no rows")
    problems.raise_if_any(path)

    # ------------------------------------------------------------------ rows
    run_arr = _strings(table, "run", problems)
    split_arr = _strings(table, "split", problems)
    ex_arr = _strings(table, "example_id", problems)
    split_py_ok = np.asarray(pc.is_in(split_arr, value_set=pa.array(["train", "test", ""])).to_numpy(
        zero_copy_only=False), dtype=bool)
    problems.rows(~split_py_ok, "split", lambda i: f"must be 'train' or 'test', got {split_arr[i].as_py()!r}")
    is_train = np.asarray(pc.equal(split_arr, "train").to_numpy(zero_copy_only=False), dtype=bool)
    if is_train.any() and "perplexity" not in cols:
        problems.add("column perplexity is missing (required for train rows)")
        problems.raise_if_any(path)

    ck_i, ck_ok = _integers(table, "checkpoint", problems)

    # accuracy: n_correct / n_samples where both are given, else the accuracy column
    acc = np.full(n, np.nan)
    counted = np.zeros(n, dtype=bool)  # rows with both n_samples and n_correct
    partial = np.zeros(n, dtype=bool)  # rows with one of them only
    ns = np.full(n, np.nan)
    if has_counts:
        ns, ns_null = _numbers(table, "n_samples", problems)
        nc, nc_null = _numbers(table, "n_correct", problems)
        counted = ~ns_null & ~nc_null
        partial = ns_null ^ nc_null
        bad_ns = counted & ((ns != np.round(ns)) | ~(ns >= 1))
        problems.rows(bad_ns, "n_samples", lambda i: f"must be an integer >= 1, got {_fmt(ns[i])}")
        bad_nc = counted & ~bad_ns & ((nc != np.round(nc)) | ~(nc >= 0) | ~(nc <= ns))
        problems.rows(bad_nc, "n_correct",
                      lambda i: f"must be an integer in [0, n_samples = {_fmt(ns[i])}], got {_fmt(nc[i])}")
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(counted, nc / ns, np.nan)
    from_acc = np.zeros(n, dtype=bool)
    if "accuracy" in cols:
        a, a_null = _numbers(table, "accuracy", problems)
        from_acc = ~counted & ~a_null
        problems.rows(from_acc & np.isnan(a), "accuracy", lambda i: "is NaN")
        bad_a = from_acc & ~np.isnan(a) & ~((a >= 0) & (a <= 1))
        problems.rows(bad_a, "accuracy", lambda i: f"must be in [0, 1], got {float(a[i])!r}")
        acc = np.where(from_acc, a, acc)
    if has_counts:
        problems.rows(partial & ~from_acc & ns_null, "n_samples", lambda i: "missing value (n_correct is given)")
        problems.rows(partial & ~from_acc & nc_null, "n_correct", lambda i: "missing value (n_samples is given)")
    need = " or ".join(x for x, ok in (("n_samples and n_correct", has_counts),
                                       ("accuracy", "accuracy" in cols)) if ok)
    problems.rows(~counted & ~partial & ~from_acc, "accuracy" if not has_counts else "n_samples",
                  lambda i: f"missing value: a row needs {need}")
    if "n_unparseable" in cols:
        nu, nu_null = _numbers(table, "n_unparseable", problems)
        bad_nu = ~nu_null & ((nu != np.round(nu)) | ~(nu >= 0) | (counted & (nu > ns)))
        problems.rows(bad_nu, "n_unparseable", lambda i: f"must be an integer in [0, n_samples], got {_fmt(nu[i])}")

    nll = np.full(n, np.nan)
    if "perplexity" in cols:
        perp, perp_null = _numbers(table, "perplexity", problems)
        problems.rows(is_train & perp_null, "perplexity", lambda i: "missing value (train rows need a perplexity)")
        given = is_train & ~perp_null
        problems.rows(given & np.isnan(perp), "perplexity", lambda i: "is NaN")
        bad_p = given & ~np.isnan(perp) & ~((perp > 1) & np.isfinite(perp))
        problems.rows(bad_p, "perplexity", lambda i: f"must be a finite number > 1, got {float(perp[i])!r}")
        with np.errstate(invalid="ignore", divide="ignore"):
            nll = np.where(is_train, np.log(perp), np.nan)

    # duplicates, among rows whose keys are all readable
    run_codes, run_dict = _encode(run_arr)
    ex_codes, ex_dict = _encode(ex_arr)
    keys_ok = ck_ok & split_py_ok
    if keys_ok.any():
        ok = np.flatnonzero(keys_ok)
        order = ok[np.lexsort((ex_codes[ok], ck_i[ok], is_train[ok], run_codes[ok]))]
        same = ((run_codes[order[1:]] == run_codes[order[:-1]]) & (is_train[order[1:]] == is_train[order[:-1]])
                & (ck_i[order[1:]] == ck_i[order[:-1]]) & (ex_codes[order[1:]] == ex_codes[order[:-1]]))
        if same.any():
            start = np.r_[True, ~same]
            group_start = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
            dup = np.zeros(n, dtype=bool)
            first_of = np.full(n, -1, dtype=np.int64)
            dup[order[~start]] = True
            first_of[order[~start]] = order[group_start[~start]]
            problems.rows(dup, "example_id", lambda i: f"duplicate of row {first_of[i] + 1} (same run, checkpoint, "
                                                       "split and example_id)")
    problems.raise_if_any(path)

    # ------------------------------------------------------------------ settings
    notes: list[str] = []
    run_names = [str(x) for x in run_dict.to_pylist()]
    settings, extra_ignored = _column_settings(table, run_codes, run_names, problems)
    if extra_ignored:
        notes.append(f"Column{'s' if len(extra_ignored) > 1 else ''} {', '.join(extra_ignored)} "
                     f"{'vary' if len(extra_ignored) > 1 else 'varies'} within runs and "
                     f"{'were' if len(extra_ignored) > 1 else 'was'} not used.")
    if runs_path is not None:
        _merge_runs_table(runs_path, run_names, settings, path, problems, notes)
    problems.raise_if_any(path)

    # ------------------------------------------------------------------ per run
    # train examples are ordered by example_id as strings (as the store's analysis orders them)
    by_id = pc.sort_indices(ex_dict)
    ex_rank = np.empty(len(ex_dict), dtype=np.int64)
    ex_rank[np.asarray(by_id.to_numpy(zero_copy_only=False), dtype=np.int64)] = np.arange(len(ex_dict))
    ex_sorted = np.asarray(ex_dict.take(by_id).to_pylist(), dtype=object)
    rank = ex_rank[ex_codes]
    order = np.lexsort((rank, ck_i, ~is_train, run_codes))
    bounds = np.flatnonzero(np.diff(run_codes[order])) + 1
    segments = np.split(order, bounds)
    runs: list[RunData] = []
    for seg in segments:
        name = run_names[run_codes[seg[0]]]
        tr = seg[is_train[seg]]
        te = seg[~is_train[seg]]
        if not te.size:
            problems.add(f"run {name!r} has no test rows")
        if not tr.size:
            problems.add(f"run {name!r} has no train rows")
        if not te.size or not tr.size:
            continue
        cps, cp_idx = np.unique(ck_i[tr], return_inverse=True)
        exs, ex_idx = np.unique(rank[tr], return_inverse=True)
        tcps, tcp_idx = np.unique(ck_i[te], return_inverse=True)
        for c in np.setdiff1d(cps, tcps):
            problems.add(f"run {name!r}, checkpoint {c}: train rows but no test rows")
        for c in np.setdiff1d(tcps, cps):
            problems.add(f"run {name!r}, checkpoint {c}: test rows but no train rows")
        counts = np.bincount(cp_idx, minlength=len(cps))
        for k in np.flatnonzero(counts != len(exs)):
            have = rank[tr][cp_idx == k]
            missing = np.setdiff1d(exs, have)
            shown = ", ".join(repr(str(x)) for x in ex_sorted[missing[:5]])
            problems.add(f"run {name!r}, checkpoint {cps[k]}: {len(missing)} of the run's {len(exs)} train examples "
                         f"have no row (e.g. {shown}); every checkpoint of a run needs the same train examples")
        if problems:
            continue
        a = np.full((len(cps), len(exs)), np.nan)
        l_ = np.full_like(a, np.nan)
        a[cp_idx, ex_idx] = acc[tr]
        l_[cp_idx, ex_idx] = nll[tr]
        test_sum = np.bincount(tcp_idx, weights=acc[te], minlength=len(tcps))
        test_n = np.bincount(tcp_idx, minlength=len(tcps))
        # per-example test accuracy (checkpoints x test examples; NaN where a checkpoint has no row for one),
        # which the bootstrap resamples (premem.analysis.intervals)
        texs, tex_idx = np.unique(rank[te], return_inverse=True)
        t = np.full((len(tcps), len(texs)), np.nan)
        t[tcp_idx, tex_idx] = acc[te]
        runs.append(RunData(name=name, settings=settings.get(name, {}), epochs=[int(c) for c in cps],
                            example_ids=[str(x) for x in ex_sorted[exs]], acc=a, nll=l_,
                            test_acc=test_sum / np.maximum(test_n, 1), train_loss=[None] * len(cps),
                            test_example_acc=t, test_example_ids=[str(x) for x in ex_sorted[texs]]))
    problems.raise_if_any(path)
    return Results(path=str(path), runs=runs, n_rows=n, notes=notes)


def _column_settings(table: pa.Table, run_codes: np.ndarray, run_names: list[str],
                     problems: _Problems) -> tuple[dict[str, dict], list[str]]:
    """Settings per run from the columns that are not keys or measures: those with one value per run (rows
    where it is empty do not count). A known setting column (SETTINGS) with two values in a run is a problem;
    another such column is ignored."""
    extra = [c for c in table.column_names if c not in KEYS and c not in MEASURES]
    extra.sort(key=lambda c: SETTINGS.index(c) if c in SETTINGS else len(SETTINGS))
    out: dict[str, dict] = {name: {} for name in run_names}
    ignored = []
    rows = np.arange(len(run_codes))
    for c in extra:
        col = table.column(c)
        if pa.types.is_null(col.type):
            continue
        try:
            codes, dictionary = _encode(col.combine_chunks())
        except pa.ArrowException:
            ignored.append(c)
            continue
        given = codes >= 0
        first = np.full(len(run_names), -1, dtype=np.int64)  # each run's first row with a value
        first[run_codes[given][::-1]] = rows[given][::-1]
        ref = first[run_codes]
        varies = given & (codes != codes[np.maximum(ref, 0)])
        if varies.any():
            if c in SETTINGS:
                problems.rows(varies, c, lambda k: f"a run setting must be the same on every row of a run: run "
                              f"{run_names[run_codes[k]]!r} has {col[int(ref[k])].as_py()!r} on row {int(ref[k]) + 1} "
                              f"but {col[k].as_py()!r} here")
            else:
                ignored.append(c)
            continue
        values = dictionary.to_pylist()
        for r, i in enumerate(first.tolist()):
            if i >= 0:
                out[run_names[r]][c] = values[codes[i]]
    return out, ignored


def _merge_runs_table(runs_path, run_names: list[str], settings: dict[str, dict], results_path,
                      problems: _Problems, notes: list[str]) -> None:
    """Settings from a runs table (one row per run, keyed by `run`) into `settings`; conflicts are problems."""
    table = read_table(runs_path)
    if "run" not in table.column_names:
        raise TableError(runs_path, ["column run is missing (required)"])
    own = _Problems()
    names = _strings(table, "run", own)
    codes, _ = _encode(names)
    dup = np.zeros(len(codes), dtype=bool)
    seen: dict[int, int] = {}
    first_row = {}
    for i, c in enumerate(codes.tolist()):  # one row per run: small
        if c in seen:
            dup[i] = True
            first_row[i] = seen[c]
        else:
            seen[c] = i
    own.rows(dup, "run", lambda i: f"run {names[i].as_py()!r} is also on row {first_row[i] + 1}")
    own.raise_if_any(runs_path)
    known = set(run_names)
    rows = table.to_pylist()
    unknown = [r["run"] for r in rows if str(r["run"]) not in known]
    if unknown:
        notes.append(f"{len(unknown)} run{'s' if len(unknown) != 1 else ''} of {runs_path} "
                     f"{'are' if len(unknown) != 1 else 'is'} not in {results_path}: {_listing(unknown, 5)}.")
    cols = [c for c in table.column_names if c != "run"]
    cols.sort(key=lambda c: (SETTINGS.index(c) if c in SETTINGS else len(SETTINGS)))
    for r in rows:
        name = str(r["run"])
        if name not in known:
            continue
        st = settings.setdefault(name, {})
        for c in cols:
            v = r[c]
            if v is None:
                continue
            if c in st and not _same(st[c], v):
                problems.add(f"run {name!r}: {c} is {st[c]!r} in {results_path} but {v!r} in {runs_path}")
                continue
            st[c] = v
    for name in list(settings):  # SETTINGS first, whichever table they came from
        st = settings[name]
        settings[name] = {k: st[k] for k in sorted(st, key=lambda c: (SETTINGS.index(c) if c in SETTINGS
                                                                       else len(SETTINGS)))}


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return str(a) == str(b)


# --------------------------------------------------------------------------------------------- export


def export_table(plan, store) -> pa.Table:
    """Every per-example result of the plan's finished checkpoints (those its report uses), one row per
    (run, checkpoint, split, example), with the runs' settings as columns; perplexity = exp(target NLL)."""
    from premem.analysis.analyze import finished_checkpoints

    by_run, _ = finished_checkpoints(plan, store)
    cols: dict[str, list] = {k: [] for k in ("run", "checkpoint", "split", "example_id", "n_samples", "n_correct",
                                             "n_unparseable", "perplexity", *SETTINGS)}
    for run in plan.runs:
        items = by_run.get(run.name)
        if not items:
            continue
        epoch_of = {jid: epoch for epoch, jid, _ in items}
        rows = store.examples(list(epoch_of))
        rows.sort(key=lambda r: (epoch_of[r["job_id"]], r["split"] != "train", r["example_id"]))
        st = run.settings()
        m = len(rows)
        cols["run"] += [run.name] * m
        cols["checkpoint"] += [epoch_of[r["job_id"]] for r in rows]
        for k in ("split", "example_id", "n_samples", "n_correct", "n_unparseable"):
            cols[k] += [r[k] for r in rows]
        cols["perplexity"] += [math.exp(r["nll"]) if r["nll"] is not None else None for r in rows]
        for k in SETTINGS:
            cols[k] += [st[k]] * m
    types = {"run": pa.string(), "checkpoint": pa.int64(), "split": pa.string(), "example_id": pa.string(),
             "n_samples": pa.int64(), "n_correct": pa.int64(), "n_unparseable": pa.int64(),
             "perplexity": pa.float64(), "model": pa.string(), "dataset": pa.string(),
             "learning_rate": pa.float64(), "epochs": pa.int64(), "dataset_fraction": pa.float64()}
    return pa.table({k: pa.array(v, type=types[k]) for k, v in cols.items()})


def export_extra_table(plan, store, table: str) -> pa.Table:
    """Per-example results of the plan's finished `perturb` jobs (table 'perturbations': one row per run,
    checkpoint, prompt and example, with the preamble and the samples' accuracy) or of its ATC jobs (table
    'atc': the greedy sample's mean and total log-probability per run, checkpoint and example)."""
    kind, measure = ("perturb", None) if table == "perturbations" else ("measure", "atc")
    jobs, _ = store.done_jobs([j for j in plan.jobs
                               if j.kind == kind and (measure is None or j.settings.measure == measure)])
    by_id = {j.id: j for j in jobs}
    rows = store.examples(list(by_id))
    rows.sort(key=lambda r: (by_id[r["job_id"]].run, by_id[r["job_id"]].epoch,
                             by_id[r["job_id"]].settings.preamble if kind == "perturb" else "",
                             str(r["example_id"])))
    cols: dict[str, list] = {"run": [], "checkpoint": [], "example_id": []}
    if kind == "perturb":
        cols |= {"prompt": [], "preamble": [], "n_samples": [], "n_correct": [], "n_unparseable": [], "accuracy": []}
    else:
        cols |= {"mean_logprob": [], "total_logprob": [], "n_tokens": []}
    for r in rows:
        j = by_id[r["job_id"]]
        cols["run"].append(j.run)
        cols["checkpoint"].append(j.epoch)
        cols["example_id"].append(str(r["example_id"]))
        if kind == "perturb":
            pre = j.settings.preamble
            cols["prompt"].append(pre.strip() or "original")
            cols["preamble"].append(pre)
            for k in ("n_samples", "n_correct", "n_unparseable"):
                cols[k].append(r[k])
            cols["accuracy"].append(r["n_correct"] / r["n_samples"] if r["n_samples"] else None)
        else:
            ok = r["nll"] is not None and r["n_target_tokens"]
            cols["mean_logprob"].append(-r["nll"] if ok else None)
            cols["total_logprob"].append(-r["nll"] * r["n_target_tokens"] if ok else None)
            cols["n_tokens"].append(r["n_target_tokens"])
    types = {"run": pa.string(), "checkpoint": pa.int64(), "example_id": pa.string(), "prompt": pa.string(),
             "preamble": pa.string(), "n_samples": pa.int64(), "n_correct": pa.int64(), "n_unparseable": pa.int64(),
             "accuracy": pa.float64(), "mean_logprob": pa.float64(), "total_logprob": pa.float64(),
             "n_tokens": pa.int64()}
    return pa.table({k: pa.array(v, type=types[k]) for k, v in cols.items()})


def export_curation_table(plan, store) -> pa.Table:
    """Every example the curation's strategies collected (table 'curation'): one row per strategy and collected
    example, from each strategy's last finished collect job (its artifact holds every round's), with the round
    that added it, the original it is a variant of, and its question, solution and answer."""
    cols: dict[str, list] = {k: [] for k in ("run", "strategy", "round", "example_id", "original_id", "question",
                                             "solution", "answer", "difficulty")}
    cp = plan.curation
    if cp is not None:
        records = store.records([j for ids in cp.collects.values() for j in ids])
        for seed, part in cp.per_seed():  # curation.seeds: each seed's collections, runs named .../seed<s>
            tag = f"/seed{seed}" if seed is not None else ""
            _add_collected(cols, store, records, part.collects, tag)
    types = {"round": pa.int64(), "difficulty": pa.int64()}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in cols.items()})


def _add_collected(cols: dict[str, list], store, records: dict, collects: dict[str, list[str]], tag: str) -> None:
    """The rows of export_curation_table for one seed's collect jobs (`tag`: its runs' name suffix)."""
    from premem.data.curate import read_collected

    for strategy, ids in collects.items():
        done = [j for j in ids if records.get(j) is not None and records[j].status == "done"]
        if not done:
            continue
        for ex in read_collected(store.artifact(done[-1])):
            for k, v in (("run", f"curation/{strategy}/round{len(done)}{tag}"), ("strategy", strategy),
                         ("round", ex.round), ("example_id", ex.id), ("original_id", ex.original),
                         ("question", ex.question), ("solution", ex.solution), ("answer", ex.answer),
                         ("difficulty", ex.difficulty)):
                cols[k].append(v)


def write_table(table: pa.Table, path: str | Path, fmt: str) -> Path:
    """Write `table` as parquet or csv to `path`, atomically (a temporary file renamed into place); return
    `path`. In CSV, text a spreadsheet would run as a formula gets a leading single quote (premem/csvsafe.py);
    Parquet keeps every value as it is."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}")
    path = Path(path)
    with replacing(path) as tmp:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(safe_table(table), tmp)  # no cell a spreadsheet would run as a formula
    return path
