"""premem inside other training stacks: `PreMemAccCallback` for transformers' Trainer (and TRL's trainers).

Imported lazily, so `import premem.integrations` does not import transformers.
"""
from __future__ import annotations

from premem.lazy import lazy_exports

__all__ = ["PreMemAccCallback", "load_examples"]
__getattr__ = lazy_exports(__name__, {name: "transformers" for name in __all__})
