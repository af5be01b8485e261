"""LoRA finetuning through peft (training.lora in the spec).

A LoRA run's checkpoints hold the adapter (peft's `save_pretrained`: adapter_config.json and
adapter_model.safetensors), the tokenizer, the optimizer state, and `premem_base.json`, which says which base
model the adapter goes on: a Hugging Face hub id or folder, or the artifact of a built-in model's pretraining
job (named by job id and found beside the checkpoint in the store, so a store that moves keeps working).
Loading such a checkpoint loads the base and puts the adapter on it; evaluation merges it into the weights.
peft is imported only here, and only when a spec asks for LoRA.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

ADAPTER_CONFIG = "adapter_config.json"
BASE_FILE = "premem_base.json"


def _peft():
    try:
        import peft
    except ImportError:
        raise ImportError("training.lora needs peft: pip install 'premem[lora]' (or pip install peft)") from None
    return peft


def is_adapter(folder: str | Path) -> bool:
    """Whether `folder` holds a LoRA checkpoint (an adapter rather than full weights)."""
    return (Path(folder) / ADAPTER_CONFIG).exists()


def add_adapters(model: torch.nn.Module, lora: dict, seed: int) -> torch.nn.Module:
    """Wrap `model` in fresh LoRA adapters (spec.LoraSpec as a dict); only the adapters are trainable.

    The adapters' random initialisation is seeded, so the same run starts from the same adapters.
    """
    peft = _peft()
    config = peft.LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                             target_modules=lora["target_modules"], bias="none", task_type="CAUSAL_LM")
    torch.manual_seed(seed)
    return peft.get_peft_model(model, config)


def base_of(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (or `model` itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def write_base(folder: Path, base: dict) -> None:
    """Record in a LoRA checkpoint which base model its adapter goes on: {"hf": ..., "revision": ...} or
    {"artifact": <pretraining job id>}."""
    (Path(folder) / BASE_FILE).write_text(json.dumps(base, sort_keys=True))


def read_base(folder: str | Path) -> tuple[str, str | None]:
    """(source, revision) of the base model of the LoRA checkpoint in `folder`."""
    folder = Path(folder)
    path = folder / BASE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{folder} holds an adapter but no {BASE_FILE}: the base model is unknown")
    base = json.loads(path.read_text())
    if "artifact" in base:  # a pretraining job's artifact: a sibling in the store's artifacts folder
        return str(folder.parent / base["artifact"]), None
    return base["hf"], base.get("revision")


def load_adapter(base: torch.nn.Module, folder: str | Path, trainable: bool) -> torch.nn.Module:
    """`base` with the adapter saved in `folder`: a trainable peft model (to continue the run), or the base
    with the adapter merged into its weights (for evaluation: a plain transformers model, as fast as any)."""
    peft = _peft()
    model = peft.PeftModel.from_pretrained(base, str(folder), is_trainable=trainable)
    return model if trainable else model.merge_and_unload()
