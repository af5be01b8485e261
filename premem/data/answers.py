"""Final answers: reading them out of a solution or a model's sample, and deciding whether two agree.

Two answer formats:

- ``gsm8k``: the final answer is the rest of the line after the last ``####`` (GSM8K and the built-in task).
  Compared as exact strings after `normalize_number` (commas, ``$`` and spaces removed, a trailing period
  dropped, ``42.0`` -> ``42``).
- ``boxed``: the final answer is the content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (MATH). Compared
  with `math_equiv`: a normalisation in the spirit of the MATH paper's ``is_equiv`` (written here from its
  description), plus exact numeric comparison when both sides are plain numbers, so ``0.5``, ``.5``,
  ``1/2``, ``\\frac12`` and ``\\dfrac{1}{2}`` all agree.

A text with no final answer in the expected format is *unparseable* (None): the extractors never fall back to
some other part of the text (a fault of the paper authors' scripts). `grade` counts a prompt's samples that are
correct and unparseable.
"""
from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

ANSWER_FORMATS = ("gsm8k", "boxed")

__all__ = ["ANSWER_FORMATS", "normalize_number", "extract_gsm8k", "extract_boxed", "normalize_math",
           "math_equiv", "extract_answer", "answers_match", "solution_lines"]


# ------------------------------------------------------------------------------------------------- gsm8k
_NUMBER_NOISE = re.compile(r"[,$\s]")
_DECIMAL = re.compile(r"[-+]?\d+\.\d*")


def normalize_number(text: str) -> str:
    """Canonical form of a `####` final answer: commas, ``$`` and whitespace removed, trailing periods
    dropped, a leading ``+`` dropped, and a decimal's trailing zeros dropped (``42.0`` -> ``42``,
    ``3.50`` -> ``3.5``). Anything else is kept as written (``1/2`` stays ``1/2``)."""
    s = _NUMBER_NOISE.sub("", text).rstrip(".")
    if s.startswith("+"):
        s = s[1:]
    if _DECIMAL.fullmatch(s):
        s = s.rstrip("0").rstrip(".")
        if s in ("", "-"):
            s += "0"
    return s


def extract_gsm8k(text: str) -> str | None:
    """The final answer after the last ``####`` in `text` (the rest of that line), normalised with
    `normalize_number`; None when there is no ``####`` or nothing after it on its line."""
    at = text.rfind("####")
    if at < 0:
        return None
    ans = normalize_number(text[at + 4:].split("\n", 1)[0])
    return ans or None


# ------------------------------------------------------------------------------------------------- boxed
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _group_end(text: str, start: int) -> int | None:
    """Index just past the brace group that opens at text[start] == '{'; None when it never closes.
    Escaped braces (``\\{``, ``\\}``) and escaped backslashes do not count."""
    depth, i, n = 0, start, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` or ``\\fbox{...}`` in `text` (braces matched, so nested
    groups such as ``\\boxed{\\frac{1}{2}}`` are whole), stripped. ``\\boxed 5`` (no braces) gives the text
    up to the next ``$`` or line end. None when there is none, when the last one's braces never close (an
    earlier box is not used instead), or when it is empty."""
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    i = j = matches[-1].end()
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        end = _group_end(text, j)
        if end is None:
            return None
        content = text[j + 1:end - 1].strip()
    elif j > i:
        content = re.split(r"[$\n]", text[j:], maxsplit=1)[0].strip()
    else:
        return None
    return content or None


# --------------------------------------------------------------------------------------- MATH equivalence
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])")
_SPACING = re.compile(r"\\[,;:]")
_UNITS = re.compile(r"\\(?:text|mbox)\{\s")
_SIMPLE_LHS = re.compile(r"[A-Za-z]{1,2}|[A-Za-z]_\{?[A-Za-z0-9]+\}?")
_INT_SLASH = re.compile(r"(-?\d+)/(\d+)")
_PLAIN = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)"
_FRAC = re.compile(rf"(-?)\\frac\{{({_NUM})\}}\{{({_NUM})\}}")


def _argument(s: str, i: int) -> tuple[str, int] | None:
    """One macro argument starting at s[i]: a brace group (its content), a control word (``\\pi``) or a
    single character. Returns (argument, index after it), or None at the end of the string or on an
    unclosed group."""
    if i >= len(s):
        return None
    if s[i] == "{":
        end = _group_end(s, i)
        return (s[i + 1:end - 1], end) if end is not None else None
    if s[i] == "\\":
        m = re.match(r"\\(?:[A-Za-z]+|.)", s[i:])
        return (m.group(0), i + m.end()) if m else None
    return s[i], i + 1


def _brace_macros(s: str) -> str:
    """Give ``\\frac`` its two arguments and ``\\sqrt`` its one in braces: ``\\frac12`` -> ``\\frac{1}{2}``,
    ``\\frac1{72}`` -> ``\\frac{1}{72}``, ``\\sqrt2`` -> ``\\sqrt{2}``, ``\\sqrt[3]8`` -> ``\\sqrt[3]{8}``
    (recursively inside the arguments). Expects spaces already removed."""
    out: list[str] = []
    i = 0
    pattern = re.compile(r"\\(frac|sqrt)(?![A-Za-z])")
    while True:
        m = pattern.search(s, i)
        if m is None:
            out.append(s[i:])
            return "".join(out)
        out.append(s[i:m.start()])
        j = m.end()
        if m.group(1) == "frac":
            a = _argument(s, j)
            b = _argument(s, a[1]) if a else None
            if b is None:
                out.append(s[m.start():])
                return "".join(out)
            out.append(f"\\frac{{{_brace_macros(a[0])}}}{{{_brace_macros(b[0])}}}")
            i = b[1]
        else:
            index = ""
            if j < len(s) and s[j] == "[":
                close = s.find("]", j)
                if close < 0:
                    out.append(s[m.start():])
                    return "".join(out)
                index, j = s[j:close + 1], close + 1
            a = _argument(s, j)
            if a is None:
                out.append(s[m.start():])
                return "".join(out)
            out.append(f"\\sqrt{index}{{{_brace_macros(a[0])}}}")
            i = a[1]


@lru_cache(maxsize=65536)
def normalize_math(text: str) -> str:
    """A MATH final answer in canonical written form (Hendrycks-style), for exact string comparison:

    line breaks, ``\\!`` and thin spaces (``\\,`` ``\\;`` ``\\:``) removed; ``\\\\`` -> ``\\``; ``\\tfrac`` and
    ``\\dfrac`` -> ``\\frac``; ``\\left``/``\\right`` removed; degrees (``^\\circ``, ``^{\\circ}``), dollar signs
    (``\\$``, ``$``) and percent signs (``\\%``, ``%``) removed; trailing units (``\\text{ ...}`` or
    ``\\mbox{ ...}`` whose text starts with a space, after something) cut off; a leading zero added to
    decimals (``.5`` -> ``0.5``); a simple left-hand side dropped (``x = 5``, ``k=5``, ``x_1 = 5`` -> ``5``;
    only with a single ``=``); all spaces removed; ``\\frac12`` -> ``\\frac{1}{2}`` and ``\\sqrt2`` ->
    ``\\sqrt{2}``; an integer fraction ``a/b`` -> ``\\frac{a}{b}``. The order of list items is kept
    (``1,2`` and ``2,1`` differ)."""
    s = text.replace("\n", "").replace("\\!", "")
    s = _SPACING.sub("", s)
    s = s.replace("\\\\", "\\")
    s = s.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac")
    s = _LEFT_RIGHT.sub("", s)
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("$", "")
    units = list(_UNITS.finditer(s))
    if units and s[:units[-1].start()].strip():
        s = s[:units[-1].start()]
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.").replace("-.", "-0.")
    s = s.strip()
    if s.startswith("."):
        s = "0" + s
    s = s.replace(" ", "").replace("\t", "")
    if s.count("=") == 1:
        lhs, rhs = s.split("=")
        if _SIMPLE_LHS.fullmatch(lhs):
            s = rhs
    s = _brace_macros(s)
    m = _INT_SLASH.fullmatch(s)
    if m:
        sign = "-" if m.group(1).startswith("-") else ""
        s = f"{sign}\\frac{{{m.group(1).lstrip('-')}}}{{{m.group(2)}}}"
    return s


def _as_number(s: str) -> Fraction | None:
    """The exact value of a normalised answer that is a plain number: an integer or decimal (optionally
    with thousands separators, ``10,000``) or a fraction of such (``\\frac{1}{2}``, ``-\\frac{3}{4}``);
    None otherwise (expressions, lists, intervals, ...)."""
    if _PLAIN.fullmatch(s):
        return Fraction(s)
    if _THOUSANDS.fullmatch(s):
        return Fraction(s.replace(",", ""))
    m = _FRAC.fullmatch(s)
    if m:
        num, den = Fraction(m.group(2)), Fraction(m.group(3))
        if den == 0:
            return None
        value = num / den
        return -value if m.group(1) else value
    return None


def math_equiv(a: str | None, b: str | None) -> bool:
    """Whether two MATH final answers agree: equal after `normalize_math`, or both plain numbers (integers,
    decimals, simple fractions) of the same exact value (``0.5`` == ``\\frac{1}{2}`` == ``1/2``;
    ``0.33`` != ``\\frac{1}{3}``). None (no answer) agrees with nothing."""
    if a is None or b is None:
        return False
    na, nb = normalize_math(a), normalize_math(b)
    if na == nb:
        return True
    va, vb = _as_number(na), _as_number(nb)
    return va is not None and vb is not None and va == vb


# --------------------------------------------------------------------------------------- by answer format
def _check_format(answer_format: str) -> None:
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"unknown answer format {answer_format!r}; known: {', '.join(ANSWER_FORMATS)}")


def extract_answer(text: str, answer_format: str = "gsm8k") -> str | None:
    """The final answer of `text` in `answer_format` (``gsm8k``: after ``####``; ``boxed``: the last
    ``\\boxed{}``); None when unparseable."""
    _check_format(answer_format)
    return extract_gsm8k(text) if answer_format == "gsm8k" else extract_boxed(text)


def answers_match(predicted: str | None, gold: str, answer_format: str = "gsm8k") -> bool:
    """Whether an extracted answer equals the gold one: exact after `normalize_number` (gsm8k), or
    `math_equiv` (boxed)."""
    _check_format(answer_format)
    if predicted is None:
        return False
    if answer_format == "gsm8k":
        return normalize_number(predicted) == normalize_number(gold)
    return math_equiv(predicted, gold)


def solution_lines(solution: str, answer_format: str = "gsm8k") -> int:
    """The paper's difficulty heuristic for GSM8K-style data: the number of non-empty lines of the solution
    before its final answer (before the last ``####``; for ``boxed``: all non-empty lines)."""
    if answer_format == "gsm8k":
        at = solution.rfind("####")
        body = solution[:at] if at >= 0 else solution
    else:
        body = solution
    return sum(1 for line in body.split("\n") if line.strip())


def grade(completions: Sequence[str], gold: str, answer_format: str = "gsm8k") -> tuple[int, int]:
    """(correct, unparseable) counts of `completions` against the gold final answer, read and compared in
    `answer_format`: `gsm8k` (after `####`, exact after normalisation; also the built-in task) or `boxed` (the
    last \\boxed{}, MATH-style equivalence). A completion with no final answer in that
    format is unparseable, counted apart from wrong."""
    correct = unparseable = 0
    for c in completions:
        ans = extract_answer(c, answer_format)
        if ans is None:
            unparseable += 1
        elif answers_match(ans, gold, answer_format):
            correct += 1
    return correct, unparseable
