"""What the machine computes natively: the CPU's name and flags, whether bf16 arithmetic is
native there (where it is not, bf16 is emulated and slower than fp32), and whether
``torch.compile`` can build kernels for it."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

# The CPU flags (Linux /proc/cpuinfo names) that decide which kernels PyTorch can use.
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bf16 arithmetic, as oneDNN uses it


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """The CPU's model name and its flags (empty where /proc/cpuinfo does not exist, as on macOS)."""
    name, flags = "", set()
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return name or platform.processor() or platform.machine() or "unknown CPU", flags


def device_name(device: torch.device) -> str:
    """What a run reports it ran on: the GPU's name, or the CPU with its number of threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads > 1 else ''})"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (elsewhere bf16 is emulated and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_info()[1] & set(BF16_FLAGS))


def auto_precision(device: torch.device) -> str:
    """What precision ``"auto"`` trains in: bf16 autocast where bf16 is native, fp32 elsewhere,
    where bf16 would be emulated and slower."""
    return "bf16" if native_bf16(device) else "fp32"


def can_compile(device: torch.device) -> bool:
    """Whether ``torch.compile`` can build kernels for ``device``: on a CPU, inductor needs a C++
    compiler; CUDA builds of torch bring Triton for GPUs."""
    if device.type == "cuda":
        return True
    try:  # inductor's own search for a compiler (private, hence the broad guard)
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
        return True
    except Exception:
        return False
