"""Spec validation: every problem at once, each with file, line and field path."""
from pathlib import Path

import pytest

from premem.spec.load import SpecError, load_spec, parse_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"

GOOD = """\
name: t
models:
  - name: tiny
    builtin: tiny
    pretrain: {dataset: arith, examples: 10}
datasets:
  - name: arith
    builtin: arithmetic
    train_size: 8
    test_size: 8
grid:
  learning_rate: [1.0e-3]
  epochs: [1]
"""


def problems(text):
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return [str(p) for p in e.value.problems]


def test_good_spec_parses():
    spec = parse_spec(GOOD)
    assert spec.models[0].size.layers == 4
    assert spec.evaluation.temperature == 0.8 and spec.evaluation.top_p == 0.95


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_validate(path):
    load_spec(path)


def test_unknown_key_has_line_and_suggestion():
    out = problems(GOOD.replace("  epochs: [1]", "  epoch: [1]"))
    assert any(p.startswith("s.yaml:13: grid.epoch: unknown key") and 'did you mean "epochs"' in p for p in out), out


def test_every_error_reported_at_once():
    bad = GOOD.replace("learning_rate: [1.0e-3]", "learning_rate: [-1.0]").replace("test_size: 8", "test_size: many")
    bad += "evaluation:\n  samples: 0\n"
    out = problems(bad)
    assert len(out) == 3, out
    assert any(p.startswith("s.yaml:12: grid.learning_rate.0:") for p in out), out
    assert any(p.startswith("s.yaml:10: datasets.0.test_size:") for p in out), out
    assert any(p.startswith("s.yaml:15: evaluation.samples:") for p in out), out


def test_yaml_syntax_error_names_line():
    out = problems("name: t\nmodels: [\n  - x\n")
    assert out[0].startswith("s.yaml:") and "YAML syntax error" in out[0]


def test_unknown_builtin_names_suggest():
    out = problems(GOOD.replace("builtin: tiny", "builtin: tinny"))
    assert any("models.0.builtin" in p and 'did you mean "tiny"' in p for p in out), out
    out = problems(GOOD.replace("builtin: arithmetic", "builtin: arithmetc"))
    assert any("datasets.0.builtin" in p and 'did you mean "arithmetic"' in p for p in out), out


def test_empty_grid_is_an_error():
    out = problems(GOOD.replace("  learning_rate: [1.0e-3]\n", ""))
    assert any(p.startswith("s.yaml:11: grid:") and "zero runs" in p for p in out), out


def test_unknown_pretrain_dataset():
    out = problems(GOOD.replace("{dataset: arith,", "{dataset: arit,"))
    assert any("models.0.pretrain.dataset" in p and 'did you mean "arith"' in p for p in out), out


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "nope.yaml")
    assert "no such file" in str(e.value)
    assert "mapping" in problems("- 1\n- 2\n")[0]
    assert "empty" in problems("")[0]


def test_yaml_is_loaded_safely():
    out = problems(GOOD.replace("name: t", "name: !!python/object/apply:os.system ['echo hi']"))
    assert out and "YAML syntax error" in out[0]


def test_every_field_is_described():
    from premem.spec.schema import json_schema

    schema = json_schema()
    missing = []
    for name, definition in [("Spec", schema)] + list(schema.get("$defs", {}).items()):
        for field, prop in definition.get("properties", {}).items():
            if "description" not in prop:
                missing.append(f"{name}.{field}")
    assert not missing, missing


def test_checks_that_would_otherwise_fail_every_job():
    out = problems(GOOD.replace("    pretrain: {dataset: arith, examples: 10}\n", ""))
    assert any("models.0.pretrain" in p and "starts from nothing" in p for p in out), out
    out = problems(GOOD + "device: cuda\n")
    assert any("resources.train.gpus" in p for p in out) and any("resources.evaluate.gpus" in p for p in out), out
    out = problems(GOOD + "evaluation: {stop: END}\n")
    assert any("evaluation.stop" in p for p in out), out
