"""Dataset sources (gsm8k, math, jsonl) through the registry and the real `datasets.load_dataset`, their spec
sections, and the fingerprint that makes job ids see edits to local data files."""
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from premem.data.loaders import (DATASETS, DataError, Splits, TextExample, dataset_fingerprint, load_splits,
                                 math_level)
from premem.spec.load import SpecError, parse_spec
from premem.spec.schema import MATH_SUBJECTS, DatasetSpec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GSM8K_TRAIN, GSM8K_TEST = FIXTURES / "gsm8k_train.jsonl", FIXTURES / "gsm8k_test.jsonl"
MATH_TRAIN, MATH_TEST = FIXTURES / "math_train.jsonl", FIXTURES / "math_test.jsonl"


def rows(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def gsm8k_local(train=GSM8K_TRAIN, test=GSM8K_TEST, **kw):
    return DatasetSpec(name="g", gsm8k={"train_file": str(train), "test_file": str(test)}, **kw)


def math_local(**kw):
    levels = kw.pop("levels", None)
    return DatasetSpec(name="m", math={"train_file": str(MATH_TRAIN), "test_file": str(MATH_TEST), "levels": levels},
                       **kw)


def test_registry_knows_every_source():
    assert {"arithmetic", "gsm8k", "math", "jsonl"} <= set(DATASETS.names())


# ------------------------------------------------------------------------------------------------- GSM8K
def test_gsm8k_from_local_jsonl():
    splits = load_splits(gsm8k_local())
    assert isinstance(splits, Splits) and splits.task is None and splits.answer_format == "gsm8k"
    assert (len(splits.train), len(splits.test)) == (12, 12)
    ex = splits.train[0]
    assert isinstance(ex, TextExample)
    assert ex.id == "train-00000" and splits.test[11].id == "test-00011"
    assert ex.question.startswith("Natalia sold clips")
    assert ex.solution == rows(GSM8K_TRAIN)[0]["answer"] and ex.solution.endswith("#### 72")  # `#### N` kept
    assert ex.answer == "72" and ex.difficulty == 2 and ex.answer_format == "gsm8k"
    assert splits.train[10].solution.endswith("#### 1,080") and splits.train[10].answer == "1080"  # commas removed
    assert splits.train[11].answer == "-7" and splits.test[11].answer == "-10"
    assert all(e.answer.lstrip("-").isdigit() for e in splits.train + splits.test)


def test_gsm8k_from_parquet_and_arrow_match_jsonl(tmp_path):
    for split, src in (("train", GSM8K_TRAIN), ("test", GSM8K_TEST)):
        table = pa.Table.from_pylist(rows(src))
        pq.write_table(table, tmp_path / f"{split}.parquet")
        with pa.OSFile(str(tmp_path / f"{split}.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
    ref = load_splits(gsm8k_local())
    for suffix in ("parquet", "arrow"):
        got = load_splits(gsm8k_local(tmp_path / f"train.{suffix}", tmp_path / f"test.{suffix}"))
        assert got.train == ref.train and got.test == ref.test, suffix


def test_gsm8k_hub_arguments(monkeypatch, tmp_path):
    """The hub boundary: `datasets.load_dataset(hub id, config, revision=...)` is replaced by a stand-in that
    records its arguments and serves the local fixtures through the real load_dataset; nothing is downloaded."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    real = datasets.load_dataset
    calls = []

    def fake(path, name=None, **kw):
        calls.append((path, name, kw))
        return real("json", data_files={"train": str(GSM8K_TRAIN), "test": str(GSM8K_TEST)},
                    cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(datasets, "load_dataset", fake)
    splits = load_splits(DatasetSpec(name="g", gsm8k={}))
    assert calls == [("openai/gsm8k", "main", {"revision": None})]
    assert splits.train == load_splits(gsm8k_local()).train
    calls.clear()
    load_splits(DatasetSpec(name="g", gsm8k={"hub": "me/gsm8k-copy", "config": "socratic", "revision": "abc123"}))
    assert calls == [("me/gsm8k-copy", "socratic", {"revision": "abc123"})]


def test_gsm8k_unparseable_gold_names_the_row(tmp_path):
    items = rows(GSM8K_TRAIN)
    items[3]["answer"] = items[3]["answer"].replace("####", "The answer is")
    bad = write_jsonl(tmp_path / "train.jsonl", items)
    with pytest.raises(DataError) as e:
        load_splits(gsm8k_local(train=bad))
    msg = str(e.value)
    assert "row 4 (id train-00003)" in msg and "####" in msg and str(bad) in msg


def test_missing_column_is_a_clear_error(tmp_path):
    bad = write_jsonl(tmp_path / "train.jsonl", [{"q": "x", "answer": "#### 1"}])
    with pytest.raises(DataError, match=r"no column 'question'; its columns: q, answer"):
        load_splits(gsm8k_local(train=bad))


def test_malformed_file_is_a_data_error(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "x", "answer": "#### 1"}\n{not json\n')
    with pytest.raises(DataError, match=str(bad)):
        load_splits(gsm8k_local(train=bad))


def test_size_caps_draw_a_seeded_nested_subset():
    full = load_splits(gsm8k_local()).train
    five = load_splits(gsm8k_local(train_size=5)).train
    seven = load_splits(gsm8k_local(train_size=7)).train
    assert len(five) == 5 and len(seven) == 7
    assert set(e.id for e in five) <= set(e.id for e in seven) <= set(e.id for e in full)
    assert [e.id for e in five] == sorted(e.id for e in five)                     # file order kept
    assert load_splits(gsm8k_local(train_size=5)).train == five                    # deterministic
    assert [e.id for e in load_splits(gsm8k_local(train_size=5, seed=1)).train] != [e.id for e in five]
    assert len(load_splits(gsm8k_local(test_size=3)).test) == 3
    assert len(load_splits(gsm8k_local(train_size=100)).train) == 12              # a cap, not a demand


# -------------------------------------------------------------------------------------------------- MATH
def test_math_from_local_files_with_levels():
    splits = load_splits(math_local(levels=[1, 2, 3]))
    assert splits.answer_format == "boxed"
    assert {e.difficulty for e in splits.train + splits.test} == {1, 2, 3}
    assert (len(splits.train), len(splits.test)) == (8, 8)
    assert splits.skipped == {"train": 1, "test": 0}          # the level-1 train row with no \boxed answer
    assert splits.test[1].answer == r"\frac{5}{6}" and splits.test[1].answer_format == "boxed"
    assert splits.test[3].answer == r"\dfrac{1}{4}"
    everything = load_splits(math_local())
    assert (len(everything.train), len(everything.test)) == (11, 12)
    fbox = next(e for e in everything.train if "fbox" in e.solution)
    assert fbox.answer == "720" and fbox.difficulty == 3
    assert everything.test[-1].id == "test-00011" and everything.test[-1].difficulty == 5
    top = load_splits(math_local(levels=[5]))
    assert [e.id for e in top.test] == ["test-00010", "test-00011"]    # ids index the unfiltered split


def test_math_level_field():
    assert [math_level(v) for v in ("Level 3", "level 5", "2", 4, "Level ?", None, 7, True)] == \
        [3, 5, 2, 4, None, None, None, None]


def _math_by_subject():
    subject = {"Prealgebra": "prealgebra", "Algebra": "algebra", "Counting & Probability": "counting_and_probability",
               "Geometry": "geometry", "Intermediate Algebra": "intermediate_algebra",
               "Number Theory": "number_theory", "Precalculus": "precalculus"}
    out = {}
    for split, path in (("train", MATH_TRAIN), ("test", MATH_TEST)):
        for r in rows(path):
            out.setdefault(subject[r["type"]], {"train": [], "test": []})[split].append(r)
    return out


def test_math_hub_per_subject_configs_are_concatenated(monkeypatch):
    """The hub boundary for MATH: the default mirror has one configuration per subject; a stand-in for
    `datasets.load_dataset` serves the fixture rows of each subject."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    by_subject = _math_by_subject()
    calls = []

    def fake(path, name=None, **kw):
        calls.append((path, name, kw))
        if name is None:  # a single-configuration mirror: every subject at once
            return datasets.DatasetDict({s: datasets.Dataset.from_list(rows(p))
                                         for s, p in (("train", MATH_TRAIN), ("test", MATH_TEST))})
        part = by_subject.get(name, {"train": [], "test": []})
        empty = {"problem": [], "solution": [], "level": [], "type": []}
        return datasets.DatasetDict({s: datasets.Dataset.from_list(part[s]) if part[s] else
                                     datasets.Dataset.from_dict(empty) for s in ("train", "test")})

    monkeypatch.setattr(datasets, "load_dataset", fake)
    splits = load_splits(DatasetSpec(name="m", math={}))
    assert calls == [("EleutherAI/hendrycks_math", s, {"revision": None}) for s in MATH_SUBJECTS]
    expected = [r for s in MATH_SUBJECTS for r in by_subject.get(s, {"test": []})["test"]]
    assert [e.question for e in splits.test] == [r["problem"] for r in expected]
    assert [e.id for e in splits.test] == [f"test-{i:05d}" for i in range(12)]
    calls.clear()
    one = load_splits(DatasetSpec(name="m", math={"hub": "someone/MATH", "configs": None, "levels": [1, 2, 3]}))
    assert calls == [("someone/MATH", None, {"revision": None})]
    assert one.train == load_splits(math_local(levels=[1, 2, 3])).train


def test_hub_without_a_split_is_a_data_error(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows(GSM8K_TRAIN))}))
    with pytest.raises(DataError, match="no 'test' split; it has train"):
        load_splits(DatasetSpec(name="g", gsm8k={"hub": "x/only-train"}))


# ------------------------------------------------------------------------------------------ your own data
def test_jsonl_with_custom_fields(tmp_path):
    items = [{"prompt": f"What is {i} + {i}?", "trace": f"Double {i}.\nSo it is \\boxed{{{2 * i}}}.",
              "final": 2 * i, "hardness": i % 3} for i in range(6)]
    train = write_jsonl(tmp_path / "train.jsonl", items)
    test = write_jsonl(tmp_path / "test.jsonl", items[:2])
    ds = DatasetSpec(name="mine", jsonl={"train_file": str(train), "test_file": str(test), "question_field": "prompt",
                                         "solution_field": "trace", "answer_field": "final", "answer_format": "boxed",
                                         "difficulty_field": "hardness"})
    splits = load_splits(ds)
    ex = splits.train[5]
    assert (ex.question, ex.answer, ex.difficulty, ex.answer_format) == ("What is 5 + 5?", "10", 2, "boxed")
    assert ex.solution == items[5]["trace"] and len(splits.test) == 2
    # the answer extracted from the solution; difficulty = solution lines
    ds = DatasetSpec(name="mine", jsonl={"train_file": str(train), "test_file": str(test), "question_field": "prompt",
                                         "solution_field": "trace", "answer_format": "boxed"})
    ex = load_splits(ds).train[5]
    assert (ex.answer, ex.difficulty) == ("10", 2)


def test_jsonl_unparseable_rows_error_or_skip(tmp_path):
    items = [{"question": "q1", "answer": "a\n#### 1"}, {"question": "q2", "answer": "no marker"},
             {"question": "q3", "answer": "b\n#### 3,000"}]
    train = write_jsonl(tmp_path / "train.jsonl", items)
    base = {"train_file": str(train), "test_file": str(train)}
    with pytest.raises(DataError, match=r"row 2 \(id train-00001\).*after '####'.*on_unparseable: skip"):
        load_splits(DatasetSpec(name="j", jsonl=base))
    splits = load_splits(DatasetSpec(name="j", jsonl={**base, "on_unparseable": "skip"}))
    assert [e.id for e in splits.train] == ["train-00000", "train-00002"] and splits.train[1].answer == "3000"
    assert splits.skipped == {"train": 1, "test": 1}


# ------------------------------------------------------------------------------------------------- specs
def spec_text(dataset_yaml):
    return ("name: t\nmodels:\n  - {name: tiny, builtin: tiny}\ndatasets:\n" + dataset_yaml
            + "grid: {learning_rate: [1.0e-3], epochs: [1]}\n")


def problems(text):
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return [str(p) for p in e.value.problems]


SOURCES = ("  - {name: a, builtin: arithmetic, train_size: 8, test_size: 8}\n"
           "  - {name: g, gsm8k: {}}\n"
           "  - {name: gl, gsm8k: {train_file: gsm8k_train.jsonl, test_file: gsm8k_test.jsonl}, train_size: 5}\n"
           "  - {name: m, math: {levels: [1, 2, 3]}}\n"
           "  - {name: j, jsonl: {train_file: math_train.jsonl, test_file: math_test.jsonl, question_field: problem,\n"
           "                      solution_field: solution, answer_format: boxed}}\n")


def test_spec_accepts_each_source(tmp_path, monkeypatch):
    import yaml

    monkeypatch.chdir(FIXTURES)
    # each section is valid on its own ...
    datasets = [DatasetSpec.model_validate(d) for d in yaml.safe_load(SOURCES)]
    a, g, gl, m, j = datasets
    # ... but the built-in model's word tokenizer cannot read real text: the whole spec says so, per dataset
    out = problems(spec_text(SOURCES))
    assert sum("the built-in model can only read built-in datasets" in p for p in out) == 4, out
    assert [d.source for d in datasets] == ["builtin", "gsm8k", "gsm8k", "math", "jsonl"]
    assert [d.answer_format for d in datasets] == ["gsm8k", "gsm8k", "gsm8k", "boxed", "boxed"]
    assert g.gsm8k.hub == "openai/gsm8k" and g.gsm8k.config == "main" and g.train_size is None
    assert gl.gsm8k.train_file == str(GSM8K_TRAIN) and os.path.isabs(gl.gsm8k.train_file)  # resolved
    assert m.math.hub == "EleutherAI/hendrycks_math" and m.math.configs == MATH_SUBJECTS and m.math.levels == (1, 2, 3)


@pytest.mark.parametrize("dataset, expected", [
    ("  - {name: d, gsm8k: {}, math: {}}\n", "s.yaml:5: datasets.0: give exactly one source: `builtin`, `gsm8k`, "
     "`math` or `jsonl` (found gsm8k, math)"),
    ("  - {name: d, builtin: arithmetic, gsm8k: {}, train_size: 8, test_size: 8}\n", "(found builtin, gsm8k)"),
    ("  - {name: d, train_size: 8}\n", "s.yaml:5: datasets.0: give exactly one source"),
    ("  - name: d\n    gsm8k:\n", "`gsm8k:` is empty: write `gsm8k: {}` for its defaults"),
    ("  - name: d\n    gsm8k: {train_file: nope.jsonl, test_file: nope2.jsonl}\n",
     "s.yaml:6: datasets.0.gsm8k.train_file: no such file: nope.jsonl (relative paths are relative to the working"),
    ("  - {name: d, gsm8k: {train_file: gsm8k_train.jsonl}}\n", "give both train_file and test_file"),
    ("  - {name: d, gsm8k: {train_file: gsm8k_train.jsonl, test_file: gsm8k_test.jsonl, config: socratic}}\n",
     "give local files or hub settings (config), not both"),
    ("  - {name: d, jsonl: {train_file: README.md, test_file: gsm8k_test.jsonl}}\n", "unknown file type"),
    ("  - {name: d, jsonl: {test_file: gsm8k_test.jsonl}}\n", "datasets.0.jsonl.train_file: Field required"),
    ("  - {name: d, jsonl: {train_file: gsm8k_train.jsonl, test_file: gsm8k_test.jsonl, answer_format: latex}}\n",
     "datasets.0.jsonl.answer_format"),
    ("  - {name: d, builtin: arithmetic, train_size: 8}\n", "a built-in task needs test_size"),
    ("  - {name: d, gsm8k: {}, max_steps: 3}\n", "max_steps: only for a built-in task, not for `gsm8k`"),
    ("  - {name: d, math: {levels: [0, 6]}}\n", "datasets.0.math.levels.0"),
    ("  - {name: d, math: {levels: []}}\n", "datasets.0.math.levels"),
    ("  - {name: d, gsm8k: {hubb: x}}\n", 'datasets.0.gsm8k.hubb: unknown key (did you mean "hub"?)'),
])
def test_spec_dataset_errors(dataset, expected, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    out = problems(spec_text(dataset))
    assert any(expected in p for p in out), out


def test_builtin_dataset_dumps_as_before():
    """Job ids hash the dumped dataset section: a built-in dataset must dump exactly as before the other
    sources existed, so existing stores keep their results."""
    ds = DatasetSpec(name="a", builtin="arithmetic", train_size=8, test_size=4)
    assert ds.model_dump(mode="json") == {"name": "a", "builtin": "arithmetic", "train_size": 8, "test_size": 4,
                                          "seed": 0, "max_steps": 4, "max_value": 99, "max_operand": 20}


@pytest.mark.parametrize("section", [
    {"builtin": "arithmetic", "train_size": 3, "test_size": 2},
    {"gsm8k": {}},
    {"gsm8k": {"train_file": str(GSM8K_TRAIN), "test_file": str(GSM8K_TEST)}, "test_size": 4},
    {"math": {"levels": [1, 2], "revision": "v1"}},
    {"math": {"train_file": str(MATH_TRAIN), "test_file": str(MATH_TEST), "levels": [3]}},
    {"jsonl": {"train_file": str(GSM8K_TRAIN), "test_file": str(GSM8K_TEST), "answer_field": "x"}},
])
def test_dump_validates_again(section):
    """Jobs rebuild their dataset section from its dump (premem.jobs.context.dataset_section): it must validate."""
    ds = DatasetSpec(name="d", **section)
    dump = ds.model_dump(mode="json")
    assert DatasetSpec.model_validate(dump) == ds
    if "gsm8k" in section and "train_file" in section["gsm8k"]:
        assert set(dump["gsm8k"]) == {"train_file", "test_file"}    # unused hub settings are not hashed
    if "builtin" not in section:
        assert not {"builtin", "max_steps", "max_value", "max_operand"} & set(dump)


# ------------------------------------------------------------------------------------ fingerprint, caching
def test_fingerprint_follows_file_content(tmp_path):
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    train.write_bytes(GSM8K_TRAIN.read_bytes())
    test.write_bytes(GSM8K_TEST.read_bytes())
    ds = gsm8k_local(train, test)
    fp = dataset_fingerprint(ds)
    assert set(fp) == {"train_sha256", "test_sha256"} and len(fp["train_sha256"]) == 64
    assert dataset_fingerprint(ds, splits=("train",)) == {"train_sha256": fp["train_sha256"]}
    assert load_splits(ds).train[0].answer == "72"
    # an edit that keeps the size and puts the modification time back is still seen
    st = train.stat()
    train.write_bytes(train.read_bytes().replace(b"#### 72", b"#### 73"))
    os.utime(train, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert train.stat().st_size == st.st_size and train.stat().st_mtime_ns == st.st_mtime_ns
    fp2 = dataset_fingerprint(ds)
    assert fp2["train_sha256"] != fp["train_sha256"] and fp2["test_sha256"] == fp["test_sha256"]
    assert load_splits(ds).train[0].answer == "73"       # and the loader reads the new content


def test_fingerprint_is_empty_without_local_files():
    assert dataset_fingerprint(DatasetSpec(name="a", builtin="arithmetic", train_size=2, test_size=2)) == {}
    assert dataset_fingerprint(DatasetSpec(name="g", gsm8k={})) == {}
    assert dataset_fingerprint(DatasetSpec(name="m", math={})) == {}
