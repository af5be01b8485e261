"""Curation's `generate` source (premem.jobs.curation._generated) on a real built-in model whose sampler is
replaced by a scripted writer: a model that writes good rephrasings (the authors used GPT-4) cannot run here,
so the script stands at that boundary and decides what each completion says; everything else is premem's."""
from dataclasses import replace

import pytest

from premem.data.synthetic import ArithmeticTask
from premem.data.tokenizer import WordTokenizer
from premem.engine.models import build_tiny, save_model
from premem.engine.sampling import TransformersSampler
from premem.jobs.curation import _generated, dataset_key
from premem.jobs.runners import UserError
from premem.plan.build import Job
from premem.plan.job_settings import CollectSettings
from premem.spec.schema import TinyArchitecture
from premem.store import Store

SIZE = {"layers": 1, "hidden": 16, "heads": 2, "mlp": 32, "max_length": 192}


@pytest.fixture()
def setting(tmp_path):
    store = Store(tmp_path / "store")
    codec = WordTokenizer.for_arithmetic_task()
    folder = store.artifact("base")
    folder.mkdir(parents=True)
    save_model(build_tiny(TinyArchitecture(**SIZE), codec.vocab_size, seed=0), codec, folder)
    task = ArithmeticTask(seed=0, max_steps=2, max_value=40, max_operand=10)
    originals = {ex.id: ex for ex in task.split("train", 4)}
    model_section = {"builtin": "tiny", "size": SIZE,
                     "pretrain": {"dataset": "arithmetic", "examples": 10}}
    source = {"kind": "generate", "model": "tiny", "prompt": "{question}\nAnswer:", "output": "solution", "tries": 3,
              "temperature": 1.0, "top_p": 0.95, "max_new_tokens": 20, "model_section": model_section, "base": "base"}
    # a collect job's settings as the plan makes them: no device (it samples where `auto` says: here the CPU)
    job = Job("f" * 64, "collect", "collect", CollectSettings(
        strategy="iid", round=1, new_examples=6, dataset={"builtin": "arithmetic"}, seed=0, source=source, after=None))
    return store, job, originals


def script(monkeypatch, writer):
    def sample(self, prompts, params, progress=None):
        return [[writer(p, k) for k in range(params.n)] for p in prompts]
    monkeypatch.setattr(TransformersSampler, "sample", sample)


def test_generated_solutions_are_kept_only_when_their_answer_is_right(setting, monkeypatch):
    store, job, originals = setting
    by_prompt = {ex.question + "\nAnswer:": ex for ex in originals.values()}
    calls = iter(range(10_000))

    def writer(prompt, k):  # the first try is wrong, later ones right and new
        ex = by_prompt[prompt]
        if k == 0:
            return f" wrong\n#### {int(ex.answer) + 1}\nDone."
        return f" new trace {next(calls)}\n#### {ex.answer}\nDone."
    script(monkeypatch, writer)
    out, exhausted, counts = _generated(job, store, originals, list(originals), {}, "s", "gsm8k", lambda m: None)
    assert len(out) == 6 and exhausted == [] and sum(counts.values()) == 6
    for ex in out:
        assert ex.question == originals[ex.original].question and ex.answer == originals[ex.original].answer
        assert ex.solution.startswith("new trace")
    assert sorted(counts.values()) == [1, 1, 2, 2]  # round-robin over the four originals
    assert len({ex.id for ex in out}) == 6


def test_a_repeated_completion_is_not_kept_twice(setting, monkeypatch):
    store, job, originals = setting
    by_prompt = {ex.question + "\nAnswer:": ex for ex in originals.values()}
    # every try of an original's prompt gives the same right trace: each original can add one example only
    script(monkeypatch, lambda prompt, k: f" the one trace\n#### {by_prompt[prompt].answer}\nDone.")
    job = replace(job, settings=replace(job.settings, new_examples=4))
    out, _, counts = _generated(job, store, originals, list(originals), {}, "s", "gsm8k", lambda m: None)
    assert counts == {oid: 1 for oid in originals}
    job = replace(job, settings=replace(job.settings, new_examples=6))
    with pytest.raises(UserError, match="2 of 6 wanted examples got no usable completion"):
        _generated(job, store, originals, list(originals), {}, "s", "gsm8k", lambda m: None)


def test_an_original_that_gives_nothing_passes_its_share_on_and_is_named(setting, monkeypatch):
    store, job, originals = setting
    bad = sorted(originals)[0]
    by_prompt = {ex.question + "\nAnswer:": ex for ex in originals.values()}

    def writer(prompt, k):
        ex = by_prompt[prompt]
        if ex.id == bad:
            return " no answer at all\nDone."
        return f" trace {k} of {ex.id}\n#### {ex.answer}\nDone."
    script(monkeypatch, writer)
    out, exhausted, counts = _generated(job, store, originals, list(originals), {}, "s", "gsm8k", lambda m: None)
    assert len(out) == 6 and bad not in counts and bad in exhausted


def test_a_round_that_falls_short_is_a_clear_user_error(setting, monkeypatch):
    store, job, originals = setting
    script(monkeypatch, lambda prompt, k: " never an answer\nDone.")
    with pytest.raises(UserError, match="6 of 6 wanted examples got no usable completion"):
        _generated(job, store, originals, list(originals), {}, "s", "gsm8k", lambda m: None)


def test_scores_are_keyed_to_their_dataset():
    a = {"builtin": "arithmetic", "seed": 0, "train_size": 8, "test_size": 4}
    b = {"builtin": "arithmetic", "seed": 0, "train_size": 8, "test_size": 99}
    c = {"builtin": "arithmetic", "seed": 1, "train_size": 8, "test_size": 4}
    assert dataset_key(a) == dataset_key(b)  # the test split's size does not change the train examples
    assert dataset_key(a) != dataset_key(c)
    assert dataset_key(a, {"train_sha256": "x"}) != dataset_key(a, {"train_sha256": "y"})


def test_ifd_scores_of_one_dataset_are_refused_for_another(tmp_path):
    """The authors' MATH run read GSM8K's IFD file; premem keys scores to their dataset and checks."""
    import json

    from premem.jobs.curation import SCORES_FILE, _read_scores

    store = Store(tmp_path / "store")
    folder = store.artifact("scores")
    folder.mkdir(parents=True)
    gsm8k = {"gsm8k": {"hub": "openai/gsm8k"}}
    math = {"math": {"hub": "EleutherAI/hendrycks_math"}}
    (folder / SCORES_FILE).write_text(json.dumps({"dataset_key": dataset_key(gsm8k), "ids": ["train-00000"],
                                                  "ifd": [0.5]}))
    assert _read_scores(store, "scores", dataset_key(gsm8k)) == {"train-00000": 0.5}
    with pytest.raises(UserError, match="computed for another dataset"):
        _read_scores(store, "scores", dataset_key(math))


def test_ifd_is_the_ratio_of_the_scoring_models_own_nlls(setting):
    """score_ifd on a real (tiny) model: each stored ratio is the model's mean NLL of the solution after the
    question over its mean NLL after the answer cue alone, computed here directly."""
    import json

    from premem.data.format import ANSWER_CUE, prompt_of, target_of
    from premem.engine.models import load_model
    from premem.engine.sampling import target_nll
    from premem.jobs.curation import SCORES_FILE, score_ifd

    store, _, originals = setting
    data = {"builtin": "arithmetic", "seed": 0, "train_size": 4, "test_size": 4, "max_steps": 2, "max_value": 40,
            "max_operand": 10}
    job = Job("e" * 64, "score", "score", {"model": {"builtin": "tiny", "size": SIZE, "pretrain": {
        "dataset": "arithmetic", "examples": 10}}, "dataset": data, "seed": 0, "device": "cpu"}, ("base",), roles=("checkpoint",))
    score_ifd(job, store, lambda m: None)
    saved = json.loads((store.artifact(job.id) / SCORES_FILE).read_text())
    loaded = load_model(store.artifact("base"), device="cpu")
    exs = list(originals.values())
    cond = target_nll(loaded, [(prompt_of(e.question), target_of(e.solution)) for e in exs])
    alone = target_nll(loaded, [(ANSWER_CUE, target_of(e.solution)) for e in exs])
    assert saved["ids"] == [e.id for e in exs]
    assert saved["ifd"] == pytest.approx([c[0] / a[0] for c, a in zip(cond, alone)], rel=1e-5)
    assert saved["dataset_key"] == dataset_key(job.settings.dataset)


def test_ifd_bos_only_scores_the_solution_after_the_bos_token_alone(setting):
    """curation.ifd.unconditional: bos_only (the authors' way): the denominator is the mean NLL of the solution
    after the BOS token alone, over exactly the target's tokens; the numerator is unchanged."""
    import json

    from premem.data.format import prompt_of, target_of
    from premem.engine.models import load_model
    from premem.engine.sampling import target_nll
    from premem.jobs.curation import SCORES_FILE, score_ifd

    store, _, originals = setting
    data = {"builtin": "arithmetic", "seed": 0, "train_size": 4, "test_size": 4, "max_steps": 2, "max_value": 40,
            "max_operand": 10}
    job = Job("d" * 64, "score", "score", {"model": {"builtin": "tiny", "size": SIZE, "pretrain": {
        "dataset": "arithmetic", "examples": 10}}, "dataset": data, "seed": 0, "device": "cpu",
        "unconditional": "bos_only"}, ("base",), roles=("checkpoint",))
    score_ifd(job, store, lambda m: None)
    saved = json.loads((store.artifact(job.id) / SCORES_FILE).read_text())
    loaded = load_model(store.artifact("base"), device="cpu")
    exs = list(originals.values())
    cond = target_nll(loaded, [(prompt_of(e.question), target_of(e.solution)) for e in exs])
    alone = target_nll(loaded, [("", target_of(e.solution)) for e in exs])
    assert [a[1] for a in alone] == [c[1] for c in cond]  # the same target tokens, after BOS only
    assert saved["nll_alone"] == pytest.approx([a[0] for a in alone], rel=1e-5)
    assert saved["ifd"] == pytest.approx([c[0] / a[0] for c, a in zip(cond, alone)], rel=1e-5)


def test_a_planned_generating_collect_job_runs_where_its_resources_say():
    """The paper's curation specs generate new examples; their collect jobs' settings name no device (adding one
    would change their ids), so where they sample comes from the resources they asked Ray for, as `auto`."""
    from pathlib import Path

    from premem.jobs.context import job_device
    from premem.plan.build import build_plan
    from premem.spec.load import load_spec

    spec = Path(__file__).resolve().parents[2] / "specs" / "paper-curation-gsm8k.yaml"
    collect = next(j for j in build_plan(load_spec(str(spec))).jobs if j.kind == "collect")
    assert collect.settings.source["kind"] == "generate"
    assert job_device(replace(collect, resources={"cpus": 1})) == "cpu"
    assert job_device(replace(collect, resources={"cpus": 1, "gpus": 1})) == "auto"  # cuda where it runs
