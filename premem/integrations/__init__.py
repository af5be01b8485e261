"""premem inside other training stacks: `PreMemAccCallback` for transformers' Trainer (and TRL's trainers).

Imported lazily, so `import premem.integrations` does not import transformers.
"""
from __future__ import annotations

__all__ = ["PreMemAccCallback", "load_examples"]


def __getattr__(name: str):
    if name in __all__:
        from premem.integrations import transformers as _hf

        return getattr(_hf, name)
    raise AttributeError(f"module 'premem.integrations' has no attribute {name!r}")
