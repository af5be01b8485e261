"""Whether the store can take a plan's work before any job starts (`store_problem`): a store that is a folder premem
can write, on a mounted file system, with room for the checkpoints the jobs still to run will write
(`checkpoint_bytes` each, known for built-in models) plus `STORE_MARGIN`. `premem apply` refuses with the reason.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from premem.plan.job import Job
    from premem.spec.schema import Spec

STORE_MARGIN = 64 * 2**20  # the database, the report and slack, beyond the checkpoints


def checkpoint_bytes(job: Job) -> int:
    """About how many bytes the artifact of `job` takes: a built-in model's weights (and for a training epoch
    its Adam state, two float32 values a weight). 0 where the size is not known from the spec."""
    model = getattr(job.settings, "model", {})  # the analysis and collect jobs have none
    size = model.get("size")
    if job.kind not in ("pretrain", "train") or not model.get("builtin") or not size:
        return 0
    from premem.data.tokenizer import WordTokenizer

    h, layers, mlp = size["hidden"], size["layers"], size["mlp"]
    params = WordTokenizer.for_arithmetic_task().vocab_size * h + layers * (4 * h * h + 3 * h * mlp + 2 * h) + h
    # a train job under training.precision pure writes weights in the model's dtype; mixed writes float32 ones
    pure = job.kind == "train" and job.settings.training.get("precision") == "pure"
    weight = 2 if model.get("dtype") in ("bfloat16", "float16") and pure else 4
    return params * (weight + (8 if job.kind == "train" else 0))


def store_problem(spec: Spec, todo: list[Job]) -> str | None:
    """Why the store cannot take this plan's work, known before any job starts (None if it can): a store path
    that is not a folder (or whose artifacts folder is not), a missing parent of an absolute store (an unmounted
    shared file system), a folder or database premem cannot write, or less free space than the checkpoints to
    write need."""
    root = Path(spec.store)
    if root.exists() and not root.is_dir():
        return f"the store {root} is not a folder"
    if not root.exists() and root.is_absolute() and not root.parent.is_dir():
        return (f"the store's parent folder {root.parent} does not exist (on a cluster: is the shared file system "
                "mounted?); premem creates the store folder itself, not the place it lives in")
    artifacts = root / "artifacts"
    if os.path.lexists(artifacts) and not artifacts.is_dir():
        return f"the store's artifacts folder {artifacts} is not a folder (a file is in its place)"
    place = root
    while not place.exists():
        place = place.parent
    probe = place / f".premem-write-test-{os.getpid()}"
    read_only = ("; `apply` needs to write the store (`status`, `plan`, `report` to a folder elsewhere and `export` "
                 "only read it)")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        return f"cannot write in {place.resolve()} (for the store {root}): {e.strerror or e}{read_only}"
    db = root / "premem.db"
    if db.exists() and not os.access(db, os.W_OK):
        return f"cannot write the results database {db}: it is read-only{read_only}"
    need = STORE_MARGIN + sum(checkpoint_bytes(j) for j in todo)
    free = shutil.disk_usage(place).free
    if free < need:
        return (f"only {free / 2**20:,.0f} MiB free on the file system of {place.resolve()}, and this plan's "
                f"checkpoints and results need about {need / 2**20:,.0f} MiB: free some space or move the store")
    return None
