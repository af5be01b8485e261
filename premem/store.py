"""Where results live: a SQLite database of jobs and per-example results, plus an artifacts folder.

Only the driver (`premem apply`) writes the database, one transaction per finished job, so a job is either
fully recorded or not at all. Ray tasks write only artifacts (checkpoints), each into a fresh temporary
folder that is renamed into place when complete; an artifact counts only once its job is recorded done,
so a half-written checkpoint is never read back. The sha256 of every file of an artifact is recorded with
its job (`result["artifact_sha256"]`) and checked before a later job loads it, so a checkpoint damaged
after it was written (a truncated copy, a disk error) is reported, never read as data. One `apply` at a
time holds the store's lock.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from premem.plan.job import plain_settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  label TEXT NOT NULL,
  run TEXT,
  epoch INTEGER,
  status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
  settings TEXT NOT NULL,
  result TEXT,
  error TEXT,
  started REAL,
  finished REAL,
  node TEXT,
  tries INTEGER
);
CREATE TABLE IF NOT EXISTS examples (
  job_id TEXT NOT NULL REFERENCES jobs(id),
  split TEXT NOT NULL,
  example_id TEXT NOT NULL,
  n_samples INTEGER NOT NULL,
  n_correct INTEGER NOT NULL,
  n_unparseable INTEGER NOT NULL,
  nll REAL,
  n_target_tokens INTEGER,
  samples TEXT,
  PRIMARY KEY (job_id, split, example_id)
);
CREATE TABLE IF NOT EXISTS attempts (
  job_id TEXT PRIMARY KEY,
  started REAL NOT NULL,
  driver_pid INTEGER NOT NULL,
  node TEXT
);
"""
CHECKSUM_KEY = "artifact_sha256"  # in a job's result: {file name: sha256} of its artifact


class StoreBusy(RuntimeError):
    """Another `premem apply` holds this store."""


# sqlite3 errors that say nothing about the file's health (all DatabaseError subclasses): only the rest
# ("file is not a database", "database disk image is malformed") mean damage
NOT_DAMAGE = (sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError,
              sqlite3.NotSupportedError)


class StoreCorrupt(RuntimeError):
    """premem.db is not a readable premem database (overwritten, truncated, damaged)."""


class CorruptArtifact(RuntimeError):
    """An artifact's files do not match the checksums recorded with its job; `job_id` names the job."""

    def __init__(self, job_id: str, message: str):
        self.job_id = job_id
        super().__init__(message)


def artifact_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by path relative to it."""
    out = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out[f.relative_to(folder).as_posix()] = h.hexdigest()
    return out


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    label: str
    status: str
    result: dict | None
    error: str | None
    started: float | None
    finished: float | None


#: the columns premem reads, per table; a database without them is not a premem store (stores written before
#: `attempts.node` and `jobs.tries` existed lack those two: added on the next write, left out of reads)
COLUMNS = {"jobs": {"id", "kind", "label", "run", "epoch", "status", "settings", "result", "error", "started",
                    "finished", "node"},
           "examples": {"job_id", "split", "example_id", "n_samples", "n_correct", "n_unparseable", "nll",
                        "n_target_tokens", "samples"},
           "attempts": {"job_id", "started", "driver_pid"}}
LATER_COLUMNS = (("attempts", "node", "TEXT"), ("jobs", "tries", "INTEGER"))


class Store:
    """The results store at `root`. Reading never writes: a store in a read-only folder (or on a read-only
    mount) serves `status`, `plan`, `report` and `export`; only the writes of `apply` create the folder and
    the database (which appears whole: made beside its place, then linked into it)."""

    IDS_PER_QUERY = 500  # `records` of at most this many ids reads only theirs (under SQLite's variable limit)

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self.db_path = self.root / "premem.db"
        self._lock_file = None
        self._columns: dict[str, set[str]] | None = None  # the tables' columns, once checked

    # ----------------------------------------------------------------------------- connection
    def _connect(self, write: bool = True) -> sqlite3.Connection:
        """A connection to the database: for writing (the folder, the artifacts folder and the database made
        when missing, older stores brought up to date) or for reading only (nothing created or changed)."""
        if write:
            if os.path.lexists(self.root) and not self.root.is_dir():
                raise StoreCorrupt(f"the store {self.root} is not a folder")
            self.root.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(self.artifacts) and not self.artifacts.is_dir():
                raise StoreCorrupt(f"the store's artifacts folder {self.artifacts} is not a folder (a file is in its "
                                   "place); move it aside, or restore the store from a copy")
            self.artifacts.mkdir(exist_ok=True)
            self._create()
        self._check_size()
        con = None
        try:
            con = sqlite3.connect(self.db_path, timeout=30) if write else self._read_only()
            self._check_schema(con, write)  # first: nothing is changed in a database that is not premem's
            if write:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=FULL")
        except BaseException as e:
            if con is not None:
                con.close()
            if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, NOT_DAMAGE):
                raise self._corrupt(e) from None
            raise  # locked, disk full, a constraint or a binding: not damage; StoreCorrupt as it is
        return con

    def _read_only(self) -> sqlite3.Connection:
        """A read-only connection. A database in WAL mode needs its shared-memory file beside it; where that
        cannot be made (a read-only folder) the file is opened as immutable: no one can write it from here."""
        uri = self.db_path.resolve().as_uri()
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        except sqlite3.OperationalError:
            con.close()
            if os.access(self.root, os.W_OK):
                raise
        con = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=30)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con

    def _create(self) -> None:
        """Make the database if there is none, whole: built under a temporary name, then linked into place, so
        that a run killed while creating it never leaves an empty premem.db (which would read as damage)."""
        if os.path.lexists(self.db_path):
            return
        tmp = self.root / f".premem.db.new-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            con = sqlite3.connect(tmp)
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)
                con.commit()
            finally:
                con.close()
            try:
                os.link(tmp, self.db_path)  # fails if another process made it first: theirs is kept
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not os.path.lexists(self.db_path):
                    os.replace(tmp, self.db_path)
        finally:
            for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                p.unlink(missing_ok=True)

    def _check_size(self) -> None:
        try:
            size = self.db_path.stat().st_size
        except OSError:
            return  # missing: sqlite's own error names it
        if size == 0:
            raise StoreCorrupt(f"the results database {self.db_path} is empty (0 bytes): a damaged store, not a new "
                               "one, so premem neither reads it nor starts afresh over it. Move it aside (and its "
                               "artifacts folder) to start afresh, or restore it from a copy")

    def _check_schema(self, con: sqlite3.Connection, write: bool) -> None:
        """StoreCorrupt unless the database has premem's tables and columns; a writer adds the columns newer
        premem versions keep (never to a database that is not premem's)."""
        if self._columns is None:
            columns = {t: {r[1] for r in con.execute(f"PRAGMA table_info({t})")} for t in COLUMNS}
            for table, need in COLUMNS.items():
                if not columns[table]:
                    raise StoreCorrupt(f"the results database {self.db_path} is not a premem database (it has no "
                                       f"`{table}` table); nothing was read from it or written to it. Move it aside "
                                       "to start afresh, or point the spec's `store:` at premem's store")
                missing = sorted(need - columns[table])
                if missing:
                    raise StoreCorrupt(f"the results database {self.db_path} is not a premem database (its `{table}` "
                                       f"table has no {', '.join(missing)} column); nothing was read from it or "
                                       "written to it")
            self._columns = columns
        if write:
            for table, column, kind in LATER_COLUMNS:
                if column not in self._columns[table]:  # an older store
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                    self._columns[table].add(column)

    def _corrupt(self, e: Exception) -> StoreCorrupt:
        return StoreCorrupt(f"the results database {self.db_path} is damaged or not a premem database ({e}); "
                            "nothing was read from it. Move it aside (and its artifacts folder) to start afresh, "
                            "or restore it from a copy")

    @contextmanager
    def connection(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection for the block (`write=False`: read only, nothing created); damage is StoreCorrupt."""
        con = self._connect(write)
        try:
            yield con
        except NOT_DAMAGE:  # locked, disk full, a constraint or a binding: not damage
            raise
        except sqlite3.DatabaseError as e:
            raise self._corrupt(e) from None
        finally:
            con.close()

    def check(self) -> None:
        """Raise StoreCorrupt unless the database passes SQLite's own consistency check."""
        if not self.exists():
            return
        with self.connection(write=False) as con:
            bad = [r[0] for r in con.execute("PRAGMA quick_check")]
        if bad != ["ok"]:
            raise self._corrupt(RuntimeError("; ".join(bad[:3])))

    def exists(self) -> bool:
        return self.db_path.exists()

    # ----------------------------------------------------------------------------- the apply lock
    def acquire(self) -> None:
        """Take the store's exclusive apply lock; raise StoreBusy naming the holder if it is taken."""
        self.root.mkdir(parents=True, exist_ok=True)
        f = open(self.root / "apply.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise StoreBusy(f"another `premem apply` (pid {holder}) is using the store {self.root}; "
                            "wait for it to finish or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f
        with self.connection() as con:  # attempts of a driver that died are stale
            con.execute("DELETE FROM attempts")
            con.commit()

    def release(self) -> None:
        if self._lock_file is not None:
            try:
                with self.connection() as con:
                    con.execute("DELETE FROM attempts")
                    con.commit()
            except (sqlite3.Error, StoreCorrupt):  # the next apply clears them too; the lock must go regardless
                pass
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def apply_running(self) -> bool:
        """True while some process holds the apply lock."""
        path = self.root / "apply.lock"
        try:  # read-only: a store on a read-only mount can be asked too
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False  # no lock file (no apply ever ran here), or one premem may not read
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
        return False

    # ----------------------------------------------------------------------------- writes (driver only)
    def mark_started(self, job_ids: Iterable[str]) -> None:
        with self.connection() as con:
            con.executemany("INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, NULL)",
                            [(j, time.time(), os.getpid()) for j in job_ids])
            con.commit()

    def mark_node(self, nodes: dict[str, str]) -> None:
        """Note the Ray node each started job runs on (job id -> node id), for `premem status`."""
        with self.connection() as con:
            con.executemany("UPDATE attempts SET node = ? WHERE job_id = ?", [(n, j) for j, n in nodes.items()])
            con.commit()

    def forget(self, job_id: str) -> None:
        """Drop a job's record (its artifact was found damaged): the next apply computes it again."""
        with self.connection() as con:
            with con:
                con.execute("DELETE FROM examples WHERE job_id = ?", (job_id,))
                con.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def record(self, job, status: str, result: dict | None = None, error: str | None = None,
               examples: list[dict] | None = None, started: float | None = None, node: str | None = None,
               tries: int | None = None) -> None:
        """Record a finished job (and its per-example rows) in one transaction. `node`: the Ray node of the
        attempt that finished it; `tries`: how many attempts Ray made (more than 1 after a worker died)."""
        with self.connection() as con:
            with con:  # one transaction: all of it or nothing
                con.execute("DELETE FROM examples WHERE job_id = ?", (job.id,))
                con.execute(
                    "INSERT OR REPLACE INTO jobs (id, kind, label, run, epoch, status, settings, result, error, "
                    "started, finished, node, tries) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (job.id, job.kind, job.label, job.run, job.epoch, status, json.dumps(plain_settings(job.settings)),
                     json.dumps(result) if result is not None else None, error, started, time.time(), node, tries))
                if examples:
                    con.executemany(
                        "INSERT INTO examples VALUES (?,?,?,?,?,?,?,?,?)",
                        [(job.id, e["split"], str(e["example_id"]), e["n_samples"], e["n_correct"],
                          e["n_unparseable"], e.get("nll"), e.get("n_target_tokens"),
                          json.dumps(e["samples"]) if e.get("samples") is not None else None)
                         for e in examples])
                con.execute("DELETE FROM attempts WHERE job_id = ?", (job.id,))

    # ----------------------------------------------------------------------------- reads
    def records(self, job_ids: Iterable[str] | None = None) -> dict[str, JobRecord]:
        """Recorded jobs by id (all of them, or those among `job_ids`)."""
        if not self.exists():
            return {}
        query = "SELECT id, kind, label, status, result, error, started, finished FROM jobs"
        wanted = sorted(set(job_ids)) if job_ids is not None else None
        with self.connection(write=False) as con:
            if wanted is None or len(wanted) > self.IDS_PER_QUERY:  # many: one scan, filtered here
                rows = con.execute(query).fetchall()
            else:  # a few (a job that just landed): only their rows are read and parsed
                rows = con.execute(f"{query} WHERE id IN ({','.join('?' * len(wanted))})", wanted).fetchall()
        keep = set(wanted) if wanted is not None else None
        return {r[0]: JobRecord(r[0], r[1], r[2], r[3], self._result(r[0], r[4]), r[5], r[6], r[7])
                for r in rows if keep is None or r[0] in keep}

    def _result(self, job_id, text) -> dict | None:
        """A job's recorded result (a JSON object, or nothing); StoreCorrupt naming the job when it is not one."""
        if text is None or text == "":
            return None
        try:
            value = json.loads(text)
        except (TypeError, ValueError) as e:
            value, why = None, f"not JSON ({e})"
        else:
            why = f"a JSON {type(value).__name__}, not an object"
        if isinstance(value, dict):
            return value
        raise StoreCorrupt(f"the results database {self.db_path} is damaged: the result of job {str(job_id)[:10]} is "
                           f"{why}; nothing was read from it. Restore the store from a copy, or move it aside to "
                           "start afresh")

    def done_jobs(self, jobs: list) -> tuple[list, dict[str, JobRecord]]:
        """Those of `jobs` (plan Jobs) recorded done, in their order, and their records by id."""
        records = {k: r for k, r in self.records([j.id for j in jobs]).items() if r.status == "done"}
        return [j for j in jobs if j.id in records], records

    def running(self) -> dict[str, float]:
        """Jobs a live `apply` has started and not finished: id -> start time."""
        if not self.exists() or not self.apply_running():
            return {}
        with self.connection(write=False) as con:
            return dict(con.execute("SELECT job_id, started FROM attempts").fetchall())

    def tries(self) -> dict[str, int]:
        """How many attempts each recorded job took (jobs recorded before premem counted them are left out)."""
        if not self.exists():
            return {}
        with self.connection(write=False) as con:
            if "tries" not in self._columns["jobs"]:  # a store from before tries were counted
                return {}
            return dict(con.execute("SELECT id, tries FROM jobs WHERE tries IS NOT NULL").fetchall())

    def nodes(self) -> dict[str, str]:
        """The Ray node of each recorded job, and of each job a live `apply` runs now: job id -> node id."""
        if not self.exists():
            return {}
        with self.connection(write=False) as con:
            out = dict(con.execute("SELECT id, node FROM jobs WHERE node IS NOT NULL").fetchall())
            if self.apply_running() and "node" in self._columns["attempts"]:
                out.update(con.execute("SELECT job_id, node FROM attempts WHERE node IS NOT NULL").fetchall())
        return out

    def examples(self, job_ids: list[str], with_samples: bool = False) -> list[dict]:
        """Per-example rows of the given evaluate jobs."""
        if not job_ids:
            return []
        cols = "job_id, split, example_id, n_samples, n_correct, n_unparseable, nll, n_target_tokens"
        if with_samples:
            cols += ", samples"
        out = []
        names = [c.strip() for c in cols.split(",")]
        with self.connection(write=False) as con:
            for start in range(0, len(job_ids), 500):
                chunk = job_ids[start:start + 500]
                q = f"SELECT {cols} FROM examples WHERE job_id IN ({','.join('?' * len(chunk))})"
                for r in con.execute(q, chunk):
                    row = dict(zip(names, r))
                    self._check_example(row)
                    if with_samples and row.get("samples"):
                        try:
                            row["samples"] = json.loads(row["samples"])
                        except (TypeError, ValueError) as e:
                            raise self._bad_example(row, f"samples are not JSON ({e})") from None
                    out.append(row)
        return out

    def _check_example(self, row: dict) -> None:
        """StoreCorrupt unless the per-example row holds what premem wrote: whole counts, a number or nothing
        for the NLL (SQLite keeps any value in any column, so a damaged or edited row can hold text)."""
        for k in ("n_samples", "n_correct", "n_unparseable"):
            if not isinstance(row[k], int):
                raise self._bad_example(row, f"{k} is {row[k]!r}, not a whole number")
        if row["nll"] is not None and not isinstance(row["nll"], (int, float)):
            raise self._bad_example(row, f"nll is {row['nll']!r}, not a number")
        if row["n_target_tokens"] is not None and not isinstance(row["n_target_tokens"], int):
            raise self._bad_example(row, f"n_target_tokens is {row['n_target_tokens']!r}, not a whole number")

    def _bad_example(self, row: dict, why: str) -> StoreCorrupt:
        return StoreCorrupt(f"the results database {self.db_path} is damaged: example {str(row['example_id'])[:40]!r} "
                            f"of job {str(row['job_id'])[:10]}: {why}; nothing was read from it. Restore the store "
                            "from a copy, or move it aside to start afresh")

    # ----------------------------------------------------------------------------- artifacts
    def artifact(self, job_id: str) -> Path:
        """Where job `job_id`'s artifact folder lives (whether or not it exists yet)."""
        return self.artifacts / job_id

    def staging(self, job_id: str) -> Path:
        """A fresh temporary folder beside the artifact's final place; `publish` renames it into place."""
        path = self.artifacts / f".tmp-{job_id}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def publish(self, staging: Path, job_id: str) -> Path:
        """Atomically move a complete staging folder to the job's artifact place, replacing a stale one."""
        final = self.artifact(job_id)
        if final.exists():  # left by an attempt whose result was never recorded: not trusted
            trash = self.artifacts / f".old-{job_id}-{uuid.uuid4().hex[:8]}"
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, final)
        return final

    def verify_artifact(self, job_id: str, expected: dict[str, str]) -> Path:
        """The artifact folder of `job_id` once its files match `expected` (its recorded checksums); else
        CorruptArtifact naming the first file that is missing, extra or different."""
        folder = self.artifact(job_id)
        if not folder.is_dir():
            raise CorruptArtifact(job_id, f"the artifact of job {job_id[:10]} is missing from {folder}")
        actual = artifact_checksums(folder)
        for name in sorted(set(expected) | set(actual)):
            if name not in actual:
                problem = "is missing"
            elif name not in expected:
                problem = "was not part of it when it was recorded"
            elif actual[name] != expected[name]:
                problem = "does not match the checksum recorded with its job (damaged or truncated)"
            else:
                continue
            raise CorruptArtifact(job_id, f"artifact file {folder / name} {problem}; not read")
        return folder

    def clean_staging(self) -> int:
        """Remove temporary folders left by interrupted jobs; return how many."""
        n = 0
        if self.artifacts.is_dir():
            for p in self.artifacts.iterdir():
                if p.name.startswith((".tmp-", ".old-")):
                    shutil.rmtree(p, ignore_errors=True)
                    n += 1
        if self.root.is_dir():  # a database whose creation was killed before it was linked into place
            for p in self.root.glob(".premem.db.new-*"):
                p.unlink(missing_ok=True)
                n += 1
        return n
