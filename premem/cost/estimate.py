"""What a plan will cost: compute hours per job kind, premem's way and the authors', from work x throughput.

`premem plan SPEC --cost [THROUGHPUTS.yaml]` prints it. Two parts, kept apart so each can be checked:

- Work, counted from the plan alone (no model, no download): per job, tokens trained (examples x mean tokens
  per example x epochs), target tokens scored (perplexity), tokens sampled (prompts x k x mean completion
  tokens) and model loads. Dataset sizes and mean lengths come from the built-in task's generator (exact
  token counts with its tokenizer), from local data files (words x a words-to-tokens factor), or from a small
  registry of known hub datasets (below); the throughputs file can override any of them.
- Throughputs, per model: tokens per second for training, sampling and scoring, and seconds per model load,
  for premem and for the authors' approach. On a CPU, the built-in model has defaults measured in this
  project's benchmarks (bench/README.md); GPU figures (and hub models anywhere) come from the user's file.

The authors' approach (Kang et al.'s public code): perplexity one example at a time in float32; sampling with
`model.generate` or vLLM, with its own model load per checkpoint on top of the one for perplexity; and
checkpoints evaluated only once GPUs are free, i.e. after the run's training, never overlapping it. Training
itself is the same for both unless the file says otherwise.

Hours of a job = its seconds / 3600 x the GPUs its kind asks Ray for (GPU-hours), or x its CPUs when it asks
for no GPU (CPU core-hours). A wall-clock estimate on a cluster of the file's size comes from replaying the
plan's dependency graph with greedy list scheduling (premem: a checkpoint's jobs start when its epoch is
trained; the authors': when the run's last epoch is).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from premem.cost.datasets import TOKENS_PER_WORD, DataStats, dataset_stats
from premem.cost.rates import ModelRatesResolved, Rates, job_seconds, resolve_rates
from premem.cost.throughputs import EXAMPLE_THROUGHPUTS, CostError, load_throughputs
from premem.cost.wall_clock import wall_clock
from premem.cost.work import KINDS, Work, job_work, kind_resources, kind_uses_gpu
from premem.plan.build import Plan
from premem.wording import counted


@dataclass
class KindCost:
    jobs: int = 0
    work: Work = field(default_factory=Work)
    premem_h: float = 0.0  # device-hours (GPU-h or CPU core-h)
    authors_h: float = 0.0
    todo_jobs: int = 0
    todo_premem_h: float = 0.0
    todo_authors_h: float = 0.0
    unit: str = "GPU-h"


@dataclass
class Estimate:
    kinds: dict[str, KindCost]
    stats: dict[str, DataStats]
    rates: dict[str, ModelRatesResolved]
    file: str | None
    note: str | None
    tokens_per_word: float
    wall: dict[str, float] | None
    cluster: tuple[int, int] | None
    same_sampler_ratio: float | None
    sampler: str = "transformers"
    scoring: str = "transformers"

    def totals(self, todo: bool = False) -> dict[str, tuple[float, float]]:
        """Per unit: (premem, authors) device-hours, of the jobs to run or of the whole study."""
        out: dict[str, tuple[float, float]] = {}
        for k in self.kinds.values():
            if not k.jobs:
                continue
            p, a = (k.todo_premem_h, k.todo_authors_h) if todo else (k.premem_h, k.authors_h)
            op, oa = out.get(k.unit, (0.0, 0.0))
            out[k.unit] = (op + p, oa + a)
        return out


def _unit_factor(spec, kind: str) -> tuple[str, float]:
    res = kind_resources(spec, kind)
    return ("GPU-h", res.gpus) if res.gpus > 0 else ("CPU-h", res.cpus)


def estimate(plan: Plan, status: dict[str, str] | None = None, throughputs: str | Path | None = None) -> Estimate:
    """The cost of `plan`, whole and of the jobs not yet done (`status`: job id -> status as `premem plan`
    shows it; None: everything is still to run)."""
    tp, file = load_throughputs(throughputs)
    spec = plan.spec
    tpw = tp.tokens_per_word or TOKENS_PER_WORD
    stats = {d.name: dataset_stats(d, tp.datasets.get(d.name) or tp.datasets.get(d.source), tpw)
             for d in spec.datasets}
    rates = resolve_rates(spec, tp, file)
    kinds = {k: KindCost(unit=_unit_factor(spec, k)[0]) for k in KINDS}
    sec_p, sec_a = {}, {}
    sec_same = {}
    for j in plan.jobs:
        if j.kind == "analysis":
            continue
        w = job_work(j, plan, stats)
        r = rates[j.model]
        sp, sa = job_seconds(w, r.premem, False), job_seconds(w, r.authors, True, r.premem.load)
        same = Rates(r.authors.train, r.authors.pretrain, r.premem.sample, r.authors.score, r.authors.load)
        sec_p[j.id], sec_a[j.id], sec_same[j.id] = sp, sa, job_seconds(w, same, True, r.premem.load)
        unit, factor = _unit_factor(spec, j.kind)
        k = kinds[j.kind]
        k.jobs += 1
        k.work = k.work + w
        k.premem_h += sp / 3600 * factor
        k.authors_h += sa / 3600 * factor
        if status is None or status.get(j.id) not in ("done", "diverged", "skipped"):
            k.todo_jobs += 1
            k.todo_premem_h += sp / 3600 * factor
            k.todo_authors_h += sa / 3600 * factor
    same_total = sum(sec_same[j.id] / 3600 * _unit_factor(spec, j.kind)[1] for j in plan.jobs if j.id in sec_same)
    premem_total = sum(k.premem_h for k in kinds.values())
    cluster = None
    wall = None
    uses_gpu = any(kind_uses_gpu(spec, k) and _unit_factor(spec, k)[0] == "GPU-h" for k in KINDS)
    gpus = tp.cluster.gpus if tp.cluster and tp.cluster.gpus is not None else None
    cpus = tp.cluster.cpus if tp.cluster and tp.cluster.cpus is not None else None
    if uses_gpu and gpus is None:
        pass  # no cluster size: no wall clock
    else:
        gpus = gpus or 0
        # a CPU study: this machine's cores unless the file says; a GPU study: CPUs never the bottleneck unless given
        cpus = (cpus or os.cpu_count() or 1) if not uses_gpu else (cpus or 1_000_000)
        cluster = (gpus, cpus)
        wall = {"premem": wall_clock(plan, sec_p, gpus, cpus, serialize=False),
                "authors": wall_clock(plan, sec_a, gpus, cpus, serialize=True)}
    return Estimate(kinds, stats, rates, file, tp.note, tpw, wall, cluster,
                    premem_total / same_total if same_total else None,
                    getattr(spec.evaluation, "sampler", "transformers"), getattr(spec.evaluation, "scoring", "transformers"))


def _h(x: float) -> str:
    if x == 0:
        return "0"
    if x < 0.01:
        return f"{x:.4f}"
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def _wall(hours: float) -> str:
    return f"{hours:,.2f} h ({hours * 60:,.0f} min)" if hours < 2 else f"{hours:,.1f} h"


def _n(x: float) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:,.2f}{suffix}"
    return f"{x:,.0f}"


def _ratio(p: float, a: float) -> str:
    return f"{p / a:.2f}" if a else "n/a"



def plan_footer(plan: Plan, status: dict[str, str], spec_path: str) -> list[str]:
    """The lines `premem plan` ends with: the study's work (runs, checkpoints, tokens to train and to sample) and
    its device-hours under stated assumptions: this project's measured CPU throughputs for a built-in model, else
    the example GPU figures of premem/cost/throughputs-example.yaml (shipped with premem)."""
    lines, assumed = [], None
    try:
        est = estimate(plan, status)
    except CostError:
        try:
            est = estimate(plan, status, EXAMPLE_THROUGHPUTS)
        except CostError as e:
            return ["Cost: " + e.lines[0]]
        assumed = "the example GPU throughputs of premem/cost/throughputs-example.yaml, all assumptions"
    work = sum((k.work for k in est.kinds.values()), Work())
    ckpts = sum(1 for j in plan.jobs if j.kind == "evaluate")
    lines.append(f"Work: {counted(len(plan.runs), 'grid run')}, {counted(ckpts, 'checkpoint evaluation')}; "
                 f"{_n(work.trained)} tokens trained on, {_n(work.sampled)} tokens sampled, {_n(work.scored)} target "
                 "tokens scored.")
    whole = est.totals()
    hours = "; ".join(f"{_h(p)} {unit} (the authors' way: {_h(a)})" for unit, (p, a) in whole.items())
    src = assumed or ("throughputs measured on this project's CPU" if est.file is None else est.file)
    lines.append(f"Hours: {hours}, with {src}. Details and assumptions: premem plan {spec_path} --cost")
    return lines


def format_estimate(est: Estimate, spec_path: str) -> str:
    out = []
    src = est.file or "no throughputs file (measured CPU defaults)"
    out.append(f"Cost estimate for {spec_path} (throughputs: {src})")
    if est.note:
        out.append(f"  note from the throughputs file: {est.note.strip()}")
    out.append("")
    out.append("Work (whole study; from the plan and the datasets' sizes):")
    out.append(f"  {'kind':<9} {'jobs':>6} {'tokens trained':>15} {'target tokens scored':>21} "
               f"{'tokens sampled':>15} {'model loads (premem / authors)':>31}")
    for name, k in est.kinds.items():
        if k.jobs:
            w = k.work
            out.append(f"  {name:<9} {k.jobs:>6,} {_n(w.trained):>15} {_n(w.scored):>21} {_n(w.sampled):>15} "
                       f"{f'{w.loads:,} / {w.authors_loads:,}':>31}")
    out.append("")
    out.append("Hours (device-hours: GPU-h = hours x the GPUs a job asks for; CPU-h = hours x its CPUs):")
    out.append(f"  {'kind':<9} {'unit':<6} {'premem':>10} {'authors':>10} {'premem/authors':>15}   "
               f"{'to run: jobs':>12} {'premem':>10} {'authors':>10}")
    for name, k in est.kinds.items():
        if k.jobs:
            out.append(f"  {name:<9} {k.unit:<6} {_h(k.premem_h):>10} {_h(k.authors_h):>10} "
                       f"{_ratio(k.premem_h, k.authors_h):>15}   {k.todo_jobs:>12,} {_h(k.todo_premem_h):>10} "
                       f"{_h(k.todo_authors_h):>10}")
    whole, todo = est.totals(), est.totals(todo=True)
    for unit, (p, a) in whole.items():
        tp_, ta = todo[unit]
        out.append(f"  {'total':<9} {unit:<6} {_h(p):>10} {_h(a):>10} {_ratio(p, a):>15}   {'':>12} {_h(tp_):>10} "
                   f"{_h(ta):>10}")
    main = "GPU-h" if "GPU-h" in whole else "CPU-h"
    p, a = whole[main]
    if a:
        verdict = "met" if p <= 0.5 * a else "NOT met"
        out.append(f"premem needs {p / a:.2f} x the authors' {main} for the whole study (goal: 0.5 or less: {verdict}).")
    if est.same_sampler_ratio is not None:
        out.append(f"  Were the authors' sampler as fast as premem's (e.g. vLLM), the ratio would be "
                   f"{est.same_sampler_ratio:.2f}.")
    if est.wall:
        g, c = est.cluster
        where = f"{g:,} GPUs" if g else f"{c:,} CPUs"
        out.append(f"Wall clock on {where}: premem {_wall(est.wall['premem'])} (a checkpoint is evaluated while the "
                   f"next epoch trains), authors {_wall(est.wall['authors'])} (checkpoints evaluated after their "
                   f"run's training); {_ratio(est.wall['premem'], est.wall['authors'])} x.")
        if g:
            out.append(f"  Reserving the {g:,} GPUs for the whole study: premem {_h(g * est.wall['premem'])} GPU-h, "
                       f"authors {_h(g * est.wall['authors'])} GPU-h.")
    else:
        out.append("Wall clock: not estimated (give cluster: {gpus: N} in the throughputs file).")
    out.append("")
    out.append("Assumptions:")
    for name, st in est.stats.items():
        comp = f", completions {st.completion_tokens:,.1f}" if st.completion_tokens else ""
        out.append(f"  - dataset {name}: {st.train:,} train / {st.test:,} test examples; mean prompt "
                   f"{st.prompt_tokens:,.1f} and target {st.target_tokens:,.1f} tokens{comp} ({st.source}).")
    for name, r in est.rates.items():
        p, a = r.premem, r.authors
        out.append(f"  - model {name} ({r.origin}): premem trains {p.train:,.0f} tok/s (pretraining {p.pretrain:,.0f}), "
                   f"samples {p.sample:,.0f} tok/s, scores {p.score:,.0f} target tok/s, {p.load:g} s a load; "
                   f"the authors' {a.train:,.0f} / {a.sample:,.0f} / {a.score:,.0f} tok/s, {a.load:g} s a load.")
    out += ["  - Sampled completions are as long as the targets on average (capped by max_new_tokens): on the "
            "quickstart 53.4 tokens a sample against 55.0 target tokens an example (bench/README.md).",
            "  - premem loads a model once per job; the authors' approach loads it twice per checkpoint evaluation "
            "(perplexity in fp32 one example at a time, then generate/vLLM) and once more per ATC measure.",
            f"  - premem samples with evaluation.sampler = {est.sampler} and scores with evaluation.scoring = "
            f"{est.scoring}: the throughputs must be that backend's.",
            "  - Training costs the same both ways; evaluation.skip_settled savings are not counted (an upper bound "
            "for premem); the driver's overhead (about 11 ms a job, 5 s to start Ray) is left out.",
            f"  - Hub datasets' token lengths: words x {est.tokens_per_word:g} tokens a word, or the lengths assumed "
            "in premem/cost/datasets.py (override with datasets.<name> in the throughputs file)."]
    if any("file" in r.origin for r in est.rates.values()):
        out.append("  - Throughputs from the file are the user's figures: check the file's own notes on which are "
                   "measured and which assumed.")
    return "\n".join(out)
