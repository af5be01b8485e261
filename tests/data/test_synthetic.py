"""Tests of the built-in arithmetic task (premem.data.synthetic).

The correctness checks here are independent of the generator: questions are parsed back with their own keyword
rules to recompute the answer, and every equation in a trace is re-evaluated.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import sys
from collections import Counter

import pytest

from premem.data.synthetic import (
    NAMES,
    SPLIT_BUCKETS,
    ArithmeticTask,
    Example,
    Person,
    Problem,
    render_solution,
    stable_bucket,
)

GENDER = dict(NAMES)
NAME_SET = set(GENDER)


# ---------------------------------------------------------------------------------------------------------------
# An independent reader of questions and traces
# ---------------------------------------------------------------------------------------------------------------

_START = re.compile(r"\b([A-Z][a-z]+) (?:has a box with|has|starts with|owns) (\d+) ([a-z]+)")


def parse_question(question: str) -> tuple[str, list[tuple[str, int, list[tuple[str, int]]]]]:
    """Return (object, [(name, start, [(op, operand), ...]) in order of first mention]) read from the text."""
    sentences = re.split(r"(?<=[.?]) ", question)
    people: dict[str, tuple[int, list[tuple[str, int]]]] = {}
    obj = None
    for sentence in sentences:
        if sentence.startswith("How many") or sentence.startswith("In total, how many"):
            assert sentence.endswith("?")
            continue
        # Start sentences ("Tom has 12 apples", "... and Ann owns 7 apples"); no operation sentence has this form.
        starts = _START.findall(sentence)
        if starts:
            for name, value, noun in starts:
                people[name] = (int(value), [])
                obj = noun
            continue
        named = [w for w in re.findall(r"[A-Z][a-z]+", sentence) if w in people]
        if named:
            assert len(set(named)) == 1, sentence
            who = named[0]
        else:
            assert len(people) == 1, f"pronoun in a two-person question: {sentence!r}"
            who = next(iter(people))
        numbers = [int(x) for x in re.findall(r"\d+", sentence)]
        if "twice" in sentence or "doubles" in sentence:
            op = ("*", 2)
        elif "three times" in sentence or "triples" in sentence:
            op = ("*", 3)
        elif " more" in sentence:
            op = ("+", numbers[0])
        elif re.search(r"\b(away|loses|sells|gives|uses)\b", sentence):
            op = ("-", numbers[0])
        else:
            raise AssertionError(f"unrecognized sentence {sentence!r}")
        if op[0] != "*":
            assert len(numbers) == 1, sentence
        people[who][1].append(op)
    assert obj is not None and 1 <= len(people) <= 2
    return obj, [(name, start, ops) for name, (start, ops) in people.items()]


def run_ops(start: int, ops: list[tuple[str, int]]) -> list[int]:
    values = [start]
    for op, k in ops:
        values.append(values[-1] + k if op == "+" else values[-1] - k if op == "-" else values[-1] * k)
    return values


def solve(question: str) -> tuple[int, list[int]]:
    """Return (answer, every result the solution must compute) from the question alone."""
    _, people = parse_question(question)
    results: list[int] = []
    finals = []
    for _, start, ops in people:
        values = run_ops(start, ops)
        results += values[1:]
        finals.append(values[-1])
    answer = sum(finals)
    if len(people) == 2:
        results.append(answer)
    return answer, results


def content_key(example: Example) -> tuple:
    """Phrasing-independent content of an example's problem (the two people of a sum are unordered)."""
    obj, people = parse_question(example.question)
    kind = "together" if len(people) == 2 else "chain"
    return (kind, obj, tuple(sorted((n, s, tuple(ops)) for n, s, ops in people)))


def to_problem(example: Example) -> Problem:
    """Rebuild the generator's Problem from the parsed question (to apply the split rule to it)."""
    obj, people = parse_question(example.question)
    kinds = {"+": "add", "-": "sub", "*": "mul"}
    persons = tuple(Person(n, GENDER[n], s, tuple((kinds[o], k) for o, k in ops)) for n, s, ops in people)
    return Problem(example.template, obj, persons)


_EQUATION = re.compile(r"(\d+) (\+|-|\*|plus|minus|times) (\d+) (=|is|makes) (\d+)")


def check_trace(example: Example, max_value: int = 99) -> None:
    """Assert that every equation in the trace is right and that the trace computes the question's answer."""
    answer, results = solve(example.question)
    assert example.answer == str(answer)
    lines = example.solution.split("\n")
    assert lines[-1] == f"#### {answer}"
    assert example.solution.count("####") == 1
    found = []
    for line in lines[:-1]:
        for a, op, b, _, c in _EQUATION.findall(line):
            a, b, c = int(a), int(b), int(c)
            expected = {"+": a + b, "plus": a + b, "-": a - b, "minus": a - b, "*": a * b, "times": a * b}[op]
            assert expected == c, line
            found.append(c)
    assert Counter(found) == Counter(results), (example.question, example.solution)
    assert found[-1] == answer
    assert all(0 <= v <= max_value for v in results)


def steps_of(template: str) -> int:
    m = re.fullmatch(r"chain(\d+)", template)
    if m:
        return int(m.group(1))
    a, b = re.fullmatch(r"together(\d+)\+(\d+)", template).groups()
    return int(a) + int(b) + 1


# ---------------------------------------------------------------------------------------------------------------
# Brute force P(solution | problem): sum over every choice sequence that emits exactly this text
# ---------------------------------------------------------------------------------------------------------------

class _Branch(Exception):
    def __init__(self, weights):
        self.weights = list(weights)


class _Prune(Exception):
    pass


class ReplayChooser:
    """Replays a fixed prefix of choice indices; asks to branch at the first choice beyond it and aborts as soon
    as the emitted text stops being a prefix of the target text."""

    def __init__(self, prefix: tuple[int, ...], target: str):
        self.prefix = prefix
        self.pos = 0
        self.target = target
        self.buffer = ""
        self.logp = 0.0

    def choose(self, weights):
        if self.pos >= len(self.prefix):
            raise _Branch(weights)
        i = self.prefix[self.pos]
        self.pos += 1
        self.logp += math.log(weights[i] / sum(weights))
        return i

    def choose_uniform(self, n):
        return self.choose([1.0] * n) if n > 1 else 0

    def emit(self, text):
        self.buffer += text
        if not self.target.startswith(self.buffer):
            raise _Prune

    def text(self):
        return self.buffer


def brute_force_probability(problem: Problem, solution: str) -> tuple[float, int]:
    """Return (P(solution | problem), number of choice sequences producing it)."""
    total, paths = 0.0, 0
    stack: list[tuple[int, ...]] = [()]
    while stack:
        prefix = stack.pop()
        chooser = ReplayChooser(prefix, solution)
        try:
            text = render_solution(problem, chooser)
        except _Branch as branch:
            stack.extend(prefix + (i,) for i, w in enumerate(branch.weights) if w > 0)
            continue
        except _Prune:
            continue
        if text == solution:
            total += math.exp(chooser.logp)
            paths += 1
    return total, paths


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def task() -> ArithmeticTask:
    return ArithmeticTask(seed=0)


@pytest.fixture(scope="module")
def splits(task) -> dict[str, list[Example]]:
    return {"pretrain": task.split("pretrain", 3000), "train": task.split("train", 2000),
            "test": task.split("test", 2000)}


# ---------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------

def test_determinism_and_seed(task):
    again = ArithmeticTask(seed=0)
    assert task.split("train", 50) == again.split("train", 50)
    assert task.split("pretrain", 50) == again.split("pretrain", 50)
    other = ArithmeticTask(seed=1).split("train", 50)
    assert [e.question for e in other] != [e.question for e in task.split("train", 50)]
    assert task.split("train", 0) == []


def test_deterministic_across_processes(task):
    code = ("from premem.data.synthetic import ArithmeticTask;"
            "print(repr([(e.question, e.solution, e.trace_logprob)"
            " for e in ArithmeticTask(seed=0).split('test', 20)]))")
    import premem

    root = os.path.dirname(os.path.dirname(os.path.abspath(premem.__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == repr([(e.question, e.solution, e.trace_logprob) for e in task.split("test", 20)])


@pytest.mark.parametrize("name", ["pretrain", "train", "test"])
def test_prefix_property_and_ids(task, splits, name):
    big = splits[name]
    assert task.split(name, 37) == big[:37]
    assert [e.id for e in big[:3]] == [f"{name}-000000", f"{name}-000001", f"{name}-000002"]
    assert len({e.id for e in big}) == len(big)


def test_splits_disjoint_and_follow_the_hash_rule(splits):
    keys = {name: {content_key(e) for e in examples} for name, examples in splits.items()}
    questions = {name: {e.question for e in examples} for name, examples in splits.items()}
    for a, b in [("pretrain", "train"), ("pretrain", "test"), ("train", "test")]:
        assert not keys[a] & keys[b], (a, b)
        assert not questions[a] & questions[b], (a, b)
    for name, examples in splits.items():
        for e in examples:
            assert stable_bucket(to_problem(e).canonical_key()) in SPLIT_BUCKETS[name]
    # train and test hold no repeated problem
    assert len(keys["train"]) == len(splits["train"])
    assert len(keys["test"]) == len(splits["test"])


def test_answers_correct_by_construction(splits):
    for examples in splits.values():
        for e in examples:
            check_trace(e)


def test_fields_and_templates(task, splits):
    templates = set()
    for e in splits["train"] + splits["pretrain"]:
        templates.add(e.template)
        steps = steps_of(e.template)
        assert 1 <= steps <= task.max_steps
        assert e.difficulty in (steps, steps + 1)
        _, people = parse_question(e.question)
        if e.template.startswith("chain"):
            assert len(people) == 1 and len(people[0][2]) == steps
        else:
            a, b = map(int, re.fullmatch(r"together(\d+)\+(\d+)", e.template).groups())
            assert [len(p[2]) for p in people] == [a, b]
        assert e.question.endswith("?") and "\n" not in e.question
        assert math.isfinite(e.trace_logprob) and e.trace_logprob < 0
    assert templates == set(task.templates())
    # both operations and both problem kinds are well represented
    counts = Counter(e.template.startswith("together") for e in splits["train"])
    assert 0.25 < counts[True] / len(splits["train"]) < 0.45


def test_difficulty_spread_and_mix(task, splits):
    train_steps = Counter(steps_of(e.template) for e in splits["train"])
    pre_steps = Counter(steps_of(e.template) for e in splits["pretrain"])
    for s in range(1, 5):
        assert abs(train_steps[s] / 2000 - 0.25) < 0.05
    # pretraining is easy-skewed by default (about 33/33/22/11 %)
    assert pre_steps[1] > pre_steps[3] > pre_steps[4]
    assert abs(pre_steps[4] / 3000 - 0.111) < 0.03
    custom = task.split("train", 200, mix=[1, 0, 0, 0])
    assert {steps_of(e.template) for e in custom} == {1}
    assert set(Counter(e.difficulty for e in splits["train"])) == {1, 2, 3, 4, 5}


def test_solution_has_phrasing_variation(splits):
    # the same problem kind is phrased many ways; optional lines occur sometimes
    first_lines = Counter(e.solution.split("\n")[0].split(" ")[0] for e in splits["train"])
    assert len(first_lines) > 20
    assert len({e.question.split(" ")[1] for e in splits["train"]}) >= 3


def test_trace_logprob_matches_brute_force(task):
    examples = task.split("train", 40) + task.split("pretrain", 20)
    examples += [e for e in task.split("test", 60) if e.template.startswith("together")][:10]
    seen_templates = set()
    for e in examples:
        seen_templates.add(e.template)
        problem = to_problem(e)
        probability, paths = brute_force_probability(problem, e.solution)
        assert paths == 1, "two choice sequences produced the same text"
        assert math.isclose(probability, math.exp(e.trace_logprob), rel_tol=1e-9)
    assert len(seen_templates) >= 10


def test_equal_operands_are_not_double_counted():
    # 5 + 5 and 2 * 2 read the same in both operand orders; the generator must count that text once.
    task = ArithmeticTask(seed=0)
    person = Person("Tom", "m", 5, (("add", 5), ("sub", 8), ("mul", 2)))
    problem = Problem("chain3", "apples", (person,))
    for i in range(15):
        e = task.example_from_problem(problem, f"x-{i}", random.Random(i))
        probability, paths = brute_force_probability(problem, e.solution)
        assert paths == 1
        assert math.isclose(probability, math.exp(e.trace_logprob), rel_tol=1e-9)
    # identical numbers for both people: the interleaving must still be readable from the text
    twins = [
        Problem("together0+0", "cards", (Person("Ann", "f", 7, ()), Person("Mia", "f", 7, ()))),
        Problem("together1+1", "pens", (Person("Tom", "m", 4, (("add", 4),)), Person("Ann", "f", 4, (("add", 4),)))),
        Problem("together1+1", "pens", (Person("Tom", "m", 3, (("mul", 3),)), Person("Sam", "m", 3, (("mul", 3),)))),
    ]
    for together in twins:
        for i in range(15):
            e = task.example_from_problem(together, f"y-{i}", random.Random(i))
            probability, paths = brute_force_probability(together, e.solution)
            assert paths == 1
            assert math.isclose(probability, math.exp(e.trace_logprob), rel_tol=1e-9)


def test_variants(task, splits):
    test_keys = {content_key(e) for e in splits["test"]}
    picked = {}
    for e in splits["train"]:
        picked.setdefault(e.template, e)
    for original in picked.values():
        variants = task.variants(original, 4, seed=3)
        assert variants == task.variants(original, 4, seed=3)
        assert variants[:2] == task.variants(original, 2, seed=3)
        assert variants != task.variants(original, 4, seed=4)
        assert [v.id for v in variants] == [f"{original.id}-v{j}" for j in range(4)]
        original_numbers = sorted(re.findall(r"\d+", original.question))
        for v in variants:
            assert v.template == original.template and v.difficulty == original.difficulty
            assert sorted(re.findall(r"\d+", v.question)) != original_numbers
            assert v.solution != original.solution
            assert stable_bucket(to_problem(v).canonical_key()) in SPLIT_BUCKETS["train"]
            assert content_key(v) not in test_keys
            check_trace(v)
        assert len({content_key(v) for v in variants}) == 4
    test_example = splits["test"][0]
    for v in task.variants(test_example, 3, seed=0):
        assert stable_bucket(to_problem(v).canonical_key()) in SPLIT_BUCKETS["test"]


def test_bad_arguments(task):
    with pytest.raises(ValueError):
        task.split("valid", 3)
    with pytest.raises(ValueError):
        task.split("train", 3, mix=[1, 2])
    with pytest.raises(ValueError):
        task.variants(Example("foo-1", "q", "s", "1", 1, "chain1", -1.0), 1, seed=0)


def test_max_value_is_respected():
    small = ArithmeticTask(seed=2, max_steps=3, max_value=30)
    for e in small.split("pretrain", 300):
        check_trace(e, max_value=30)
        assert steps_of(e.template) <= 3
