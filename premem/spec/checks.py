"""Checks across a spec's sections that no one field's validation can make: names that must exist, selectors that
must match a run, seeds in range, folders that must not overlap, curation's references, and the plan's size
(counted by premem.plan.counts without building the plan). `cross_field_problems(spec)` returns them all, each
at the field path it concerns (premem.spec.load puts a line to each).
"""
from __future__ import annotations

import os

from premem.measures import MEASURES
from premem.paths import folder_problem as _folder_problem, inside as _inside
from premem.plan.counts import job_counts
from premem.registry import Suggestions, did_you_mean
from premem.spec.runs import expand_runs, unmatched_selectors
from premem.spec.schema import Spec

MAX_JOBS = 100_000  # the paper's study is about 1,300 jobs; a plan this large is almost surely a typo
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a 64-bit integer


def cross_field_problems(spec: Spec) -> list[tuple[tuple, str]]:
    """Cross-field checks pydantic's per-field validation cannot do: names that must exist, empty grids."""
    out: list[tuple[tuple, str]] = []
    model_names = [m.name for m in spec.models]
    data_names = [d.name for d in spec.datasets]
    model_hint, data_hint = Suggestions(model_names), Suggestions(data_names)
    model_set, data_set = set(model_names), set(data_names)  # membership per run must not scan every name
    datasets = {d.name: d for d in reversed(spec.datasets)}  # the first of a name, as Spec.dataset
    for field, names in (("models", model_names), ("datasets", data_names)):
        seen = set()
        for i, n in enumerate(names):
            if n in seen:
                out.append(((field, i, "name"), f"duplicate name {n!r}"))
            seen.add(n)
    for i, m in enumerate(spec.models):
        if m.pretrain is not None and m.pretrain.dataset not in data_set:
            out.append((("models", i, "pretrain", "dataset"),
                        f"unknown dataset {m.pretrain.dataset!r}{data_hint(m.pretrain.dataset)}"))
        elif m.pretrain is not None and datasets[m.pretrain.dataset].builtin is None:
            out.append((("models", i, "pretrain", "dataset"),
                        "pretraining needs a built-in dataset (its generator provides the corpus)"))
        if m.builtin is not None and m.pretrain is None:
            out.append((("models", i, "pretrain"), "a built-in model starts from nothing: give it a `pretrain` stage"))
    # the built-in model's word tokenizer knows only the built-in task's words: on other text most tokens
    # would be <unk>, and perplexity and memorization would mean nothing
    if any(m.builtin is not None for m in spec.models):
        for i, d in enumerate(spec.datasets):
            if d.builtin is None:
                out.append((("datasets", i), "the built-in model can only read built-in datasets (its tokenizer "
                            "has the task's words only); real datasets need a Hugging Face model"))
    for kind in ("train", "evaluate"):
        if spec.device == "cuda" and getattr(spec.resources, kind).gpus <= 0:
            out.append((("resources", kind, "gpus"), "device is cuda but this job kind asks Ray for no GPU: "
                        "set gpus (e.g. 1)"))
        gpus = getattr(spec.resources, kind).gpus
        if gpus > 1 and gpus != int(gpus):
            out.append((("resources", kind, "gpus"), f"{gpus:g} GPUs: more than one GPU per job must be a whole "
                        "number (the model is sharded over them)"))
    shards, train_res = spec.training.shards, spec.resources.train
    if train_res.gpus > 1 and shards != train_res.gpus:
        out.append((("training", "shards"), f"resources.train.gpus is {train_res.gpus:g}: a training job uses more "
                    f"than one GPU only by sharding the model over them: set training.shards: {int(train_res.gpus)}"))
    elif shards > 1 and train_res.gpus > 0 and shards != train_res.gpus:
        out.append((("training", "shards"), f"{shards} shards need {shards} GPUs: set resources.train.gpus: {shards}"))
    elif shards > 1 and train_res.gpus == 0 and spec.device == "cuda":
        out.append((("training", "shards"), f"device is cuda: ask resources.train.gpus for {shards} GPUs"))
    elif shards > 1 and train_res.gpus == 0 and train_res.cpus < shards:
        out.append((("training", "shards"), f"{shards} shards on the CPU run one process per core: ask "
                    f"resources.train.cpus for at least {shards}"))
    if shards > 1 and spec.training.lora is not None:
        out.append((("training", "shards"), "LoRA trains a small adapter on one device; sharding is for full "
                    "finetuning: drop one of them"))
    for i, o in enumerate(spec.training.overrides):
        if o.model is not None and o.model not in model_set:
            out.append((("training", "overrides", i, "model"), f"unknown model {o.model!r}{model_hint(o.model)}"))
        if o.dataset is not None and o.dataset not in data_set:
            out.append((("training", "overrides", i, "dataset"),
                        f"unknown dataset {o.dataset!r}{data_hint(o.dataset)}"))
    for field in ("sampler", "scoring"):  # vLLM: CUDA only, and it reads Hugging Face tokenizers only
        if getattr(spec.evaluation, field) != "vllm":
            continue
        if spec.device == "cpu":
            out.append((("evaluation", field), "vllm runs on CUDA GPUs only and device is cpu: use `transformers` "
                        "(or device: cuda)"))
        elif spec.resources.evaluate.gpus < 1:
            out.append((("evaluation", field), "vllm needs a whole GPU per evaluation job: set "
                        "resources.evaluate.gpus (e.g. 1)"))
        for i, m in enumerate(spec.models):
            if m.builtin is not None:
                out.append((("evaluation", field), f"vllm cannot serve the built-in model {m.name!r} (its word "
                            "tokenizer is premem's own): use `transformers`"))
    stops = [(("evaluation", "stop"), spec.evaluation.stop)] + [
        (("evaluation", "overrides", i, "stop"), o.stop) for i, o in enumerate(spec.evaluation.overrides)
        if o.stop is not None]
    for loc, stop in stops:
        if stop != "\nDone.":
            out.append((loc, "training targets end with \"\\nDone.\" (the paper's format), so sampling must stop "
                        "there too; another stop string is not supported yet"))
    for i, o in enumerate(spec.evaluation.overrides):
        if o.dataset not in data_set:
            out.append((("evaluation", "overrides", i, "dataset"),
                        f"unknown dataset {o.dataset!r}{data_hint(o.dataset)}"))
    for i, r in enumerate(spec.runs):
        if r.model is not None and r.model not in model_set:
            out.append((("runs", i, "model"), f"unknown model {r.model!r}{model_hint(r.model)}"))
        if r.dataset is not None and r.dataset not in data_set:
            out.append((("runs", i, "dataset"), f"unknown dataset {r.dataset!r}{data_hint(r.dataset)}"))
        if r.epochs is None and (r.dataset_fraction >= 1 or spec.training.fixed_step_epochs is None):
            out.append((("runs", i, "epochs"), "give epochs (the fixed-step rule applies only to fractions below 1 "
                        "with training.fixed_step_epochs set)"))
    g = spec.grid
    full = [f for f in g.dataset_fraction if f >= 1]
    partial = [f for f in g.dataset_fraction if f < 1]
    grid_runs = len(g.learning_rate) * (len(g.epochs) * len(full) + len(partial) * (
        1 if spec.training.fixed_step_epochs else len(g.epochs)))
    if grid_runs == 0 and not spec.runs and spec.curation is None:
        out.append((("grid",), "the grid expands to zero runs and `runs` is empty: give learning_rate and epochs "
                    "values, or list runs"))
    # a study's size: every run's epochs, each a train job and an evaluation job
    epochs_of_grid = len(g.learning_rate) * (len(full) * sum(g.epochs) + sum(
        max(1, round(spec.training.fixed_step_epochs / f)) if spec.training.fixed_step_epochs else sum(g.epochs)
        for f in partial))
    epochs_of_runs = sum(r.epochs if r.epochs is not None else
                         max(1, round((spec.training.fixed_step_epochs or 1) / r.dataset_fraction)) for r in spec.runs)
    epochs_of_grid *= len(g.seeds or [None])  # each seed repeats every grid run
    n_jobs = 2 * len(spec.models) * len(spec.datasets) * (epochs_of_grid + epochs_of_runs)
    if n_jobs > MAX_JOBS:
        out.append((("grid",), f"the study has {n_jobs:,} jobs (a training and an evaluation job per epoch of every "
                    f"run), more than the {MAX_JOBS:,} premem plans at once: split it into several specs"))
    seeds = [(("seed",), spec.seed)] + [(("datasets", i, "seed"), d.seed) for i, d in enumerate(spec.datasets)]
    seeds += [(("grid", "seeds", i), x) for i, x in enumerate(spec.grid.seeds or [])]
    seeds += [(("runs", i, "seed"), r.seed) for i, r in enumerate(spec.runs) if r.seed is not None]
    if spec.curation is not None:
        seeds += [(("curation", "seeds", i), x) for i, x in enumerate(spec.curation.seeds or [])]
    for loc, values in ((("grid", "seeds"), spec.grid.seeds),
                        (("curation", "seeds"), spec.curation.seeds if spec.curation is not None else None)):
        if values and len(set(values)) != len(values):
            out.append((loc, "a seed is listed twice"))
    for loc, seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            out.append((loc, f"a seed must lie in 0..{MAX_SEED} (2**63 - 1), got {seed}"))
    for field in ("store", "report"):
        problem = _folder_problem(getattr(spec, field))
        if problem:
            out.append(((field,), problem))
    store, report = (os.path.realpath(getattr(spec, f)) for f in ("store", "report"))
    if not _folder_problem(spec.store) and not _folder_problem(spec.report) and (
            _inside(store, report) or _inside(report, store)):
        out.append((("report",), f"the report folder ({spec.report}) and the store ({spec.store}) must be separate "
                    "folders, neither inside the other"))
    if isinstance(spec.premem.calibrate_on, list):
        for i, sel in enumerate(spec.premem.calibrate_on):
            if sel.model is not None and sel.model not in model_set:
                out.append((("premem", "calibrate_on", i, "model"), f"unknown model {sel.model!r}"))
            if sel.dataset is not None and sel.dataset not in data_set:
                out.append((("premem", "calibrate_on", i, "dataset"), f"unknown dataset {sel.dataset!r}"))
    out += _curation_problems(spec, model_names, data_names)
    if not out:  # these expand the runs, which needs every check above to hold (e.g. each run has epochs)
        out += _measure_problems(spec)
    return out


def _measure_problems(spec: Spec) -> list[tuple[tuple, str]]:
    """Checks of the metrics and perturbations sections: selectors that name known runs, each measure's own
    checks (an ATC reference that is exactly one run with that epoch), preambles the built-in tokenizer can
    read."""
    out: list[tuple[tuple, str]] = []
    runs = expand_runs(spec)
    # each selector list, and whether an empty one matters (it would leave the section with no run to work on)
    sections = [(("metrics", "runs"), spec.metrics.runs, bool(spec.metrics.enabled())),
                (("premem", "calibrate_on"), spec.premem.calibrate_on, spec.premem.p is None)]
    if spec.perturbations is not None:
        sections.append((("perturbations", "runs"), spec.perturbations.runs, True))
    for loc, sel, needed in sections:
        if not isinstance(sel, list):
            continue
        if not sel and needed and runs:
            out.append((loc, "an empty list selects no run: write `all`, or selectors such as [{epochs: 6}]"))
        for i in unmatched_selectors(runs, sel):
            out.append((loc + (i,), "selects no run of the study"))
    for name in spec.metrics.enabled():  # each measure's own checks (e.g. ATC's reference run)
        check = MEASURES.get(name).check
        if check is not None:
            out += [(("metrics", name) + loc, msg) for loc, msg in check(getattr(spec.metrics, name), runs)]
    pert = spec.perturbations
    if pert is not None and isinstance(pert.epochs, list):
        longest = max((r.epochs for r in runs), default=0)
        for i, e in enumerate(pert.epochs):
            if e < 1 or e > longest:
                out.append((("perturbations", "epochs", i), f"no run has epoch {e} (the longest has {longest})"))
    if pert is not None and pert.preambles is not None and any(m.builtin is not None for m in spec.models):
        from premem.data.tokenizer import WordTokenizer

        codec = WordTokenizer.for_arithmetic_task()
        for i, p in enumerate(pert.preambles):
            if codec.unk_id in codec.encode(p):
                out.append((("perturbations", "preambles", i), f"{p!r} has words the built-in model's tokenizer does "
                            "not know (they would read as <unk>); use the task's words, e.g. \" First,\""))
    if not out:
        out += _size_problems(spec, runs)
    return out


def _size_problems(spec: Spec, runs) -> list[tuple[tuple, str]]:
    """The whole study's jobs past MAX_JOBS (measures, perturbed prompts and curation included, which the grid's
    estimate in cross_field_problems leaves out), named at the section that adds the most."""
    counts = job_counts(spec, runs)
    # the limit is on the jobs per checkpoint and per round, as the grid's estimate counts them: a pretraining
    # job per model and the one analysis job are not counted (50,000 one-epoch runs stay just within it)
    total = sum(n for kind, n in counts.items() if kind not in ("pretrain", "analysis"))
    if total <= MAX_JOBS:
        return []
    grid = 2 * sum(r.epochs for r in runs)
    parts = {"grid": grid, "metrics": counts["measure"], "perturbations": counts["perturb"],
             "curation": counts["train"] + counts["evaluate"] + counts["collect"] + counts["score"] - grid}
    words = {"grid": "training and evaluation", "metrics": "measure", "perturbations": "perturbed-prompt",
             "curation": "curation"}
    what = ", ".join(f"{n:,} {words[k]}" for k, n in parts.items() if n)
    return [((max(parts, key=parts.get),), f"the study has {total:,} jobs ({what}), more than the {MAX_JOBS:,} "
             "premem plans at once: split it into several specs")]


def _curation_problems(spec: Spec, model_names: list[str], data_names: list[str]) -> list[tuple[tuple, str]]:
    """Checks of the curation section: the model and dataset it names, a p to compute PreMemAcc with, a source
    that can make examples for that dataset."""
    c = spec.curation
    if c is None:
        return []
    out: list[tuple[tuple, str]] = []
    for field, names in (("model", model_names), ("dataset", data_names)):
        given = getattr(c, field)
        if given is None and len(names) > 1:
            out.append((("curation", field), f"the spec has {len(names)} {field}s: name the one to curate with"))
        elif given is not None and given not in names:
            out.append((("curation", field), f"unknown {field} {given!r}{did_you_mean(given, names)}"))
    if c.p is None and spec.premem.p is None and "premem" in c.strategies:
        out.append((("curation", "p"), "PreMemAcc needs a memorization threshold: give curation.p (or premem.p), "
                    "e.g. the p a grid study of this model and dataset calibrated"))
    ds_name = c.dataset or (data_names[0] if len(data_names) == 1 else None)
    if ds_name in data_names and c.source == "variants" and spec.dataset(ds_name).builtin is None:
        out.append((("curation", "source"), "only the built-in task can make variants itself; for this dataset use "
                    "`pool` (a file of pre-written variants) or `generate` (a model writes them)"))
    if c.generate is not None and c.generate.model not in model_names:
        out.append((("curation", "generate", "model"),
                    f"unknown model {c.generate.model!r}{did_you_mean(c.generate.model, model_names)}"))
    return out
