"""cluster.yaml is a real Ray cluster-launcher config: validated here with Ray's own code (the
prepare_config + validate_config that `ray up` runs before touching a cloud), so it cannot rot."""
import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from premem.spec.load import parse_spec

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster.yaml"


def _ray_validate(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))  # merges the provider's defaults, as `ray up` does
    validate_config(prepared)  # Ray's JSON schema plus its own cross-field rules
    return prepared


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def test_ray_accepts_cluster_yaml(config):
    prepared = _ray_validate(config)
    assert prepared["provider"]["type"] == "aws"
    types = prepared["available_node_types"]
    assert prepared["head_node_type"] in types
    gpu = [t for t in types.values() if t.get("resources", {}).get("GPU", 0) >= 1]
    assert gpu and all(t.get("min_workers", 0) < t["max_workers"] for t in gpu)  # autoscaling, not fixed


def test_ray_validation_would_catch_a_broken_config(config):
    """The check above can fail: Ray rejects a misspelled field and a head type that does not exist."""
    bad = copy.deepcopy(config)
    bad["max_worker"] = bad.pop("max_workers")
    with pytest.raises(jsonschema.ValidationError):
        _ray_validate(bad)
    bad = copy.deepcopy(config)
    bad["head_node_type"] = "no-such-type"
    with pytest.raises(ValueError, match="head_node_type"):
        _ray_validate(bad)


def test_setup_installs_premem_gpu_with_torch_pinned_first(config):
    cmds = config["setup_commands"]
    torch_at = next(i for i, c in enumerate(cmds) if "torch==" in c)
    premem_at = next(i for i, c in enumerate(cmds) if "-e '.[gpu]'" in c)
    assert torch_at < premem_at
    pinned = next(c for c in cmds if "torch==" in c).split("torch==")[1].split()[0]
    readme = (ROOT / "README.md").read_text()
    assert f"torch=={pinned}" in readme  # the same torch the README installs
    assert "/home/ubuntu/premem" in config["file_mounts"]
    assert any("cd /home/ubuntu/premem" in c for c in cmds)


def test_shared_mount_is_where_the_docs_point_the_store(config):
    mount = next(c for c in config["setup_commands"] if "mount -t nfs4" in c)
    assert "/mnt/premem" in mount
    doc = (ROOT / "docs" / "CLUSTER.md").read_text()
    # the spec fragment the guide shows validates, with its store on the shared mount
    fragment = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = parse_spec(fragment, "CLUSTER.md")
    assert spec.store.startswith("/mnt/premem/") and spec.report.startswith("/mnt/premem/")
    assert spec.resources.train.gpus >= 1 and spec.device == "cuda"
