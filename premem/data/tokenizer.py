"""A small word-level tokenizer for the built-in arithmetic task.

Tokens are whole words (letters only), single digits, single punctuation characters, ``"\\n"``, the GSM8K answer
marker ``"####"`` and an explicit space token ``" "``. Special tokens have fixed ids: ``<pad>`` 0, ``<bos>`` 1,
``<eos>`` 2, ``<unk>`` 3.

Spacing rule (canonical text)
-----------------------------
Ordinary spaces are not tokens; ``decode`` puts them back with one rule. Between two consecutive tokens it writes
a single space, except

* between two digits (numbers are written digit by digit: ``"1", "2"`` -> ``"12"``),
* before any of ``. , ? : ; !``,
* before or after ``"\\n"``,
* after ``:``, and at the very start of the text.

A space the rule does not imply (at the start of a text, after ``:``, or a second space in a row) is encoded as
the space token ``" "``, which decodes to exactly one space and suppresses the rule's space before the next
token. This is what makes the task's texts round-trip: the target ``" " + solution + "\\nDone."`` starts with a
space token, and because no space is implied after ``:``, the prompt ``... "\\nAnswer:"`` followed by that target
tokenizes the same whether encoded as one string or in two parts:
``encode(prompt) + encode(target) == encode(prompt + target)``.

Text the task generates is canonical, so ``decode(encode(t)) == t`` exactly. More generally the round trip is
exact for any text made of vocabulary pieces that has a space wherever the rule implies one (extra spaces are kept
as space tokens). Other text is normalized: a space the rule requires but the text lacks (``"12+5"``) comes back
(``"12 + 5"``); words and characters outside the vocabulary (tabs included) become ``<unk>``, which ``decode``
skips.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["WordTokenizer", "SPECIAL_TOKENS", "SPACE_TOKEN"]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
SPACE_TOKEN = " "
_NO_SPACE_BEFORE = frozenset(".,?:;!")
_PUNCTUATION = tuple(".,?:;!+-*=")
_DIGITS = tuple("0123456789")
# Longest alternatives first: "####" is one token; anything else that is not a word, digit, newline or space is
# a one-character token.
_PIECE = re.compile(r"####|[A-Za-z]+|[0-9]|\n| |.", re.DOTALL)
_FORMAT = "premem-word-tokenizer"
_FORMAT_VERSION = 1


def _needs_space(prev: str, tok: str) -> bool:
    """Whether canonical text has a space between tokens ``prev`` and ``tok`` (see the module docstring)."""
    if tok == "\n" or prev == "\n":
        return False
    if tok in _NO_SPACE_BEFORE or prev == ":":
        return False
    if len(prev) == 1 and len(tok) == 1 and prev.isdigit() and tok.isdigit():
        return False
    return True


class WordTokenizer:
    """Word-level tokenizer with a fixed vocabulary (see the module docstring for the spacing rule)."""

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"the vocabulary must start with the special tokens {SPECIAL_TOKENS}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has duplicate tokens")
        if SPACE_TOKEN not in vocab:
            raise ValueError("the vocabulary must contain the space token ' '")
        self._id_to_token: list[str] = vocab
        self._token_to_id: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self.pad_id = 0
        self.bos_id = 1
        self.eos_id = 2
        self.unk_id = 3
        self.space_id = self._token_to_id[SPACE_TOKEN]
        self.special_ids = frozenset(range(len(SPECIAL_TOKENS)))

    # --- construction and persistence ---

    @classmethod
    def for_arithmetic_task(cls) -> "WordTokenizer":
        """Return the tokenizer of the built-in task: special tokens, the space token, ``"\\n"``, digits,
        punctuation, ``"####"``, ``"Answer"``, ``"Done"`` and the task's closed word list."""
        from premem.data.synthetic import VOCABULARY

        vocab: list[str] = list(SPECIAL_TOKENS) + [SPACE_TOKEN, "\n", "####"]
        vocab += list(_DIGITS) + list(_PUNCTUATION)
        for word in ("Answer", "Done", *VOCABULARY):
            if word not in vocab:
                vocab.append(word)
        return cls(vocab)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary (ids are list positions) to a JSON file at ``path``."""
        payload = {"format": _FORMAT, "version": _FORMAT_VERSION, "tokens": self._id_to_token}
        Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "WordTokenizer":
        """Return the tokenizer stored at ``path`` by :meth:`save`."""
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a {_FORMAT} file")
        if payload.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported tokenizer version {payload.get('version')!r}")
        return cls(payload["tokens"])

    # --- vocabulary ---

    @property
    def vocab_size(self) -> int:
        """Number of tokens, special tokens included (ids are ``0 .. vocab_size - 1``)."""
        return len(self._id_to_token)

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int:
        """Return the id of ``token``, or ``unk_id`` when it is not in the vocabulary."""
        return self._token_to_id.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        """Return the token string of ``token_id`` (``"<unk>"`` for ids outside the vocabulary)."""
        if 0 <= token_id < len(self._id_to_token):
            return self._id_to_token[token_id]
        return SPECIAL_TOKENS[self.unk_id]

    @property
    def vocab(self) -> list[str]:
        """The token strings in id order (a copy)."""
        return list(self._id_to_token)

    # --- encoding and decoding ---

    def _pieces(self, text: str) -> list[str]:
        """Split ``text`` into token strings, dropping the spaces the spacing rule implies."""
        out: list[str] = []
        pending_spaces = 0
        prev: str | None = None
        for piece in _PIECE.findall(text):
            if piece == " ":
                pending_spaces += 1
                continue
            if pending_spaces:
                implied = prev is not None and pending_spaces == 1 and _needs_space(prev, piece)
                if not implied:
                    out.extend([SPACE_TOKEN] * pending_spaces)
                pending_spaces = 0
            out.append(piece)
            prev = piece
        out.extend([SPACE_TOKEN] * pending_spaces)
        return out

    def encode(self, text: str) -> list[int]:
        """Return the token ids of ``text`` (no special tokens added); unknown pieces map to ``unk_id``."""
        get = self._token_to_id.get
        unk = self.unk_id
        return [get(piece, unk) for piece in self._pieces(text)]

    def tokens(self, text: str) -> list[str]:
        """Return the vocabulary strings of ``encode(text)`` (unknown pieces appear as ``"<unk>"``)."""
        return [self._id_to_token[i] for i in self.encode(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Return the text of ``ids`` under the spacing rule; special tokens (and ids outside the vocabulary) are
        skipped. Accepts any iterable of integers (lists, numpy arrays, 1-D tensors)."""
        parts: list[str] = []
        prev: str | None = None
        n = len(self._id_to_token)
        for raw in ids:
            i = int(raw)
            if i < len(SPECIAL_TOKENS) or i >= n:
                continue
            tok = self._id_to_token[i]
            if tok == SPACE_TOKEN:
                parts.append(" ")
                prev = SPACE_TOKEN
                continue
            if prev is not None and prev != SPACE_TOKEN and _needs_space(prev, tok):
                parts.append(" ")
            parts.append(tok)
            prev = tok
        return "".join(parts)

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"
