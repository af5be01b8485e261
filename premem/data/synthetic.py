"""The built-in synthetic task: arithmetic word problems with high-entropy solution traces.

Why this task looks the way it does
-----------------------------------
Pre-memorization accuracy needs a notion of "this exact training trace has been memorized" that is different
from "the model has learned the arithmetic". We get it by giving every solution trace *irreducible* per-example
variation: phrasing of each step, the order in which two people's independent steps are written, optional opening
lines and restatements, name-or-pronoun, operand order. A model that knows the task perfectly but has never seen
a given trace still pays the entropy of these choices; a model that memorized the trace does not. Every example
carries ``trace_logprob``, the exact log-probability (nats) of its solution text under the generator given the
problem, so ``-trace_logprob / n_target_tokens`` is the per-token NLL floor for unseen traces.

Problems are about one person's count of objects ("chainK": a start value and K operations) or two people whose
counts are summed at the end ("together{a}+{b}": the first-mentioned person has a operations, the second b, plus
the final sum). Operations are +k, -k, x2, x3; every value (start, intermediate, final, and the sum) lies in
[2, max_value], so numbers stay small enough for a tiny model to learn.

Exactness of ``trace_logprob`` (no double counting)
---------------------------------------------------
``trace_logprob`` is the sum of the logs of the probabilities of the choices made while rendering the solution.
That equals log P(text | problem) only if no two different choice sequences produce the same text. The renderer
is built so the text determines the choices:

1. The solution is a sequence of lines ("\\n" never occurs inside a line), so the line split is unique.
2. Every line's kind is readable from its text: opening lines have no digits; start statements, restatements and
   final lines contain no equation and use disjoint fixed wordings; step lines and the sum line contain an
   equation ("12 + 5 = 17", "12 plus 5 makes 17"), and the sum line's fixed wordings never start like a step
   line; the last line is "#### N". So which optional lines are present is determined by the text.
3. Every line names its person (name, or a pronoun only when the pronoun is unambiguous: a single person, or two
   people of different genders), so the interleaving of two people's steps is determined by the text.
4. Within a line, each slot (opener, subject, description, connector, operator, operand order, relation) comes
   from a fixed table of pairwise different strings and slots are delimited by fixed punctuation or by the
   numbers, so the slot choices are determined by the line. The one value-dependent coincidence, swapping equal
   operands ("5 + 5" both ways), is merged at run time: the alternatives are compared as strings and identical
   ones are counted once with summed probability.

The tests check this claim directly: a brute-force search over all choice sequences (pruned by the text prefix)
sums the probability of every path producing a given solution and compares it with ``exp(trace_logprob)``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, Sequence

__all__ = [
    "Example",
    "Person",
    "Problem",
    "ArithmeticTask",
    "VOCABULARY",
    "NAMES",
    "OBJECTS",
    "SPLITS",
    "SPLIT_BUCKETS",
    "easy_mix",
    "render_question",
    "render_solution",
    "Chooser",
    "SamplingChooser",
    "stable_bucket",
]


# ---------------------------------------------------------------------------------------------------------------
# The closed world: names, objects, phrase tables.
# Placeholders: {N} name, {S}/{s} subject (name or pronoun; {S} starts a sentence), {P} possessive pronoun,
# {o} object form (name or him/her), {obj} plural object, {k} operand, {v} value before, {w} value after,
# {A}/{B} the two names of a "together" problem.
# ---------------------------------------------------------------------------------------------------------------

NAMES: tuple[tuple[str, str], ...] = (
    ("Tom", "m"), ("Sam", "m"), ("Ben", "m"), ("Max", "m"), ("Leo", "m"), ("Jack", "m"),
    ("Ann", "f"), ("Mia", "f"), ("Eva", "f"), ("Lily", "f"), ("Zoe", "f"), ("Kate", "f"),
)
OBJECTS: tuple[str, ...] = (
    "apples", "books", "coins", "marbles", "stamps", "cards",
    "shells", "pens", "stickers", "cookies", "eggs", "toys",
)
_PRONOUNS = {"m": ("he", "his", "him"), "f": ("she", "her", "her")}

# Operations are ("add", k), ("sub", k), ("mul", 2) or ("mul", 3); phrase tables key them add/sub/mul2/mul3.
_OP_WEIGHTS = {"add": 0.35, "sub": 0.30, "mul2": 0.20, "mul3": 0.15}

# --- question phrasing (free variation; does not enter trace_logprob) ---
_Q_START_ONE = ("{N} has {s0} {obj}.", "{N} starts with {s0} {obj}.", "{N} owns {s0} {obj}.",
                "{N} has a box with {s0} {obj}.")
_Q_START_TWO = ("{A} has {a0} {obj} and {B} has {b0} {obj}.", "{A} has {a0} {obj}. {B} has {b0} {obj}.",
                "{A} starts with {a0} {obj} and {B} starts with {b0} {obj}.",
                "{A} owns {a0} {obj}, and {B} owns {b0} {obj}.")
_Q_OPENERS_FIRST = ("", "First, ")
_Q_OPENERS = ("", "Then ", "Next, ", "After that, ", "Later, ")
# Each entry: (template, usable when the subject might be ambiguous, i.e. in two-person problems).
_Q_OP: dict[str, tuple[tuple[str, bool], ...]] = {
    "add": (("{S} buys {k} more {obj}.", True), ("{S} gets {k} more.", True), ("{S} finds {k} more {obj}.", True),
            ("{S} is given {k} more {obj}.", True), ("{S} wins {k} more {obj}.", True)),
    "sub": (("{S} gives away {k} {obj}.", True), ("{S} loses {k} of them.", True), ("{S} sells {k} {obj}.", True),
            ("{S} gives {k} {obj} to a friend.", True), ("{S} uses {k} of them.", True)),
    "mul2": (("{S} doubles {P} {obj}.", True), ("{S} ends up with twice as many {obj} as before.", True),
             ("the number of {P} {obj} doubles.", False)),
    "mul3": (("{S} triples {P} {obj}.", True), ("{S} ends up with three times as many {obj} as before.", True),
             ("the number of {P} {obj} triples.", False)),
}
_Q_END_ONE = ("How many {obj} does {N} have now?", "How many {obj} does {N} have in the end?",
              "How many {obj} does {N} end up with?", "How many {obj} does {N} have at the end?")
_Q_END_TWO = ("How many {obj} do they have together?", "How many {obj} do {A} and {B} have in total?",
              "How many {obj} do they have altogether?", "How many {obj} do {A} and {B} have together?")

# --- solution phrasing (every choice here enters trace_logprob) ---
# Probabilities of the optional lines. Tuned so the irreducible NLL is about 0.4 nats per target token.
P_OPENING = 0.5
P_START_STATEMENT = 0.35
P_RESTATE = 0.3
P_FINAL = 0.5

_S_OPENING = ("Let us solve it step by step.", "We work it out step by step.", "Let us count the {obj}.",
              "We follow the {obj} step by step.", "Let us go one step at a time.",
              "We can solve this step by step.", "Let us think about the {obj}.", "Here is the solution.")
_S_START = ("{N} starts with {v} {obj}.", "At first, {N} has {v} {obj}.", "{N} has {v} {obj} at the start.",
            "In the beginning, {N} has {v} {obj}.")
_S_OPENERS_FIRST = ("", "First, ")
_S_OPENERS = ("", "Then ", "Next, ", "After that, ", "Now ", "Later, ", "After this, ")
_S_DESC: dict[str, tuple[str, ...]] = {
    "add": ("buys {k} more", "gets {k} more", "gets {k} more {obj}", "finds {k} more {obj}", "adds {k} {obj}",
            "receives {k} more", "adds {k} more", "wins {k} more", "is given {k} more {obj}"),
    "sub": ("gives away {k}", "gives away {k} {obj}", "loses {k}", "loses {k} {obj}", "sells {k} of them",
            "uses {k} {obj}", "gives {k} away", "sells {k} {obj}", "gives {k} to a friend"),
    "mul2": ("doubles {P} {obj}", "doubles them", "has twice as many", "ends up with twice as many",
             "gets twice as many {obj}", "doubles the {obj}", "has twice as many {obj}",
             "has double the {obj}"),
    "mul3": ("triples {P} {obj}", "triples them", "has three times as many", "ends up with three times as many",
             "gets three times as many {obj}", "triples the {obj}", "has three times as many {obj}",
             "has triple the {obj}"),
}
# Connectors start with "," or "." and descriptions contain neither, so the slot boundary is unambiguous.
_S_CONN = (", so ", ", which gives ", ", and ", ". That is ", ", giving ", ". So ")
# How a step's equation states its result ("12 + 5 = 17", "12 + 5 is 17", "12 + 5 makes 17").
_S_RELATION = ("=", "is", "makes")
# An operator is written as its symbol or as a word ("12 + 5" or "12 plus 5").
_S_OPERATOR = {"add": ("+", "plus"), "sub": ("-", "minus"), "mul": ("*", "times")}
_S_RESTATE = ("{S} now has {w} {obj}.", "Now {s} has {w} {obj}.", "So {s} has {w} {obj}.",
              "That leaves {o} with {w} {obj}.", "{S} has {w} {obj} now.")
_S_SUM = ("Together they have {eq}.", "In total, {eq}.", "Adding them up, {eq}.", "Altogether, {eq} {obj}.",
          "{X} and {Y} have {eq} together.")
_S_FINAL_ONE = ("The answer is {w}.", "So the answer is {w}.", "In the end, {N} has {w} {obj}.",
                "{N} ends up with {w} {obj}.", "So {N} has {w} {obj} in the end.")
_S_FINAL_TWO = ("The answer is {w}.", "So the answer is {w}.", "Together they have {w} {obj}.",
                "In total, they have {w} {obj}.", "So they have {w} {obj} in total.")

def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _phrase_tables() -> list[str]:
    """All fixed phrase strings (used to build the closed vocabulary)."""
    tables: list[str] = []
    tables += _Q_START_ONE + _Q_START_TWO + _Q_OPENERS_FIRST + _Q_OPENERS + _Q_END_ONE + _Q_END_TWO
    for entries in _Q_OP.values():
        tables += [t for t, _ in entries]
    tables += _S_OPENING + _S_START + _S_OPENERS_FIRST + _S_OPENERS + _S_CONN + _S_RELATION + _S_RESTATE + _S_SUM
    tables += _S_FINAL_ONE + _S_FINAL_TWO
    for words in _S_OPERATOR.values():
        tables += list(words)
    for entries in _S_DESC.values():
        tables += list(entries)
    return tables


def _build_vocabulary() -> tuple[str, ...]:
    words: set[str] = set()
    for phrase in _phrase_tables():
        bare = re.sub(r"\{[A-Za-z0-9]+\}", " ", phrase)
        found = re.findall(r"[A-Za-z]+", bare)
        words.update(found)
        # Sentence-initial words can be capitalized (templates are written lower-case where an opener may precede).
        words.update(_capitalize(w) for w in found)
    words.update(name for name, _ in NAMES)
    words.update(OBJECTS)
    for forms in _PRONOUNS.values():
        words.update(forms)
        words.update(_capitalize(f) for f in forms)
    return tuple(sorted(words))


#: The closed word list of the task (letters-only words; digits, punctuation and "####" are added by the tokenizer).
VOCABULARY: tuple[str, ...] = _build_vocabulary()


# ---------------------------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------------------------

def _apply(kind: str, value: int, operand: int) -> int:
    if kind == "add":
        return value + operand
    if kind == "sub":
        return value - operand
    if kind == "mul":
        return value * operand
    raise ValueError(f"unknown operation {kind!r}")


def _op_key(kind: str, operand: int) -> str:
    """Phrase-table key of an operation: add, sub, mul2, mul3."""
    return f"mul{operand}" if kind == "mul" else kind


@dataclass(frozen=True)
class Person:
    """One person's story: a start count and a sequence of operations ``(kind, operand)``."""

    name: str
    gender: str
    start: int
    ops: tuple[tuple[str, int], ...]

    def values(self) -> tuple[int, ...]:
        """Return the count before the first operation and after each one (length ``len(ops) + 1``)."""
        out = [self.start]
        for kind, operand in self.ops:
            out.append(_apply(kind, out[-1], operand))
        return tuple(out)

    def key(self) -> str:
        ops = ",".join(f"{kind}{operand}" for kind, operand in self.ops)
        return f"{self.name}:{self.start}:{ops}"


@dataclass(frozen=True)
class Problem:
    """A problem's canonical content: structure, names, object and numbers (no phrasing)."""

    template: str
    obj: str
    people: tuple[Person, ...]

    @property
    def together(self) -> bool:
        return len(self.people) == 2

    @property
    def n_steps(self) -> int:
        """Number of arithmetic steps: all operations, plus the final sum for two-person problems."""
        return sum(len(p.ops) for p in self.people) + (1 if self.together else 0)

    @property
    def answer(self) -> int:
        """The final count (for two people, the sum of their final counts)."""
        return sum(p.values()[-1] for p in self.people)

    def all_values(self) -> list[int]:
        """Every number that occurs as a count or result (starts, intermediates, finals, sum)."""
        values = [v for p in self.people for v in p.values()]
        if self.together:
            values.append(self.answer)
        return values

    def difficulty(self, max_value: int) -> int:
        """Number of steps, plus one when some count exceeds half of ``max_value`` (bigger numbers, more carries)."""
        return self.n_steps + (1 if max(self.all_values()) > max_value // 2 else 0)

    def canonical_key(self) -> str:
        """A phrasing-independent identity. The two people of a "together" problem are unordered (swapping who
        is mentioned first is the same problem), so both orders land in the same split."""
        if self.together:
            return "together|" + self.obj + "|" + "|".join(sorted(p.key() for p in self.people))
        return "chain|" + self.obj + "|" + self.people[0].key()


def stable_bucket(key: str, buckets: int = 100) -> int:
    """Return a process-independent hash of ``key`` in ``[0, buckets)`` (Python's ``hash`` is salted)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


SPLITS = ("pretrain", "train", "test")
#: Which hash buckets (of ``stable_bucket(problem.canonical_key())``) belong to which split. Independent of the
#: task seed on purpose: a model pretrained with one seed never saw a train/test problem of any other seed.
SPLIT_BUCKETS: dict[str, range] = {"pretrain": range(0, 80), "train": range(80, 90), "test": range(90, 100)}


def _parse_template(template: str) -> tuple[int, ...]:
    """Return the number of operations per person encoded in a template name."""
    m = re.fullmatch(r"chain(\d+)", template)
    if m:
        return (int(m.group(1)),)
    m = re.fullmatch(r"together(\d+)\+(\d+)", template)
    if m:
        return (int(m.group(1)), int(m.group(2)))
    raise ValueError(f"unknown template {template!r}")


def easy_mix(max_steps: int) -> tuple[float, ...]:
    """Return an easy-skewed distribution over the number of steps 1..max_steps.

    Weights ``max_steps-1, max_steps-1, max_steps-2, ..., 1`` (for 4 steps: 33/33/22/11 %), close to the
    35/35/20/10 % mix with which the feasibility probe's pretraining learned fastest.
    """
    if max_steps <= 2:
        weights = [1.0] * max_steps
    else:
        weights = [float(max_steps - 1)] + [float(max_steps - s) for s in range(1, max_steps)]
    total = sum(weights)
    return tuple(w / total for w in weights)


# ---------------------------------------------------------------------------------------------------------------
# Choosers: the renderer asks a chooser for every random choice and hands it every piece of text it emits.
# ---------------------------------------------------------------------------------------------------------------

def weighted_index(rng: random.Random, weights: Sequence[float]) -> int:
    """Index ``i`` drawn with probability ``weights[i] / sum(weights)`` from one ``rng.random()`` call
    (zero weights are never drawn)."""
    r = rng.random() * sum(weights)
    acc = 0.0
    last = 0
    for i, w in enumerate(weights):
        if w <= 0:
            continue
        last = i
        acc += w
        if r < acc:
            return i
    return last


class Chooser(Protocol):
    """What :func:`render_solution` needs: random choices, and a sink for the text it emits in order.

    ``logp`` accumulates the log-probability of the choices made. Besides :class:`SamplingChooser`, a chooser
    can replay or enumerate choice sequences (the tests use one to compute P(text) by brute force).
    """

    logp: float

    def choose(self, weights: Sequence[float]) -> int: ...

    def choose_uniform(self, n: int) -> int: ...

    def emit(self, text: str) -> None: ...

    def text(self) -> str: ...


class SamplingChooser:
    """Draws choices from ``rng`` and accumulates the log-probability (nats) of the choices made."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.logp = 0.0
        self.parts: list[str] = []

    def choose(self, weights: Sequence[float]) -> int:
        """Return index ``i`` with probability ``weights[i] / sum(weights)``."""
        i = weighted_index(self.rng, weights)
        self.logp += math.log(weights[i] / float(sum(weights)))
        return i

    def choose_uniform(self, n: int) -> int:
        """Return an index in ``[0, n)`` uniformly."""
        if n == 1:
            return 0
        self.logp -= _LOG[n] if n < len(_LOG) else math.log(n)
        return int(self.rng.random() * n)

    def emit(self, text: str) -> None:
        self.parts.append(text)

    def text(self) -> str:
        """Return everything emitted so far."""
        return "".join(self.parts)


_LOG = [0.0] + [math.log(n) for n in range(1, 256)]


def _pick(ch: Chooser, options: Sequence[str]) -> str:
    """Uniform choice among options known to be pairwise different strings."""
    return options[ch.choose_uniform(len(options))]


def _pick_merged(ch: Chooser, options: Sequence[str]) -> str:
    """Uniform choice among alternatives that may render identically: identical strings are merged into one
    option carrying their summed probability, so the choice is counted once in ``logp``."""
    distinct: list[str] = []
    weights: list[float] = []
    for option in options:
        if option in distinct:
            weights[distinct.index(option)] += 1.0
        else:
            distinct.append(option)
            weights.append(1.0)
    if len(distinct) == len(options):
        return options[ch.choose_uniform(len(options))]
    return distinct[ch.choose(weights)]


def _coin(ch: Chooser, p: float) -> bool:
    return ch.choose((1.0 - p, p)) == 1


@lru_cache(maxsize=None)
def _interleavings(n_a: int, n_b: int) -> tuple[tuple[int, ...], ...]:
    """All merges of two ordered sequences of lengths n_a, n_b, as tuples of person indices."""
    out = []
    for positions in itertools.combinations(range(n_a + n_b), n_a):
        pos = set(positions)
        out.append(tuple(0 if i in pos else 1 for i in range(n_a + n_b)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------

def render_question(problem: Problem, rng: random.Random) -> str:
    """Return a question text for ``problem`` (one line), phrased at random from ``rng``.

    The answer is determined by the question: every operation names its person (or uses the pronoun of the only
    person), and a person's operations appear in their order.
    """
    obj = problem.obj
    people = problem.people
    sentences: list[str] = []
    if not problem.together:
        p = people[0]
        sentences.append(rng.choice(_Q_START_ONE).format(N=p.name, s0=p.start, obj=obj))
        steps = [(0, j) for j in range(len(p.ops))]
    else:
        a, b = people
        sentences.append(rng.choice(_Q_START_TWO).format(A=a.name, B=b.name, a0=a.start, b0=b.start, obj=obj))
        merges = _interleavings(len(a.ops), len(b.ops))
        order = merges[rng.randrange(len(merges))]
        counters = [0, 0]
        steps = []
        for who in order:
            steps.append((who, counters[who]))
            counters[who] += 1
    for idx, (who, j) in enumerate(steps):
        person = people[who]
        kind, operand = person.ops[j]
        pron, poss, _ = _PRONOUNS[person.gender]
        templates = [t for t, ok in _Q_OP[_op_key(kind, operand)] if ok or not problem.together]
        template = rng.choice(templates)
        subject = person.name if problem.together or rng.random() < 0.5 else pron
        opener = rng.choice(_Q_OPENERS_FIRST if idx == 0 else _Q_OPENERS)
        body = template.format(S=subject, P=poss, k=operand, obj=obj)
        sentences.append(_capitalize(opener + body))
    if not problem.together:
        sentences.append(rng.choice(_Q_END_ONE).format(N=people[0].name, obj=obj))
    else:
        sentences.append(rng.choice(_Q_END_TWO).format(A=people[0].name, B=people[1].name, obj=obj))
    return " ".join(sentences)


class _TraceState:
    """Mutable bookkeeping while rendering one solution."""

    def __init__(self, problem: Problem):
        self.problem = problem
        # A pronoun is allowed only where it identifies the person (see the module docstring, point 3).
        self.pronoun_ok = (not problem.together) or problem.people[0].gender != problem.people[1].gender
        # In a one-person problem the question already introduced the person; in a two-person trace each person's
        # first line uses the name.
        self.mentioned = [not problem.together] * len(problem.people)
        self.step_lines = 0

    def subject(self, ch: Chooser, who: int) -> tuple[str, str]:
        """Choose (subject form, object form) for person ``who``: the name or the pronoun."""
        person = self.problem.people[who]
        use_pronoun = False
        if self.pronoun_ok and self.mentioned[who]:
            use_pronoun = ch.choose_uniform(2) == 1
        self.mentioned[who] = True
        if use_pronoun:
            pron, _, obj_form = _PRONOUNS[person.gender]
            return pron, obj_form
        return person.name, person.name


def _render_start(ch: Chooser, state: _TraceState, who: int) -> None:
    person = state.problem.people[who]
    ch.emit(_pick(ch, _S_START).format(N=person.name, v=person.start, obj=state.problem.obj))
    state.mentioned[who] = True


def _expression(ch: Chooser, kind: str, left: int, right: int) -> str:
    """Render ``left op right``: symbol or word, and for + and * either operand order."""
    symbol = _pick(ch, _S_OPERATOR[kind])
    if kind == "sub":
        return f"{left} {symbol} {right}"
    # Commutative: equal operands render identically both ways, so the two orders are merged.
    return _pick_merged(ch, (f"{left} {symbol} {right}", f"{right} {symbol} {left}"))


def _equation(ch: Chooser, kind: str, left: int, right: int, result: int) -> str:
    """Render a step's equation, e.g. ``12 + 5 = 17`` or ``5 plus 12 makes 17``."""
    return f"{_expression(ch, kind, left, right)} {_pick(ch, _S_RELATION)} {result}"


def _render_step(ch: Chooser, state: _TraceState, who: int, j: int) -> None:
    problem = state.problem
    person = problem.people[who]
    kind, operand = person.ops[j]
    values = person.values()
    before, after = values[j], values[j + 1]
    _, poss, _ = _PRONOUNS[person.gender]

    opener = _pick(ch, _S_OPENERS_FIRST if state.step_lines == 0 else _S_OPENERS)
    state.step_lines += 1
    ch.emit(opener)
    subject, _ = state.subject(ch, who)
    ch.emit(subject if opener else _capitalize(subject))
    desc = _pick(ch, _S_DESC[_op_key(kind, operand)])
    ch.emit(" " + desc.format(k=operand, obj=problem.obj, P=poss))
    ch.emit(_pick(ch, _S_CONN))
    ch.emit(_equation(ch, kind, before, operand, after) + ".")

    if _coin(ch, P_RESTATE):
        ch.emit("\n")
        template = _pick(ch, _S_RESTATE)
        subject, obj_form = state.subject(ch, who)
        line = template.format(S=subject, s=subject, o=obj_form, w=after, obj=problem.obj)
        ch.emit(_capitalize(line))


def render_solution(problem: Problem, ch: Chooser) -> str:
    """Render the step-by-step solution of ``problem`` with the random choices of ``ch``.

    Returns the solution text, ending with ``#### <answer>``; every piece of it was passed to ``ch.emit`` in
    order, and ``ch.logp`` has been increased by the log-probability of the choices made.
    """
    obj = problem.obj
    state = _TraceState(problem)
    lines_started = False

    def newline() -> None:
        nonlocal lines_started
        if lines_started:
            ch.emit("\n")
        lines_started = True

    if _coin(ch, P_OPENING):
        newline()
        ch.emit(_pick(ch, _S_OPENING).format(obj=obj))

    # Line groups per person: an optional start statement, then one group per operation (step + restatement).
    groups: list[list[tuple[str, int]]] = []
    for who, person in enumerate(problem.people):
        # In a one-person problem the start is in the question already; a statement of it is optional either way.
        group = [("start", -1)] if _coin(ch, P_START_STATEMENT) else []
        group += [("step", j) for j in range(len(person.ops))]
        groups.append(group)

    if problem.together:
        merges = _interleavings(len(groups[0]), len(groups[1]))
        order = merges[ch.choose_uniform(len(merges))]
    else:
        order = (0,) * len(groups[0])
    cursor = [0] * len(groups)
    for who in order:
        kind, j = groups[who][cursor[who]]
        cursor[who] += 1
        newline()
        if kind == "start":
            _render_start(ch, state, who)
        else:
            _render_step(ch, state, who, j)

    answer = problem.answer
    if problem.together:
        a, b = problem.people
        fa, fb = a.values()[-1], b.values()[-1]
        newline()
        template = _pick(ch, _S_SUM)
        eq = f"{_expression(ch, 'add', fa, fb)} = {answer}"
        if "{X}" in template:
            x, y = (a.name, b.name) if ch.choose_uniform(2) == 0 else (b.name, a.name)
            ch.emit(template.format(X=x, Y=y, eq=eq, obj=obj))
        else:
            ch.emit(template.format(eq=eq, obj=obj))

    if _coin(ch, P_FINAL):
        newline()
        finals = _S_FINAL_TWO if problem.together else _S_FINAL_ONE
        ch.emit(_pick(ch, finals).format(N=problem.people[0].name, w=answer, obj=obj))

    newline()
    ch.emit(f"#### {answer}")
    return ch.text()


# ---------------------------------------------------------------------------------------------------------------
# Examples and the task
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    """One problem with one sampled solution trace.

    ``solution`` ends with ``#### <answer>``; ``trace_logprob`` is the exact log-probability (nats) of
    ``solution`` given the problem under the generator, so ``-trace_logprob`` over the number of target tokens
    is the irreducible per-token NLL of this trace for a model that knows the task but not this trace.
    """

    id: str
    question: str
    solution: str
    answer: str
    difficulty: int
    template: str
    trace_logprob: float

    @property
    def prompt(self) -> str:
        """The model input: ``question + "\\nAnswer:"``."""
        return self.question + "\nAnswer:"

    @property
    def target(self) -> str:
        """The training target: ``" " + solution + "\\nDone."``."""
        return " " + self.solution + "\nDone."


class ArithmeticTask:
    """Generator of the built-in arithmetic word-problem task.

    Args:
        seed: chooses which problems and traces are drawn (not the split partition, which is fixed).
        max_steps: largest number of arithmetic steps (a two-person problem's final sum counts as a step).
        max_value: every count, intermediate result and answer lies in ``[2, max_value]``.
        mix: weights over the number of steps 1..max_steps for the "train" and "test" splits (None: uniform).
        pretrain_mix: the same for "pretrain" (None: :func:`easy_mix`, skewed towards short problems).
        together_prob: probability that a problem is a two-person "together" problem.
        max_operand: largest start count and largest operand of +/-.
    """

    def __init__(self, seed: int = 0, max_steps: int = 4, max_value: int = 99,
                 mix: Sequence[float] | None = None, pretrain_mix: Sequence[float] | None = None,
                 together_prob: float = 0.35, max_operand: int = 20):
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if max_value < 12:
            raise ValueError("max_value must be at least 12")
        if not 0.0 <= together_prob <= 1.0:
            raise ValueError("together_prob must be in [0, 1]")
        self.seed = seed
        self.max_steps = max_steps
        self.max_value = max_value
        self.together_prob = together_prob
        # Each person's counts stay within half of max_value in two-person problems, so the sum fits.
        self.max_operand = max(2, min(max_operand, max_value // 4))
        self.mix = self._normalize_mix(mix) if mix is not None else tuple([1.0 / max_steps] * max_steps)
        self.pretrain_mix = self._normalize_mix(pretrain_mix) if pretrain_mix is not None else easy_mix(max_steps)

    # --- public API ---

    def templates(self) -> list[str]:
        """Return every template name this task can produce."""
        out = [f"chain{k}" for k in range(1, self.max_steps + 1)]
        if self.together_prob > 0:
            for steps in range(1, self.max_steps + 1):
                out += [f"together{a}+{steps - 1 - a}" for a in range(steps)]
        return out

    def split(self, name: str, n: int, mix: Sequence[float] | None = None) -> list[Example]:
        """Return the first ``n`` examples of split ``name`` ("pretrain", "train" or "test").

        Deterministic from (seed, name, n, mix) with the prefix property ``split(name, n)[:m] == split(name, m)``.
        Splits are disjoint by problem content (see :data:`SPLIT_BUCKETS`). "train" and "test" hold no repeated
        problem; "pretrain" may repeat a problem (with a different trace), as a broad corpus would.
        ``mix`` overrides the step-count mix of this split.
        """
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        if n < 0:
            raise ValueError("n must be non-negative")
        if mix is not None:
            weights = self._normalize_mix(mix)
        else:
            weights = self.pretrain_mix if name == "pretrain" else self.mix
        buckets = SPLIT_BUCKETS[name]
        seen: set[str] | None = None if name == "pretrain" else set()
        examples = []
        # train and test are stratified by number of steps when their mix is uniform: every block of
        # `max_steps` consecutive examples holds each step count once, so a few hundred evaluation examples
        # of either split have the same difficulty make-up (drawn at random, two samples of 128 differed by
        # 0.2 in mean difficulty, which showed up as a 0.1 gap between train and test accuracy)
        stratify = name != "pretrain" and max(weights) - min(weights) < 1e-9
        for i in range(n):
            rng = random.Random(f"premem-arith|{self.seed}|{name}|{i}")
            if stratify:
                block = list(range(len(weights)))
                random.Random(f"premem-arith-strata|{self.seed}|{name}|{i // len(weights)}").shuffle(block)
                steps = 1 + block[i % len(weights)]
                rng.random()  # keep the stream aligned with the unstratified draw
            else:
                steps = 1 + self._draw(rng, weights)
            template = self._draw_template(rng, steps)
            problem = self._sample_in_split(rng, template, buckets, seen, difficulty=None, avoid_numbers=None)
            examples.append(self._make_example(rng, problem, f"{name}-{i:06d}"))
        return examples

    def variants(self, example: Example, n: int, seed: int) -> list[Example]:
        """Return ``n`` fresh examples of the same kind as ``example``.

        Same ``template`` and ``difficulty``, new numbers (the multiset of numbers in the question always
        differs from the original's), freshly drawn names, object and phrasing; in the original's split (read
        from its id prefix); ids ``<original id>-v<j>``. Deterministic from (example, n, seed), with the prefix
        property.
        """
        split_name = example.id.split("-", 1)[0]
        if split_name not in SPLITS:
            raise ValueError(f"cannot tell the split of example id {example.id!r}")
        _parse_template(example.template)  # validates
        original_numbers = sorted(int(x) for x in re.findall(r"\d+", example.question))
        seen: set[str] = set()
        out = []
        for j in range(n):
            rng = random.Random(f"premem-arith-variant|{self.seed}|{seed}|{example.id}|{j}")
            problem = self._sample_in_split(rng, example.template, SPLIT_BUCKETS[split_name], seen,
                                            difficulty=example.difficulty, avoid_numbers=original_numbers)
            out.append(self._make_example(rng, problem, f"{example.id}-v{j}"))
        return out

    def example_from_problem(self, problem: Problem, example_id: str, rng: random.Random) -> Example:
        """Return an example for a given problem, with question and trace drawn from ``rng``."""
        return self._make_example(rng, problem, example_id)

    def sample_problem(self, rng: random.Random, template: str) -> Problem:
        """Return a random problem with the given template (any split)."""
        counts = _parse_template(template)
        obj = rng.choice(OBJECTS)
        if len(counts) == 1:
            name, gender = rng.choice(NAMES)
            return Problem(template, obj, (self._sample_person(rng, name, gender, counts[0], self.max_value),))
        (na, ga), (nb, gb) = rng.sample(NAMES, 2)
        bound = self.max_value // 2
        a = self._sample_person(rng, na, ga, counts[0], bound)
        b = self._sample_person(rng, nb, gb, counts[1], bound)
        return Problem(template, obj, (a, b))

    # --- internals ---

    def _normalize_mix(self, mix: Sequence[float]) -> tuple[float, ...]:
        weights = [float(w) for w in mix]
        if len(weights) != self.max_steps or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"mix must have {self.max_steps} non-negative weights with a positive sum")
        total = sum(weights)
        return tuple(w / total for w in weights)

    @staticmethod
    def _draw(rng: random.Random, weights: Sequence[float]) -> int:
        return weighted_index(rng, weights)

    def _draw_template(self, rng: random.Random, steps: int) -> str:
        if rng.random() < self.together_prob:
            a = rng.randrange(steps)  # ops of the first-mentioned person; the sum is the last step
            return f"together{a}+{steps - 1 - a}"
        return f"chain{steps}"

    def _sample_person(self, rng: random.Random, name: str, gender: str, n_ops: int, bound: int) -> Person:
        hi = self.max_operand
        value = rng.randint(2, min(hi, bound))
        start = value
        ops = []
        for _ in range(n_ops):
            options: list[tuple[str, float]] = []
            if value + 2 <= bound:
                options.append(("add", _OP_WEIGHTS["add"]))
            if value >= 4:
                options.append(("sub", _OP_WEIGHTS["sub"]))
            if 2 * value <= bound:
                options.append(("mul2", _OP_WEIGHTS["mul2"]))
            if 3 * value <= bound:
                options.append(("mul3", _OP_WEIGHTS["mul3"]))
            kind = options[self._draw(rng, [w for _, w in options])][0]
            if kind == "add":
                op = ("add", rng.randint(2, min(hi, bound - value)))
            elif kind == "sub":
                op = ("sub", rng.randint(2, min(hi, value - 2)))
            else:
                op = ("mul", 2 if kind == "mul2" else 3)
            value = _apply(op[0], value, op[1])
            ops.append(op)
        return Person(name, gender, start, tuple(ops))

    def _sample_in_split(self, rng: random.Random, template: str, buckets: range, seen: set[str] | None,
                         difficulty: int | None, avoid_numbers: list[int] | None) -> Problem:
        """Rejection-sample a problem of ``template`` whose content hashes into ``buckets`` (and that satisfies
        the optional difficulty / novelty constraints)."""
        for _ in range(100_000):
            problem = self.sample_problem(rng, template)
            key = problem.canonical_key()
            if stable_bucket(key) not in buckets:
                continue
            if seen is not None and key in seen:
                continue
            if difficulty is not None and problem.difficulty(self.max_value) != difficulty:
                continue
            if avoid_numbers is not None and sorted(_question_numbers(problem)) == avoid_numbers:
                continue
            if seen is not None:
                seen.add(key)
            return problem
        raise RuntimeError(f"could not sample a new {template!r} problem for this split; is it exhausted?")

    def _make_example(self, rng: random.Random, problem: Problem, example_id: str) -> Example:
        question = render_question(problem, rng)
        chooser = SamplingChooser(rng)
        solution = render_solution(problem, chooser)
        return Example(
            id=example_id,
            question=question,
            solution=solution,
            answer=str(problem.answer),
            difficulty=problem.difficulty(self.max_value),
            template=problem.template,
            trace_logprob=chooser.logp,
        )


def _question_numbers(problem: Problem) -> list[int]:
    """The numbers a question of this problem states: start counts and +/- operands (x2/x3 are words)."""
    out = []
    for person in problem.people:
        out.append(person.start)
        out += [operand for kind, operand in person.ops if kind != "mul"]
    return out
