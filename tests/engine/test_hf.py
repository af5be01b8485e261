"""Hugging Face causal LMs: loading by folder through from_pretrained, the tokenizer codec, pad tokens, the
sampler's stop string with a sub-word tokenizer, and LoRA. Everything is built in a temp folder (tiny_hf);
nothing downloads."""
from __future__ import annotations

import json

import pytest
import torch

from premem.data.format import prompt_of, target_of
from premem.data.loaders import TextExample
from premem.engine.hf import HFCodec, fit_embeddings, model_fingerprint, prepare_tokenizer
from premem.engine.models import LoadedModel, load_model, save_model
from premem.engine.sampling import SamplingParams, TransformersSampler, cut_after_stop, target_nll
from premem.engine.train import Recipe, encode_examples, make_optimizer, save_checkpoint, train_epoch
from tests.tiny_hf import FIXTURES, fixture_texts, make_tiny_hf, make_tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_hf(tmp_path_factory.mktemp("tiny-llama"))


def examples(n=8):
    rows = [json.loads(line) for line in (FIXTURES / "gsm8k_train.jsonl").read_text().splitlines()][:n]
    return [TextExample(f"train-{i:05d}", r["question"], r["answer"], r["answer"].split("####")[-1].strip(), 1)
            for i, r in enumerate(rows)]


def test_a_folder_loads_through_from_pretrained_with_an_hf_codec(tiny):
    lm = load_model(str(tiny), device="cpu")
    codec = lm.codec
    assert isinstance(codec, HFCodec) and lm.model.config.model_type == "llama"
    # no pad token in the tokenizer: eos serves, nothing was added, the embeddings keep their size
    assert codec.pad_id == codec.eos_id == codec.tokenizer.convert_tokens_to_ids("</s>")
    assert lm.model.get_input_embeddings().weight.shape[0] == len(codec) == 600
    assert codec.bos_id == codec.tokenizer.convert_tokens_to_ids("<s>")  # the tokenizer adds <s>: so does premem
    ex = examples(3)
    for e in ex:
        p, t = prompt_of(e.question), target_of(e.solution)
        assert codec.decode(codec.encode(p + t)) == p + t
        assert codec.encode(p) + codec.encode(t) == codec.encode(p + t)
    seqs = encode_examples(lm, ex)
    for (ids, plen), e in zip(seqs, ex):
        assert ids[0] == codec.bos_id and codec.decode(ids[plen:]) == target_of(e.solution)
    assert model_fingerprint(str(tiny))["model_sha256"] == model_fingerprint(str(tiny))["model_sha256"]
    assert model_fingerprint("meta-llama/Meta-Llama-3-8B") == {}


def test_pad_token_added_only_when_missing_and_embeddings_grow_only_then():
    texts = fixture_texts()
    with_pad = make_tokenizer(texts, pad=True)
    assert not prepare_tokenizer(with_pad) and with_pad.pad_token == "<pad>"
    no_eos = make_tokenizer(texts)
    no_eos.eos_token = None
    n = len(no_eos)
    assert prepare_tokenizer(no_eos) and no_eos.pad_token == "<pad>" and len(no_eos) == n + 1
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=n, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    assert fit_embeddings(model, no_eos) and model.get_input_embeddings().weight.shape[0] == n + 1
    assert not fit_embeddings(model, no_eos)  # already fits: left alone
    padded = make_tokenizer(texts)  # the eos case: nothing added, no resize
    assert not prepare_tokenizer(padded) and len(padded) == n


def test_a_finetuned_checkpoint_round_trips_with_its_tokenizer(tiny, tmp_path):
    lm = load_model(str(tiny), device="cpu")
    recipe = Recipe(learning_rate=1e-3, total_steps=2, batch_size=4)
    opt = make_optimizer(lm.model, recipe)
    train_epoch(lm, opt, encode_examples(lm, examples()), recipe, seed=0, epoch=1, start_step=0)
    save_checkpoint(lm, opt, tmp_path / "ckpt", {"epoch": 1})
    again = load_model(tmp_path / "ckpt", device="cpu")
    assert isinstance(again.codec, HFCodec) and again.codec.pad_id == lm.codec.pad_id
    pairs = [(prompt_of(e.question), target_of(e.solution)) for e in examples(4)]
    got, want = target_nll(again, pairs), target_nll(lm, pairs)
    # pytest.approx takes flat sequences only (pytest 9 refuses nested ones): the token counts must be equal,
    # the NLLs equal up to float rounding (the reloaded weights are the same, the kernels may batch differently)
    assert [n for _, n in got] == [n for _, n in want]
    assert [a for a, _ in got] == pytest.approx([a for a, _ in want], rel=1e-5)


def test_the_sampler_finds_the_stop_string_in_text_whatever_tokens_spell_it(tiny, monkeypatch):
    lm = load_model(str(tiny), device="cpu")
    codec = lm.codec
    # the model runs for real, but the tokens it draws are scripted: "x Done. more", in which the stop string
    # "one." is spelled by the tokens of "Done", ".", which encode("one.") does not end with
    script = codec.encode(" x Done. more more more")
    stop = "one."
    assert codec.encode(stop)[-2:] != codec.encode(" Done.")[-2:] or codec.encode(stop) != codec.encode(" Done.")[-2:]
    import premem.engine.sampling as sampling

    calls = {"n": 0}

    def scripted(logits, temperature, top_p, gen):
        tok = script[min(calls["n"], len(script) - 1)]
        calls["n"] += 1
        return torch.full((logits.shape[0],), tok, dtype=torch.long)

    monkeypatch.setattr(sampling, "next_tokens", scripted)
    out = TransformersSampler(lm).sample(["Q\nAnswer:"], SamplingParams(n=1, max_new_tokens=len(script), stop=stop))
    assert out == [[" x Done."]]
    assert calls["n"] < len(script)  # it stopped there instead of running to max_new_tokens


def test_cut_after_stop():
    assert cut_after_stop(" 5\nDone.\nQ", "\nDone.") == " 5\nDone."
    assert cut_after_stop(" 5 and more", "\nDone.") == " 5 and more"


# ----------------------------------------------------------------------------------------------------- LoRA
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}


def test_lora_trains_only_adapters_and_reduces_loss(tiny, tmp_path):
    from premem.engine.lora import add_adapters, base_of, is_adapter, write_base

    lm = load_model(str(tiny), device="cpu")
    before = {k: v.clone() for k, v in base_of(lm.model).state_dict().items()}
    lm.model = add_adapters(lm.model, LORA, seed=0)
    trainable = [n for n, p in lm.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    seqs = encode_examples(lm, examples())
    recipe = Recipe(learning_rate=3e-2, total_steps=40, batch_size=8, schedule="constant")
    opt = make_optimizer(lm.model, recipe)
    losses = []
    for epoch in range(1, 16):
        losses += train_epoch(lm, opt, seqs, recipe, seed=0, epoch=epoch, start_step=epoch - 1)["losses"]
    # one batch of the same 8 examples each step (no dropout): the loss falls steadily, well beyond noise
    assert losses[-1] < losses[0] - 0.05 and sum(b < a for a, b in zip(losses, losses[1:])) >= 12, losses
    # the base weights did not move: every change is in the adapters
    for name, p in base_of(lm.model).state_dict().items():
        if "lora_" not in name:
            key = name.replace("base_layer.", "")
            assert torch.equal(p, before[key]), name
    folder = tmp_path / "lora-ckpt"
    save_checkpoint(lm, opt, folder, {"epoch": 5})
    write_base(folder, {"hf": str(tiny), "revision": None})
    assert is_adapter(folder) and not (folder / "model.safetensors").exists()  # the adapter, not full weights
    pairs = [(prompt_of(e.question), target_of(e.solution)) for e in examples()]
    trained_nll = target_nll(lm, pairs)
    merged = load_model(folder, device="cpu")  # base + adapter, merged for evaluation
    assert type(merged.model).__name__ == "LlamaForCausalLM"
    assert [a for a, _ in target_nll(merged, pairs)] == pytest.approx([a for a, _ in trained_nll], rel=1e-4)
    base_nll = target_nll(load_model(str(tiny), device="cpu"), pairs)
    assert sum(a for a, _ in trained_nll) < sum(a for a, _ in base_nll)
    resumed = load_model(folder, device="cpu", trainable_adapter=True)  # the next epoch continues the adapter
    assert {n for n, p in resumed.model.named_parameters() if p.requires_grad} == set(trainable)
    opt2 = make_optimizer(resumed.model, recipe)
    opt2.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))


def test_lora_on_the_builtin_model_records_its_pretraining_artifact(tmp_path):
    from premem.data.synthetic import ArithmeticTask
    from premem.data.tokenizer import WordTokenizer
    from premem.engine.lora import add_adapters, write_base
    from premem.engine.models import build_tiny
    from premem.spec.schema import TinyArchitecture

    codec = WordTokenizer.for_arithmetic_task()
    base = build_tiny(TinyArchitecture(layers=1, hidden=16, heads=2, mlp=32, max_length=256), codec.vocab_size, 0)
    arts = tmp_path / "artifacts"
    save_model(base, codec, arts / "pretrainjob")
    lm = load_model(arts / "pretrainjob", device="cpu", trainable_adapter=True)
    lm.model = add_adapters(lm.model, LORA, seed=0)
    ex = ArithmeticTask(seed=0).split("train", 8)
    recipe = Recipe(learning_rate=1e-2, total_steps=1, batch_size=8)
    opt = make_optimizer(lm.model, recipe)
    train_epoch(lm, opt, encode_examples(lm, ex), recipe, seed=0, epoch=1, start_step=0)
    save_checkpoint(lm, opt, arts / "trainjob", {"epoch": 1})
    write_base(arts / "trainjob", {"artifact": "pretrainjob"})
    merged = load_model(arts / "trainjob", device="cpu")
    assert isinstance(merged.codec, WordTokenizer)
    pairs = [(prompt_of(e.question), target_of(e.solution)) for e in ex]
    assert [a for a, _ in target_nll(merged, pairs)] == pytest.approx([a for a, _ in target_nll(lm, pairs)], rel=1e-4)


def test_loaded_model_is_a_dataclass_the_runner_can_rewrap(tiny):
    lm = load_model(str(tiny), device="cpu")
    assert isinstance(lm, LoadedModel)
