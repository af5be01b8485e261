"""The curation section's own jobs (premem.plan.curation): `collect` (one round's new examples for one
strategy) and `score` (IFD scores of the originals). Run inside Ray tasks like every job (premem.jobs.runners), with
what they share from premem.jobs.context."""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from premem.data import curate
from premem.jobs.context import (Progress, UserError, dataset_section, dataset_splits, dependency_train_rows,
                                 job_device, model_section, set_job_threads)
from premem.plan.job import Job
from premem.store import Store

SCORES_FILE = "ifd_scores.json"


def dataset_key(dataset: dict, data_files: dict | None = None) -> str:
    """A hash of what fixes a dataset's train examples (its section `dataset` without the test split's size, and
    its local files' content, `data_files` as a job's settings hold them): scores are keyed to it, so one
    dataset's scores are never read for another."""
    data = {k: v for k, v in dataset.items() if k != "test_size"}
    blob = json.dumps({"dataset": data, "train_sha256": (data_files or {}).get("train_sha256")},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def score_ifd(job: Job, store: Store, progress: Progress) -> dict:
    """IFD of every original train example under the scoring model (the job's dependency): mean NLL of the
    solution after the question over its mean NLL alone: after the answer cue, or (settings `unconditional`:
    bos_only, the authors' way) after the BOS token only. Writes them to the artifact, keyed to the dataset, and
    returns {'n', 'mean_ifd' (a ratio of mean NLLs in nats/token), 'seconds'}."""
    from premem.data.format import ANSWER_CUE, prompt_of, target_of
    from premem.engine.models import load_model
    from premem.engine.sampling import target_nll

    set_job_threads(job)
    model_spec, ds = model_section(job), dataset_section(job)
    t0 = time.time()
    loaded = load_model(store.artifact(job.dep("checkpoint")), device=job_device(job), dtype=model_spec.dtype,
                        trust_remote_code=model_spec.trust_remote_code)
    originals = dataset_splits(ds).train
    targets = [target_of(ex.solution) for ex in originals]
    cond = target_nll(loaded, [(prompt_of(ex.question), t) for ex, t in zip(originals, targets)],
                      progress=lambda m: progress(f"with question: {m}"))
    # "the answer alone": by default after the answer cue, so that every tokenizer (with or without a bos token)
    # gives the first answer token a context; bos_only: after the bos token alone (the authors scored the target
    # text tokenized on its own, bos first). Both NLLs score exactly the same target tokens either way.
    context = ANSWER_CUE
    if job.settings.unconditional == "bos_only":
        if loaded.codec.bos_id is None:
            raise UserError("curation.ifd.unconditional is bos_only but this model's tokenizer puts no BOS token "
                            "first: the first solution token would have no context; use after_cue")
        context = ""
    alone = target_nll(loaded, [(context, t) for t in targets], progress=lambda m: progress(f"alone: {m}"))
    scores = [curate.ifd_score(c[0], a[0]) for c, a in zip(cond, alone)]
    staging = store.staging(job.id)
    (staging / SCORES_FILE).write_text(json.dumps({
        "dataset_key": dataset_key(job.settings.dataset, job.settings.data_files),
        "ids": [ex.id for ex in originals], "ifd": scores,
        "nll_with_question": [c[0] for c in cond], "nll_alone": [a[0] for a in alone]}))
    store.publish(staging, job.id)
    finite = [x for x in scores if x == x]
    return {"n": len(originals), "mean_ifd": float(np.mean(finite)) if finite else None,
            "seconds": time.time() - t0}


def _read_scores(store: Store, score_job: str, key: str) -> dict[str, float]:
    """Original id -> IFD from the score job's artifact, after checking they are scores of the dataset whose
    dataset_key is `key`."""
    data = json.loads((store.artifact(score_job) / SCORES_FILE).read_text())
    if data["dataset_key"] != key:
        raise UserError("the IFD scores were computed for another dataset than the one curated (dataset key "
                        f"{data['dataset_key']} vs {key}); they cannot rank its examples")
    return dict(zip(data["ids"], data["ifd"]))


def _final_premem(store: Store, eval_jobs: list[str], ids: list[str], p: float) -> np.ndarray:
    """Per-original PreMemAcc at the last of `eval_jobs` (one per epoch, in order), from their stored rows."""
    col = {e: i for i, e in enumerate(ids)}
    acc = np.full((len(eval_jobs), len(ids)), np.nan)
    nll = np.full_like(acc, np.nan)
    for row, rows in enumerate(dependency_train_rows(store, eval_jobs)):
        for example_id, (n, correct, x) in rows.items():
            if example_id in col:
                acc[row, col[example_id]] = correct / n if n else np.nan
                nll[row, col[example_id]] = x if x is not None else np.nan
    return curate.final_premem(acc, nll, p)


def collect(job: Job, store: Store, progress: Progress) -> dict:
    """One round of one strategy: choose the originals to draw from, draw new_examples of their variants
    round-robin, and write every example collected so far (earlier rounds' first) as the artifact."""
    set_job_threads(job)
    s = job.settings
    ds = dataset_section(job)
    t0 = time.time()
    splits = dataset_splits(ds)
    originals = {ex.id: ex for ex in splits.train}
    ids = list(originals)
    previous = curate.read_collected(store.artifact(s.after)) if s.after else []
    used = curate.used_per_original(previous)
    strategy, note, info = s.strategy, None, {}
    if strategy == "iid":
        chosen = ids
    elif strategy == "heuristic":
        chosen = curate.top_percent(ids, [float(originals[i].difficulty) for i in ids], s.percent,
                                    f"{s.seed}|heuristic")
    elif strategy == "ifd":
        scores = _read_scores(store, s.scores, dataset_key(s.dataset, s.data_files))
        missing = [i for i in ids if i not in scores]
        if missing:
            raise UserError(f"the IFD scores have no entry for {len(missing)} originals (e.g. {missing[0]})")
        chosen = curate.top_percent(ids, [scores[i] for i in ids], s.percent, f"{s.seed}|ifd")
    elif strategy == "premem":
        pm = _final_premem(store, s.evaluations, ids, s.p)
        chosen, note = curate.below_threshold(ids, list(pm), s.threshold)
        info = {"premem_mean": float(pm.mean()), "premem_below": int((pm <= s.threshold).sum())}
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    src = s.source
    fmt = splits.answer_format
    seed = f"{s.seed}|{s.round}"
    if src["kind"] == "variants":
        counts, exhausted = curate.draw_counts(chosen, s.new_examples, seed)
        progress(f"drawing {s.new_examples} variants of {len(counts)} originals")
        new = curate.builtin_variants(splits.task, originals, counts, used, s.seed, s.round)
    elif src["kind"] == "pool":
        pool = curate.read_pool(src["file"], src["original_field"], src["question_field"], src["solution_field"], fmt)
        try:
            counts, exhausted = curate.draw_counts(chosen, s.new_examples, seed,
                                                   left=lambda i: len(pool.get(i, [])) - used.get(i, 0))
        except ValueError as e:
            raise UserError(f"pool {src['file']}: {e}") from None
        new = curate.pool_variants(pool, originals, counts, used, s.round, fmt)
    else:
        new, exhausted, counts = _generated(job, store, originals, chosen, used, seed, fmt, progress)
    if exhausted:
        progress(f"{len(exhausted)} chosen originals ran out of variants")
    everything = previous + new
    staging = store.staging(job.id)
    curate.write_collected(staging, everything)
    store.publish(staging, job.id)
    return {"strategy": strategy, "round": s.round, "new": len(new), "collected": len(everything),
            "originals": len(ids), "chosen": len(chosen), "drawn_from": len(counts), "exhausted": exhausted,
            "note": note, "chosen_ids": sorted(chosen), **info, "seconds": time.time() - t0}


def _generated(job: Job, store: Store, originals: dict, chosen: list[str], used: dict[str, int], seed: str,
               fmt: str, progress: Progress) -> tuple[list, list[str], dict[str, int]]:
    """New examples written by the generating model: each wanted one gets `tries` samples and takes the first
    usable one not seen before; an original whose wanted examples all fail counts as exhausted and its share
    goes to the others (up to three passes). Raises UserError when the round still falls short."""
    from premem.data.format import STOP
    from premem.engine.models import load_model
    from premem.engine.sampling import SamplingParams, TransformersSampler

    s, g = job.settings, job.settings.source
    from premem.spec.schema import ModelSpec

    m = ModelSpec.model_validate({"name": "g", **g["model_section"]})
    source, revision = (store.artifact(g["base"]), None) if g["base"] else (m.hf, m.revision)
    loaded = load_model(source, device=job_device(job), dtype=m.dtype, trust_remote_code=m.trust_remote_code,
                        revision=revision)
    sampler = TransformersSampler(loaded)
    seen = {(ex.question.strip(), ex.solution.strip()) for ex in originals.values()}
    pool, need, out, exhausted, total_counts = list(chosen), s.new_examples, [], [], {}
    for attempt in range(3):
        if need == 0 or not pool:
            break
        counts, _ = curate.draw_counts(pool, need, f"{seed}|gen{attempt}")
        slots = [oid for oid in sorted(counts) for _ in range(counts[oid])]
        prompts = [g["prompt"].format(question=originals[o].question, solution=originals[o].solution) for o in slots]
        # a new solution ends as training targets do; a new example where the model starts a next problem
        params = SamplingParams(n=g["tries"], temperature=g["temperature"], top_p=g["top_p"],
                                max_new_tokens=g["max_new_tokens"], seed=int(job.id[:8], 16) + attempt,
                                stop=STOP if g["output"] == "solution" else "\nQuestion:")
        done = sampler.sample(prompts, params, progress=lambda t: progress(f"generating: {t}"))
        failed: dict[str, int] = {}
        for oid, completions in zip(slots, done):
            for text in completions:
                parsed = curate.parse_generated(text, g["output"], originals[oid], fmt)
                if parsed is not None and (parsed[0].strip(), parsed[1].strip()) not in seen:
                    seen.add((parsed[0].strip(), parsed[1].strip()))
                    k = used.get(oid, 0) + total_counts.get(oid, 0)
                    q, sol, ans = parsed
                    out.append(curate.Collected(f"{oid}-g{k}", oid, s.round, q, sol, ans,
                                                originals[oid].difficulty, fmt))
                    total_counts[oid] = total_counts.get(oid, 0) + 1
                    break
            else:
                failed[oid] = failed.get(oid, 0) + 1
        need = sum(failed.values())
        for oid, n in failed.items():
            if n == counts[oid]:  # nothing usable for this original in this pass: give its share to others
                exhausted.append(oid)
                pool.remove(oid)
    if need:
        raise UserError(f"generate: {need} of {s.new_examples} wanted examples got no usable completion after "
                        f"{g['tries']} samples each in three passes ({len(exhausted)} originals gave none); the "
                        "model may not write the expected format (see curation.generate.output), or raise tries")
    return out, sorted(exhausted), total_counts
