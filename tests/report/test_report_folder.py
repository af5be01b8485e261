"""The report's folder (premem/report/folder.py): premem writes only into a folder it owns, deletes only the files
its manifest lists (and only names it writes), keeps every file of the user's, adopts an earlier version's report,
and replaces the report whole: a run killed at any point leaves the old report or the new one, and the next run
leaves no copy or temporary behind."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from premem.report import folder as folder_mod
from premem.report.folder import MANIFEST, ReportFolderError, owned_files, report_folder_problem
from premem.report.html import report_files, write_report

ROOT = Path(__file__).resolve().parents[2]


def summary(name: str, runs=("r1", "r2")) -> dict:
    return {"spec": {"name": name}, "runs": [
        {"id": r, "name": r, "status": "done", "settings": {"learning_rate": 1e-3},
         "checkpoints": [{"epoch": 1, "train_acc": 0.5, "test_acc": 0.4, "premem_acc": 0.45}]} for r in runs]}


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes); links as 'link -> target'."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = f"link -> {os.readlink(p)}".encode()
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def study_of(folder: Path) -> str:
    """The one study name every page of the report in `folder` shows; fails on a mix of two reports."""
    names = set()
    listed = json.loads((folder / MANIFEST).read_text())["files"]
    for rel in listed:
        assert (folder / rel).is_file(), rel
        if rel.endswith(".html"):
            text = (folder / rel).read_text()
            names |= {n for n in ("study-A", "study-B") if f"· {n} · premem report" in text}
    assert len(names) == 1, names
    return names.pop()


def leftovers(folder: Path) -> list[str]:
    """Copies beside `folder` and temporary files inside it."""
    side = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.premem-")]
    return side + [p.name for p in folder.rglob("*.tmp")]


# --------------------------------------------------------------------------------------------- ownership


def test_files_of_the_user_survive_and_stale_pages_go(tmp_path):
    out = tmp_path / "rep"
    write_report(summary("study-A", runs=("r1", "r2", "old-run")), {}, out)
    assert (out / "runs" / "old-run.html").exists()
    mine = {"notes.txt": b"my notes", "data/my-own.csv": b"=1+1,x\n", "runs/my-page.html": b"<p>mine</p>",
            "sub/deep/keep.bin": b"\x00\x01", "index.html.bak": b"old"}
    for rel, data in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    os.symlink("notes.txt", out / "link-to-notes")
    write_report(summary("study-B"), {}, out)
    got = tree(out)
    for rel, data in mine.items():
        assert got[rel] == data, rel
    assert got["link-to-notes"] == b"link -> notes.txt"
    assert not (out / "runs" / "old-run.html").exists()  # premem's own stale page
    listed = json.loads((out / MANIFEST).read_text())["files"]
    assert set(listed) == set(report_files(summary("study-B"), {}))
    assert leftovers(out) == []


def test_a_folder_that_is_not_premems_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "results.csv").write_text("run,checkpoint\n")
    (out / "index.html").write_text("<p>my own site</p>")
    before = tree(out)
    assert "holds no premem report" in report_folder_problem(out)
    with pytest.raises(ReportFolderError, match="not empty and holds no premem report"):
        write_report(summary("study-A"), {}, out)
    assert tree(out) == before and leftovers(out) == []
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ReportFolderError, match="exists and is not a folder"):
        write_report(summary("study-A"), {}, tmp_path / "afile")


def test_a_file_of_the_user_with_a_report_files_name_is_refused(tmp_path):
    out = tmp_path / "rep"
    write_report(summary("study-A"), {}, out)
    (out / "runs" / "r3.html").write_text("mine, made after the report")
    before = tree(out)
    with pytest.raises(ReportFolderError, match=r"runs/r3.html is not a file premem wrote"):
        write_report(summary("study-B", runs=("r1", "r3")), {}, out)
    assert tree(out) == before and leftovers(out) == []
    (out / "runs" / "r3.html").unlink()
    (out / "runs").rename(out / "runs-moved")
    (out / "runs").write_text("a file where premem's folder goes")
    with pytest.raises(ReportFolderError, match="is in the way"):
        write_report(summary("study-B"), {}, out)


def test_an_earlier_versions_report_is_adopted_without_deleting_what_it_does_not_recognise(tmp_path):
    out = tmp_path / "rep"
    write_report(summary("study-A", runs=("r1", "gone")), {}, out)
    (out / MANIFEST).unlink()  # as written by premem before manifests
    (out / "data" / "their.csv").write_text("a,b\n")  # linked from no page: not recognised
    (out / "runs" / "their.html").write_text("<p>no premem footer</p>")
    (out / "notes.md").write_text("notes")
    (out / ".index.html.abcd1234.tmp").write_text("a killed old write")  # premem.atomic's temporary
    assert owned_files(out) and "data/runs.csv" in owned_files(out) and "data/their.csv" not in owned_files(out)
    write_report(summary("study-B", runs=("r1",)), {}, out)
    assert study_of(out) == "study-B"
    assert (out / "data" / "their.csv").read_text() == "a,b\n" and (out / "notes.md").exists()
    assert (out / "runs" / "their.html").exists() and not (out / "runs" / "gone.html").exists()
    assert leftovers(out) == []


def test_a_damaged_or_hostile_manifest_never_deletes_other_files(tmp_path):
    out = tmp_path / "rep"
    write_report(summary("study-A"), {}, out)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (out / "notes.txt").write_text("keep")
    listed = json.loads((out / MANIFEST).read_text())["files"]
    (out / MANIFEST).write_text(json.dumps({"files": listed + ["../outside.txt", "notes.txt", str(outside),
                                                              "runs/../notes.txt", "data/x.csv/../../notes.txt"]}))
    write_report(summary("study-B"), {}, out)
    assert outside.read_text() == "keep" and (out / "notes.txt").read_text() == "keep"
    (out / MANIFEST).write_text("{not json")  # damaged: premem's report is still recognised by its footer
    write_report(summary("study-A"), {}, out)
    assert study_of(out) == "study-A" and (out / "notes.txt").read_text() == "keep"


def test_a_link_to_the_report_folder_stays_a_link(tmp_path):
    real = tmp_path / "real"
    write_report(summary("study-A"), {}, real)
    os.symlink(real, tmp_path / "link")
    write_report(summary("study-B"), {}, tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and study_of(real) == "study-B"


def test_the_working_folder_is_written_in_place(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    write_report(summary("study-A", runs=("r1", "old")), {}, out)
    (out / "mine.txt").write_text("mine")
    (out / ".summary.json.zzzz1234.tmp").write_text("left by a killed in-place write")
    (out / ".mine.txt.zzzz1234.tmp").write_text("not a temporary of premem's")
    monkeypatch.chdir(out)  # renaming the working folder would strand the shell in the old one
    inode = out.stat().st_ino
    write_report(summary("study-B"), {}, Path("."))
    assert out.stat().st_ino == inode and study_of(out) == "study-B"
    assert (out / "mine.txt").read_text() == "mine" and (out / ".mine.txt.zzzz1234.tmp").exists()
    assert not (out / "runs" / "old.html").exists() and not (out / ".summary.json.zzzz1234.tmp").exists()


def test_in_place_never_deletes_through_a_link_put_where_a_folder_was(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    write_report(summary("study-A", runs=("r1", "r2")), {}, out)
    elsewhere = tmp_path / "elsewhere"
    (out / "runs").rename(elsewhere)  # the user's now: holds r1.html and r2.html, listed in the manifest
    os.symlink(elsewhere, out / "runs")
    monkeypatch.chdir(out)
    with pytest.raises(ReportFolderError, match="is in the way"):
        write_report(summary("study-B", runs=("r1",)), {}, Path("."))
    write_report(summary("study-B", runs=()), {}, Path("."))  # no run pages: nothing to write under runs/
    assert sorted(p.name for p in elsewhere.iterdir()) == ["r1.html", "r2.html"]


# --------------------------------------------------------------------------------------------- killed runs


def test_a_write_that_fails_half_way_leaves_the_old_report_whole(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    write_report(summary("study-A"), {}, out)
    (out / "mine.txt").write_text("mine")
    before = tree(out)
    real, calls = folder_mod._write_file, []

    def failing(path, text):
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(folder_mod, "_write_file", failing)
    with pytest.raises(OSError, match="No space left"):
        write_report(summary("study-B"), {}, out)
    assert tree(out) == before and leftovers(out) == []


KILLER = """
import os, signal, sys
from pathlib import Path
from premem.report import folder
from premem.report.html import write_report
out, point, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
count = [0]

def kill_on(name, fn):
    def wrapped(*a, **k):
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **k)
    return wrapped

if point == "write":        # while the new copy is being written
    folder._write_file = kill_on(point, folder._write_file)
elif point == "empty":      # after the swap, while the old report is being emptied
    folder.Path.unlink = kill_on(point, folder.Path.unlink)
elif point == "between":    # two renames (no exchange): killed between them
    folder._rename_exchange = lambda a, b: False
    folder.os.rename = kill_on(point, os.rename)
runs = ("r1", "r2", "r3") if sys.argv[4] == "study-B" else ("r1", "r2")
write_report({"spec": {"name": sys.argv[4]}, "runs": [{"id": r, "name": r, "status": "done", "settings": {},
              "checkpoints": [{"epoch": 1, "train_acc": 0.5, "test_acc": 0.4}]} for r in runs]}, {}, out)
"""


@pytest.mark.parametrize("point,n", [("write", 5), ("empty", 3), ("between", 2)])
def test_a_killed_report_leaves_one_whole_report_and_the_next_run_cleans_up(tmp_path, point, n):
    out = tmp_path / "rep"
    write_report(summary("study-A", runs=("r1", "r2")), {}, out)
    (out / "mine.txt").write_text("mine")
    (out / "data" / "mine.csv").write_text("x\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLER), str(out), point, str(n), "study-B"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    if point == "between":
        assert not out.exists()  # moved aside, the new copy not yet in place: the next run puts it back
    else:
        assert study_of(out) in ("study-A", "study-B")
        assert (out / "mine.txt").read_text() == "mine" and (out / "data" / "mine.csv").read_text() == "x\n"
    assert leftovers(out)  # a killed run leaves its copy ...
    write_report(summary("study-B", runs=("r1", "r2", "r3")), {}, out)
    assert study_of(out) == "study-B" and leftovers(out) == []  # ... which the next run empties
    assert (out / "mine.txt").read_text() == "mine" and (out / "data" / "mine.csv").read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
