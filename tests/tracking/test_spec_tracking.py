"""The spec's `tracking:` section: validated like the rest of the spec, and no part of any job's identity."""
import pytest

from premem.plan.build import build_plan
from premem.spec.load import SpecError, parse_spec
from tests.tracking.study import spec_text

ALL = """tracking:
  tensorboard: {log_dir: tb}
  mlflow: {tracking_uri: mlruns, experiment: smoke}
  wandb: {project: premem, entity: me, mode: offline, dir: wb}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(text)
    return [str(p) for p in e.value.problems]


def test_every_tracker_and_its_defaults():
    t = parse_spec(spec_text(ALL)).tracking
    assert t.named() == ["tensorboard", "mlflow", "wandb"]
    assert (t.tensorboard.log_dir, t.mlflow.experiment, t.wandb.mode, t.wandb.dir) == ("tb", "smoke", "offline", "wb")
    d = parse_spec(spec_text("tracking: {tensorboard: {}, mlflow: {}, wandb: {}}\n")).tracking
    assert (d.tensorboard.log_dir, d.mlflow.tracking_uri, d.mlflow.experiment) == ("runs", "mlruns", None)
    assert (d.wandb.project, d.wandb.entity, d.wandb.mode, d.wandb.dir) == (None, None, "online", None)


def test_typos_and_bad_values_are_errors_with_their_line():
    out = problems(spec_text("tracking:\n  tensorbord: {}\n"))
    assert any("tracking.tensorbord" in p and "did you mean \"tensorboard\"" in p for p in out), out
    out = problems(spec_text("tracking:\n  wandb: {mode: ofline, projet: x}\n"))
    assert any("tracking.wandb.mode" in p for p in out), out
    assert any("tracking.wandb.projet" in p and "did you mean \"project\"" in p for p in out), out
    lines = spec_text("").count("\n")
    assert any(p.startswith(f"<spec>:{lines + 2}:") for p in out), out  # file:line of the typo
    out = problems(spec_text("tracking: {}\n"))
    assert any("at least one tracker" in p for p in out), out


def test_tracking_changes_no_job_id():
    without = build_plan(parse_spec(spec_text()))
    with_all = build_plan(parse_spec(spec_text(ALL)))
    assert [j.id for j in with_all.jobs] == [j.id for j in without.jobs]
    # nor the spec's dump: tracking absent dumps exactly as before the section existed
    dumped = parse_spec(spec_text()).model_dump(mode="json")
    assert "tracking" not in dumped
    assert parse_spec(spec_text(ALL)).model_dump(mode="json")["tracking"]["wandb"]["mode"] == "offline"


def test_a_tracker_whose_package_is_missing_is_named_with_the_extra(monkeypatch):
    import sys

    from premem.tracking import missing_libraries

    spec = parse_spec(spec_text(ALL))
    assert missing_libraries(spec) is None
    assert missing_libraries(parse_spec(spec_text())) is None
    monkeypatch.setitem(sys.modules, "wandb", None)  # how Python marks a module that cannot be imported
    assert missing_libraries(spec) == ("tracking: wandb is named in the spec but the package is not installed: "
                                       "pip install 'premem[tracking]'")
