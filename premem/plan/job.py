"""A job of the plan and its identity: `Job`, `content_hash` and the code version of each kind of job.

Everything that plans jobs (premem.plan.build for the grid, premem.plan.curation for curation's rounds) and
everything that runs or costs them (premem.jobs.runners, premem.jobs.schedule, premem.cost.work) imports these from
here. This module imports nothing of premem but the settings types (premem.plan.job_settings), so it sits at the
bottom of the import graph.

A job's id is a hash of everything that determines its result: its kind, its resolved settings (labels such as
a model's `name` left out), the ids of the jobs it depends on, and the version of the code that computes it. So
two specs that share a job share its result, and an edit to a spec reruns only the jobs whose inputs it changed.
The hash is the key of every stored result: tests/test_job_ids.py pins it for every shipped spec.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from premem.plan.job_settings import (AnalysisSettings, CollectSettings, EvaluateSettings, JobSettings, MeasureSettings,
                                      PerturbSettings, PretrainSettings, ScoreSettings, TrainSettings)

@dataclass(frozen=True)
class JobKind:
    """One kind of job, as every stage that handles jobs knows it: `version` (bump it when the code that computes
    its result changes what it computes: every stored job of the kind reruns), `resources` (the spec's
    `resources:` section it asks Ray for), `reads_checkpoint` (it loads a finished checkpoint: the cost model
    serializes such jobs behind training on one GPU), `stored` (False for the analysis, recomputed on every
    apply) and `settings` (the type of its jobs' settings, premem.plan.job_settings). Its runner is
    premem.jobs.runners.RUNNERS[name] and its work premem.cost.work's; both modules refuse to import with a kind of
    this table missing, so a kind cannot be half-registered."""

    name: str
    version: str
    resources: str
    settings: type[JobSettings]
    reads_checkpoint: bool = False
    stored: bool = True


# train/evaluate "2": the built-in task's train and test splits became stratified by number of steps.
JOB_KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("pretrain", "2", "pretrain", PretrainSettings),
    JobKind("train", "2", "train", TrainSettings),
    JobKind("evaluate", "2", "evaluate", EvaluateSettings, reads_checkpoint=True),
    # one classic measure (premem.measures)
    JobKind("measure", "1", "evaluate", MeasureSettings, reads_checkpoint=True),
    JobKind("perturb", "1", "evaluate", PerturbSettings, reads_checkpoint=True),
    JobKind("analysis", "1", "", AnalysisSettings, stored=False),
    JobKind("collect", "1", "evaluate", CollectSettings),  # curation's own jobs ask Ray for what evaluation jobs do
    JobKind("score", "1", "evaluate", ScoreSettings),
)}
#: kind -> its version (what content_hash reads)
CODE_VERSIONS = {name: kind.version for name, kind in JOB_KINDS.items()}
#: the kinds whose jobs compute something and are stored (all but the analysis)
STORED_KINDS = tuple(name for name, kind in JOB_KINDS.items() if kind.stored)


def require_every_kind(handled, what: str) -> None:
    """Raise TypeError naming the stored kinds that `handled` (a module's table of kinds) lacks: called at import by
    each module that must handle every kind."""
    missing = [k for k in STORED_KINDS if k not in handled]
    if missing:
        raise TypeError(f"{what} has no entry for the job kind(s) {missing} (premem.plan.job.JOB_KINDS)")


@dataclass(frozen=True)
class Job:
    """A unit of work: `kind` is pretrain | train (one epoch of a run) | evaluate (one checkpoint) | measure (one
    classic measure of one checkpoint) | perturb (one checkpoint sampled under one prompt) | collect (one
    curation round's new examples) | score (IFD scores of the originals) | analysis. `run` names the grid run
    or the curation model (`curation/...`) a job belongs to.
    `settings` is the kind's settings type (premem.plan.job_settings; given as the plain dict its `hashed()` gives, it
    is turned into that type, and a key the kind has not is a TypeError); read-only: the jobs of a (model,
    dataset) pair share its nested sections.
    `deps` are in the order the id hashes them; `roles` name them (read them with `dep` and `deps_as`): the i-th
    dependency has roles[i], and the last role also names every dependency after it (an evaluation's
    `earlier` evaluations). Roles used: `start` (the model a train job starts from), `collected` (a curation
    round's new examples), `checkpoint` (what an evaluate, measure, perturb or score job reads), `base` (the
    model a run started from, for weight distance), `earlier` (skip_settled's earlier evaluations)."""

    id: str
    kind: str
    label: str
    settings: JobSettings
    deps: tuple[str, ...] = ()
    run: str | None = None
    epoch: int | None = None
    resources: dict = field(default_factory=dict)
    model: str | None = None  # the spec's name of the model it trains or reads (none for the analysis)
    dataset: str | None = None  # the spec's name of its run's dataset (none for pretrain and the analysis)
    roles: tuple[str, ...] = ()

    def __post_init__(self):
        kind = JOB_KINDS.get(self.kind)
        if kind is None:  # not premem's (a benchmark's no-op job): its settings are its own business
            return
        if isinstance(self.settings, dict):
            object.__setattr__(self, "settings", kind.settings.from_hashed(self.settings))
        elif not isinstance(self.settings, kind.settings):
            raise TypeError(f"{self.label}: a {self.kind} job's settings are {kind.settings.__name__}, "
                            f"not {type(self.settings).__name__}")

    def deps_as(self, role: str) -> tuple[str, ...]:
        """The ids of the dependencies in `role` (see the class docstring), in order; () if none. ValueError for a
        job whose dependencies have no roles (made by hand without them: reading one by position would guess)."""
        if not self.roles:
            if self.deps:
                raise ValueError(f"{self.label}: its dependencies have no roles (Job.roles)")
            return ()
        last = len(self.roles) - 1
        return tuple(d for i, d in enumerate(self.deps) if self.roles[min(i, last)] == role)

    def dep(self, role: str) -> str | None:
        """The id of the one dependency in `role`, or None when the job has none."""
        if role in self.roles[:-1]:  # a fixed position: no scan of a long variadic tail
            return self.deps[self.roles.index(role)]
        found = self.deps_as(role)
        return found[0] if found else None

    @property
    def short(self) -> str:
        return self.id[:10]


def plain_settings(settings: JobSettings | dict) -> dict:
    """A job's settings as the plain data its id hashes and the store records: a JobSettings' `hashed()`, or the
    dict itself (the settings of a job kind premem does not know, as a benchmark's no-op jobs)."""
    return settings.hashed() if isinstance(settings, JobSettings) else settings


def content_hash(kind: str, settings: Any, deps: tuple[str, ...]) -> str:
    """Hex sha256 of the job's kind, canonical JSON settings (plain_settings), dependency ids and code version."""
    settings = plain_settings(settings)
    blob = json.dumps({"kind": kind, "v": CODE_VERSIONS[kind], "settings": settings, "deps": list(deps)},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def content_hash_listed(kind: str, settings: Any, first: str, listed: bytes) -> str:
    """content_hash(kind, settings, (first, *ids)) for job ids (hex digests) given as `listed`, the tail of
    their JSON list (`,"id1","id2"`). With evaluation.skip_settled a checkpoint's evaluation depends on every
    earlier one of its run: a 1,000-epoch run's evaluations list 500,000 ids in all, and turning each list into
    JSON again took most of the planning time. Kept growing by the caller, the tail is hashed as it is: the
    same bytes as content_hash's JSON (ids are hex and need no escaping), so the same id."""
    settings = plain_settings(settings)
    h = hashlib.sha256(b'{"deps":[' + json.dumps(first).encode())
    h.update(listed)
    h.update(("],\"kind\":" + json.dumps(kind) + ",\"settings\":"
              + json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
              + ",\"v\":" + json.dumps(CODE_VERSIONS[kind]) + "}").encode())
    return h.hexdigest()


def make_job(kind: str, label: str, settings: JobSettings, deps: tuple[str, ...] = (), run: str | None = None,
             epoch: int | None = None, resources: dict | None = None, model: str | None = None,
             dataset: str | None = None, roles: tuple[str, ...] = ()) -> Job:
    """A Job whose id is the content hash of its kind, settings and dependencies."""
    return Job(content_hash(kind, settings, deps), kind, label, settings, deps, run=run, epoch=epoch,
               resources={} if resources is None else resources, model=model, dataset=dataset, roles=roles)


def section_content(section) -> dict:
    """A spec section (a pydantic model) as plain data, without its label (`name`), for hashing and for the job."""
    d = section.model_dump(mode="json")
    d.pop("name", None)
    return d
