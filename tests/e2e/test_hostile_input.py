"""Hostile input files through the real CLI: files that never end, files too large to parse, hostile throughputs
files, specs with thousands of problems. Each gets an answer at once: exit 1, one line per problem naming the
file (and line), no traceback, nothing written."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_bad_specs import ROOT, premem

GOOD = (ROOT / "tests" / "specs_bad" / "range_nan_lr.yaml").read_text().replace("[.nan]", "[1.0e-3]")


def refused(out, *what: str) -> list[str]:
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    for w in what:
        assert w in out.stderr, out.stderr
    return out.stderr.splitlines()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_nobody_writes_is_refused_at_once(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    refused(premem("validate", str(fifo), cwd=tmp_path, timeout=60), f"{fifo}: is not a regular file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
@pytest.mark.parametrize("path", ["/dev/zero", "/dev/stdin"])
def test_a_device_that_never_ends_is_refused_at_once(path, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open("/dev/zero", "rb") as zero:  # /dev/stdin reads /dev/zero
        out = subprocess.run([sys.executable, "-m", "premem.cli", "validate", path], cwd=tmp_path, stdin=zero,
                             capture_output=True, text=True, timeout=60, env=env)
    refused(out, f"{path}: is not a regular file")


def test_a_spec_too_large_to_parse_is_refused_from_its_size(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.write(GOOD.encode())
        f.truncate(200 * 2**20)  # 200 MiB, sparse: premem must not read it
    refused(premem("validate", str(big), cwd=tmp_path, timeout=60), f"{big}: 209,715,200 bytes: a spec file is at most")


@pytest.mark.parametrize("name, content, what", [
    ("bomb.yaml", "".join(f"{a}: &{a} [{', '.join([f'*{p}' if p else '1'] * 9)}]\n"
                          for p, a in zip([None, *"abcdefgh"], "abcdefghi")).encode(), ":7: this value expands"),
    ("latin1.yaml", b"note: caf\xe9\n", ":1: not UTF-8 text"),
    ("escape.yaml", b'defaults: {"\\e[2J": 1}\n', r":1: defaults.\x1b[2J: unknown key"),
    ("nan.yaml", b"defaults: {train_tokens_per_s: .nan}\n", ":1: defaults.train_tokens_per_s: Input should be a finite"),
])
def test_plan_cost_refuses_a_hostile_throughputs_file_in_one_line(tmp_path, name, content, what):
    spec = tmp_path / "s.yaml"
    spec.write_text(GOOD)
    rates = tmp_path / name
    rates.write_bytes(content)
    lines = refused(premem("plan", str(spec), "--cost", str(rates), cwd=tmp_path, timeout=120), f"{rates}{what}")
    assert len(lines) == 1 and "\x1b" not in lines[0], lines


def test_thousands_of_problems_are_counted_not_all_printed(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(GOOD.replace("[1.0e-3]", "[" + ", ".join([".nan"] * 1000) + "]"))
    lines = refused(premem("validate", str(spec), cwd=tmp_path), "1,000 problems (800 not shown); nothing was run.")
    problems = [ln for ln in lines if re.match(rf"{re.escape(str(spec))}:14: grid\.learning_rate\.\d+: ", ln)]
    assert len(problems) == 200 and problems[0].startswith(f"{spec}:14: grid.learning_rate.0: must be a finite")
    assert problems[-1].startswith(f"{spec}:14: grid.learning_rate.199: ")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["s.yaml"]
