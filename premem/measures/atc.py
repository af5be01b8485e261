"""Average Thresholded Confidence (ATC): one greedy sample per evaluated train prompt, scored by its likelihood
under the checkpoint that wrote it; a threshold fitted on a reference checkpoint (so that the fraction of
prompts above it equals that checkpoint's test accuracy) turns every other checkpoint's scores into a predicted
accuracy. The job stores the per-prompt scores; the analysis (`analyze`) fits the threshold."""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from premem.measures.base import Checkpoint, Measure, MeasureJob, Sizes
from premem.spec.base import RunSelector, Strict
from premem.spec.runs import match_runs


class Atc(Strict):
    """Average Thresholded Confidence: a threshold on the score of one greedy sample per train prompt, fitted on
    a reference checkpoint so that the fraction above it equals that checkpoint's test accuracy."""

    reference: RunSelector = Field(..., description="The run whose checkpoint fixes the threshold (must select "
                                   "exactly one run; the paper: 3 epochs at LR 2e-5).")
    epoch: int | None = Field(None, ge=1, description="Its checkpoint; null = its last epoch.")
    score: Literal["token_mean", "sequence"] = Field(
        "sequence", description="The sample's likelihood as its total log-probability (sequence: the authors' "
        "choice, vLLM's cumulative_logprob of the greedy sample) or its mean log-probability per token "
        "(token_mean: long traces are not penalised).")


def plan(config: dict, at: Checkpoint) -> MeasureJob:
    # the reference and the score form are the analysis's: the job's result does not depend on them
    return MeasureJob(at.with_data | {"sampling": at.sampling | {"temperature": 0.0}}, {}, {"checkpoint": at.train})


def run(ctx) -> dict:
    from premem.data.format import prompt_of
    from premem.engine.sampling import target_nll

    train = ctx.train_examples(ctx.settings.sampling["train_examples"])
    prompts = [prompt_of(ex.question) for ex in train]
    greedy = [c[0] for c in ctx.sample(prompts, ctx.settings.sampling, 1, "greedy samples")]
    # the sample's likelihood under the checkpoint that wrote it, in the model's own dtype
    scored = target_nll(ctx.checkpoint(), list(zip(prompts, greedy)), progress=lambda m: ctx.progress(f"scores: {m}"))
    rows = [{"split": "train", "example_id": ex.id, "n_samples": 1, "n_correct": 0, "n_unparseable": 0,
             "samples": [c], "nll": nll if n else None, "n_target_tokens": n}
            for ex, c, (nll, n) in zip(train, greedy, scored)]
    return {"value": None, "n_train": len(train), "_examples": rows}


def work(config: dict, sizes: Sizes) -> dict:
    return {"sampled": sizes.evaluated * sizes.completion_tokens, "scored": sizes.evaluated * sizes.completion_tokens,
            "loads": 1, "authors_loads": 2, "evaluation": True}


def reference(section: Atc, runs: list) -> tuple:
    """(run, epoch) of the checkpoint that fixes the threshold; the spec's check makes sure the selector
    matches exactly one run."""
    run = match_runs(runs, [section.reference])[0]
    return run, section.epoch or run.epochs


def atc_reference(spec, runs: list) -> tuple | None:
    """(run, epoch) of the checkpoint that fixes the study's ATC threshold, or None when ATC is off."""
    return None if spec.metrics.atc is None else reference(spec.metrics.atc, runs)


def check(section: Atc, runs: list) -> list[tuple[tuple, str]]:
    """The reference must select exactly one run of the study, and that run must have the reference epoch."""
    ref = match_runs(runs, [section.reference])
    if len(ref) != 1:
        names = ", ".join(r.name for r in ref[:4]) + (" ..." if len(ref) > 4 else "")
        return [(("reference",), f"must select exactly one run; it selects {len(ref)}" + (f" ({names})" if ref else "")
                 + ": add learning_rate, epochs, dataset_fraction or seed")]
    if section.epoch is not None and section.epoch > ref[0].epochs:
        return [(("epoch",), f"the reference run has {ref[0].epochs} epochs")]
    return []


def scores(rows: list[dict], score: str) -> np.ndarray:
    """Per train prompt (in example-id order), the likelihood of its greedy sample: mean log-probability per
    token (token_mean) or total (sequence). An empty sample has no likelihood: it scores below every other."""
    out = []
    for r in sorted(rows, key=lambda r: str(r["example_id"])):
        nll, n = r["nll"], r["n_target_tokens"] or 0
        if nll is None or not n or not math.isfinite(nll):
            out.append(-math.inf)
        else:
            out.append(-nll if score == "token_mean" else -nll * n)
    return np.array(out)


def analyze(section: Atc, runs: list, store, jobs: dict, checkpoints: dict) -> dict:
    """Fit the threshold on the reference checkpoint and put 'atc_acc' and 'atc_gap' on every checkpoint
    (`checkpoints`: (run, epoch) -> the summary's checkpoint dict) with a finished ATC job (`jobs`: (run, epoch)
    -> job); return {'atc_reference': what the report says about the reference, None until it is finished}."""
    from premem.analysis.results import finite_or_none
    from premem.metrics.stats import atc_accuracy, atc_reproduction_bound, atc_threshold

    ref_run, ref_epoch = reference(section, runs)
    ref_job, ref_cp = jobs.get((ref_run.name, ref_epoch)), checkpoints.get((ref_run.name, ref_epoch))
    if ref_job is None or ref_cp is None or ref_cp.get("test_acc") is None:
        return {"atc_reference": None}
    by_job: dict[str, list[dict]] = {}
    for r in store.examples([j.id for j in jobs.values()]):
        by_job.setdefault(r["job_id"], []).append(r)
    ref_scores = scores(by_job.get(ref_job.id, []), section.score)
    if ref_scores.size == 0:
        return {"atc_reference": None}
    threshold = atc_threshold(ref_scores, ref_cp["test_acc"])
    for key, j in jobs.items():
        c = checkpoints.get(key)
        if c is None or not by_job.get(j.id):
            continue
        c["atc_acc"] = atc_accuracy(scores(by_job[j.id], section.score), threshold)
        c["atc_gap"] = c["train_acc"] - c["atc_acc"] if c.get("train_acc") is not None else None
    # equal to test_acc within the bound: half a prompt's share, more where scores tie across the cut
    return {"atc_reference": {"run": ref_run.name, "epoch": ref_epoch, "test_acc": ref_cp["test_acc"],
                              "threshold": finite_or_none(threshold), "score": section.score,
                              "reproduced_acc": atc_accuracy(ref_scores, threshold),
                              "reproduction_bound": atc_reproduction_bound(ref_scores, ref_cp["test_acc"])}}


MEASURE = Measure(
    name="atc", settings=Atc, description="Average Thresholded Confidence (needs a reference run).", label="ATC",
    axis="train acc − ATC-predicted acc", value_key="atc_gap", test_key="atc_acc",
    test_label="ATC-predicted accuracy", predicts="atc_acc", plan=plan, run=run, work=work, check=check,
    always_at=reference, analyze=analyze, dumped_when_off=True)
