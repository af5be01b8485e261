"""A corpus of malformed specs (tests/specs_bad/, what is wrong on each file's first line): `premem validate`
exits 1 naming FILE:LINE and the field, without a traceback or a raw control character, and `premem apply`
starts nothing (no store folder, no Ray)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from premem.safetext import control_characters

ROOT = Path(__file__).resolve().parents[2]
BAD = sorted((ROOT / "tests" / "specs_bad").glob("*.yaml"))
HEADER = re.compile(r"# (?P<field>[^:]+): (?P<what>.+)")


def premem(*args, cwd, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "premem.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def expected(path: Path) -> str:
    m = HEADER.fullmatch(path.read_bytes().splitlines()[0].decode("ascii"))  # the rest may be any bytes
    assert m, f"{path.name}: line 1 must say `# FIELD: what is wrong` (FIELD `-` for a file-level problem)"
    return m["field"]


def test_the_corpus_covers_every_kind_of_mistake():
    assert len(BAD) >= 30
    kinds = {p.name.split("_")[0] for p in BAD}
    assert {"syntax", "tag", "types", "range", "huge", "unknown", "empty", "inconsistent", "path"} <= kinds


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """(`premem validate` of the whole corpus in one call, the folder it ran in): one process, not one per file."""
    cwd = tmp_path_factory.mktemp("validate")
    return premem("validate", *map(str, BAD), cwd=cwd), cwd


def test_validate_exits_1_when_any_spec_named_is_bad_and_says_which_are_valid(tmp_path):
    good = ROOT / "specs" / "smoke.yaml"
    assert premem("validate", str(BAD[0]), cwd=tmp_path).returncode == 1
    out = premem("validate", str(good), str(BAD[0]), cwd=tmp_path)
    assert out.returncode == 1 and f"{good}: valid." in out.stdout, out.stdout + out.stderr
    assert f"{BAD[0]}: " in out.stderr and "nothing was run." in out.stderr
    assert premem("validate", str(good), cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_validate_names_file_line_and_field(path, validated):
    field = expected(path)
    out, cwd = validated
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert not control_characters(out.stderr, allowed="\n"), out.stderr  # a spec's escapes never reach the terminal
    lines = [ln for ln in out.stderr.split("\n") if ln.startswith(f"{path}:")]
    assert lines[-1].endswith("nothing was run."), out.stderr
    problems = lines[:-1]
    if field == "-":  # a problem of the whole file: FILE:LINE: message
        assert any(re.match(rf"{re.escape(str(path))}:\d+: ", p) for p in problems), out.stderr
    else:
        assert any(re.match(rf"{re.escape(str(path))}:\d+: {re.escape(field)}: \S", p) for p in problems), out.stderr
    assert not list(cwd.iterdir())  # validate writes nothing


@pytest.mark.parametrize("name", ["tag_python_object", "range_zero_samples", "path_store_escapes_project",
                                  "inconsistent_report_in_store"])
def test_apply_on_a_bad_spec_starts_nothing(name, tmp_path):
    spec = tmp_path / f"{name}.yaml"
    spec.write_text((ROOT / "tests" / "specs_bad" / f"{name}.yaml").read_text())
    work = tmp_path / "work" / "here"  # so that ../../elsewhere would land inside tmp_path
    work.mkdir(parents=True)
    out = premem("apply", str(spec), cwd=work)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "nothing was run" in out.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == \
        sorted(Path(x) for x in (spec.name, "work", "work/here"))  # no store, no report, no ../../elsewhere
    assert not Path("/tmp/premem-pwned").exists()
