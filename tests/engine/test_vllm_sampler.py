"""The vLLM backend (premem.engine.vllm_sampler) without vLLM: vLLM needs a CUDA GPU and cannot be installed here, so
these tests inject a FAKE `vllm` module into sys.modules at the import boundary. The fake records what premem
passes to vllm.LLM, vllm.SamplingParams and LLM.generate, and answers with objects shaped like vLLM's
RequestOutput / CompletionOutput / Logprob. What is checked: the arguments premem passes (n = k, temperature,
top_p, stop, include_stop_str_in_output, seeds, token-id prompts, LoRA requests), how outputs become premem's
samples and target NLLs, the import guard, and the spec's refusal of vLLM where it cannot run. Whether real
vLLM behaves as its documented API says is NOT tested here (GPU only)."""
from __future__ import annotations

import json
import math
import sys
import types
from dataclasses import dataclass, field

import pytest

from premem.data.format import prompt_of, target_of
from premem.data.loaders import TextExample
from premem.engine.sampling import SamplingParams
from tests.tiny_hf import FIXTURES, make_tiny_hf


@dataclass
class Logprob:  # vllm.logprobs.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:  # vllm.outputs.CompletionOutput
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"


@dataclass
class RequestOutput:  # vllm.outputs.RequestOutput
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    prompt_logprobs: list | None = None


def fake_logprob(position: int, token: int) -> float:
    return -0.05 * (1 + (position * 7 + token) % 11)


@dataclass
class FakeLLM:
    calls: list = field(default_factory=list)

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        FAKE.llms.append(self)

    def generate(self, prompts, sampling_params, *, use_tqdm=True, lora_request=None):
        self.calls.append({"prompts": prompts, "params": sampling_params, "lora_request": lora_request})
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        out = []
        for i, (prompt, sp) in enumerate(zip(prompts, params)):
            ids = prompt["prompt_token_ids"]
            if sp.kwargs.get("prompt_logprobs") is not None:
                lps = [None] + [{ids[j]: Logprob(fake_logprob(j, ids[j]), 1)} for j in range(1, len(ids))]
                out.append(RequestOutput(ids, [CompletionOutput(0, "x", [5])], lps))
                continue
            # samples come back out of index order; sample j of prompt i answers i + j, then the stop string
            comps = [CompletionOutput(j, f" so {i + j}\n#### {i + j}{sp.kwargs['stop'][0]}", [1] * (3 + j))
                     for j in reversed(range(sp.kwargs["n"]))]
            out.append(RequestOutput(ids, comps))
        return out


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeLoRARequest:
    def __init__(self, name, int_id, path):
        self.args = (name, int_id, path)


class _Fake:
    llms: list = []


FAKE = _Fake()


@pytest.fixture()
def fake_vllm(monkeypatch):
    FAKE.llms = []
    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeLLM
    vllm.SamplingParams = FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    lora.request = request
    vllm.lora = lora
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    return FAKE


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_hf(tmp_path_factory.mktemp("tiny-llama"))


def examples(split="train", n=4):
    rows = [json.loads(x) for x in (FIXTURES / f"gsm8k_{split}.jsonl").read_text().splitlines()][:n]
    return [TextExample(f"{split}-{i:05d}", r["question"], r["answer"], r["answer"].split("####")[-1].strip(), 1)
            for i, r in enumerate(rows)]


def test_importing_premem_does_not_import_vllm_and_a_missing_vllm_says_how_to_install(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed: `import vllm` raises ImportError
    from premem.engine.vllm_sampler import VLLMBackend

    with pytest.raises(ImportError, match=r"pip install -e '\.\[gpu\]'"):
        VLLMBackend(tiny)


def test_sampling_arguments_and_outputs(tiny, fake_vllm):
    from premem.engine.models import load_model
    from premem.engine.train import encode_examples
    from premem.engine.vllm_sampler import VLLMBackend

    backend = VLLMBackend(tiny, dtype="bfloat16", seed=3, gpus=2)
    (llm,) = fake_vllm.llms
    assert llm.kwargs["model"] == str(tiny) and llm.kwargs["tokenizer"] == str(tiny)
    assert llm.kwargs["dtype"] == "bfloat16" and llm.kwargs["seed"] == 3 and llm.kwargs["tensor_parallel_size"] == 2
    assert "enable_lora" not in llm.kwargs
    ex = examples()
    prompts = [prompt_of(e.question) for e in ex]
    params = SamplingParams(n=3, temperature=0.8, top_p=0.95, max_new_tokens=64, stop="\nDone.", seed=11)
    out = backend.sample(prompts, params)
    # in prompt order, samples in index order, stop string kept at the end of each
    assert out == [[f" so {i + j}\n#### {i + j}\nDone." for j in range(3)] for i in range(len(prompts))]
    assert backend.tokens_generated == len(prompts) * (3 + 4 + 5)
    (call,) = llm.calls
    # prompts go in as token ids, bos + prompt, exactly as training encodes them
    lm = load_model(str(tiny), device="cpu")
    want = [ids[:plen] for ids, plen in encode_examples(lm, ex)]
    assert [p["prompt_token_ids"] for p in call["prompts"]] == want
    assert call["lora_request"] is None
    kws = [sp.kwargs for sp in call["params"]]
    for kw in kws:
        assert {k: kw[k] for k in ("n", "temperature", "top_p", "max_tokens", "stop", "include_stop_str_in_output")} \
            == {"n": 3, "temperature": 0.8, "top_p": 0.95, "max_tokens": 64, "stop": ["\nDone."],
                "include_stop_str_in_output": True}
    seeds = [kw["seed"] for kw in kws]
    assert len(set(seeds)) == len(seeds)  # each prompt its own random stream, a function of the job's seed
    backend.sample(prompts, params)
    assert [sp.kwargs["seed"] for sp in llm.calls[1]["params"]] == seeds


def test_target_nll_from_prompt_logprobs(tiny, fake_vllm):
    from premem.engine.models import load_model
    from premem.engine.vllm_sampler import VLLMBackend

    backend = VLLMBackend(tiny)
    ex = examples()
    pairs = [(prompt_of(e.question), target_of(e.solution)) for e in ex]
    got = backend.target_nll(pairs)
    (call,) = fake_vllm.llms[0].calls
    kw = call["params"].kwargs  # one SamplingParams for every scored sequence
    assert kw["prompt_logprobs"] == 1 and kw["max_tokens"] == 1
    codec = load_model(str(tiny), device="cpu").codec
    for (prompt, target), (nll, n) in zip(pairs, got):
        p = [codec.bos_id] + codec.encode(prompt)
        ids = p + codec.encode(target)
        assert n == len(ids) - len(p)  # the target's tokens only, as premem's own scoring counts them
        assert nll == pytest.approx(-sum(fake_logprob(j, ids[j]) for j in range(len(p), len(ids))) / n)


def test_a_lora_checkpoint_is_served_on_its_base_with_a_lora_request(tiny, tmp_path, fake_vllm):
    from premem.engine.lora import add_adapters, write_base
    from premem.engine.models import load_model
    from premem.engine.train import Recipe, make_optimizer, save_checkpoint
    from premem.engine.vllm_sampler import VLLMBackend

    lm = load_model(str(tiny), device="cpu")
    lm.model = add_adapters(lm.model, {"r": 12, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}, seed=0)
    save_checkpoint(lm, make_optimizer(lm.model, Recipe(1e-3, 1, 1)), tmp_path / "ckpt", {"epoch": 1})
    write_base(tmp_path / "ckpt", {"hf": str(tiny), "revision": None})
    backend = VLLMBackend(tmp_path / "ckpt")
    (llm,) = fake_vllm.llms
    assert llm.kwargs["model"] == str(tiny) and llm.kwargs["tokenizer"] == str(tmp_path / "ckpt")
    assert llm.kwargs["enable_lora"] is True and llm.kwargs["max_lora_rank"] == 16  # 12 fits vLLM's slot 16
    backend.sample(["Q\nAnswer:"], SamplingParams(n=2))
    assert llm.calls[0]["lora_request"].args == ("checkpoint", 1, str(tmp_path / "ckpt"))


@pytest.mark.parametrize("scoring", ["vllm", "transformers"])
def test_a_checkpoint_evaluated_through_vllm(tiny, fake_vllm, scoring):
    from premem.engine.evaluate import evaluate_checkpoint
    from premem.engine.sampling import target_nll
    from premem.engine.vllm_sampler import evaluation_backends
    from premem.spec.schema import ModelSpec

    model_spec = ModelSpec(name="m", hf=str(tiny))
    ev = {"sampler": "vllm", "scoring": scoring, "sampling_dtype": None}
    loaded, scorer, make_sampler = evaluation_backends(tiny, model_spec, ev, "cpu", 1, seed=0)
    assert (loaded is None) == (scoring == "vllm")
    train, test = examples("train"), examples("test")
    params = SamplingParams(n=2, temperature=0.8, top_p=0.95, max_new_tokens=32, seed=5)
    rows = evaluate_checkpoint(loaded, train, test, params, scorer=scorer, make_sampler=make_sampler)
    assert len(fake_vllm.llms) == 1  # one engine served scoring and sampling
    by = {(r["split"], r["example_id"]): r for r in rows}
    for split, exs in (("train", train), ("test", test)):
        for i, e in enumerate(exs):
            r = by[(split, e.id)]
            # the fake answers i + j for sample j of prompt i: graded against the gold answer like any sample
            want = sum(str(i + j) == e.answer for j in range(2))
            assert r["n_samples"] == 2 and r["n_correct"] == want and r["n_unparseable"] == 0
    pairs = [(prompt_of(e.question), target_of(e.solution)) for e in train]
    if scoring == "transformers":  # scored by the transformers model, which then left the GPU for the engine
        want_nll = [a for a, _ in target_nll(loaded, pairs)]
    else:  # scored from the fake's prompt logprobs
        codec = fake_vllm_codec(tiny)
        want_nll = []
        for prompt, target in pairs:
            p = [codec.bos_id] + codec.encode(prompt)
            ids = p + codec.encode(target)
            want_nll.append(-sum(fake_logprob(j, ids[j]) for j in range(len(p), len(ids))) / (len(ids) - len(p)))
    assert [by[("train", e.id)]["nll"] for e in train] == pytest.approx(want_nll, rel=1e-5)  # batching may differ
    assert all(math.isfinite(by[("train", e.id)]["nll"]) for e in train)


def fake_vllm_codec(folder):
    from premem.engine.hf import HFCodec, load_tokenizer

    return HFCodec(load_tokenizer(folder))


def test_the_spec_refuses_vllm_where_it_cannot_run(tiny):
    from premem.spec.load import SpecError, parse_spec

    def spec(device, sampler="vllm", model=f"hf: {tiny}", gpus=1, scoring="transformers"):
        return f"""\
name: t
device: {device}
models:
  - name: m
    {model}
datasets:
  - name: g
    gsm8k: {{train_file: {FIXTURES / 'gsm8k_train.jsonl'}, test_file: {FIXTURES / 'gsm8k_test.jsonl'}}}
grid: {{learning_rate: [1.0e-5], epochs: [1]}}
evaluation: {{sampler: {sampler}, scoring: {scoring}}}
resources: {{train: {{gpus: {min(gpus, 1)}}}, evaluate: {{gpus: {gpus}}}}}
"""

    def problems(text):
        with pytest.raises(SpecError) as e:
            parse_spec(text, "s.yaml")
        return [str(p) for p in e.value.problems]

    out = problems(spec("cpu", gpus=0))
    assert any("evaluation.sampler: vllm runs on CUDA GPUs only and device is cpu" in p for p in out), out
    out = problems(spec("cpu", sampler="transformers", scoring="vllm", gpus=0))
    assert any("evaluation.scoring: vllm runs on CUDA GPUs only" in p for p in out), out
    out = problems(spec("auto", gpus=0))
    assert any("vllm needs a whole GPU per evaluation job" in p for p in out), out
    assert parse_spec(spec("cuda")).evaluation.sampler == "vllm"
    assert parse_spec(spec("cuda", gpus=2)).resources.evaluate.gpus == 2
    out = problems(spec("cuda", gpus=1.5))
    assert any("must be a whole number" in p for p in out), out


def test_auto_picks_vllm_only_for_a_hf_model_on_a_gpu_with_vllm_installed(tiny, fake_vllm, monkeypatch):
    """`sampler: auto`: the CUDA check is the boundary (no GPU here), so torch.cuda.is_available is patched;
    vLLM's presence is the fake module's (find_spec is answered from sys.modules)."""
    import importlib.util

    import torch

    from premem.engine.vllm_sampler import auto_sampler
    from premem.spec.schema import ModelSpec

    hf, builtin = ModelSpec(name="m", hf=str(tiny)), ModelSpec.model_construct(name="b", hf=None)
    assert auto_sampler(hf, "cpu") == "transformers"  # no GPU for this job
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find(name, *a))
    assert auto_sampler(hf, "cuda") == "vllm"
    assert auto_sampler(builtin, "cuda") == "transformers"  # its word tokenizer is premem's own
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real_find(name, *a))
    assert auto_sampler(hf, "cuda") == "transformers"  # vLLM not installed
