"""Values that validate but would break a later command are refused by the spec's (and the throughputs file's)
base models, for every field, present and future: NaN and infinities in any float, however nested; control
characters in any string (tabs and newlines only in the free-text fields that declare them); run selectors
that select no run (a calibration on nothing would be explained as if it were one)."""
import math
import typing
from types import UnionType

import pytest
from pydantic import BaseModel, ValidationError

from premem.cost.throughputs import ThroughputsFile
from premem.spec.load import SpecError, parse_spec
from premem.spec.schema import GenerateSource, JsonlSource, Perturbations, Spec
from tests.spec.test_schema import GOOD


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model class reachable from `root` through its fields' annotations."""
    seen: list[type[BaseModel]] = []

    def visit(tp):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp not in seen:
                seen.append(tp)
                for f in tp.model_fields.values():
                    visit(f.annotation)
            return
        for arg in typing.get_args(tp):
            visit(arg)

    visit(root)
    return seen


def _holding(tp, leaf: type, value):
    """An input for annotation `tp` that puts `value` where a `leaf` (float or str) goes, or None if it has none."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is leaf:
        return value
    if origin is typing.Annotated:
        return _holding(args[0], leaf, value)
    if origin in (typing.Union, UnionType):
        # a union tried in order: one whose other members cannot take the value (e.g. Literal["all"] | list[..])
        for a in args:
            v = _holding(a, leaf, value)
            if v is not None:
                return v
        return None
    if origin in (list, tuple, set, frozenset):
        items = [a for a in args if a is not Ellipsis]
        held = [_holding(a, leaf, value) for a in items]
        if any(h is not None for h in held):
            return [h if h is not None else value for h in held]
    if origin is dict:
        v = _holding(args[1], leaf, value)
        return None if v is None else {"k": v}
    return None


def _fields(leaf: type) -> list[tuple[type[BaseModel], str, object]]:
    out = []
    for model in _models(Spec) + _models(ThroughputsFile):
        for name, f in model.model_fields.items():
            v = _holding(f.annotation, leaf, math.nan if leaf is float else "a\x00b")
            if v is not None:
                out.append((model, name, v))
    return out


FLOATS = _fields(float)
STRINGS = [f for f in _fields(str) if f[0].__module__ != "premem.cost.throughputs"]  # a throughputs note is only printed


def test_the_walk_finds_the_fields_it_must():
    names = {f"{m.__name__}.{n}" for m, n, _ in FLOATS}
    assert {"PGrid.start", "PreMem.p", "JobResources.gpus", "Training.betas", "Grid.learning_rate",
            "RunSelector.dataset_fraction", "ModelRates.train_tokens_per_s"} <= names
    assert {"ModelSpec.name", "Gsm8kSource.train_file", "Spec.store", "Evaluation.stop"} <= \
        {f"{m.__name__}.{n}" for m, n, _ in STRINGS}


@pytest.mark.parametrize("model, field, value", FLOATS, ids=[f"{m.__name__}.{n}" for m, n, _ in FLOATS])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_no_float_field_takes_nan_or_infinity(model, field, value, bad):
    value = _swap(value, bad)
    with pytest.raises(ValidationError) as e:
        model.model_validate({field: value})
    assert any(err["type"] == "finite_number" and err["loc"][0] == field for err in e.value.errors()), e.value


def _swap(value, bad):
    if isinstance(value, float):
        return bad
    if isinstance(value, list):
        return [_swap(v, bad) for v in value]
    return {k: _swap(v, bad) for k, v in value.items()}


@pytest.mark.parametrize("model, field, value", STRINGS, ids=[f"{m.__name__}.{n}" for m, n, _ in STRINGS])
@pytest.mark.parametrize("ch", ["\x00", "\x1b", "\r", "\x9b", "\u202e", "\n"])
def test_no_string_field_takes_a_control_character(model, field, value, ch):
    if ch == "\n" and field in model.text_fields:
        return  # a newline belongs in a prompt template, a stop string, a preamble
    value = _swap_str(value, f"a{ch}b")
    with pytest.raises(ValidationError) as e:
        model.model_validate({field: value})
    assert any(err["loc"][:1] == (field,) and "control character" in err["msg"] for err in e.value.errors()), \
        e.value


def _swap_str(value, bad):
    if isinstance(value, str):
        return bad
    if isinstance(value, list):
        return [_swap_str(v, bad) for v in value]
    return {k: _swap_str(v, bad) for k, v in value.items()}


BASE = GOOD.replace("epochs: [1]", "epochs: [1, 2]")  # test_spec's smallest valid spec, with a second epoch


def test_free_text_keeps_its_newlines_and_tabs():
    assert parse_spec(BASE + 'evaluation: {stop: "\\nDone."}\n').evaluation.stop == "\nDone."
    assert Perturbations.model_validate({"preambles": [" First,\t\n"]}).preambles == [" First,\t\n"]
    assert GenerateSource.model_validate({"model": "m", "prompt": "Q:\t{question}\nA:"}).prompt == "Q:\t{question}\nA:"


@pytest.mark.parametrize("extra, where, what", [
    ("premem: {calibrate_on: [{epochs: 3}]}\n", "premem.calibrate_on.0", "selects no run of the study"),
    ("premem: {calibrate_on: [{epochs: 1}, {learning_rate: 2.0e-3}]}\n", "premem.calibrate_on.1", "selects no run"),
    ("premem: {calibrate_on: []}\n", "premem.calibrate_on", "an empty list selects no run"),
    ("metrics: {weight_distance: {}, runs: []}\n", "metrics.runs", "an empty list selects no run"),
    ("perturbations: {runs: []}\n", "perturbations.runs", "an empty list selects no run"),
])
def test_selectors_that_select_no_run_are_refused(extra, where, what):
    with pytest.raises(SpecError) as e:
        parse_spec(BASE + extra, "s.yaml")
    assert any(p.path == where and what in p.message for p in e.value.problems), e.value


def test_an_empty_calibration_list_is_fine_with_a_fixed_p():
    assert parse_spec(BASE + "premem: {calibrate_on: [], p: -1.0}\n").premem.calibrate_on == []


def test_a_data_file_that_cannot_be_read_is_refused(tmp_path, monkeypatch):
    import errno
    import os

    data = tmp_path / "train.jsonl"
    data.write_text('{"question": "q", "answer": "#### 1"}\n')
    real = os.open

    def refuse(path, *a, **k):  # as a file of another user would be (the tests may run as root, who reads all)
        if str(path) == str(data):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(path, *a, **k)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ValidationError) as e:
        JsonlSource.model_validate({"train_file": str(data), "test_file": str(data)})
    assert f"cannot read {data}: Permission denied" in str(e.value)
