"""Loading causal LMs, and the built-in tiny model family.

Every model premem touches is a transformers causal LM in a folder written by `save_pretrained`, so the
built-in model and a hub model take the same path through training, sampling and perplexity. The built-in
model is a small Llama-architecture network with premem's word-level tokenizer saved beside it
(`premem_tokenizer.json`); other folders use their own Hugging Face tokenizer.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

TOKENIZER_FILE = "premem_tokenizer.json"


class TextCodec(Protocol):
    """What premem needs of a tokenizer: ids in, text out, and the special ids."""

    pad_id: int
    eos_id: int
    bos_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids) -> str: ...


@dataclass
class LoadedModel:
    """A causal LM ready to use: the network, its codec, and the device and dtype it lives in."""

    model: torch.nn.Module
    codec: TextCodec
    device: torch.device
    dtype: torch.dtype


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when a GPU is visible, else cpu; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the spec asks for device: cuda but no GPU is visible to this job")
    return torch.device(device)


def build_tiny(size, vocab_size: int, seed: int) -> torch.nn.Module:
    """A freshly initialised tiny LlamaForCausalLM of the given `size` (spec.TinyArchitecture)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden,
        intermediate_size=size.mlp,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=size.max_length,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        attention_dropout=0.0,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def save_model(model: torch.nn.Module, codec: TextCodec, folder: Path, state_dict: dict | None = None) -> None:
    """Write the model (safetensors; a LoRA model writes its adapter only) and its tokenizer into `folder`:
    premem's word tokenizer as `premem_tokenizer.json`, a Hugging Face tokenizer with `save_pretrained`.
    `state_dict`: the weights to write instead of the model's own (a sharded model's, gathered in full)."""
    from premem.data.tokenizer import WordTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, state_dict=state_dict) if state_dict is not None else model.save_pretrained(folder)
    if isinstance(codec, WordTokenizer):
        codec.save(folder / TOKENIZER_FILE)
    elif hasattr(codec, "save_pretrained"):
        codec.save_pretrained(folder)


def load_model(source: str | Path, device: str = "auto", dtype: str = "float32",
               trust_remote_code: bool = False, revision: str | None = None,
               trainable_adapter: bool = False) -> LoadedModel:
    """Load a causal LM and its codec onto `device` in `dtype`.

    `source` is a folder written by `save_model` (the built-in model, a finetuned checkpoint) or anything
    `from_pretrained` takes: a hub id (at `revision`) or a local folder. Its tokenizer is premem's word
    tokenizer when the folder has one, else the Hugging Face tokenizer loaded from the same source (a pad
    token added when it has none; embeddings grow only if that added a new token). A LoRA checkpoint (an
    adapter, `premem.engine.lora`) loads its base model and puts the adapter on it: merged into the weights for
    evaluation, or kept trainable with `trainable_adapter` (to continue training).
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per checkpoint load is noise in a study of hundreds of loads
    dev = resolve_device(device)
    torch_dtype = DTYPES[dtype]
    local = Path(source)
    adapter = local.is_dir() and _is_adapter(local)
    weights = source
    if adapter:
        from premem.engine.lora import read_base

        weights, revision = read_base(local)
    model = AutoModelForCausalLM.from_pretrained(
        str(weights), dtype=torch_dtype, trust_remote_code=trust_remote_code, revision=revision)
    codec: TextCodec
    if local.is_dir() and (local / TOKENIZER_FILE).exists():
        from premem.data.tokenizer import WordTokenizer

        codec = WordTokenizer.load(local / TOKENIZER_FILE)
    else:
        from premem.engine.hf import HFCodec, fit_embeddings, load_tokenizer

        # a checkpoint carries its tokenizer (pad token included); a hub id or base folder has its own
        tok = load_tokenizer(source if not adapter or _has_tokenizer(local) else weights,
                             revision=None if local.is_dir() else revision, trust_remote_code=trust_remote_code)
        codec = HFCodec(tok)
        if fit_embeddings(model, tok):
            model.config.pad_token_id = codec.pad_id
    if adapter:
        from premem.engine.lora import load_adapter

        model = load_adapter(model, local, trainable=trainable_adapter)
    model = model.to(dev)
    return LoadedModel(model=model, codec=codec, device=dev, dtype=torch_dtype)


def _is_adapter(folder: Path) -> bool:
    from premem.engine.lora import is_adapter

    return is_adapter(folder)


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").exists() or (folder / "tokenizer.json").exists()


def max_length_of(loaded: LoadedModel, model_spec) -> int:
    """The longest sequence a model trains on: size.max_length for a built-in model, else the spec's
    max_length or the model config's max_position_embeddings."""
    if model_spec.builtin is not None:
        return model_spec.size.max_length
    if model_spec.max_length is not None:
        return model_spec.max_length
    from premem.engine.lora import base_of

    config = base_of(loaded.model).config
    n = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if n is None:
        raise ValueError("the model's config gives no max_position_embeddings: set the model's max_length")
    return int(n)


def with_dtype(loaded: LoadedModel, dtype: str | None) -> LoadedModel:
    """`loaded` itself when `dtype` is None or already its dtype, else a copy of the model cast to `dtype`."""
    if dtype is None or DTYPES[dtype] == loaded.dtype:
        return loaded
    import copy

    model = copy.deepcopy(loaded.model).to(DTYPES[dtype])
    return LoadedModel(model=model, codec=loaded.codec, device=loaded.device, dtype=DTYPES[dtype])


def cache_kwarg(model: torch.nn.Module) -> str:
    """The name of the KV-cache argument of `model.forward` (transformers renamed it to `cache` in 5.x)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"
