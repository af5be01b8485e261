"""Results into the API: a table file or a study's store as a pandas DataFrame in premem's long-table format,
and any of those (a path, a DataFrame, an Arrow table) as validated `premem.analysis.results_table.Results`.

The long-table format is the one `premem analyze` reads and `premem export` writes (premem/analysis/results_table.py):
one row per (run, checkpoint, split, example). Reading and validation are premem.analysis.results_table' own, so a
DataFrame is checked exactly as `premem analyze` checks a file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from premem.analysis.results_table import Results, read_results, read_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_table", "load_study", "open_study", "read"]


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """The results table at `path` (Parquet, CSV/.csv.gz/.tsv or JSONL) as a pandas DataFrame, read by the same
    reader `premem analyze` uses (CSV: `run`, `split`, `example_id`, `model`, `dataset` as text; the quote
    premem's CSV writer puts before formula-like text taken off). Columns as in the file: accuracies are
    fractions in [0, 1], `perplexity` is exp(mean target NLL per token). Not validated here: `analyze` does
    that. Raises premem.analysis.results_table.TableError when the file cannot be read."""
    return read_table(path).to_pandas()


def open_study(spec: str | os.PathLike, store: str | os.PathLike | None):
    """(spec, plan, store) of the spec file at `spec`; the store at `store` when given, else the spec's own
    (relative to the working directory, as the CLI reads it). FileNotFoundError when it holds no results."""
    from premem.plan.build import build_plan
    from premem.spec.load import load_spec
    from premem.store import Store

    s = load_spec(spec)  # SpecError (with file:line for each problem) on a bad spec
    st = Store(Path(store if store is not None else s.store))
    if not st.exists():
        raise FileNotFoundError(f"no results yet in {st.root}: run `premem apply {spec}` first (or pass store= "
                                "the study's store folder, e.g. where you ran apply)")
    return s, build_plan(s), st


def load_study(spec: str | os.PathLike, store: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every per-example result of the finished checkpoints of the study `spec` (a spec file's path), read from
    its store, as the DataFrame `premem export` writes: one row per (run, checkpoint, split, example) with
    n_samples, n_correct, n_unparseable (counts), perplexity (exp of the mean target NLL per token; empty on
    test rows) and the run settings (model, dataset, learning_rate, epochs, dataset_fraction). `store`: the
    store folder when it is not the spec's `store` relative to the working directory. Raises
    FileNotFoundError when the store holds no results, premem.spec.load.SpecError on a bad spec. Read only."""
    from premem.analysis.results_table import export_table

    _, plan, st = open_study(spec, store)
    return export_table(plan, st).to_pandas()


def read(data: Any, runs: str | os.PathLike | None = None) -> Results:
    """`data` validated as `premem analyze` validates its table: a path to a table file, a pandas DataFrame or a
    pyarrow Table in the long-table format (`runs`: an optional table file of run settings keyed by `run`).
    Returns premem.analysis.results_table.Results (one RunData per run, in order of first appearance); raises TableError
    listing every problem (rows counted from 1)."""
    if isinstance(data, (str, os.PathLike)):
        return read_results(data, runs_path=runs)
    import pyarrow as pa

    if isinstance(data, pa.Table):
        table = data
    elif hasattr(data, "to_parquet") or type(data).__module__.startswith("pandas"):
        table = pa.Table.from_pandas(data, preserve_index=False)
    else:
        raise TypeError(f"expected a table's path, a pandas DataFrame or a pyarrow Table, got {type(data).__name__}")
    return read_results("<DataFrame>", runs_path=runs, table=table)
