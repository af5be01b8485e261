"""How many jobs of each kind a spec's plan has, counted without building it (`job_counts`).

The spec's size check (premem.spec.schema) refuses a study past its MAX_JOBS before any job is made, so the
count must not need the plan: it reads the runs (premem.spec.runs) and the kinds (premem.plan.job) only. It must
agree with premem.plan.build.build_plan and premem.plan.curation.curation_jobs; tests/plan/test_build.py checks that it
does for every shipped spec.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from premem.measures import always_measured
from premem.plan.job import CODE_VERSIONS
from premem.spec.runs import PerturbedEpochs, expand_runs, match_runs, measured_runs

if TYPE_CHECKING:  # annotations only: premem.spec.schema imports this module
    from premem.spec.runs import Run
    from premem.spec.schema import Spec


def job_counts(spec: Spec, runs: list[Run] | None = None) -> dict[str, int]:
    """How many jobs of each kind build_plan(spec) makes (`runs`: expand_runs(spec)), counted without making
    them, in time linear in runs: validation refuses a study past MAX_JOBS before anything is built.
    The spec must be otherwise valid (an ATC reference that selects exactly one run)."""
    runs = expand_runs(spec) if runs is None else runs
    counts = dict.fromkeys(CODE_VERSIONS, 0)
    counts["analysis"] = 1
    counts["pretrain"] = sum(m.pretrain is not None for m in spec.models)
    counts["train"] = counts["evaluate"] = sum(r.epochs for r in runs)
    measured = set(measured_runs(spec, runs))
    counts["measure"] = sum(r.epochs for r in measured) * len(spec.metrics.enabled())
    by_name = {r.name: r for r in runs}
    for (run, _), names in always_measured(spec, runs).items():  # e.g. the ATC reference checkpoint alone
        if by_name[run] not in measured:
            counts["measure"] += len(names)
    pert = spec.perturbations
    if pert is not None:
        epochs = PerturbedEpochs(pert)
        prompts = {b: 1 + len(pert.for_dataset(b)) for b in (True, False)}  # the original and each preamble
        builtin = {d.name: d.builtin is not None for d in spec.datasets}
        counts["perturb"] = sum(len(epochs.of(r)) * prompts[builtin[r.dataset]] for r in match_runs(runs, pert.runs))
    c = spec.curation
    if c is not None:  # as plan_curation.curation_jobs: round 0, the IFD scorer, each strategy's rounds
        cur = dict.fromkeys(CODE_VERSIONS, 0)
        cur["train"] += c.epochs * (1 + len(c.strategies) * c.rounds)
        cur["evaluate"] += c.epochs if "premem" in c.strategies else 1
        for strategy in c.strategies:
            cur["collect"] += c.rounds
            cur["evaluate"] += c.rounds + ((c.epochs - 1) * (c.rounds - 1) if strategy == "premem" else 0)
        if "ifd" in c.strategies:
            cur["train"] += c.ifd.epochs
            cur["score"] += 1
        n_seeds = len(c.seeds or [None])  # curation.seeds repeat all of it, once per seed
        for kind, n in cur.items():
            counts[kind] += n_seeds * n
    return counts
