"""Where premem may write (premem/paths.py): system, top-level and home folders refused however they are spelt
(links included), existing files refused as folders, and the spec's `store:` / `report:` checked the same way."""
import os

import pytest

from premem.paths import file_problem, folder_problem, safe_file_name
from premem.spec.load import SpecError, parse_spec

SPEC = """\
name: t
store: {store}
report: {report}
models:
  - {{name: tiny, builtin: tiny, pretrain: {{dataset: arith, examples: 10}}}}
datasets:
  - {{name: arith, builtin: arithmetic, train_size: 8, test_size: 8}}
grid: {{learning_rate: [1.0e-3], epochs: [1]}}
"""


@pytest.mark.parametrize("value", ["/", "/etc", "/etc/premem", "/usr/local/reports", "/tmp", "/var", "/home",
                                   os.path.expanduser("~"), "/root/", "/home/../etc"])
def test_system_top_level_and_home_folders_are_refused(value):
    assert folder_problem(value)


def test_links_are_resolved_before_the_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink("/etc", tmp_path / "innocent")
    os.symlink(os.path.expanduser("~"), tmp_path / "myhome")
    assert "leads to /etc" in folder_problem("innocent")
    assert "/etc" in folder_problem("innocent/sub")
    assert os.path.realpath(os.path.expanduser("~")) in folder_problem("myhome")
    (tmp_path / "mine").mkdir()
    os.symlink(tmp_path / "mine", tmp_path / "link-to-mine")
    assert folder_problem("link-to-mine") is None and folder_problem("new-folder") is None


def test_an_existing_file_is_not_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert "exists and is not a folder" in folder_problem("afile")
    assert "climbs out" in folder_problem("../elsewhere")  # a spec's path: stays in the project
    assert folder_problem("../elsewhere", may_climb=True) is None  # typed on the command line: the user's choice
    assert folder_problem("../" * 40, may_climb=True)  # ... but / is still /
    assert folder_problem("~/x") and folder_problem("  ")


def test_spec_store_and_report_use_the_same_checks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.html").write_text("<p>mine</p>")
    os.symlink("/etc", tmp_path / "etc-link")
    with pytest.raises(SpecError) as e:
        parse_spec(SPEC.format(store="etc-link", report="report.html"), "s.yaml")
    text = "\n".join(str(p) for p in e.value.problems)
    assert "store: 'etc-link' is a system or top-level folder (it leads to /etc)" in text, text
    assert "report: 'report.html' exists and is not a folder" in text, text
    (tmp_path / "st").mkdir()
    os.symlink(tmp_path / "st", tmp_path / "rep-link")
    with pytest.raises(SpecError) as e:  # a report that is the store under another name
        parse_spec(SPEC.format(store="st", report="rep-link"), "s.yaml")
    assert "must be separate folders" in str(e.value.problems[0])
    parse_spec(SPEC.format(store="st", report="reports"), "s.yaml")


def test_file_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    os.symlink("/etc", tmp_path / "etc-link")
    assert "is a folder" in file_problem("d")
    assert "does not exist; premem does not create it" in file_problem("missing/out.csv")
    assert "system folder" in file_problem("etc-link/cron.d/x") and "system folder" in file_problem("/usr/x.csv")
    (tmp_path / "f").write_text("x")
    assert "is not a folder" in file_problem("f/out.csv")
    assert file_problem("out.csv") is None and file_problem("d/out.csv") is None and file_problem("f") is None


@pytest.mark.parametrize("name,want", [("../x", "x"), ("a/b/../../c", "a_b_.._.._c"), ("..", "study"), ("/etc/passwd",
                                       "etc_passwd"), ("smoke", "smoke"), ("my study v1.2", "my_study_v1.2"),
                                      (".hidden", "hidden")])
def test_safe_file_name(name, want):
    assert safe_file_name(name) == want
