"""Data curation (Section 5.2, Algorithm 1) and its rivals: which originals each strategy draws new examples
from, where the new examples come from, and how sample efficiency is read off the curves.

Strategies choose a set of originals (the train examples of the curated dataset); a round then draws its N'
new examples from that set round-robin in a seeded order, each a fresh variant of its original:
- premem: the originals whose PreMemAcc at the last round model's final epoch is <= t (recomputed each round);
- iid: every original;
- ifd: the top q percent by IFD = ppl(answer | question) / ppl(answer) under a briefly trained scoring model;
- heuristic: the top q percent by the dataset's difficulty field.
Everything here is plain data in, plain data out; the jobs (premem.jobs.runners) read the store and call these.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from premem.metrics.premem import premem_acc

COLLECTED_FILE = "collected.jsonl"  # a collect job's artifact: every example collected so far, in order


@dataclass(frozen=True)
class Collected:
    """One new example: a variant of the original train example `original`, added in round `round`."""

    id: str
    original: str
    round: int
    question: str
    solution: str
    answer: str
    difficulty: int
    answer_format: str = "gsm8k"


# ------------------------------------------------------------------------------------------- selection
def final_premem(acc: np.ndarray, nll: np.ndarray, p: float) -> np.ndarray:
    """Per-example PreMemAcc at the last checkpoint of (checkpoints, examples) accuracy and mean target NLL
    arrays (a missing accuracy, NaN, reads as 0); values in [0, 1]."""
    acc = np.nan_to_num(np.asarray(acc, dtype=float), nan=0.0)
    return premem_acc(acc, np.asarray(nll, dtype=float), p)[-1]


def below_threshold(ids: Sequence[str], values: Sequence[float], t: float) -> tuple[list[str], str | None]:
    """The ids whose PreMemAcc is <= t; when none is, the ids with the lowest PreMemAcc instead, with a note
    saying so (Algorithm 1 has no answer for an empty set, and a round must still add its examples)."""
    chosen = [i for i, v in zip(ids, values) if v <= t]
    if chosen or not ids:
        return chosen, None
    low = min(values)
    chosen = [i for i, v in zip(ids, values) if v == low]
    return chosen, f"no original has PreMemAcc <= {t:g}; drew from the {len(chosen)} with the lowest ({low:.3f})"


def top_percent(ids: Sequence[str], scores: Sequence[float], percent: float, seed: str) -> list[str]:
    """The ceil(percent/100 * n) ids with the highest scores (ties broken by a seeded shuffle), in id order.
    A NaN score ranks last."""
    n = len(ids)
    if len(scores) != n:
        raise ValueError(f"{len(scores)} scores for {n} examples")
    keep = min(n, max(1, math.ceil(percent / 100.0 * n))) if n else 0
    order = list(range(n))
    random.Random(f"premem-ties|{seed}").shuffle(order)
    key = [(-s if s == s else math.inf) for s in scores]  # NaN != NaN
    order.sort(key=lambda i: key[i])  # stable: the shuffle decides ties
    return sorted(ids[i] for i in order[:keep])


def ifd_score(cond_nll: float | None, answer_nll: float | None) -> float:
    """IFD of one example: mean NLL of the answer given the question over mean NLL of the answer alone (the
    ratio of the log-perplexities, as the authors computed it); NaN when either is missing or the latter is 0."""
    if cond_nll is None or answer_nll is None or answer_nll <= 0:
        return float("nan")
    return cond_nll / answer_nll


def draw_counts(pool: Sequence[str], n: int, seed: str, left: Callable[[str], int | None] | None = None
                ) -> tuple[dict[str, int], list[str]]:
    """How many new examples to draw from each original of `pool`: `n` in all, round-robin over a seeded
    shuffle of the pool (so counts differ by at most one), skipping an original once `left(id)` of its
    variants are used up (None = unlimited). Returns (id -> count, the ids that ran out). Raises ValueError
    when the pool cannot supply `n`."""
    order = list(pool)
    random.Random(f"premem-draw|{seed}").shuffle(order)
    counts: dict[str, int] = {}
    exhausted: list[str] = []
    remaining = {i: (left(i) if left else None) for i in order}
    drawn = 0
    while drawn < n:
        progressed = False
        for i in order:
            if drawn >= n:
                break
            r = remaining[i]
            if r is not None and counts.get(i, 0) >= r:
                if i not in exhausted:
                    exhausted.append(i)
                continue
            counts[i] = counts.get(i, 0) + 1
            drawn += 1
            progressed = True
        if not progressed:
            raise ValueError(f"the {len(order)} chosen originals have only {drawn} unused variants left; this round "
                             f"asks for {n}")
    for i in order:  # those used up exactly by this round are out for the next one too
        r = remaining[i]
        if r is not None and counts.get(i, 0) >= r and i not in exhausted:
            exhausted.append(i)
    return counts, sorted(exhausted)


# ------------------------------------------------------------------------------------------- sources
def read_collected(folder: Path) -> list[Collected]:
    """The examples a collect job's artifact holds (every round so far), in order."""
    path = Path(folder) / COLLECTED_FILE
    return [Collected(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def write_collected(folder: Path, examples: Sequence[Collected]) -> None:
    """Write `examples` as the artifact of a collect job (one JSON object per line)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / COLLECTED_FILE, "w") as f:
        for ex in examples:
            f.write(json.dumps(asdict(ex), sort_keys=True) + "\n")


def used_per_original(examples: Sequence[Collected]) -> dict[str, int]:
    """Original id -> how many of its variants `examples` already holds."""
    out: dict[str, int] = {}
    for ex in examples:
        out[ex.original] = out.get(ex.original, 0) + 1
    return out


def builtin_variants(task, originals: dict, counts: dict[str, int], used: dict[str, int], seed: int,
                     round_: int) -> list[Collected]:
    """Fresh variants from the built-in task: for each original, its next `counts[id]` variants after the
    `used[id]` already taken (the task's variants have the prefix property, so an original's j-th variant is
    the same whichever strategy or round asks for it)."""
    out = []
    for oid in sorted(counts):
        start = used.get(oid, 0)
        fresh = task.variants(originals[oid], start + counts[oid], seed)[start:]
        out += [Collected(v.id, oid, round_, v.question, v.solution, v.answer, v.difficulty, "gsm8k") for v in fresh]
    return out


def read_pool(path: str, original_field: str, question_field: str, solution_field: str, answer_format: str
              ) -> dict[str, list[tuple[str, str, str]]]:
    """Original id -> its pre-written variants [(question, solution, answer)] in file order. Raises
    DataError naming the row when a solution has no final answer in `answer_format`."""
    from premem.data.answers import extract_answer
    from premem.data.loaders import DataError, read_file_columns

    cols = read_file_columns(path, [original_field, question_field, solution_field])
    out: dict[str, list[tuple[str, str, str]]] = {}
    for k, (oid, q, sol) in enumerate(zip(cols[original_field], cols[question_field], cols[solution_field])):
        if not isinstance(q, str) or not isinstance(sol, str) or oid is None:
            raise DataError(f"{path}: row {k + 1}: {original_field}, {question_field} and {solution_field} must "
                            "all be given (text)")
        answer = extract_answer(sol, answer_format)
        if answer is None:
            raise DataError(f"{path}: row {k + 1}: the solution has no final answer in the {answer_format!r} format")
        out.setdefault(str(oid), []).append((q, sol, answer))
    return out


def pool_variants(pool: dict[str, list[tuple[str, str, str]]], originals: dict, counts: dict[str, int],
                  used: dict[str, int], round_: int, answer_format: str) -> list[Collected]:
    """The next unused pre-written variants of each original (`counts[id]` of them after the `used[id]`)."""
    from premem.data.answers import solution_lines

    out = []
    for oid in sorted(counts):
        start = used.get(oid, 0)
        for j, (q, sol, ans) in enumerate(pool.get(oid, [])[start:start + counts[oid]]):
            out.append(Collected(f"{oid}-p{start + j}", oid, round_, q, sol, ans,
                                 getattr(originals[oid], "difficulty", solution_lines(sol, answer_format)),
                                 answer_format))
    return out


def parse_generated(text: str, output: str, original, answer_format: str) -> tuple[str, str, str] | None:
    """(question, solution, answer) of a generated completion, or None when it is not usable.

    `output: solution`: the completion is a new solution of the original's question; usable when its final
    answer equals the original's. `output: example`: the completion holds "Question: ...\\nAnswer: ..." (what
    follows a next "Question:", or a `####` answer line, is cut); usable when both parts are there and the
    solution has a final answer."""
    from premem.data.answers import answers_match, extract_answer
    from premem.data.format import STOP

    text = text.split(STOP)[0].strip()
    if output == "solution":
        answer = extract_answer(text, answer_format)
        if answer is None or not answers_match(answer, original.answer, answer_format):
            return None
        if text.strip() == original.solution.strip():
            return None  # a copy of the original trace adds nothing
        return original.question, text, answer
    head, sep, solution = text.partition("Answer:")
    question = head.strip()
    if question.startswith("Question:"):
        question = question[len("Question:"):].strip()
    solution = solution.split("\nQuestion:")[0].strip()  # a model may go on to write another problem
    if answer_format == "gsm8k" and "####" in solution:  # the solution ends with its answer line
        head, _, tail = solution.partition("####")
        solution = head + "####" + tail.split("\n")[0]
    if not sep or not question or not solution:
        return None
    answer = extract_answer(solution, answer_format)
    if answer is None or question == original.question.strip():
        return None
    return question, solution, answer


# ------------------------------------------------------------------------------------------- efficiency
def size_at(curve: Sequence[tuple[float, float]], target: float) -> float | None:
    """Training-set size at which a curve [(size, test accuracy)] (sorted by size) first reaches `target`,
    by linear interpolation between its points; None when it never does."""
    pts = sorted(curve)
    if not pts:
        return None
    if pts[0][1] >= target:
        return float(pts[0][0])
    for (s0, a0), (s1, a1) in zip(pts, pts[1:]):
        if a0 < target <= a1:
            return s0 + (target - a0) / (a1 - a0) * (s1 - s0)
    return None


def default_targets(base_acc: float, iid: Sequence[tuple[float, float]], other: Sequence[tuple[float, float]],
                    n: int = 3) -> list[float]:
    """`n` test accuracies evenly inside (round 0's accuracy, the highest accuracy both curves reach); empty when
    neither curve rises above round 0."""
    hi = min(max(a for _, a in iid), max(a for _, a in other))
    if hi <= base_acc:
        return []
    return [round(base_acc + (hi - base_acc) * (k + 1) / (n + 1), 4) for k in range(n)]


def efficiency(iid: Sequence[tuple[float, float]], other: Sequence[tuple[float, float]], targets: Sequence[float]
               ) -> list[dict]:
    """Per target accuracy: the iid size and the strategy's size that reach it, and their ratio (iid / strategy;
    above 1: the strategy needs fewer examples). Sizes or ratio None where a curve does not reach the target."""
    out = []
    for t in targets:
        a, b = size_at(iid, t), size_at(other, t)
        out.append({"target": t, "iid_size": a, "size": b, "ratio": (a / b) if a is not None and b else None})
    return out
