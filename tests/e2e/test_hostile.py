"""Hostile input and damaged state, through the real CLI (`python -m premem.cli` in a subprocess) on stores made
synthetically (tests/analysis/test_results_table.py's `synthetic_store`: no training, no Ray): premem never deletes or
overwrites what it does not own, serves a read-only store, treats a zero-byte or foreign database as damage,
answers every problem with one line and a documented exit code (never a traceback), and writes no CSV cell a
spreadsheet would run."""
import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.analysis.test_results_table import SPEC, synthetic_store

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # the CLI as a subprocess, some 30 times
EXIT_OK, EXIT_INVALID, EXIT_FAILED = 0, 1, 2
FORMULA = tuple("=+-@\t\r")


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def premem(*args, cwd, want=EXIT_OK, timeout=300):
    """Run the CLI; assert its exit code is `want`, and that a failure is said in one line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=_env())
    assert proc.returncode == want, f"premem {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    if want != EXIT_OK:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def make_study(work: Path, store_parent: Path | None = None, text: str = SPEC) -> Path:
    """`work/synth.yaml` and its store of made-up results (in `store_parent`, default `work`)."""
    store_parent = store_parent or work
    synthetic_store(store_parent, text)
    (work / "synth.yaml").write_text(text.format(store=store_parent / ".premem"))
    return store_parent / ".premem"


def _mount_tmpfs(where: Path, size: str) -> None:
    """A small file system of its own at `where` (needs root); skipped where it cannot be had, failed under CI."""
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if proc.returncode != 0:
        reason = "cannot mount a tmpfs here (needs root): the read-only store check needs a read-only file system"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so it must run")
        pytest.skip(reason)


# ------------------------------------------------------------------------------------------ read-only store


def test_a_read_only_store_serves_status_plan_report_and_export(tmp_path):
    """The store on a file system mounted read-only (root ignores chmod, a read-only mount stops it too)."""
    mnt = tmp_path / "mnt"
    _mount_tmpfs(mnt, "32m")
    try:
        store = make_study(tmp_path, mnt)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(OSError):
            (store / "probe").write_text("x")  # really read-only, for root too
        before = tree(mnt)
        assert "24 done" in premem("status", "synth.yaml", cwd=tmp_path).stdout
        assert "Plan: 2 to run, 24 done." in premem("plan", "synth.yaml", cwd=tmp_path).stdout
        premem("report", "synth.yaml", cwd=tmp_path)
        summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
        assert summary["premem"]["p"] is not None and len(summary["runs"]) == 5
        premem("export", "synth.yaml", "--format", "csv", "--out", "r.csv", cwd=tmp_path)
        premem("export", "synth.yaml", cwd=tmp_path)
        assert (tmp_path / "r.csv").exists() and (tmp_path / "synth-results.parquet").exists()
        out = premem("apply", "synth.yaml", cwd=tmp_path, want=EXIT_FAILED)
        assert "Read-only file system" in out.stderr and "`apply` needs to write the store" in out.stderr
        assert "nothing was run" in out.stderr
        assert tree(mnt) == before
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# ------------------------------------------------------------------------------------------ damaged databases


@pytest.fixture()
def study(tmp_path):
    """A working folder with a spec, its synthetic store and the report `premem report` made of it."""
    make_study(tmp_path)
    premem("report", "synth.yaml", cwd=tmp_path)
    return tmp_path


def _db(work: Path) -> Path:
    return work / ".premem" / "premem.db"


def _sql(work: Path, *statements: str) -> None:
    con = sqlite3.connect(_db(work))
    with con:
        for q in statements:
            con.execute(q)
    con.close()


def test_a_zero_byte_database_is_damage_and_the_report_is_kept(study):
    report = tree(study / "reports")
    _db(study).write_bytes(b"")
    for verb in ("status", "plan", "report", "export", "apply"):
        out = premem(verb, "synth.yaml", cwd=study, want=EXIT_FAILED)
        assert "is empty (0 bytes): a damaged store, not a new one" in out.stderr, (verb, out.stderr)
    assert _db(study).read_bytes() == b"" and tree(study / "reports") == report
    assert not (study / "synth-results.parquet").exists()


def test_an_emptied_database_does_not_replace_the_report_with_an_empty_one(study):
    report = tree(study / "reports")
    _sql(study, "DELETE FROM examples", "DELETE FROM jobs")
    out = premem("report", "synth.yaml", cwd=study, want=EXIT_FAILED)
    assert "no results of this spec" in out.stderr and "left as it is" in out.stderr
    assert tree(study / "reports") == report


def _foreign_database(work):
    _db(work).unlink()
    con = sqlite3.connect(_db(work))
    con.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    con.commit()
    con.close()


@pytest.mark.parametrize("damage,message", [
    (_foreign_database, "is not a premem database (it has no `jobs` table)"),
    (lambda w: _sql(w, "UPDATE jobs SET result = '{oops' WHERE kind = 'train'"), "is not JSON"),
    (lambda w: _sql(w, "UPDATE examples SET n_correct = 'many'"), "n_correct is 'many', not a whole number"),
])
def test_damaged_contents_are_one_line_never_a_traceback(study, damage, message):
    damage(study)
    for verb in ("status", "plan", "report", "export", "apply"):
        if verb in ("status", "plan", "apply") and "n_correct" in message:
            continue  # status and plan read no per-example rows; apply would first train what is missing
        out = premem(verb, "synth.yaml", cwd=study, want=EXIT_FAILED)
        assert message in out.stderr, (verb, out.stderr)


def test_an_artifacts_path_that_is_a_file(study):
    artifacts = study / ".premem" / "artifacts"
    shutil.rmtree(artifacts)
    artifacts.write_text("not a folder")
    premem("status", "synth.yaml", cwd=study)  # reading the results needs no artifacts
    out = premem("apply", "synth.yaml", cwd=study, want=EXIT_FAILED)
    assert "artifacts folder" in out.stderr and "is not a folder" in out.stderr and "nothing was run" in out.stderr
    assert artifacts.read_text() == "not a folder"


# ------------------------------------------------------------------------------------------ the report's folder


def test_files_of_the_user_in_the_report_folder_survive(study):
    rep = study / "reports"
    mine = {"notes.txt": "mine", "data/my-analysis.csv": "a,b\n1,2\n", "runs/my-page.html": "<p>mine</p>"}
    for rel, text in mine.items():
        (rep / rel).write_text(text)
    premem("report", "synth.yaml", cwd=study)
    for rel, text in mine.items():
        assert (rep / rel).read_text() == text
    listed = set(json.loads((rep / ".premem-report.json").read_text())["files"])
    assert not listed & set(mine) and "index.html" in listed
    assert [p.name for p in study.iterdir() if ".premem-" in p.name] == []


def test_a_report_folder_that_is_not_premems_is_refused_before_any_work(tmp_path):
    make_study(tmp_path)
    rep = tmp_path / "reports"
    rep.mkdir()
    (rep / "index.html").write_text("<p>the team's own page</p>")
    for verb in ("report", "apply"):  # apply: before any compute, not after it
        out = premem(verb, "synth.yaml", cwd=tmp_path, want=EXIT_INVALID)
        assert "is not empty and holds no premem report" in out.stderr
    assert tree(rep) == {"index.html": b"<p>the team's own page</p>"}


def test_analyze_out_is_checked_like_the_specs_report(study):
    premem("export", "synth.yaml", "--format", "csv", "--out", "results.csv", cwd=study)
    (study / "data").mkdir()
    shutil.copy(study / "results.csv", study / "data" / "results.csv")
    (study / "afile").write_text("x")
    os.symlink("/etc", study / "etc-link")
    before = tree(study)
    cases = {".": "is not empty and holds no premem report", "data": "is not empty and holds no premem report",
             os.path.expanduser("~"): "folder", "afile": "exists and is not a folder",
             "etc-link": "is a system or top-level folder (it leads to /etc)", "/usr/share/x": "system"}
    for out_dir, message in cases.items():
        out = premem("analyze", "data/results.csv", "--out", out_dir, cwd=study, want=EXIT_INVALID)
        assert message in out.stderr and "nothing was written" in out.stderr, (out_dir, out.stderr)
    assert tree(study) == before  # the input, the folders, the file: all as they were


# ------------------------------------------------------------------------------------------ export's output


def test_export_out_never_lands_on_the_store_the_spec_or_a_folder(study):
    db = _db(study).read_bytes()
    (study / "somewhere").mkdir()
    cases = {".premem/premem.db": "inside the store", ".premem/artifacts/x.parquet": "inside the store",
             "somewhere": "is a folder", "missing/r.csv": "does not exist; premem does not create it",
             "synth.yaml": "the spec itself", "/etc/premem.csv": "system folder"}
    for out_path, message in cases.items():
        out = premem("export", "synth.yaml", "--out", out_path, cwd=study, want=EXIT_INVALID)
        assert message in out.stderr, (out_path, out.stderr)
    assert _db(study).read_bytes() == db and not (study / "missing").exists()


def test_a_spec_name_never_leads_export_out_of_the_working_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    make_study(work, text=SPEC.replace("name: synth", "name: ../../escaped"))
    out = premem("export", "synth.yaml", cwd=work)
    assert "escaped-results.parquet" in out.stdout and (work / "escaped-results.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


# ------------------------------------------------------------------------------------------ numbers on the command line


def test_analyze_p_finite_and_negative_numbers_in_any_notation(study):
    premem("export", "synth.yaml", "--format", "csv", "--out", "r.csv", cwd=study)
    for bad in ("nan", "inf", "-inf", "-nan"):
        out = premem("analyze", "r.csv", "--p", bad, "--out", "a", cwd=study, want=EXIT_INVALID)
        assert "--p must be a finite number" in out.stderr
    out = premem("analyze", "r.csv", "--p-grid", "nan:0:0.1", "--out", "a", cwd=study, want=EXIT_INVALID)
    assert "three finite numbers" in out.stderr
    assert not (study / "a").exists()
    out = premem("analyze", "r.csv", "--p", "-7.5e-1", "--p-grid", "-3e0:-5E-1:5e-2", "--out", "a", cwd=study)
    assert "p = -0.750" in out.stdout and "--p-grid=-3:-0.5:0.05" in (study / "a" / "index.html").read_text()


# ------------------------------------------------------------------------------------------ formula injection


HOSTILE = SPEC.replace("{name: tiny, builtin: tiny", "{name: '=HYPERLINK(\"http://x\")', builtin: tiny").replace(
    "pretrain: {{dataset: arithmetic", "pretrain: {{dataset: '@arith'").replace(
    "{{name: arithmetic, builtin", "{{name: '@arith', builtin")


def csv_cells(path: Path) -> list[str]:
    return [c for row in csv.reader(io.StringIO(path.read_text())) for c in row]


def test_no_csv_premem_writes_holds_a_formula_and_analyze_reads_an_export_back(tmp_path):
    make_study(tmp_path, text=HOSTILE)
    premem("report", "synth.yaml", cwd=tmp_path)
    premem("export", "synth.yaml", "--format", "csv", "--out", "r.csv", cwd=tmp_path)
    files = sorted((tmp_path / "reports" / "data").glob("*.csv")) + [tmp_path / "r.csv"]
    quoted = 0
    for path in files:
        for cell in csv_cells(path):
            if cell.startswith(FORMULA):
                float(cell)  # only numbers may start so
            quoted += cell.startswith("'=HYPERLINK") or cell.startswith("'@arith")
    assert quoted > 0
    premem("analyze", "r.csv", "--p-grid", "-3:0:0.1", "--out", "analyzed", cwd=tmp_path)
    want = json.loads((tmp_path / "reports" / "summary.json").read_text())
    got = json.loads((tmp_path / "analyzed" / "summary.json").read_text())
    done = [r for r in want["runs"] if r["checkpoints"]]
    assert [r["name"] for r in got["runs"]] == [r["name"] for r in done]
    assert got["runs"][0]["name"].startswith('=HYPERLINK("http://x")/@arith/')  # names read back as they were
    assert got["runs"][0]["settings"]["model"] == '=HYPERLINK("http://x")'
    assert got["premem"]["p"] == want["premem"]["p"]
    assert got["premem"]["r2"] == pytest.approx(want["premem"]["r2"], abs=1e-9)


# ------------------------------------------------------------------------------------------ a killed report


KILLED = """
import os, signal, sys
from premem.report import folder
count = [0]
real = folder._write_file
def write(path, text):
    count[0] += 1
    if count[0] == 6:
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, text)
folder._write_file = write
from premem.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_report_then_a_clean_one(study):
    rep = study / "reports"
    (rep / "notes.txt").write_text("mine")
    before = tree(rep)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED), "report", "synth.yaml"], cwd=study,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert tree(rep) == before  # the old report, whole
    assert [p.name for p in study.iterdir() if ".premem-" in p.name]  # the killed run's copy
    premem("report", "synth.yaml", cwd=study)
    assert [p.name for p in study.iterdir() if ".premem-" in p.name] == []
    assert not list(rep.rglob("*.tmp")) and (rep / "notes.txt").read_text() == "mine"
    listed = json.loads((rep / ".premem-report.json").read_text())["files"]
    assert all((rep / f).is_file() for f in listed)
