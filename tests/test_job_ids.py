"""Golden job ids: every shipped spec (and tests/golden/features.yaml, for the options the shipped specs leave at
their defaults) plans to exactly the job ids pinned in tests/golden/job_ids.json.

A job's id is the key of its stored result. If moving or rewriting code changes an id, every user's stored
study reruns that job and everything after it. So this file is not to be regenerated to make a refactoring pass:
only a change that really changes what a job computes may change ids, and that change bumps the kind's entry in
premem.plan.CODE_VERSIONS and says why. Then, and only then:

    python -m tests.test_job_ids --write
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from premem.plan import build_plan
from premem.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "job_ids.json"
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + [ROOT / "tests" / "golden" / "features.yaml"]


def planned_ids(spec_path: Path) -> dict[str, list[str]]:
    """{job label: [kind, id, dependency ids...]} of the plan of the spec at `spec_path`."""
    plan = build_plan(load_spec(str(spec_path)))
    out: dict[str, list[str]] = {}
    for job in plan.jobs:
        assert job.label not in out, f"two jobs share the label {job.label!r}"
        out[job.label] = [job.kind, job.id, *job.deps]
    return out


def _key(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_spec_is_pinned():
    pinned = json.loads(GOLDEN.read_text())
    assert sorted(pinned) == sorted(_key(p) for p in SPECS), (
        "a spec was added or removed: pin its job ids with `python -m tests.test_job_ids --write` (new specs only)")


@pytest.mark.parametrize("spec_path", SPECS, ids=_key)
def test_job_ids_are_unchanged(spec_path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # ids must not depend on the working directory
    want = json.loads(GOLDEN.read_text())[_key(spec_path)]
    got = planned_ids(spec_path)
    gone, new = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    changed = sorted(label for label in set(want) & set(got) if want[label] != got[label])
    assert not (gone or new or changed), (
        f"{_key(spec_path)}: stored studies would rerun. Jobs no longer planned: {gone[:5]}; newly planned: "
        f"{new[:5]}; id or dependencies changed: {changed[:5]} ({len(changed)} in all)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    GOLDEN.write_text(json.dumps({_key(p): planned_ids(p) for p in SPECS}, indent=0, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
