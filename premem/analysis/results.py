"""The results the analysis reads, as data: `RunData` (one run's evaluated checkpoints as arrays) and
`finite_or_none` (a number as the summary writes it).

Both the analysis (premem.analysis.analyze) and the classic measures' and robustness analysis
(premem.analysis.measures) use them, and premem.analysis.results_table makes RunData from results computed outside
premem, so they live here, below all three.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunData:
    """One run's evaluated checkpoints, aligned on its train examples."""

    name: str
    settings: dict
    epochs: list[int]
    example_ids: list[str]
    acc: np.ndarray  # (checkpoints, examples); NaN where not measured (evaluation.skip_settled: n_samples 0)
    nll: np.ndarray  # (checkpoints, examples)
    test_acc: np.ndarray  # (checkpoints,)
    train_loss: list[float | None]
    # per-example test accuracy (checkpoints, test examples), NaN where not measured, with the test examples' ids;
    # None where the results have no per-example test rows (then only train examples can be resampled)
    test_example_acc: np.ndarray | None = None
    test_example_ids: list[str] = field(default_factory=list)


def finite_or_none(x) -> float | None:
    """`x` as a float, or None when it is missing, NaN or infinite (summary.json holds no NaN: JSON has none)."""
    return float(x) if x is not None and np.isfinite(x) else None


def block_of(settings: dict) -> tuple[str | None, str | None]:
    """The (model, dataset) block a run belongs to, from its settings: each as text, or None when the run does
    not say (a results table without that column). Runs of one block share a calibrated p."""
    model, dataset = settings.get("model"), settings.get("dataset")
    return (None if model is None else str(model), None if dataset is None else str(dataset))


def block_label(key: tuple[str | None, str | None]) -> str:
    """A block as people read it: 'model / dataset' ('-' for a part the runs do not name)."""
    return " / ".join("-" if part is None else part for part in key)
