"""premem plan --cost: the work counted from a plan, the throughputs file, the ratio, the command line."""
from __future__ import annotations

import pytest

from premem.cli import main
from premem.cost.datasets import (PROMPT_EXTRA_TOKENS, TARGET_EXTRA_TOKENS, TOKENS_PER_WORD, _words,
                                  builtin_pretrain_tokens, dataset_stats)
from premem.cost.estimate import estimate, format_estimate
from premem.cost.throughputs import CostError, DatasetSizes, load_throughputs
from premem.cost.work import job_work
from premem.plan.build import build_plan
from premem.spec.load import parse_spec

TINY = """
name: tiny-cost
models:
  - name: tiny
    builtin: tiny
    size: {layers: 1, hidden: 16, heads: 2, mlp: 32, max_length: 192}
    pretrain: {dataset: arith, examples: 100, epochs: 2}
datasets:
  - {name: arith, builtin: arithmetic, train_size: 8, test_size: 4, max_steps: 2}
grid: {learning_rate: [1.0e-3], epochs: [2]}
runs:
  - {learning_rate: 1.0e-3, epochs: 1, dataset_fraction: 0.5}
evaluation: {samples: 2, test_samples: 1, max_new_tokens: 100}
metrics:
  gradient_variance: {minibatches: 2, batch_size: 2}
  weight_distance: {}
  atc: {reference: {epochs: 2}}
perturbations: {samples: 3, runs: [{epochs: 2}], preambles: [" First,"]}
"""

PAPERLIKE = """
name: paper-like
device: cuda
models:
  - {name: llama, hf: meta-llama/Meta-Llama-3-8B, dtype: bfloat16}
datasets:
  - {name: gsm8k, gsm8k: {}}
training: {batch_size: 128, fixed_step_epochs: 3}
grid: {learning_rate: [2.0e-5, 5.0e-5], epochs: [3, 6]}
runs:
  - {learning_rate: 2.0e-5, dataset_fraction: 0.5}
evaluation: {samples: 5}
resources:
  train: {gpus: 1, cpus: 8}
  evaluate: {gpus: 1, cpus: 4}
"""

GPU_RATES = """
defaults:
  train_tokens_per_s: 60000
  sample_tokens_per_s: 4000
  score_tokens_per_s: 12000
  load_seconds: 30
  authors: {sample_speedup: 5.0, score_speedup: 2.0, load_seconds: 60}
cluster: {gpus: 8}
"""

# hand-set lengths: prompt = 4 + 10 tokens, target = 4 + 20 tokens (PROMPT_EXTRA_TOKENS, TARGET_EXTRA_TOKENS)
LENGTHS = "datasets:\n  arith: {question_tokens: 10, solution_tokens: 20}\n"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _works(plan, throughputs):
    tp, _ = load_throughputs(throughputs)
    stats = {d.name: dataset_stats(d, tp.datasets.get(d.name), TOKENS_PER_WORD) for d in plan.spec.datasets}
    return {j.label: job_work(j, plan, stats) for j in plan.jobs if j.kind != "analysis"}, stats


def test_work_counts_match_hand_computed_numbers(tmp_path):
    plan = build_plan(parse_spec(TINY))
    works, stats = _works(plan, _write(tmp_path, "t.yaml", LENGTHS))
    assert PROMPT_EXTRA_TOKENS == 4 and TARGET_EXTRA_TOKENS == 4
    example, target = 14 + 24, 24
    full, half = "tiny/arith/lr0.001-ep2-frac1", "tiny/arith/lr0.001-ep1-frac0.5"
    # training: examples x (prompt + target) per epoch; 8 examples, and round(8 x 0.5) = 4 on half the data
    assert works[f"train {full} epoch 1"].trained == 8 * example
    assert works[f"train {full} epoch 2"].trained == 8 * example
    assert works[f"train {half} epoch 1"].trained == 4 * example
    # evaluation: every train example's target scored; (8 x k 2 + 4 test x 1) samples as long as the target
    ev = works[f"evaluate {full} epoch 1"]
    assert (ev.scored, ev.sampled, ev.loads, ev.authors_loads) == (8 * target, (8 * 2 + 4 * 1) * target, 1, 2)
    ev = works[f"evaluate {half} epoch 1"]
    assert (ev.scored, ev.sampled) == (4 * target, (4 * 2 + 4 * 1) * target)
    # measures: 2 minibatches of 2 examples trained through; two models loaded; one greedy sample per prompt
    gv = works[f"measure gradient_variance {full} epoch 1"]
    assert (gv.trained, gv.loads) == (2 * 2 * example, 1)
    assert works[f"measure weight_distance {full} epoch 2"].loads == 2
    atc = works[f"measure atc {full} epoch 2"]
    assert (atc.sampled, atc.scored) == (8 * target, 8 * target)
    # perturbations: the 2-epoch run's final checkpoint, original prompt and one preamble, 3 samples each
    assert works[f"perturb original prompt {full} epoch 2"].sampled == 8 * 3 * target
    assert f"perturb original prompt {full} epoch 1" not in works
    # pretraining: examples x mean tokens (with the separator) x epochs, counted from the generator
    per = builtin_pretrain_tokens(plan.spec.dataset("arith"), 100, None)
    assert works["pretrain tiny"].trained == pytest.approx(100 * per * 2)
    assert 10 < per < 200


def test_builtin_lengths_come_from_the_generator_and_hub_sizes_from_the_registry():
    plan = build_plan(parse_spec(TINY))
    st = dataset_stats(plan.spec.dataset("arith"), None, 1.4)
    from premem.data.format import target_of
    from premem.data.loaders import load_splits
    from premem.data.tokenizer import WordTokenizer

    codec = WordTokenizer.for_arithmetic_task()
    train = load_splits(plan.spec.dataset("arith")).train
    assert (st.train, st.test) == (8, 4)
    assert st.target_tokens == pytest.approx(sum(len(codec.encode(target_of(e.solution))) for e in train) / 8)
    gsm = build_plan(parse_spec(PAPERLIKE)).spec.dataset("gsm8k")
    st = dataset_stats(gsm, None, 1.4)
    assert (st.train, st.test) == (7473, 1319)
    assert st.target_tokens == pytest.approx(4 + 51.71 * 1.4)
    st = dataset_stats(gsm, DatasetSizes(train_examples=100, solution_tokens=50), 1.4)
    assert (st.train, st.test, st.target_tokens) == (100, 1319, 54)


def test_paper_like_spec_hours_and_ratio(tmp_path):
    plan = build_plan(parse_spec(PAPERLIKE))
    est = estimate(plan, None, _write(tmp_path, "g.yaml", GPU_RATES))
    tr, ev = est.kinds["train"], est.kinds["evaluate"]
    assert tr.unit == ev.unit == "GPU-h"
    # training: 1 GPU per job; the same for both approaches (same code, same loads)
    example = 8 + (45.09 + 51.71) * 1.4
    epochs_examples = 2 * (3 + 6) * 7473 + 6 * 3736  # half data: round(7473 / 2) = 3736 (banker's rounding)
    expect = (epochs_examples * example / 60000 + tr.jobs * 30) / 3600
    assert tr.premem_h == pytest.approx(expect) and tr.authors_h == pytest.approx(expect)
    # evaluation: 1 GPU; the authors sample 5x and score 2x slower and load twice, at 60 s a load
    w = ev.work
    assert ev.premem_h == pytest.approx((w.scored / 12000 + w.sampled / 4000 + ev.jobs * 30) / 3600)
    assert ev.authors_h == pytest.approx((w.scored / 6000 + w.sampled / 800 + ev.jobs * 2 * 60) / 3600)
    p, a = est.totals()["GPU-h"]
    assert p < a and est.wall["premem"] <= est.wall["authors"]
    text = format_estimate(est, "paper-like.yaml")
    assert "premem needs" in text and "Assumptions:" in text and "GSM8K: 7,473 / 1,319" in text


def _ratio(tmp_path, rates: str) -> float:
    est = estimate(build_plan(parse_spec(PAPERLIKE)), None, _write(tmp_path, "r.yaml", rates))
    p, a = est.totals()["GPU-h"]
    return p / a


def test_ratio_moves_the_right_way(tmp_path):
    base = _ratio(tmp_path, GPU_RATES)
    assert _ratio(tmp_path, GPU_RATES.replace("sample_speedup: 5.0", "sample_speedup: 10.0")) < base
    assert _ratio(tmp_path, GPU_RATES.replace("sample_speedup: 5.0", "sample_speedup: 1.0")) > base
    # a faster premem sampler against a fixed authors' rate lowers the ratio (with a speedup, both would move)
    fixed = GPU_RATES.replace("sample_speedup: 5.0", "sample_tokens_per_s: 800")
    assert _ratio(tmp_path, fixed.replace("sample_tokens_per_s: 4000", "sample_tokens_per_s: 8000")) < base
    assert _ratio(tmp_path, GPU_RATES.replace("load_seconds: 60", "load_seconds: 600")) < base
    # training is the same both ways: slower training pulls the ratio towards 1
    slow = _ratio(tmp_path, GPU_RATES.replace("train_tokens_per_s: 60000", "train_tokens_per_s: 600"))
    assert base < slow < 1
    # absolute authors' rates work as well as speedups
    same = GPU_RATES.replace("sample_speedup: 5.0", "sample_tokens_per_s: 800")
    assert _ratio(tmp_path, same) == pytest.approx(base)


def test_to_run_counts_only_jobs_not_done(tmp_path):
    plan = build_plan(parse_spec(PAPERLIKE))
    status = {j.id: ("done" if j.kind == "train" else "to run") for j in plan.jobs}
    est = estimate(plan, status, _write(tmp_path, "g.yaml", GPU_RATES))
    assert est.kinds["train"].todo_jobs == 0 and est.kinds["train"].todo_premem_h == 0
    assert est.kinds["evaluate"].todo_premem_h == pytest.approx(est.kinds["evaluate"].premem_h)


@pytest.mark.parametrize("text, line, what", [
    ("defaults:\n  train_tokens_per_s: 100\n  sampel_tokens_per_s: 5\n", 3, "unknown key"),
    ("defaults:\n  train_tokens_per_s: -4\n", 2, "greater than 0"),
    ("models:\n  llama:\n    authors:\n      sample_speedup: 2\n      sample_tokens_per_s: 9\n", 3,
     "sample_tokens_per_s or sample_speedup, not both"),
    ("defaults: {train_tokens_per_s: 1\n", 2, "YAML syntax error"),
    ("cluster:\n  gpus: many\n", 2, "integer"),
])
def test_a_bad_throughputs_file_is_a_clear_error_with_its_line(tmp_path, text, line, what):
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(CostError) as e:
        load_throughputs(path)
    assert any(msg.startswith(f"{path}:{line}:") and what in msg for msg in e.value.lines), e.value.lines


def test_gpu_jobs_without_figures_name_what_is_missing(tmp_path):
    with pytest.raises(CostError) as e:
        estimate(build_plan(parse_spec(PAPERLIKE)), None, None)
    text = "\n".join(e.value.lines)
    assert "model 'llama': no train_tokens_per_s" in text and "sample_tokens_per_s" in text


def test_cli_plan_cost_prints_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = _write(tmp_path, "tiny.yaml", TINY)
    assert main(["plan", spec, "--cost"]) == 0
    out = capsys.readouterr().out
    assert "Cost estimate for" in out and "measured CPU defaults" in out
    for kind in ("pretrain", "train", "evaluate", "measure", "perturb", "total"):
        assert f"\n  {kind} " in out
    assert "CPU-h" in out and "premem needs" in out and "Wall clock on" in out
    bad = _write(tmp_path, "bad.yaml", "defaults:\n  nope: 1\n")
    assert main(["plan", spec, "--cost", bad]) == 1
    assert f"{bad}:2: defaults.nope: unknown key" in capsys.readouterr().err
    paper = _write(tmp_path, "paper.yaml", PAPERLIKE)
    assert main(["plan", paper, "--cost", _write(tmp_path, "g.yaml", GPU_RATES)]) == 0
    out = capsys.readouterr().out
    assert "GPU-h" in out and "Wall clock on 8 GPUs" in out and "Reserving the 8 GPUs" in out


def test_plain_plan_ends_with_the_work_and_hours_under_stated_assumptions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", _write(tmp_path, "tiny.yaml", TINY)]) == 0
    tail = capsys.readouterr().out.splitlines()[-2:]
    assert tail[0].startswith("Work: ") and "checkpoint evaluations" in tail[0] and "tokens sampled" in tail[0]
    assert tail[1].startswith("Hours: ") and "CPU-h" in tail[1] and "measured on this project's CPU" in tail[1]
    # a GPU study with no throughputs file: the example figures of the repository, said to be assumptions
    assert main(["plan", _write(tmp_path, "paper.yaml", PAPERLIKE)]) == 0
    tail = capsys.readouterr().out.splitlines()[-1]
    assert "GPU-h" in tail and "premem/cost/throughputs-example.yaml, all assumptions" in tail


@pytest.mark.parametrize("name, content, what", [
    ("bad.jsonl", b'{"question": "a b", "answer": "#### 1"}\nnot json\n', "line 2 is not JSON"),
    ("list.jsonl", b'{"question": "a", "answer": "#### 1"}\n[1, 2]\n', "line 2 is not a JSON object"),
    ("latin1.jsonl", b'{"question": "caf\xe9", "answer": "#### 1"}\n', "can't decode byte 0xe9"),
    ("broken.parquet", b"PAR1 not really", "Parquet"),
    ("broken.jsonl.gz", b"not gzip", "Not a gzipped file"),
])
def test_a_local_data_file_that_cannot_be_read_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, name,
                                                                              content, what):
    data = tmp_path / name
    data.write_bytes(content)
    spec = PAPERLIKE.replace("{name: gsm8k, gsm8k: {}}", f"{{name: gsm8k, gsm8k: {{train_file: {data}, "
                                                          f"test_file: {data}}}}}")
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, "s.yaml", spec)
    assert main(["plan", path, "--cost", _write(tmp_path, "g.yaml", GPU_RATES)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{data}: cannot count the words of its 'question' column: ") and \
        what in err[0], err
    assert main(["plan", path]) == 0  # the footer says what it cannot count instead of failing the plan
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"Cost: {data}: cannot count the words") and what in out[-1], out[-1]


def test_words_are_counted_in_arrow_files_of_either_format(tmp_path):
    import pyarrow as pa

    table = pa.table({"question": ["a b c", "d", None]})
    for name, writer in (("stream.arrow", pa.ipc.new_stream), ("file.arrow", pa.ipc.new_file)):
        with writer(str(tmp_path / name), table.schema) as w:
            w.write_table(table)
        assert _words(str(tmp_path / name), "question") == (2, 2.0)
