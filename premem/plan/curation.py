"""The curation section's jobs: rounds of (train, evaluate, collect) per strategy, chained by content hash.

Round 0 trains on the originals alone and is shared by every strategy. Round r of a strategy trains a fresh
model (from the base) on the originals plus what its collect job of round r gathered; that collect job
depends on the strategy's collect job of round r-1 (its artifact holds every example so far) and on what the
strategy selects with: premem the evaluations of its round r-1 model, ifd the scoring model's scores,
iid and heuristic nothing. So a crash in round 3 resumes in round 3, and changing only `threshold` reruns
premem's collect jobs and the rounds after them, nothing of the rivals'.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from premem.data.loaders import dataset_fingerprint
from premem.engine.hf import model_fingerprint
from premem.plan.job import Job, make_job, section_content
from premem.plan.job_settings import CollectSettings, EvaluateSettings, ScoreSettings
from premem.plan.settings import hashed_evaluation, hashed_training, scoring_dtype, train_settings
from premem.spec.schema import Spec

ROUND0 = "curation/round0"


@dataclass(frozen=True)
class CurationRun:
    """One trained model of the curation study: a point of the curves of `strategies`."""

    name: str
    strategies: tuple[str, ...]
    round: int
    collect: str | None  # the collect job whose examples it adds to the originals (None: round 0)
    train: tuple[str, ...]  # train job ids, one per epoch
    evals: tuple[str, ...]  # evaluate job ids (every epoch when its PreMemAcc selects, else the final one)
    final_eval: str  # the evaluation with test accuracy (the final epoch's)
    seed: int | None = None  # its seed when curation.seeds are given (None: the spec's seed, names without one)


@dataclass
class CurationPlan:
    """The jobs of the curation section and where each strategy's points and collect jobs are. With
    curation.seeds, `parts` holds one such plan per seed (in `seeds` order) and this one joins them: its runs and
    jobs are all of theirs, its collects are keyed '<strategy>/seed<s>' and its scorer is None; read a seed's
    collects and scorer through `per_seed`."""

    runs: list[CurationRun]
    collects: dict[str, list[str]]  # strategy -> collect job id per round 1..n
    scorer: str | None  # the IFD score job
    jobs: list[Job]  # every job, in dependency order
    seeds: list[int] = field(default_factory=list)  # curation.seeds (empty: none given)
    parts: list[CurationPlan] = field(default_factory=list)  # one plan per seed, with seeds

    @cached_property
    def _rounds(self) -> dict[str, int]:
        return {r.name: r.round for r in self.runs}

    def round_of(self, run: str) -> int:
        """The round of the curation model named `run` (0: the originals alone)."""
        return self._rounds[run]

    def per_seed(self) -> list[tuple[int | None, CurationPlan]]:
        """[(seed, that seed's plan)]: [(None, self)] without curation.seeds."""
        return list(zip(self.seeds, self.parts)) if self.parts else [(None, self)]


def curation_jobs(spec: Spec, base_of: dict[str, str | None]) -> CurationPlan:
    """The curation section's jobs, in dependency order. `base_of`: model name -> the id of its pretrain job
    (None for a hub model). A round's train jobs have the grid's train-job settings (premem.plan.settings) plus
    what the round adds. With curation.seeds the whole study (round 0, the IFD scorer, every strategy's rounds)
    is planned once per seed, each hashing its seed where the spec's seed is hashed otherwise (so a seed equal
    to the spec's plans the jobs of a spec without seeds, under names with a seed part); the base model's
    pretraining is shared."""
    seeds = spec.curation.seeds
    if not seeds:
        return _seed_jobs(spec, base_of, spec.seed, None)
    parts = [_seed_jobs(spec, base_of, s, s) for s in seeds]
    return CurationPlan(runs=[r for p in parts for r in p.runs],
                        collects={f"{k}/seed{s}": v for s, p in zip(seeds, parts) for k, v in p.collects.items()},
                        scorer=None, jobs=[j for p in parts for j in p.jobs], seeds=list(seeds), parts=parts)


def _seed_jobs(spec: Spec, base_of: dict[str, str | None], seed: int, named: int | None) -> CurationPlan:
    """The curation jobs of one seed; `named`: the seed that names and labels them (None: no seed part)."""
    tag, label_tag = (f"/seed{named}", f" seed {named}") if named is not None else ("", "")
    c = spec.curation
    model_name, ds_name = spec.curation_pair()
    model, ds = spec.model(model_name), spec.dataset(ds_name)
    res = spec.resources
    base = base_of[model_name]
    training = hashed_training(spec.training.for_run(model_name, ds_name), model)
    if c.batch_size is not None:
        training["batch_size"] = c.batch_size
    # the curated dataset's settings (evaluation.overrides resolved); skip_settled does not apply to curation
    evaluation = hashed_evaluation(spec.evaluation.for_dataset(ds_name))
    jobs: list = []

    def train_chain(run: str, collect: str | None, lr: float, epochs: int, split: str | None = None) -> list:
        prev, out = base, []
        for epoch in range(1, epochs + 1):
            s = train_settings(spec, model, ds, training, lr, epochs, 1.0, epoch, seed=seed)
            deps = (prev,) if prev else ()
            if collect is not None:  # the examples this round adds (a dependency, read from its artifact)
                s = replace(s, collected=collect)
                deps += (collect,)
            if split is not None:  # the IFD scorer trains on another split: its size is part of its identity
                s = replace(s, train_split=split, dataset=section_content(ds),
                            data_files=dataset_fingerprint(ds) or s.data_files)
            roles = (("start",) if prev else ()) + (("collected",) if collect is not None else ())
            j = make_job("train", f"train {run} epoch {epoch}", s, deps, run, epoch, res.train.model_dump(),
                         model_name, ds_name, roles)
            out.append(j)
            prev = j.id
        return out

    def evaluations(run: str, train: list, selects: bool) -> list:
        """Every epoch with every original evaluated (PreMemAcc selects from it), test accuracy at the final
        one; or only the final epoch's test accuracy."""
        out = []
        for epoch, tj in enumerate(train, start=1):
            final = epoch == len(train)
            if not selects and not final:
                continue
            ev = dict(evaluation, train_examples=None if selects else 0,
                      test_examples=evaluation["test_examples"] if final else 0)
            s = EvaluateSettings(model=section_content(model), seed=seed, device=spec.device,
                                 dataset=section_content(ds), evaluation=ev, dataset_fraction=1.0,
                                 data_files=dataset_fingerprint(ds) or None, scoring_dtype=scoring_dtype(spec, model))
            out.append(make_job("evaluate", f"evaluate {run} epoch {epoch}", s, (tj.id,), run, epoch,
                                res.evaluate.model_dump(), model_name, ds_name, ("checkpoint",)))
        return out

    def add_run(name, strategies, round_, collect, selects) -> CurationRun:
        tr = train_chain(name, collect, c.learning_rate, c.epochs)
        ev = evaluations(name, tr, selects)
        jobs.extend(tr + ev)
        return CurationRun(name, tuple(strategies), round_, collect, tuple(j.id for j in tr),
                           tuple(j.id for j in ev), ev[-1].id, named)

    runs = [add_run(ROUND0 + tag, c.strategies, 0, None, "premem" in c.strategies)]
    scorer = None
    if "ifd" in c.strategies:
        ifd = c.ifd
        tr = train_chain("curation/ifd-scorer" + tag, None, ifd.learning_rate or c.learning_rate, ifd.epochs, ifd.split)
        s = ScoreSettings(model=section_content(model), seed=seed, device=spec.device, dataset=section_content(ds),
                          data_files=dataset_fingerprint(ds) or None,
                          # hashed only when set, so existing score jobs keep their ids
                          unconditional=ifd.unconditional if ifd.unconditional != "after_cue" else None)
        score = make_job("score", "score IFD of the originals" + label_tag, s, (tr[-1].id,), "curation/ifd-scorer" + tag,
                         None, res.evaluate.model_dump(), model_name, ds_name, ("checkpoint",))
        jobs.extend(tr + [score])
        scorer = score.id
    source = _source_settings(spec, base_of)
    train_data = {k: v for k, v in section_content(ds).items() if k != "test_size"}
    collects: dict[str, list[str]] = {}
    for strategy in c.strategies:
        prev_collect, prev_run = None, runs[0]
        collects[strategy] = []
        for r, n_new in enumerate(c.per_round(), start=1):
            chooses: dict = {}  # what the strategy chooses originals by
            deps = tuple(d for d in (prev_collect,) if d) + source["deps"]
            if strategy == "premem":
                chooses = {"threshold": c.threshold, "p": c.p if c.p is not None else spec.premem.p,
                           "evaluations": list(prev_run.evals)}
                deps += prev_run.evals
            elif strategy == "ifd":
                chooses = {"percent": c.ifd.percent, "scores": scorer}
                deps += (scorer,)
            elif strategy == "heuristic":
                chooses = {"percent": c.heuristic.percent}
            s = CollectSettings(strategy=strategy, round=r, new_examples=n_new, dataset=train_data, seed=seed,
                                source=source["settings"],
                                data_files=dataset_fingerprint(ds, splits=("train",)) or None,
                                # which dependency is the previous round's collection (None in round 1)
                                after=prev_collect, **chooses)
            collect = make_job("collect", f"collect round {r} ({strategy}, {n_new} new){label_tag}", s, deps,
                               f"curation/{strategy}/round{r}{tag}", None, res.evaluate.model_dump(), model_name,
                               ds_name)
            jobs.append(collect)
            collects[strategy].append(collect.id)
            selects = strategy == "premem" and r < c.rounds
            prev_run = add_run(f"curation/{strategy}/round{r}{tag}", [strategy], r, collect.id, selects)
            runs.append(prev_run)
            prev_collect = collect.id
    return CurationPlan(runs=runs, collects=collects, scorer=scorer, jobs=jobs)


def _source_settings(spec: Spec, base_of: dict[str, str | None]) -> dict:
    """What identifies where new examples come from ({'settings', 'deps'}): a pool file's content, or the
    generating model (its pretraining job a dependency when it is a built-in model)."""
    c = spec.curation
    if c.source == "variants":
        return {"settings": {"kind": "variants"}, "deps": ()}
    if c.source == "pool":
        from premem.data.loaders import file_sha256

        pool = c.pool.model_dump(mode="json")
        return {"settings": {"kind": "pool", **pool, "sha256": file_sha256(c.pool.file)}, "deps": ()}
    gen = c.generate
    m = spec.model(gen.model)
    s = {"kind": "generate", **gen.model_dump(mode="json"), "model_section": section_content(m)}
    if m.hf is not None:
        s.update(model_fingerprint(m.hf))
    base = base_of[gen.model]
    s["base"] = base  # the built-in generator's pretrained model (None: the hub model itself)
    return {"settings": s, "deps": (base,) if base else ()}
