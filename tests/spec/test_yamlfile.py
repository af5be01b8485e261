"""premem.spec.yamlfile: hostile YAML files are refused fast, with one line each and the line they concern; merge keys
work; the same reader serves specs and throughputs files."""
import os

import pytest

from premem.cost.throughputs import CostError, load_throughputs

from premem.spec import yamlfile
from premem.spec.load import SpecError, load_spec, parse_spec
from premem.spec.yamlfile import MAX_BYTES, MAX_DEPTH, MAX_NODES, YamlFileError, compose, read_text

BOMB = "".join(f"{a}: &{a} [{', '.join([f'*{p}' if p else '1'] * 9)}]\n"
               for p, a in zip([None, *"abcdefgh"], "abcdefghi"))  # 9^9 = 387M values from 300 bytes


@pytest.fixture(autouse=True, params=["libyaml", "pyyaml"])
def parser(request, monkeypatch):
    """Every test with each parser the reader may use: libyaml's where PyYAML has it, PyYAML's own elsewhere."""
    if request.param == "pyyaml":
        monkeypatch.setattr(yamlfile, "_PARSER", yamlfile._Loader)
    elif yamlfile._libyaml_parser() is None:
        pytest.skip("no libyaml (0.2.5 or later) in this PyYAML")
    return request.param


def refused(text: str) -> YamlFileError:
    with pytest.raises(YamlFileError) as e:
        compose(text)
    assert "\n" not in e.value.message
    return e.value


def test_an_alias_bomb_is_measured_not_expanded():
    e = refused(BOMB)
    assert f"more than {MAX_NODES:,} values" in e.message and e.line is not None


def test_aliases_below_the_cap_expand():
    data, _ = compose("a: &a [1, 2]\nb: [*a, *a]\n")
    assert data == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a [1, [2, *a]]\n"])
def test_a_recursive_alias_is_refused(text):
    assert "recursive alias" in refused(text).message


@pytest.mark.parametrize("text", ["[" * 10_000 + "]" * 10_000, "a: " + "{b: " * 5_000 + "1" + "}" * 5_000,
                                  "".join(" " * i + "k:\n" for i in range(300)),
                                  "".join(" " * (2 * i) + "- \n" for i in range(300))])
def test_deep_nesting_is_refused_while_scanning(text):
    e = refused(text)
    assert f"deeper than {MAX_DEPTH} levels" in e.message and e.line is not None


def test_aliases_cannot_nest_past_the_depth_limit():
    text = "k0: &k0 [1]\n" + "".join(f"k{i}: &k{i} [*k{i - 1}]\n" for i in range(1, 3 * MAX_DEPTH))
    assert "deeper than" in refused(text).message


def test_merge_keys_merge_with_the_mappings_own_keys_winning():
    text = "base: &b {x: 1, y: 2}\nmore: &m {y: 3, z: 4}\nc:\n  <<: [*b, *m]\n  x: 9\n"
    data, lines = compose(text)
    assert data["c"] == {"x": 9, "y": 2, "z": 4}
    assert lines[("c", "x")] == 5 and lines[("c", "y")] == 1 and lines[("c", "z")] == 2


@pytest.mark.parametrize("text, what", [("a:\n  <<: 3\n", "merges a mapping"),
                                        ("a:\n  <<: [{x: 1}, 2]\n", "merges a mapping"),
                                        ("a:\n  <<: {x: 1}\n  <<: {y: 1}\n", "duplicate key <<")])
def test_a_bad_merge_is_refused(text, what):
    assert what in refused(text).message


@pytest.mark.parametrize("text", ["? [a, b]\n: 1\n", "? {a: 1}\n: 1\n"])
def test_a_key_that_is_a_list_or_mapping_is_refused(text):
    assert "a key must be a single value" in refused(text).message


@pytest.mark.parametrize("text, what, line", [
    ("a: !!python/object/apply:os.system ['true']\n", "!!python/object/apply:os.system is not allowed", 1),
    ("? !!python/name:os.system\n: 1\n", "!!python/name:os.system is not allowed", 1),
    ("a: !!binary aGk=\n", "!!binary is not allowed", 1),
    ("a: !include x.yaml\n", "!include is not allowed", 1),
    ("a: !!int abc\n", "cannot read 'abc' as !!int", 1),
    ("a: !!bool maybe\n", "cannot read 'maybe' as !!bool", 1),
    ("a: " + "9" * 5000 + "\n", "as !!int", 1),  # more digits than Python converts
    ("a: 1\n\na: 2\n", "duplicate key", 3),
    ("a: \x1b[31m\n", r"'\x1b' (U+001B) may not appear raw", 1),
    ("a: [1\n", "YAML syntax error", 2),
])
def test_what_a_yaml_file_cannot_hold_is_one_line_with_its_line(text, what, line):
    e = refused(text)
    assert what in e.message and e.line == line, e.message


def test_a_file_larger_than_the_cap_is_refused_from_its_size(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:  # sparse: nothing is written, nothing must be read
        f.truncate(MAX_BYTES * 50)
    with pytest.raises(YamlFileError) as e:
        read_text(big, "spec")
    assert "a spec file is at most 4 MiB" in e.value.message


def test_a_file_at_the_cap_is_read(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_bytes(b"#" * MAX_BYTES)
    assert len(read_text(ok, "spec")) == MAX_BYTES


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError) as e:
        load_spec(fifo)
    assert "not a regular file" in str(e.value)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused():
    with pytest.raises(SpecError) as e:
        load_spec("/dev/zero")
    assert "not a regular file" in str(e.value)


def test_a_folder_and_a_missing_file(tmp_path):
    for path, what in ((tmp_path, "is a folder"), (tmp_path / "nope.yaml", "no such file"),
                       (str(tmp_path / "a\0b.yaml"), "no such file")):
        with pytest.raises(YamlFileError) as e:
            read_text(path, "spec")
        assert what in e.value.message


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: ok\nother: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError) as e:
        load_spec(bad)
    assert str(e.value).startswith(f"{bad}:2: not UTF-8 text: byte 0xe9")


def test_the_throughputs_file_goes_through_the_same_reader(tmp_path):
    cases = {"bomb.yaml": (BOMB.encode(), "values (aliases"), "latin1.yaml": (b"note: caf\xe9\n", ":1: not UTF-8"),
             "deep.yaml": (b"[" * 5000, "deeper than"), "rec.yaml": (b"defaults: &a {x: *a}\n", "recursive alias")}
    for name, (content, what) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CostError) as e:
            load_throughputs(path)
        assert len(e.value.lines) == 1 and e.value.lines[0].startswith(str(path)) and what in e.value.lines[0], \
            e.value.lines


def test_a_spec_may_use_merge_keys_and_errors_point_at_the_merged_line():
    text = """\
name: t
models:
  - name: tiny
    builtin: tiny
    size: &size {layers: 2, hidden: 64, heads: 2, mlp: 256, max_length: 128}
    pretrain: {dataset: arith, examples: 10}
  - name: tiny3
    builtin: tiny
    size: {<<: *size, layers: 3}
    pretrain: {dataset: arith, examples: 10}
datasets:
  - name: arith
    builtin: arithmetic
    train_size: 8
    test_size: 8
grid: {learning_rate: [1.0e-3], epochs: [1]}
"""
    spec = parse_spec(text, "s.yaml")
    assert [(m.size.layers, m.size.hidden) for m in spec.models] == [(2, 64), (3, 64)]
    with pytest.raises(SpecError) as e:
        parse_spec(text.replace("mlp: 256", "mlp: 4"), "s.yaml")
    assert [str(p).split(" ")[0] for p in e.value.problems] == ["s.yaml:5:", "s.yaml:5:"]  # both: where mlp is
    assert [p.path for p in e.value.problems] == ["models.0.size.mlp", "models.1.size.mlp"]
