"""What has been logged where: a small table in the results store, so that an `apply` that stops part way
(a crash, Ctrl-C) and is run again logs the rest to each tracker and nothing twice.

One row per (destination, item): `destination` names one tracker's place (premem.tracking's backends each say
theirs: a log folder, a tracking URI and experiment, a W&B project), `item` one logged thing (a job id, a run's
settings, a run's analysis). Only the driver writes it, like the rest of the store.
"""
from __future__ import annotations

import time
from typing import Iterable

from premem.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS tracked (
  destination TEXT NOT NULL,
  item TEXT NOT NULL,
  logged REAL NOT NULL,
  PRIMARY KEY (destination, item)
)
"""


class Ledger:
    """The `tracked` table of `store` (made on first write: a store read by older premem versions keeps working,
    they never look at it)."""

    def __init__(self, store: Store):
        self.store = store
        self._made = False

    def _make(self, con) -> None:
        if not self._made:
            con.execute(SCHEMA)
            self._made = True

    def logged(self, destination: str) -> set[str]:
        """The items already logged to `destination` (an empty set when none, or no table yet)."""
        if not self.store.exists():
            return set()
        with self.store.connection() as con:
            self._make(con)
            return {r[0] for r in con.execute("SELECT item FROM tracked WHERE destination = ?", (destination,))}

    def mark(self, destination: str, items: Iterable[str]) -> None:
        """Record `items` as logged to `destination` (one transaction; an item already there stays as it is)."""
        now = time.time()
        with self.store.connection() as con:
            self._make(con)
            with con:
                con.executemany("INSERT OR IGNORE INTO tracked VALUES (?, ?, ?)",
                                [(destination, i, now) for i in items])
