"""Control characters in text that comes from users (spec keys and values, data files): what counts as one,
finding them (validation refuses them in names and paths) and escaping them (so an error message that quotes
such text can never move the cursor, recolour or clear a terminal, or forge a line of its own).

Control characters here are Unicode's category Cc (C0, DEL and C1: ESC, NUL, CR, newline...), the line and
paragraph separators, and the bidirectional formatting characters that can make text display in an order
other than the one it is read in.
"""
from __future__ import annotations

import unicodedata

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control(ch: str) -> bool:
    """True for a control character (see the module's docstring)."""
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def control_characters(text: str, allowed: str = "") -> list[str]:
    """The distinct control characters of `text` other than those in `allowed`, in order of appearance."""
    if text.isprintable():  # the common case, in C: no control character at all
        return []
    out: list[str] = []
    for ch in text:
        if ch not in allowed and ch not in out and is_control(ch):
            out.append(ch)
    return out


def escape_controls(text: str) -> str:
    """`text` with every control character written as a Python escape (`\\x1b`, `\\n`, `\\u202e`), the rest
    unchanged: safe to print on a terminal, and still one line."""
    if text.isprintable():
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii") if is_control(ch) else ch for ch in text)
