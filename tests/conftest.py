"""Fixtures the end-to-end tests share."""
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """The slow (end-to-end) tests first, each group in its usual order. Under `-n 2` the workers take test
    files in this order, so the files of a minute or more start at once and the many short ones fill the end,
    instead of a long file starting while the other worker runs out of work."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def smoke_pretraining(tmp_path_factory):
    """A function that puts, at the store folder it is given, a store whose only finished job is the smoke
    spec's pretraining (specs/smoke.yaml's model and its arithmetic generator: a test spec derived from it by
    changing its grid, train_size, evaluation or trust_remote_code shares that job's id; one that changes
    max_value or the model does not).

    The pretraining runs once per test process, through the same entry point a Ray worker calls
    (premem.jobs.runners.execute) and recorded as the driver records it; end-to-end tests whose subject is not
    pretraining start from a copy, so each of their applies skips about 13 s of it (tests that kill or fill
    the disk during pretraining, and the first full apply in test_cli_apply.py, still pretrain themselves)."""
    import torch

    from premem.jobs.runners import execute
    from premem.plan.build import build_plan
    from premem.spec.load import load_spec
    from premem.store import Store

    root = tmp_path_factory.mktemp("smoke-pretraining") / ".premem"
    (job,) = [j for j in build_plan(load_spec(ROOT / "specs" / "smoke.yaml")).jobs if j.kind == "pretrain"]
    store = Store(root)
    with store.connection():  # makes the database, which execute() requires
        pass
    threads = torch.get_num_threads()  # the job sets its own (as on a worker); this process keeps its own after
    try:
        store.record(job, "done", result=execute(job, str(root), lambda message: None), tries=1)
    finally:
        torch.set_num_threads(threads)

    def seed(store_folder: Path) -> Path:
        shutil.copytree(root, store_folder)
        return store_folder

    return seed
