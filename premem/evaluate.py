"""Evaluation of one checkpoint: sampled accuracy on train and test queries, perplexity of train targets.

Returns one row per (split, example): samples drawn, how many were correct, how many had no parseable
final answer (recorded apart from wrong), the mean NLL of the example's target trace (train rows), and the
samples themselves for the report.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from premem.data.answers import answers_match, extract_answer
from premem.data.format import prompt_of, target_of
from premem.models import LoadedModel, with_dtype
from premem.sampling import SamplingParams, TransformersSampler, target_nll

Progress = Callable[[str], None]


def grade(completions: Sequence[str], gold: str, answer_format: str = "gsm8k") -> tuple[int, int]:
    """(correct, unparseable) counts of `completions` against the gold final answer, read and compared in
    `answer_format` (premem.data.answers): `gsm8k` (after `####`, exact after normalisation; also the built-in
    task) or `boxed` (the last \\boxed{}, MATH-style equivalence). A completion with no final answer in that
    format is unparseable, counted apart from wrong."""
    correct = unparseable = 0
    for c in completions:
        ans = extract_answer(c, answer_format)
        if ans is None:
            unparseable += 1
        elif answers_match(ans, gold, answer_format):
            correct += 1
    return correct, unparseable


def evaluate_checkpoint(loaded: LoadedModel, train: Sequence, test: Sequence, params: SamplingParams,
                        batch_size: int = 256, keep_samples: int = 2, sampling_dtype: str | None = None,
                        test_samples: int | None = None, progress: Progress | None = None,
                        stats: dict | None = None) -> list[dict]:
    """Per-example rows for `train` (with target NLL) and `test` examples at this checkpoint.

    `keep_samples` completions per example are kept for the report (all of them are graded). With
    `sampling_dtype`, sampling runs on a copy of the weights in that dtype; `test_samples` overrides
    `params.n` for test queries. When `stats` is given it receives the work done: seconds spent scoring
    targets and sampling, target tokens scored and tokens sampled.
    """
    import time

    t0 = time.perf_counter()
    report = progress or (lambda _m: None)
    pairs = [(prompt_of(ex.question), target_of(ex.solution)) for ex in train]
    nll = target_nll(loaded, pairs, progress=lambda m: report(f"train targets: {m}"))
    t1 = time.perf_counter()
    sampler = TransformersSampler(with_dtype(loaded, sampling_dtype), batch_size=batch_size)
    rows: list[dict] = []
    for split, examples in (("train", train), ("test", test)):
        prompts = [prompt_of(ex.question) for ex in examples]
        split_params = replace(params, n=test_samples) if split == "test" and test_samples else params
        done = sampler.sample(prompts, split_params, progress=lambda m, s=split: report(f"{s}: {m}"))
        for i, (ex, comps) in enumerate(zip(examples, done)):
            correct, unparseable = grade(comps, ex.answer, getattr(ex, "answer_format", "gsm8k"))
            row = {"split": split, "example_id": ex.id, "n_samples": len(comps), "n_correct": correct,
                   "n_unparseable": unparseable, "samples": list(comps[:keep_samples])}
            if split == "train":
                row["nll"], row["n_target_tokens"] = nll[i]
            rows.append(row)
    if stats is not None:
        stats.update(score_seconds=t1 - t0, sample_seconds=time.perf_counter() - t1,
                     target_tokens=sum(n for _, n in nll), sampled_tokens=sampler.tokens_generated)
    return rows
