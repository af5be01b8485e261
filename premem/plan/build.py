"""Spec -> plan: the runs a spec asks for and the DAG of jobs that computes them (`build_plan`, the only entry).

A job's id is the content hash of everything that determines its result (premem.plan.job), so two specs that
share a job share its result, and an edit to a spec reruns only the jobs whose inputs it changed. The jobs of
the curation section come from premem.plan.curation, the settings a train job is made of from
premem.plan.settings.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from premem.measures import MEASURES, Checkpoint, always_measured
from premem.measures.atc import atc_reference
from premem.plan.counts import job_counts
from premem.plan.curation import CurationPlan, curation_jobs
from premem.plan.job import CODE_VERSIONS, Job, content_hash, content_hash_listed, section_content
from premem.plan.job_settings import (AnalysisSettings, EvaluateSettings, MeasureSettings, PerturbSettings,
                                      PretrainSettings, TrainSettings)
from premem.plan.settings import Pair, Pairs, scoring_dtype, train_settings
from premem.spec.runs import (SELECTOR_KEYS, PerturbedEpochs, Run, expand_runs, match_runs, measured_runs,
                              perturbed_epochs, selected_runs, unmatched_selectors)
from premem.spec.schema import Spec

# What `from premem.plan.build import ...` (premem.plan before the packages) has always given (tests, docs, users'
# scripts): the runs and selectors (premem.spec.runs), the job basics (premem.plan.job) and job_counts
# (premem.plan.counts) are re-exported.
__all__ = ["CODE_VERSIONS", "SELECTOR_KEYS", "Job", "Plan", "Run", "atc_reference", "build_plan", "content_hash",
           "expand_runs", "job_counts", "job_view", "match_runs", "measured_runs", "perturbed_epochs",
           "selected_runs", "settle_threshold", "unmatched_selectors"]


@dataclass
class Plan:
    """A spec's runs and every job that computes its study, in dependency order (what build_plan returns)."""

    spec: Spec
    runs: list[Run]  # the grid's runs (curation's models are in `curation`)
    jobs: list[Job]  # in dependency order
    curation: CurationPlan | None = None  # when the spec has a curation section

    def job(self, job_id: str) -> Job:
        return self._by_id[job_id]

    def __post_init__(self):
        self._by_id = {j.id: j for j in self.jobs}
        self._runs_by_name = {r.name: r for r in self.runs}

    def runs_by_name(self) -> dict[str, Run]:
        """The grid's runs by name (one dict, made once: callers look runs up per job; do not change it)."""
        return self._runs_by_name


def settle_threshold(spec: Spec) -> float:
    """The p below which a memorized example's PreMemAcc is settled for every p the analysis evaluates (the
    calibration grid and a fixed p alike): the smallest of them (evaluation.skip_settled)."""
    ps = spec.premem.p_grid.values() + ([spec.premem.p] if spec.premem.p is not None else [])
    return min(ps)


def build_plan(spec: Spec) -> Plan:
    """Expand the spec into runs and a dependency-ordered list of jobs with content-hash ids."""
    jobs: list[Job] = []
    res = spec.resources
    base_of: dict[str, str | None] = {}
    for m in spec.models:
        if m.pretrain is None:
            base_of[m.name] = None
            continue
        ds = spec.dataset(m.pretrain.dataset)
        # the corpus comes from the task generator alone: the sizes of the train and test splits do not matter
        generator = {k: v for k, v in section_content(ds).items() if k not in ("train_size", "test_size")}
        # pretraining always runs in float32 on built-in code: the finetuning dtype and remote-code switch
        # must not rerun it
        model = {k: v for k, v in section_content(m).items() if k not in ("dtype", "trust_remote_code")}
        # pretraining is per model, not per run: grid.seeds repeat the finetuning runs from the same base model
        settings = PretrainSettings(model=model, dataset=generator, seed=spec.seed, device=spec.device)
        job = Job(content_hash("pretrain", settings, ()), "pretrain", f"pretrain {m.name}", settings,
                  resources=res.pretrain.model_dump(), model=m.name)
        jobs.append(job)
        base_of[m.name] = job.id

    runs = expand_runs(spec)
    eval_ids = []
    pairs = Pairs(spec)
    train_res, eval_res = res.train.model_dump(), res.evaluate.model_dump()  # shared, read-only

    settle_below = settle_threshold(spec) if spec.evaluation.skip_settled else None
    extra_ids: list[str] = []  # measure and perturb jobs: the analysis reads them too
    measured = set(measured_runs(spec, runs))  # a set: membership per run must not scan every run
    perturbed = set(match_runs(runs, spec.perturbations.runs)) if spec.perturbations is not None else set()
    pert_of = PerturbedEpochs(spec.perturbations) if spec.perturbations is not None else None
    measured_anyway = always_measured(spec, runs)  # e.g. ATC's reference checkpoint
    for run in runs:
        pair = pairs.of(run)
        model, ds = pair.model, pair.dataset
        prev = base_of[run.model]
        run_evals: list[str] = []
        listed_evals = bytearray()  # ',"id1","id2"...': run_evals as the tail of a JSON list (skip_settled)
        pert_epochs = set(pert_of.of(run)) if run in perturbed else set()
        for epoch in range(1, run.epochs + 1):
            settings = train_settings(spec, model, ds, pair.training, run.learning_rate, run.epochs,
                                      run.dataset_fraction, epoch, pair, seed=run.seed)
            deps = (prev,) if prev else ()
            train = Job(content_hash("train", settings, deps), "train", f"train {run.name} epoch {epoch}",
                        settings, deps, run=run.name, epoch=epoch, resources=train_res, model=run.model,
                        dataset=run.dataset, roles=("start",) if deps else ())
            ev_settings = EvaluateSettings(model=pair.model_content, seed=run.seed, device=spec.device,
                                           dataset=pair.dataset_content, evaluation=pair.evaluation_content,
                                           dataset_fraction=run.dataset_fraction, data_files=pair.files or None,
                                           scoring_dtype=scoring_dtype(spec, model))
            ev_deps: tuple[str, ...] = (train.id,)
            if settle_below is not None:
                # skipping reads the run's earlier checkpoints' per-example results (its extra dependencies);
                # the samples are drawn with the seed of the same job without skipping, so an example that is
                # sampled gets the samples it would have got without the option when nothing is skipped
                ev_settings = replace(ev_settings, skip_settled_below=settle_below,
                                      sampling_seed=int(content_hash("evaluate", ev_settings, ev_deps)[:8], 16))
                ev_deps = (train.id, *run_evals)
                ev_id = content_hash_listed("evaluate", ev_settings, train.id, listed_evals)
            else:
                ev_id = content_hash("evaluate", ev_settings, ev_deps)
            ev = Job(ev_id, "evaluate", f"evaluate {run.name} epoch {epoch}", ev_settings, ev_deps, run=run.name,
                     epoch=epoch, resources=eval_res, model=run.model, dataset=run.dataset,
                     roles=("checkpoint", "earlier") if len(ev_deps) > 1 else ("checkpoint",))
            jobs.extend([train, ev])
            eval_ids.append(ev.id)
            run_evals.append(ev.id)
            if settle_below is not None:
                listed_evals += f',"{ev.id}"'.encode()
            base = base_of[run.model]
            names = spec.metrics.enabled() if run in measured else measured_anyway.get((run.name, epoch), [])
            extra = _measure_jobs(spec, pair, run, epoch, train, base, names)
            if epoch in pert_epochs:
                extra += _perturb_jobs(spec, pair, run, epoch, train)
            jobs.extend(extra)
            extra_ids.extend(j.id for j in extra)
            prev = train.id
    curation = None
    if spec.curation is not None:
        curation = curation_jobs(spec, base_of)
        jobs.extend(curation.jobs)
        extra_ids.extend(j.id for j in curation.jobs if j.kind in ("evaluate", "collect"))
    # premem's and perturbations' later options at their defaults dump as before they existed (Strict.hash_neutral)
    an_settings = AnalysisSettings(
        premem=spec.premem.model_dump(mode="json"), calibration_runs=[r.name for r in selected_runs(spec, runs)],
        metrics=spec.metrics.model_dump(mode="json") if spec.metrics.enabled() else None,
        perturbations=spec.perturbations.model_dump(mode="json") if spec.perturbations is not None else None,
        curation=spec.curation.model_dump(mode="json") if spec.curation is not None else None)
    deps = tuple(eval_ids + extra_ids)
    jobs.append(Job(content_hash("analysis", an_settings, deps), "analysis", "analysis and report",
                    an_settings, deps))
    return Plan(spec=spec, runs=runs, jobs=jobs, curation=curation)


def _checkpoint_settings(spec: Spec, pair: Pair, run: Run, with_data: bool = True) -> dict:
    """What identifies a checkpoint's inputs beyond its train job: the model, the run's training examples
    (the test split's size left out: these jobs read train examples only), the run's seed and the device."""
    out: dict[str, Any] = {"model": pair.model_content, "seed": run.seed, "device": spec.device}
    if with_data:
        out.update(dataset=pair.train_data, dataset_fraction=run.dataset_fraction)
        if pair.train_files:
            out["data_files"] = pair.train_files
    return out


def _sampling_settings(pair: Pair) -> dict:
    """How measure (ATC) and perturb jobs sample: the evaluation settings of the pair's dataset (its
    evaluation.overrides applied), always through premem's own transformers sampler (so `evaluation.sampler` is
    not part of their identity)."""
    ev = pair.evaluation
    return {"temperature": ev.temperature, "top_p": ev.top_p, "max_new_tokens": ev.max_new_tokens, "stop": ev.stop,
            "batch_size": ev.batch_size, "sampling_dtype": ev.sampling_dtype, "train_examples": ev.train_examples}


def _measure_jobs(spec: Spec, pair: Pair, run: Run, epoch: int, train: Job, base: str | None,
                  names: list[str]) -> list[Job]:
    """One job per classic measure in `names`, for the checkpoint `train` writes (each measure's `plan` says
    what its job is made of)."""
    out = []
    if not names:
        return out
    res = spec.resources.evaluate.model_dump()
    at = Checkpoint(train=train.id, base=base, batch_size=pair.batch_size,
                    with_data=_checkpoint_settings(spec, pair, run),
                    without_data=_checkpoint_settings(spec, pair, run, with_data=False),
                    sampling=_sampling_settings(pair))
    for name in names:
        planned = MEASURES.get(name).plan(getattr(spec.metrics, name).model_dump(mode="json"), at)
        # what a measure's plan may take from the checkpoint: MeasureSettings' fields (a TypeError names others)
        settings = MeasureSettings.from_hashed({**planned.settings, "measure": name, "config": planned.config})
        deps = tuple(planned.deps.values())  # in the order the id hashes them: the checkpoint first
        out.append(Job(content_hash("measure", settings, deps), "measure",
                       f"measure {name} {run.name} epoch {epoch}", settings, deps, run=run.name,
                       epoch=epoch, resources=res, model=run.model, dataset=run.dataset,
                       roles=tuple(planned.deps)))
    return out


def _perturb_jobs(spec: Spec, pair: Pair, run: Run, epoch: int, train: Job) -> list[Job]:
    """For a perturbed checkpoint: one job for the original prompt and one per preamble, each sampling every
    evaluated train prompt `perturbations.samples` times."""
    pert = spec.perturbations
    preambles = pert.for_dataset(pair.dataset.builtin is not None)
    out = []
    for preamble in ["", *preambles]:
        settings = PerturbSettings(**_checkpoint_settings(spec, pair, run), preamble=preamble,
                                   samples=pert.samples, sampling=_sampling_settings(pair))
        what = "original prompt" if not preamble else f"preamble {preamble.strip()!r}"
        out.append(Job(content_hash("perturb", settings, (train.id,)), "perturb",
                       f"perturb {what} {run.name} epoch {epoch}", settings, (train.id,), run=run.name,
                       epoch=epoch, resources=spec.resources.evaluate.model_dump(), model=run.model,
                       dataset=run.dataset, roles=("checkpoint",)))
    return out


def job_view(job: Job, status: str) -> dict:
    """A job as plain data for `premem plan --json`: id, kind, status and its resolved settings."""
    s = job.settings
    view: dict[str, Any] = {"id": job.short, "full_id": job.id, "kind": job.kind, "status": status,
                            "label": job.label, "run": job.run, "epoch": job.epoch, "depends_on": [d[:10] for d in job.deps]}
    if isinstance(s, (TrainSettings, EvaluateSettings)):
        view.update(model=job.model, dataset=job.dataset, dataset_fraction=s.dataset_fraction)
    if isinstance(s, TrainSettings):
        view.update(learning_rate=s.learning_rate, epochs=s.epochs, training=s.training)
    if isinstance(s, EvaluateSettings):
        view.update(evaluation=s.evaluation)
        if s.skip_settled_below is not None:
            view.update(skip_settled_below=s.skip_settled_below)
    if isinstance(s, PretrainSettings):
        view.update(model=job.model, pretrain=s.model["pretrain"])
    if isinstance(s, MeasureSettings):
        view.update(measure=s.measure, config=s.config)
    if isinstance(s, PerturbSettings):
        view.update(preamble=s.preamble, samples=s.samples)
    if isinstance(s, AnalysisSettings):
        view.update(premem=s.premem, calibration_runs=s.calibration_runs)
    return view
