"""The store: a job is recorded whole or not at all; artifacts count only when published."""
import pytest

from premem.store import Store, StoreBusy
from tests.made_jobs import evaluate_job


def job(i="a" * 64):
    return evaluate_job(i)


def test_record_and_read_back(tmp_path):
    s = Store(tmp_path / "st")
    rows = [{"split": "train", "example_id": "e1", "n_samples": 4, "n_correct": 3, "n_unparseable": 1,
             "nll": 0.2, "n_target_tokens": 10, "samples": ["a", "b"]},
            {"split": "test", "example_id": "e2", "n_samples": 2, "n_correct": 0, "n_unparseable": 0}]
    s.record(job(), "done", result={"x": 1}, examples=rows)
    rec = s.records()["a" * 64]
    assert rec.status == "done" and rec.result == {"x": 1}
    got = {r["example_id"]: r for r in s.examples(["a" * 64], with_samples=True)}
    assert got["e1"]["n_correct"] == 3 and got["e1"]["samples"] == ["a", "b"] and got["e2"]["nll"] is None
    # recording again replaces, never duplicates
    s.record(job(), "done", result={"x": 2}, examples=rows[:1])
    assert len(s.examples(["a" * 64])) == 1 and s.records()["a" * 64].result == {"x": 2}


def test_failed_transaction_leaves_nothing(tmp_path):
    s = Store(tmp_path / "st")
    bad = [{"split": "train", "example_id": "e1", "n_samples": 4, "n_correct": 3, "n_unparseable": 0},
           {"split": "train", "example_id": "e1", "n_samples": 4, "n_correct": 3, "n_unparseable": 0}]  # duplicate key
    with pytest.raises(Exception):
        s.record(job(), "done", result={}, examples=bad)
    assert s.records() == {} and s.examples(["a" * 64]) == []


def test_publish_is_atomic_and_replaces_stale(tmp_path):
    s = Store(tmp_path / "st")
    st = s.staging("j1")
    (st / "w.bin").write_text("new")
    stale = s.artifact("j1")
    stale.mkdir(parents=True)
    (stale / "w.bin").write_text("old, never recorded")
    final = s.publish(st, "j1")
    assert (final / "w.bin").read_text() == "new" and not st.exists()
    s.staging("j2")
    assert s.clean_staging() == 1


def test_lock_is_exclusive(tmp_path):
    a, b = Store(tmp_path / "st"), Store(tmp_path / "st")
    a.acquire()
    assert b.apply_running()
    with pytest.raises(StoreBusy, match="another `premem apply`"):
        b.acquire()
    a.mark_started(["j"])
    assert "j" in b.running()
    a.release()
    assert not b.apply_running() and b.running() == {}
    b.acquire()
    b.release()


def test_artifact_checksums_catch_truncation_and_strays(tmp_path):
    from premem.store import CorruptArtifact, artifact_checksums

    s = Store(tmp_path / "st")
    with s.connection():
        pass
    staging = s.staging("c" * 64)
    (staging / "model.safetensors").write_bytes(b"w" * 1000)
    (staging / "sub").mkdir()
    (staging / "sub" / "state.json").write_text("{}")
    final = s.publish(staging, "c" * 64)
    sums = artifact_checksums(final)
    assert set(sums) == {"model.safetensors", "sub/state.json"}
    assert s.verify_artifact("c" * 64, sums) == final
    with open(final / "model.safetensors", "r+b") as f:
        f.truncate(500)
    with pytest.raises(CorruptArtifact, match="model.safetensors does not match") as e:
        s.verify_artifact("c" * 64, sums)
    assert e.value.job_id == "c" * 64
    (final / "model.safetensors").write_bytes(b"w" * 1000)
    s.verify_artifact("c" * 64, sums)
    (final / "extra.bin").write_bytes(b"")
    with pytest.raises(CorruptArtifact, match="extra.bin was not part of it"):
        s.verify_artifact("c" * 64, sums)
    (final / "extra.bin").unlink()
    (final / "sub" / "state.json").unlink()
    with pytest.raises(CorruptArtifact, match="state.json is missing"):
        s.verify_artifact("c" * 64, sums)
    with pytest.raises(CorruptArtifact, match="is missing from"):
        s.verify_artifact("d" * 64, sums)


def test_damaged_database_is_reported_not_read(tmp_path):
    from premem.store import StoreCorrupt

    s = Store(tmp_path / "st")
    s.record(job(), "done", result={"x": 1})
    good = s.db_path.read_bytes()
    s.check()
    s.db_path.write_bytes(b"not a database at all" * 200)
    for wal in tmp_path.glob("st/premem.db-*"):
        wal.unlink()
    with pytest.raises(StoreCorrupt, match="damaged or not a premem database"):
        Store(tmp_path / "st").records()
    # a page of the b-tree overwritten: SQLite's quick_check (run by apply) finds it
    damaged = bytearray(good)
    damaged[4096 + 8:4096 + 200] = b"\xff" * 192
    s.db_path.write_bytes(bytes(damaged))
    with pytest.raises(StoreCorrupt):
        Store(tmp_path / "st").check()


def test_nodes_tries_and_forget(tmp_path):
    import sqlite3

    root = tmp_path / "st"
    root.mkdir()
    old = sqlite3.connect(root / "premem.db")  # a store from before nodes and tries were kept
    old.executescript("""CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, label TEXT NOT NULL, run TEXT,
        epoch INTEGER, status TEXT NOT NULL, settings TEXT NOT NULL, result TEXT, error TEXT, started REAL,
        finished REAL, node TEXT);
        CREATE TABLE attempts (job_id TEXT PRIMARY KEY, started REAL NOT NULL, driver_pid INTEGER NOT NULL);
        CREATE TABLE examples (job_id TEXT NOT NULL REFERENCES jobs(id), split TEXT NOT NULL, example_id TEXT NOT NULL,
        n_samples INTEGER NOT NULL, n_correct INTEGER NOT NULL, n_unparseable INTEGER NOT NULL, nll REAL,
        n_target_tokens INTEGER, samples TEXT, PRIMARY KEY (job_id, split, example_id));""")
    old.close()
    s = Store(root)
    s.record(job("a" * 64), "done", result={}, node="n1", tries=2)
    s.record(job("b" * 64), "done", result={}, node="n2")
    assert s.tries() == {"a" * 64: 2} and s.nodes() == {"a" * 64: "n1", "b" * 64: "n2"}
    s.acquire()
    try:
        s.mark_started(["e" * 64])
        s.mark_node({"e" * 64: "n3"})
        assert s.nodes()["e" * 64] == "n3" and "e" * 64 in s.running()
    finally:
        s.release()
    s.forget("a" * 64)
    assert set(s.records()) == {"b" * 64}


# ------------------------------------------------------------------------------------------ damaged contents


def _sql(s: Store, *statements):
    import sqlite3

    con = sqlite3.connect(s.db_path)
    with con:
        for q in statements:
            con.execute(q)
    con.close()


def _filled(tmp_path) -> Store:
    s = Store(tmp_path / "st")
    s.record(job(), "done", result={"x": 1}, examples=[{"split": "train", "example_id": "e1", "n_samples": 4,
                                                        "n_correct": 3, "n_unparseable": 0, "nll": 0.2}])
    return s


def test_a_zero_byte_database_is_damage_never_a_new_store(tmp_path):
    from premem.store import StoreCorrupt

    s = _filled(tmp_path)
    s.db_path.write_bytes(b"")
    for wal in s.root.glob("premem.db-*"):
        wal.unlink()
    for call in (lambda st: st.records(), lambda st: st.record(job("b" * 64), "done", result={}), lambda st: st.check(),
                 lambda st: st.acquire()):
        with pytest.raises(StoreCorrupt, match=r"is empty \(0 bytes\): a damaged store, not a new one"):
            call(Store(s.root))
    assert s.db_path.read_bytes() == b""  # never "repaired" by a fresh schema


def test_the_database_appears_whole(tmp_path, monkeypatch):
    """A run killed while creating the store leaves no premem.db at all (never an empty one), and the next
    apply's clean-up removes what it left."""
    import os

    s = Store(tmp_path / "st")

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "link", killed)
    with pytest.raises(KeyboardInterrupt):
        s.record(job(), "done", result={})
    monkeypatch.undo()
    assert not s.db_path.exists() and not list(s.root.glob(".premem.db.new-*"))
    (s.root / ".premem.db.new-1-deadbeef").write_bytes(b"")  # as a SIGKILL would leave it
    assert s.clean_staging() == 1 and not list(s.root.glob(".premem.db.new-*"))
    s.record(job(), "done", result={"x": 1})
    assert Store(s.root).records()["a" * 64].result == {"x": 1}


def test_a_database_that_is_not_premems_is_refused_and_left_as_it_is(tmp_path):
    import sqlite3

    from premem.store import StoreCorrupt

    root = tmp_path / "st"
    root.mkdir()
    con = sqlite3.connect(root / "premem.db")
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    before = (root / "premem.db").read_bytes()
    with pytest.raises(StoreCorrupt, match="is not a premem database .it has no `jobs` table"):
        Store(root).records()
    with pytest.raises(StoreCorrupt, match="not a premem database"):
        Store(root).record(job(), "done", result={})
    assert (root / "premem.db").read_bytes() == before  # no premem tables added to someone else's database
    con = sqlite3.connect(root / "premem.db")
    con.executescript("CREATE TABLE jobs (id TEXT, payload BLOB); CREATE TABLE examples (x); "
                      "CREATE TABLE attempts (y);")
    con.close()
    with pytest.raises(StoreCorrupt, match="its `jobs` table has no .*kind"):
        Store(root).records()


@pytest.mark.parametrize("value,why", [("{not json", "not JSON"), ("[1, 2]", "a JSON list, not an object"),
                                       ("42", "a JSON int, not an object")])
def test_a_result_that_is_not_a_json_object_is_damage(tmp_path, value, why):
    from premem.store import StoreCorrupt

    s = _filled(tmp_path)
    _sql(s, f"UPDATE jobs SET result = '{value}'")
    with pytest.raises(StoreCorrupt, match=f"the result of job aaaaaaaaaa is {why}"):
        Store(s.root).records()


@pytest.mark.parametrize("column,value", [("n_correct", "'three'"), ("nll", "'low'"), ("n_samples", "1.5"),
                                          ("samples", "'{oops'")])
def test_an_example_row_that_premem_did_not_write_is_damage(tmp_path, column, value):
    from premem.store import StoreCorrupt

    s = _filled(tmp_path)
    _sql(s, f"UPDATE examples SET {column} = {value}")
    with pytest.raises(StoreCorrupt, match=f"example 'e1' of job aaaaaaaaaa: {column}"):
        Store(s.root).examples(["a" * 64], with_samples=True)


def test_an_artifacts_path_that_is_a_file(tmp_path):
    from premem.store import StoreCorrupt

    s = _filled(tmp_path)
    (s.root / "artifacts").rmdir()
    (s.root / "artifacts").write_text("not a folder")
    assert Store(s.root).records()["a" * 64].result == {"x": 1}  # reading needs no artifacts
    assert Store(s.root).clean_staging() == 0
    with pytest.raises(StoreCorrupt, match="artifacts folder .* is not a folder"):
        Store(s.root).record(job("b" * 64), "done", result={})
