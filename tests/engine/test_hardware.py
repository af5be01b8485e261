"""`evaluation.sampling_dtype: auto`: bfloat16 only where this CPU (or a GPU) runs it natively."""
from __future__ import annotations

import subprocess
import sys

import pytest

from premem.engine import hardware
from premem.engine.hardware import cpu_bfloat16_is_fast, resolve_sampling_dtype


@pytest.fixture()
def flags(monkeypatch):
    """Set the CPU flags premem reads (what /proc/cpuinfo would list) for one test."""
    def set_flags(*names):
        monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(names))
    return set_flags


def test_values_other_than_auto_pass_through():
    assert resolve_sampling_dtype("bfloat16", "cpu")[0] == "bfloat16"
    assert resolve_sampling_dtype("float32", "cuda")[0] == "float32"
    assert resolve_sampling_dtype(None, "cpu")[0] is None


def test_auto_on_an_avx2_only_cpu_samples_in_float32(flags):
    flags("sse4_2", "avx", "avx2", "fma", "f16c")
    dtype, why = resolve_sampling_dtype("auto", "cpu")
    assert dtype == "float32" and "no amx_bf16" in why


def test_auto_on_a_cpu_with_native_bfloat16_follows_what_torch_may_use(flags, monkeypatch):
    import platform

    import torch

    flags("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert resolve_sampling_dtype("auto", "cpu")[0] == "bfloat16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # how one approximates an AVX2-only CPU on this one
    dtype, why = resolve_sampling_dtype("auto", "cpu")
    assert dtype == "float32" and "ONEDNN_MAX_CPU_ISA=AVX2" in why
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert resolve_sampling_dtype("auto", "cpu")[0] == "float32"


def test_aten_cpu_capability_caps_the_choice_in_a_fresh_process():
    # the real torch, no patching: a capped process never picks bfloat16, whatever this CPU has
    code = "from premem.engine.hardware import resolve_sampling_dtype as r; print(r('auto', 'cpu')[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "ATEN_CPU_CAPABILITY": "avx2"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "float32"


def test_this_machine_gets_an_answer_with_a_reason():
    fast, why = cpu_bfloat16_is_fast()
    assert isinstance(fast, bool) and why
