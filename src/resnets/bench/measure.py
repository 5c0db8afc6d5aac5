"""What the numbers of a benchmark rest on: the machine (CPU name and flags, threads, GPU), how a
call is timed, in what order modes take turns, the matmul peak that achieved GFLOP/s are held
against; and the lines that print them."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence, TypeVar

import torch

from ..hardware import FLAGS, cpu_info, native_bf16

T = TypeVar("T")


def machine(device: torch.device) -> dict[str, Any]:
    """The facts a reader needs to compare two benchmark runs: the JSON ``machine`` object."""
    name, flags = cpu_info()
    return {
        "cpu": name,
        "cpu_flags": {flag: flag in flags for flag in FLAGS},
        "native_bf16": native_bf16(device),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(call: Callable[[], Any], device: torch.device) -> float:
    """Seconds that one ``call()`` takes, the device's queued work included."""
    synchronize(device)
    started = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - started


def rotated(modes: Sequence[T], round: int) -> list[T]:
    """The modes in the order they are timed in ``round``: each round starts one further along, so
    that none is always timed first (after a pause) or last (with the machine warm)."""
    shift = round % len(modes)
    return [*modes[shift:], *modes[:shift]]


def matmul(n: int, dtype: torch.dtype, device: torch.device) -> tuple[Callable[[], Any], float]:
    """A call multiplying two ``n`` x ``n`` matrices of ``dtype``, and its FLOPs (2 n^3): the
    machine's peak for that precision, as near as PyTorch reaches it."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    return (lambda: torch.matmul(a, b)), 2.0 * n ** 3


def describe(m: dict[str, Any]) -> str:
    """The ``machine`` object as the line printed above a table."""
    flags = ", ".join(f"{flag} {'yes' if has else 'no'}" for flag, has in m["cpu_flags"].items())
    gpu = f"; GPU {m['gpu']}" if m["gpu"] else ""
    return (f"CPU {m['cpu']} ({flags}; native bf16 on {m['device']}: {'yes' if m['native_bf16'] else 'no'}){gpu}; "
            f"torch {m['torch']}, {m['torch_threads']} thread{'s' if m['torch_threads'] > 1 else ''}")


def format_columns(header: tuple[str, ...], rows: list[tuple[str, ...]], left: int = 1) -> list[str]:
    """Lines of a text table: the first ``left`` columns aligned left, the others right."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = (cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, rows)]


def number(value: Optional[float], digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, or "-" for a value not measured."""
    if value is None:
        return "-"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"
