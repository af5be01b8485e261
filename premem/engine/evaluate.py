"""Evaluation of one checkpoint: sampled accuracy on train and test queries, perplexity of train targets.

Returns one row per (split, example): samples drawn, how many were correct, how many had no parseable
final answer (recorded apart from wrong), the mean NLL of the example's target trace (train rows), and the
samples themselves for the report. With `settle_below` (evaluation.skip_settled) a train example whose
PreMemAcc is already settled at 0 is not sampled: its row has n_samples = 0 (accuracy not measured).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping, Sequence

from premem.data.answers import grade
from premem.data.format import prompt_of, target_of
from premem.engine.models import LoadedModel, with_dtype
from premem.engine.sampling import SamplingParams, TransformersSampler, target_nll
from premem.metrics.premem import loglog_perplexity

Progress = Callable[[str], None]


Earlier = Sequence[Mapping[str, tuple[int, float | None]]]  # per earlier checkpoint: example id -> (n_correct, nll)


def settled(nll_now: float, earlier: list[tuple[int, float | None] | None], below: float) -> bool:
    """Whether an example's PreMemAcc at this checkpoint is 0 whatever its samples say, for every p >= `below`.

    True when it is memorized now (log(log(perplexity)) < below) and, at every earlier checkpoint of the run
    (`earlier`: (n_correct, nll) per checkpoint, None where the example has no result), it was never correct
    while unmemorized: n_correct = 0 there, or memorized there too. Then MaskedAcc is 0 at every checkpoint
    up to this one, so PreMemAcc = min(running max of MaskedAcc, Acc) = 0, and this checkpoint's MaskedAcc
    (0: memorized) leaves later checkpoints unchanged. A missing history or NLL is never settled.
    """
    def memorized(nll) -> bool:
        return nll is not None and bool(loglog_perplexity(nll) < below)

    if not memorized(nll_now):
        return False
    return all(e is not None and (e[0] == 0 or memorized(e[1])) for e in earlier)


def evaluate_checkpoint(loaded: LoadedModel, train: Sequence, test: Sequence, params: SamplingParams,
                        batch_size: int = 256, keep_samples: int = 2, sampling_dtype: str | None = None,
                        test_samples: int | None = None, progress: Progress | None = None,
                        stats: dict | None = None, settle_below: float | None = None,
                        earlier: Earlier = (), scorer: Callable | None = None,
                        make_sampler: Callable | None = None,
                        grade_with: Callable[[list[str], object], tuple[int, int]] | None = None) -> list[dict]:
    """Per-example rows for `train` (with target NLL) and `test` examples at this checkpoint.

    `keep_samples` completions per example are kept for the report (all of them are graded). With
    `sampling_dtype`, sampling runs on a copy of the weights in that dtype; `test_samples` overrides
    `params.n` for test queries. With `settle_below`, train examples `settled` at this checkpoint given the
    run's `earlier` checkpoints (every one of them, in order) are not sampled (their perplexity still is, first).
    When `stats` is given it receives the work done: seconds spent scoring targets and sampling, target
    tokens scored, tokens sampled, and train examples skipped. Other backends (evaluation.sampler/scoring:
    vllm) come in as `scorer(pairs, progress)` (target_nll's contract) and `make_sampler()`, called once
    scoring is done (so a scorer's GPU memory can be freed before the sampler takes it); `loaded` may then be
    None. `grade_with(completions, example) -> (correct, unparseable)` grades instead of the example's answer
    format (a user's own grader).
    """
    import time

    t0 = time.perf_counter()
    report = progress or (lambda _m: None)
    pairs = [(prompt_of(ex.question), target_of(ex.solution)) for ex in train]
    score = scorer or (lambda ps, progress: target_nll(loaded, ps, progress=progress))
    nll = score(pairs, progress=lambda m: report(f"train targets: {m}"))
    t1 = time.perf_counter()
    # decided only now that this checkpoint's perplexity is known: "memorized now" is part of the rule
    skip = [settle_below is not None and settled(nll[i][0], [e.get(str(ex.id)) for e in earlier], settle_below)
            for i, ex in enumerate(train)]
    sampler = make_sampler() if make_sampler is not None else \
        TransformersSampler(with_dtype(loaded, sampling_dtype), batch_size=batch_size)
    rows: list[dict] = []
    for split, examples in (("train", train), ("test", test)):
        sampled = [i for i in range(len(examples)) if not (split == "train" and skip[i])]
        prompts = [prompt_of(examples[i].question) for i in sampled]
        split_params = replace(params, n=test_samples) if split == "test" and test_samples else params
        done = sampler.sample(prompts, split_params, progress=lambda m, s=split: report(f"{s}: {m}"))
        comps_of = dict(zip(sampled, done))
        for i, ex in enumerate(examples):
            comps = comps_of.get(i, [])  # a skipped example: nothing drawn, accuracy not measured
            correct, unparseable = grade_with(comps, ex) if grade_with is not None else \
                grade(comps, ex.answer, getattr(ex, "answer_format", "gsm8k"))
            row = {"split": split, "example_id": ex.id, "n_samples": len(comps), "n_correct": correct,
                   "n_unparseable": unparseable, "samples": list(comps[:keep_samples])}
            if split == "train":
                row["nll"], row["n_target_tokens"] = nll[i]
            rows.append(row)
    if stats is not None:
        stats.update(score_seconds=t1 - t0, sample_seconds=time.perf_counter() - t1,
                     target_tokens=sum(n for _, n in nll), sampled_tokens=sampler.tokens_generated,
                     skipped_train=sum(skip))
    return rows
