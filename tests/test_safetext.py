"""Control characters from a spec, a throughputs file or a data file reach the terminal escaped, never raw: at
each place an error quoting them is formatted (spec problems, throughputs problems, job errors, table
problems)."""
import pytest

from premem.analysis.results_table import TableError
from premem.cost.throughputs import CostError, load_throughputs
from premem.jobs.schedule import last_line
from premem.safetext import control_characters, escape_controls, is_control
from premem.spec.load import Problem, SpecError, parse_spec

HOSTILE = "a\x1b[2J\x1b]0;title\x07b\rc\x00d\x9be\u202ef\u2028g"


def printable(text: str) -> bool:
    return not any(is_control(ch) for ch in text)


def test_escaping_keeps_one_printable_line_and_the_text_readable():
    out = escape_controls(HOSTILE)
    assert printable(out) and "\n" not in out
    assert out == r"a\x1b[2J\x1b]0;title\x07b\rc\x00d\x9be\u202ef\u2028g"
    assert escape_controls("plain text, ünïcode, tab-free") == "plain text, ünïcode, tab-free"
    assert escape_controls("two\nlines") == r"two\nlines"


def test_control_characters_lists_each_once_and_honours_what_is_allowed():
    assert control_characters("a\tb\nc\x1b\x1b") == ["\t", "\n", "\x1b"]
    assert control_characters("a\tb\nc", allowed="\t\n") == []
    assert control_characters("plain") == []


def test_a_spec_problem_is_printed_escaped():
    with pytest.raises(SpecError) as e:
        parse_spec('name: t\n"\\e[2Jkey": 1\n', "s\x1b.yaml")
    for p in e.value.problems:
        assert printable(str(p)), str(p)
    assert any(str(p) == r"s\x1b.yaml:2: \x1b[2Jkey: unknown key" for p in e.value.problems)
    assert str(Problem("f", 1, "", "x\ny")) == r"f:1: x\ny"  # a message cannot forge a second line


def test_a_throughputs_problem_is_printed_escaped(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text('defaults:\n  "\\e[31mtrain_tokens_per_s": 1\n')
    with pytest.raises(CostError) as e:
        load_throughputs(path)
    assert e.value.lines == [rf"{path}:2: defaults.\x1b[31mtrain_tokens_per_s: unknown key"]


def test_a_job_error_quoting_a_data_file_is_printed_escaped():
    err = f"Traceback ...\nDataError: train.jsonl: row 3: no final answer in {HOSTILE}"
    assert last_line(err) == "DataError: train.jsonl: row 3: no final answer in " + escape_controls(HOSTILE)


def test_a_table_problem_is_printed_escaped():
    lines = TableError("r\x1b.csv", [f"row 2: run: {HOSTILE!s}"]).lines()
    assert all(printable(line) for line in lines) and lines[0].startswith(r"r\x1b.csv: row 2: run: a\x1b[2J")
