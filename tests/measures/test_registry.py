"""The measure registry: the built-in measures in the paper's order, the spec's `metrics:` section built from it,
the rules a registration must follow, a broken plugin that does not stop premem, and the dump that keeps the
analysis settings (and so job ids) of stored studies."""
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from premem.measures import MEASURES, Measure, MeasureJob, register
from premem.measures.base import Checkpoint, Sizes
from premem.registry import Registry, UnknownName
from premem.spec.base import Strict
from premem.spec.schema import Metrics

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_in_measures_in_report_order():
    assert [m.name for m in MEASURES.in_order()] == ["gradient_variance", "weight_distance", "atc"]
    assert list(Metrics.model_fields) == ["gradient_variance", "weight_distance", "atc", "runs"]
    with pytest.raises(UnknownName, match='did you mean "atc"'):
        MEASURES.get("act")


def test_metrics_validates_each_measure_with_its_own_section_and_dumps_as_before():
    m = Metrics.model_validate({"weight_distance": {}, "atc": {"reference": {"epochs": 3}}})
    assert m.enabled() == ["weight_distance", "atc"]
    assert m.weight_distance.exclude_embeddings is True
    # the three measures premem had when studies were first stored dump null when off (analysis ids unchanged)
    assert Metrics().model_dump(mode="json") == {"gradient_variance": None, "weight_distance": None, "atc": None,
                                                 "runs": "all"}
    with pytest.raises(ValidationError, match="minibatches"):
        Metrics.model_validate({"gradient_variance": {"minibatches": 1}})
    with pytest.raises(ValidationError, match="extra"):
        Metrics.model_validate({"gradient_variance": {"minibaches": 5}})


class _Toy(Strict):
    pass


def _toy(name: str) -> Measure:
    return Measure(name=name, settings=_Toy, description="", label=name, axis=name,
                   plan=lambda c, at: MeasureJob(at.without_data, c, {"checkpoint": at.train}), run=lambda ctx: {"value": 1.0},
                   work=lambda c, s: {"loads": 1})


def test_a_registration_needs_a_free_identifier(monkeypatch):
    monkeypatch.setattr("premem.measures.base.MEASURES", Registry("measure"))
    for bad in ("runs", "premem", "two words", ""):
        with pytest.raises(ValueError, match="identifier"):
            register(_toy(bad))
    register(_toy("toy"))
    with pytest.raises(ValueError, match="registered twice"):
        register(_toy("toy"))


def test_each_built_in_measure_plans_and_costs_from_a_checkpoint():
    at = Checkpoint(train="t" * 64, base="b" * 64, batch_size=16, with_data={"model": {}, "dataset": {}},
                    without_data={"model": {}}, sampling={"temperature": 0.7, "train_examples": 10})
    gv = MEASURES.get("gradient_variance").plan({"minibatches": 5, "batch_size": None, "micro_batch": 8}, at)
    assert gv.config["batch_size"] == 16 and gv.deps == {"checkpoint": at.train} and "dataset" in gv.settings
    wd = MEASURES.get("weight_distance").plan({"exclude_embeddings": True}, at)
    assert wd.deps == {"checkpoint": at.train, "base": at.base} and "dataset" not in wd.settings
    atc = MEASURES.get("atc").plan({"reference": {}}, at)
    assert atc.config == {} and atc.settings["sampling"]["temperature"] == 0.0
    assert at.sampling["temperature"] == 0.7  # the checkpoint's own dicts are left as they were
    sizes = Sizes(run_examples=100, example_tokens=50, evaluated=10, completion_tokens=20)
    assert MEASURES.get("gradient_variance").work(gv.config, sizes)["trained"] == 5 * 16 * 50
    assert MEASURES.get("atc").work(atc.config, sizes)["sampled"] == 10 * 20


def test_a_broken_plugin_is_reported_and_left_out(tmp_path):
    """An installed package whose measure fails to import: premem still starts, says which plugin and why, and a
    spec naming it gets "unknown key"."""
    (tmp_path / "broken_measure.py").write_text("raise ImportError('no torch_scatter here')\n")
    info = tmp_path / "broken_measure-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-measure\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[premem.measures]\nbroken = broken_measure:MEASURE\n")
    proc = subprocess.run([sys.executable, "-c", "import premem.measures as m; print(m.MEASURES.names())"],
                          env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "['atc', 'gradient_variance', 'weight_distance']" in proc.stdout
    assert "'broken'" in proc.stderr and "no torch_scatter here" in proc.stderr
