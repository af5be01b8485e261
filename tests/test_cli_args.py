"""The command line's own handling: negative numbers as option values in any notation, and every unexpected
error as one line with an exit code (the traceback only with PREMEM_DEBUG=1)."""
import pytest

from premem import cli


@pytest.mark.parametrize("argv,want", [
    (["--p", "-7.5e-1"], ["--p=-7.5e-1"]),
    (["--p", "-.5"], ["--p=-.5"]),
    (["--p", "-1E3"], ["--p=-1E3"]),
    (["--p", "-inf"], ["--p=-inf"]),  # a value: refused later as not finite, with the reason
    (["--p-grid", "-3e0:-5E-1:5e-2"], ["--p-grid=-3e0:-5E-1:5e-2"]),
    (["--p-gr", "-3:-1:0.5"], ["--p-gr=-3:-1:0.5"]),  # an abbreviation argparse accepts
    (["--p", "-abc"], ["--p", "-abc"]),  # not a number: left to argparse
    (["--out", "-1"], ["--out", "-1"]),
    (["--", "--p", "-1"], ["--", "--p", "-1"]),
])
def test_negative_values(argv, want):
    assert cli._join_negative_values(argv) == want


def test_negative_p_parses():
    args = cli.parser().parse_args(cli._join_negative_values(["analyze", "r.csv", "--p", "-7.5e-1"]))
    assert args.p == -0.75


def test_an_unexpected_error_is_one_line(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("something premem did not foresee\nsecond line")

    monkeypatch.setattr(cli, "cmd_schema", boom)
    assert cli.main(["schema"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: something premem did not foresee" in err and "PREMEM_DEBUG" in err
    monkeypatch.setenv("PREMEM_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["schema"])


def test_file_system_errors_are_one_line(monkeypatch, capsys):
    def denied(args):
        raise PermissionError(13, "Permission denied", "/some/file")

    monkeypatch.setattr(cli, "cmd_schema", denied)
    assert cli.main(["schema"]) == cli.EXIT_FAILED
    assert capsys.readouterr().err == "premem: Permission denied: /some/file\n"


@pytest.mark.parametrize("argv", [["analyze", "r.csv", "--p", "abc"], ["frobnicate"], [], ["export"]])
def test_a_bad_command_line_is_invalid_input_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == cli.EXIT_INVALID  # 2 means work that failed
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("premem") and "--help" in err
