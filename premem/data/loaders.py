"""From a spec's dataset section to train and test examples (through the dataset registry)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from premem.registry import Registry


@dataclass(frozen=True)
class Splits:
    """A dataset's examples: `train` and `test` lists of objects with id, question, solution, answer,
    difficulty; `task` is the generator when the dataset has one (the built-in task), else None."""

    train: list
    test: list
    task: object | None = None


DATASETS: Registry = Registry("dataset")


def arithmetic_task(ds):
    """The built-in task generator a dataset section (spec.DatasetSpec) describes."""
    from premem.data.synthetic import ArithmeticTask

    return ArithmeticTask(seed=ds.seed, max_steps=ds.max_steps, max_value=ds.max_value, max_operand=ds.max_operand)


def _arithmetic(ds) -> Splits:
    task = arithmetic_task(ds)
    return Splits(train=task.split("train", ds.train_size), test=task.split("test", ds.test_size), task=task)


DATASETS.register("arithmetic", _arithmetic)


@lru_cache(maxsize=8)
def load_splits(ds) -> Splits:
    """The train and test examples of dataset section `ds` (a spec.DatasetSpec; cached per process)."""
    return DATASETS.get(ds.builtin)(ds)


def subset_indices(n: int, fraction: float, seed: int) -> list[int]:
    """Indices of the training examples a run on `fraction` of `n` examples uses (sorted; seeded draw).

    Full runs use every example; smaller fractions are nested for the same seed, so a quarter run's
    examples are a subset of the half run's.
    """
    import random

    m = max(1, round(n * fraction))
    if m >= n:
        return list(range(n))
    order = list(range(n))
    random.Random(f"subset-{seed}").shuffle(order)
    return sorted(order[:m])
