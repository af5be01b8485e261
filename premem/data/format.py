"""How an example becomes a prompt and a target, and how an answer is read back (the paper's format)."""
from __future__ import annotations

import re

ANSWER_CUE = "\nAnswer:"
STOP = "\nDone."


def prompt_of(question: str) -> str:
    """The prompt the model sees: the question followed by the answer cue."""
    return question + ANSWER_CUE


def target_of(solution: str) -> str:
    """The trace the model is trained on after the prompt (and whose perplexity is measured)."""
    return " " + solution + STOP


_CLEAN = re.compile(r"[,$\s]")


def normalize_number(text: str) -> str:
    """Canonical form of a final numeric answer: no commas, `$` or spaces; '42.0' and '42.' -> '42'."""
    s = _CLEAN.sub("", text).rstrip(".")
    if re.fullmatch(r"-?\d+\.0*", s):
        s = s.split(".")[0]
    return s


def extract_hash_answer(text: str) -> str | None:
    """The final answer after the last `####` in `text`, normalised; None when there is none (unparseable).

    Only the rest of that line counts, and an empty answer is unparseable too: a missing `####` must never
    turn into some arbitrary part of the text (a fault of the authors' scripts).
    """
    at = text.rfind("####")
    if at < 0:
        return None
    rest = text[at + 4:].split("\n", 1)[0]
    ans = normalize_number(rest)
    return ans or None
