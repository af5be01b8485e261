"""Name -> object registries with "did you mean" on a typo.

Specs are data: they name things (a built-in model, a dataset, a sampler) and a registry maps the
name to code. A wrong name is an error that says which names exist and which one was probably meant.
"""
from __future__ import annotations

import difflib
from typing import Generic, Iterable, TypeVar

T = TypeVar("T")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return a suffix like ' (did you mean "tiny"?)' when a known name is close to `name`, else ''."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Suggestions:
    """did_you_mean for many lookups in one list of names (a spec's models, say), with bounded work however
    long the list and however many lookups: difflib compares a name with every known one, so a spec of
    thousands of names, each misspelt, would take hours. Lists longer than FUZZY_UP_TO get only a match that
    differs in case; after `limit` distinct names, no more suggestions (nobody reads that many)."""

    FUZZY_UP_TO = 1000

    def __init__(self, known: Iterable[str], limit: int = 100):
        self.known = list(known)
        self.limit = limit
        self._fuzzy = len(self.known) <= self.FUZZY_UP_TO
        self._by_lower = {} if self._fuzzy else {str(k).lower(): k for k in reversed(self.known)}
        self._asked: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        """The ' (did you mean "x"?)' suffix for `name`, or ''."""
        name = str(name)
        if name not in self._asked:
            if len(self._asked) >= self.limit:
                return ""
            if self._fuzzy:
                self._asked[name] = did_you_mean(name, self.known)
            else:
                close = self._by_lower.get(name.lower())
                self._asked[name] = f' (did you mean "{close}"?)' if close is not None else ""
        return self._asked[name]


class UnknownName(KeyError):
    """A registry lookup of a name that is not registered; str() is the full user-facing message."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return self.args[0]


class Registry(Generic[T]):
    """A named collection of objects of one kind (e.g. "dataset"), looked up by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def names(self) -> list[str]:
        return sorted(self._items)

    def in_order(self) -> list[T]:
        """The registered objects in the order they were registered."""
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> T:
        """Return the object registered as `name`; raise UnknownName with the known names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._items)}; "
                f"known: {', '.join(self.names())}"
            ) from None
