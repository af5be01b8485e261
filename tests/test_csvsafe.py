"""Formula injection (premem/csvsafe.py): every CSV premem writes quotes text a spreadsheet would run, keeps numbers
as numbers, leaves Parquet alone, and `premem analyze` reads an exported CSV back exactly."""
import csv
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from premem.analysis.results_table import read_results, read_table, write_table
from premem.csvsafe import needs_quote, safe_cell, safe_table, unquote_cell, unquote_table
from premem.report.html import write_report

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=",
           "-", "'=x", "''@y", "-abc", "+x"]
BENIGN = ["-0.5", "+3", "-1e-05", "1e5", "abc", "a=b", "", "'quoted", "-.5", "0"]
FORMULA = tuple("=+-@\t\r")


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_text_is_quoted_and_comes_back(text):
    assert needs_quote(text) and safe_cell(text) == "'" + text and unquote_cell(safe_cell(text)) == text


@pytest.mark.parametrize("text", BENIGN)
def test_numbers_and_plain_text_are_left_alone(text):
    assert safe_cell(text) == text and unquote_cell(text) == text


def test_non_text_values_pass_through():
    assert safe_cell(-0.5) == -0.5 and safe_cell(None) is None and safe_cell(-3) == -3


def test_tables_vectorised_match_the_cell_rule():
    values = HOSTILE + BENIGN + [None]
    t = pa.table({"s": pa.array(values), "d": pa.array(values).dictionary_encode(), "x": pa.array(range(len(values)))})
    safe = safe_table(t)
    want = [safe_cell(v) for v in values]
    assert safe.column("s").to_pylist() == want and safe.column("d").to_pylist() == want
    assert safe.column("x") == t.column("x")
    back = unquote_table(safe)
    assert back.column("s").to_pylist() == values and back.column("d").to_pylist() == values


def cells_of(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def test_the_report_csvs_hold_no_formula(tmp_path):
    evil = "=HYPERLINK(\"http://evil\",\"x\")"
    summary = {"spec": {"name": "@study"}, "runs": [
        {"id": evil, "name": "-run+1", "status": "done", "settings": {"model": "+m", "dataset": "\t=1"},
         "checkpoints": [{"epoch": 1, "train_acc": 0.5, "test_acc": 0.4, "premem_acc": -0.5}],
         "samples": [{"example_id": "=1+1", "question": "@q", "target": "-t", "sample": "=s", "acc": 0.5}]}]}
    write_report(summary, {evil: {"epochs": [1], "example_ids": ["=cmd"], "categories": [[1]]}}, tmp_path / "rep")
    seen = []
    for path in sorted((tmp_path / "rep" / "data").glob("*.csv")):
        for cell in cells_of(path.read_text()):
            seen.append(cell)
            assert not cell.startswith(FORMULA) or _number(cell), (path.name, cell)
    assert "'" + evil in seen and "'-run+1" in seen and "-0.5" in seen  # quoted text, numbers as they are


def _number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def test_export_csv_is_safe_parquet_untouched_and_analyze_reads_it_back(tmp_path):
    rows = []
    for run in ("=evil-run", "-2+3", "plain"):
        for cp in (1, 2):
            for ex, split in (("=1+1", "train"), ("@x", "train"), ("-7", "test"), ("t2", "test")):
                rows.append({"run": run, "checkpoint": cp, "split": split, "example_id": ex, "n_samples": 4,
                             "n_correct": cp + (ex == "@x"), "perplexity": 1 + 0.5 / cp if split == "train" else None,
                             "model": "+model", "learning_rate": -0.5 if run == "plain" else 1e-3})
    table = pa.Table.from_pylist(rows)
    write_table(table, tmp_path / "r.csv", "csv")
    write_table(table, tmp_path / "r.parquet", "parquet")
    for cell in cells_of((tmp_path / "r.csv").read_text()):
        assert not cell.startswith(FORMULA) or _number(cell), cell
    assert pq.read_table(tmp_path / "r.parquet").equals(table)  # Parquet: every value as it was
    assert read_table(tmp_path / "r.csv").column("example_id").to_pylist() == table.column("example_id").to_pylist()
    a, b = read_results(tmp_path / "r.csv"), read_results(tmp_path / "r.parquet")
    assert [r.name for r in a.runs] == [r.name for r in b.runs] == ["=evil-run", "-2+3", "plain"]
    for x, y in zip(a.runs, b.runs):
        assert x.settings == y.settings and x.example_ids == y.example_ids and x.epochs == y.epochs
        assert (x.acc == y.acc).all() and (x.test_acc == y.test_acc).all()


def test_a_users_csv_with_a_leading_quote_reads_as_premem_would_have_written_it(tmp_path):
    """analyze's rule, documented in premem/csvsafe.py: a quote before formula-like text is taken off (premem put
    it there); a quote before anything else stays."""
    (tmp_path / "u.csv").write_text("run,note\n'=a,'plain\n''=b,'-0.5\n")
    t = read_table(tmp_path / "u.csv")
    assert t.column("run").to_pylist() == ["=a", "'=b"] and t.column("note").to_pylist() == ["'plain", "'-0.5"]
