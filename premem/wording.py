"""How premem words a number of things in its messages ("1 run", "1,024 rows"): one rule for every command."""
from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, word: str) -> str:
    """`n` with thousands separators and `word`, plural unless n is 1: counted(1, 'run') == '1 run'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"
