"""What a job does when the store is not what it should be on its node: missing (an unmounted shared file
system) or holding a damaged dependency. The driver hands each job its dependencies' recorded checksums."""
import pytest

from premem.jobs.runners import StoreUnreachable, execute
from premem.store import CorruptArtifact, Store, artifact_checksums
from tests.made_jobs import evaluate_job


def _job(deps=("d" * 64,)):
    return evaluate_job("e" * 64, deps)


def test_a_store_missing_on_the_node_fails_the_job_saying_so(tmp_path):
    with pytest.raises(StoreUnreachable, match="not reachable on node .*mount the shared file system"):
        execute(_job(), str(tmp_path / "not-mounted"), lambda line: None)


def test_a_damaged_dependency_is_never_loaded(tmp_path):
    store = Store(tmp_path / "st")
    store.record(_job(()), "done", result={})  # creates the database, as the driver does before any job
    staging = store.staging("d" * 64)
    (staging / "model.safetensors").write_bytes(b"weights" * 100)
    folder = store.publish(staging, "d" * 64)
    sums = artifact_checksums(folder)
    (folder / "model.safetensors").write_bytes(b"weights" * 50)  # truncated after it was recorded
    with pytest.raises(CorruptArtifact, match="model.safetensors does not match"):
        execute(_job(), str(store.root), lambda line: None, expected={"d" * 64: sums})
