"""What the hardware a job runs on does fast: the one home of dtype choices that depend on the CPU or GPU.

`evaluation.sampling_dtype: auto` samples in bfloat16 only where bfloat16 matmuls are fast: a CUDA GPU that
supports it, or a CPU with native bfloat16 instructions (AMX-BF16 or AVX512-BF16) that torch is allowed to use.
On a CPU without them (AVX2-only: most laptops, many cloud CPUs) torch emulates bfloat16 and a matmul at the
organism's sizes ran about 60x slower than in float32 (AMD EPYC, avx2 fma f16c, torch 2.13, one thread: about
1 GFLOP/s against 76-85), so `auto` samples in float32 there.
"""
from __future__ import annotations

import os
import platform
from functools import lru_cache

__all__ = ["cpu_flags", "cpu_bfloat16_is_fast", "resolve_sampling_dtype", "SAMPLING_DTYPE_CHOICES"]

SAMPLING_DTYPE_CHOICES = ("float32", "bfloat16", "float16", "auto")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which its bfloat16 kernels are native
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                     "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512_AMX_2", "ALL")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (lower case); empty where there is no such
    file (macOS, Windows): callers then take the portable choice."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_bfloat16_is_fast() -> tuple[bool, str]:
    """(whether bfloat16 matmuls run natively on this CPU, the reason in words). Native means the CPU has
    AMX-BF16 or AVX512-BF16 and neither ATEN_CPU_CAPABILITY nor ONEDNN_MAX_CPU_ISA caps torch below them."""
    flags = cpu_flags()
    native = sorted(flags & {"amx_bf16", "avx512_bf16"})
    if platform.machine().lower() not in ("x86_64", "amd64") or not native:
        return False, f"this CPU ({platform.machine()}) has no native bfloat16 matmul (no amx_bf16, no avx512_bf16)"
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.upper().startswith("AVX512"):
        return False, f"torch runs this CPU at {capability} (ATEN_CPU_CAPABILITY), without its {'/'.join(native)}"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in _ONEDNN_BF16_ISAS:
        return False, f"ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from this CPU's {'/'.join(native)}"
    return True, f"this CPU has {'/'.join(native)}"


def resolve_sampling_dtype(requested: str | None, device: str) -> tuple[str | None, str]:
    """(the dtype to sample in, why) for `evaluation.sampling_dtype` on `device` ("cpu", "cuda", "cuda:1", ...).
    Only "auto" is decided here: bfloat16 on a GPU that supports it (else float16), on a CPU bfloat16 where
    `cpu_bfloat16_is_fast`, else float32. Any other value (None: the model's dtype) is returned as given."""
    if requested != "auto":
        return requested, "as the spec says" if requested else "the model's dtype"
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bfloat16", "auto: the GPU supports bfloat16"
        return "float16", "auto: the GPU has no bfloat16"
    fast, why = cpu_bfloat16_is_fast()
    return ("bfloat16" if fast else "float32"), f"auto: {why}"
