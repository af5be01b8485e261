"""The work each job of a plan does (`Work`: tokens trained, scored and sampled, model loads), counted from the
plan and the datasets' sizes alone (no model, no download), and what a job kind asks Ray for in a spec."""
from __future__ import annotations

from dataclasses import dataclass

from premem.cost.datasets import DataStats, builtin_pretrain_tokens
from premem.measures import MEASURES, Sizes
from premem.plan.build import Plan
from premem.plan.job import JOB_KINDS, STORED_KINDS, Job, require_every_kind
from premem.plan.job_settings import EvaluateSettings, MeasureSettings, PerturbSettings


KINDS = STORED_KINDS
EVAL_KINDS = tuple(k for k in KINDS if JOB_KINDS[k].reads_checkpoint)  # the jobs that read a finished checkpoint
#: the kinds `work` computes the work of (a new kind must be added there: importing this module says so)
COSTED_KINDS = ("pretrain", "train", "evaluate", "measure", "perturb", "collect", "score")
require_every_kind(COSTED_KINDS, "premem.cost.work's work model")


def kind_uses_gpu(spec, kind: str) -> bool:
    """Whether jobs of `kind` are costed on a GPU: they ask Ray for one, or the spec's device is cuda."""
    return kind_resources(spec, kind).gpus > 0 or spec.device == "cuda"


def kind_resources(spec, kind: str):
    """What a job of `kind` asks Ray for (spec.JobResources)."""
    return getattr(spec.resources, JOB_KINDS[kind].resources)



@dataclass
class Work:
    """What one job computes."""

    trained: float = 0.0  # tokens through forward + backward (pretrain, train, gradient variance)
    scored: float = 0.0  # target tokens scored (perplexity)
    sampled: float = 0.0  # tokens generated
    loads: int = 0  # model loads, premem's way
    authors_loads: int = 0  # model loads, the authors' way
    pretrain: bool = False
    evaluation: bool = False  # the authors' evaluation code (their load time); training and measures share code

    def __add__(self, o: "Work") -> "Work":
        return Work(self.trained + o.trained, self.scored + o.scored, self.sampled + o.sampled,
                    self.loads + o.loads, self.authors_loads + o.authors_loads)


def run_size(n: int, fraction: float) -> int:
    """Training examples of a run on `fraction` of `n` (premem.data.loaders.subset_indices)."""
    return n if fraction >= 1 else min(n, max(1, round(n * fraction)))


def job_work(job: Job, plan: Plan, stats: dict[str, DataStats]) -> Work:
    """The work of one job, from its settings and the datasets' sizes and lengths."""
    spec, s = plan.spec, job.settings
    if job.kind == "pretrain":
        m = spec.model(job.model)
        pre = m.pretrain
        ds = spec.dataset(pre.dataset)
        key = (pre.dataset, pre.examples, tuple(pre.difficulty_mix or ()))
        st = stats[pre.dataset]
        if key not in st.pretrain_tokens:
            st.pretrain_tokens[key] = builtin_pretrain_tokens(ds, pre.examples, pre.difficulty_mix)
        return Work(trained=pre.examples * st.pretrain_tokens[key] * pre.epochs, pretrain=True)
    if job.run not in plan.runs_by_name():
        return _curation_work(job, plan, stats)
    run = plan.runs_by_name()[job.run]
    st = stats[run.dataset]
    n_run = run_size(st.train, run.dataset_fraction)
    example = st.prompt_tokens + st.target_tokens
    # the settings the job samples with: an evaluation's own, or an ATC / perturb job's (both with the run's
    # dataset's evaluation.overrides applied); other jobs sample nothing
    ev: dict = {}
    if isinstance(s, EvaluateSettings):
        ev = s.evaluation
    elif isinstance(s, (MeasureSettings, PerturbSettings)):
        ev = s.sampling or {}  # a measure that does not sample has none
    completion = st.completion_tokens or min(st.target_tokens, ev.get("max_new_tokens", st.target_tokens))
    n_eval = min(n_run, ev["train_examples"]) if ev.get("train_examples") else n_run
    if job.kind == "train":
        return Work(trained=n_run * example, loads=1, authors_loads=1)
    if job.kind == "evaluate":
        n_test = min(st.test, ev["test_examples"]) if ev["test_examples"] else st.test
        k_test = ev["test_samples"] or ev["samples"]
        # premem: one load for scoring and sampling; the authors': one for perplexity, one for the sampler
        return Work(scored=n_eval * st.target_tokens, sampled=(n_eval * ev["samples"] + n_test * k_test) * completion,
                    loads=1, authors_loads=2, evaluation=True)
    if job.kind == "measure":
        sizes = Sizes(run_examples=n_run, example_tokens=example, evaluated=n_eval, completion_tokens=completion)
        return Work(**MEASURES.get(s.measure).work(s.config, sizes))
    if job.kind == "perturb":
        return Work(sampled=n_eval * s.samples * completion, loads=1, authors_loads=1, evaluation=True)
    return Work()


def _curation_work(job: Job, plan: Plan, stats: dict[str, DataStats]) -> Work:
    """The work of a curation job: a round's model trains on the originals plus every example collected by its
    round; its evaluations sample every original (when PreMemAcc selects) and the test split (final epoch); the
    IFD score job scores every original twice; a generating collect job samples `tries` per wanted example."""
    c, s = plan.spec.curation, job.settings
    ds_name = plan.spec.curation_pair()[1]
    st = stats[ds_name]
    example = st.prompt_tokens + st.target_tokens
    max_new = plan.spec.evaluation.for_dataset(ds_name).max_new_tokens  # its evaluation.overrides applied
    completion = st.completion_tokens or min(st.target_tokens, max_new)
    if job.kind == "train":
        if s.train_split is not None:
            n = st.test if s.train_split == "test" else st.train
        else:
            r = plan.curation.round_of(job.run)
            n = st.train + sum(c.per_round()[:r])
        return Work(trained=n * example, loads=1, authors_loads=1)
    if job.kind == "evaluate":
        ev = s.evaluation
        n_eval = st.train if ev["train_examples"] is None else ev["train_examples"]
        n_test = st.test if ev["test_examples"] is None else min(st.test, ev["test_examples"])
        return Work(scored=n_eval * st.target_tokens,
                    sampled=(n_eval * ev["samples"] + n_test * (ev["test_samples"] or ev["samples"])) * completion,
                    loads=1, authors_loads=2, evaluation=True)
    if job.kind == "score":
        return Work(scored=2 * st.train * st.target_tokens, loads=1, authors_loads=1)
    if job.kind == "collect" and s.source["kind"] == "generate":
        return Work(sampled=s.new_examples * s.source["tries"] * s.source["max_new_tokens"], loads=1,
                    authors_loads=1)
    return Work()
