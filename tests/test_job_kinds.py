"""Every kind of job is known to every stage that handles jobs: a runner, a work model, Ray resources. A kind
added to premem.plan.job.JOB_KINDS alone makes the modules that lack it refuse to import, naming it."""
import pytest

from premem.cost.work import COSTED_KINDS, EVAL_KINDS, KINDS

from premem.jobs import runners as jobs
from premem.plan.job import CODE_VERSIONS, JOB_KINDS, STORED_KINDS, require_every_kind
from premem.spec.schema import Resources


def test_every_stored_kind_has_a_runner_a_cost_and_resources():
    assert set(STORED_KINDS) == set(jobs.RUNNERS) == set(COSTED_KINDS) == set(KINDS)
    assert set(CODE_VERSIONS) == set(STORED_KINDS) | {"analysis"}
    for name in STORED_KINDS:
        assert JOB_KINDS[name].resources in Resources.model_fields, name
    assert EVAL_KINDS == ("evaluate", "measure", "perturb")


def test_a_half_registered_kind_is_named():
    with pytest.raises(TypeError, match=r"\['score'\]"):
        require_every_kind({k: None for k in STORED_KINDS if k != "score"}, "a table")
    require_every_kind(dict.fromkeys(STORED_KINDS), "a table")
