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


def save_model(model: torch.nn.Module, codec: TextCodec, folder: Path) -> None:
    """Write the model (safetensors) and, for premem's own tokenizer, its vocabulary into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if hasattr(codec, "save"):
        codec.save(folder / TOKENIZER_FILE)


def load_model(folder: str | Path, device: str = "auto", dtype: str = "float32",
               trust_remote_code: bool = False) -> LoadedModel:
    """Load a causal LM and its codec from `folder` onto `device` in `dtype`."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per checkpoint load is noise in a study of hundreds of loads
    folder = Path(folder)
    dev = resolve_device(device)
    torch_dtype = DTYPES[dtype]
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch_dtype, trust_remote_code=trust_remote_code
    ).to(dev)
    if (folder / TOKENIZER_FILE).exists():
        from premem.data.tokenizer import WordTokenizer

        codec: TextCodec = WordTokenizer.load(folder / TOKENIZER_FILE)
    else:
        raise NotImplementedError("Hugging Face tokenizers arrive with the real-models issue")
    return LoadedModel(model=model, codec=codec, device=dev, dtype=torch_dtype)


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
