"""How an example becomes a prompt and a target, and how an answer is read back (the paper's format)."""
from __future__ import annotations

from premem.data import answers as _answers

ANSWER_CUE = "\nAnswer:"
STOP = "\nDone."


def prompt_of(question: str) -> str:
    """The prompt the model sees: the question followed by the answer cue."""
    return question + ANSWER_CUE


def target_of(solution: str) -> str:
    """The trace the model is trained on after the prompt (and whose perplexity is measured)."""
    return " " + solution + STOP


# The `####` answer format lives in answers.py; these names are kept for the callers that import them here.
normalize_number = _answers.normalize_number
extract_hash_answer = _answers.extract_gsm8k
