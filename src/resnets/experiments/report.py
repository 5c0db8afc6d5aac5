"""The Markdown report every experiment writes: what ran, where, on what, for how long, and a
table beside the paper's numbers."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Sequence

import torch

from ..data import load_data
from .runner import results
from .scales import Scale

DATA_LABELS = {"cifar10-jpeg": "CIFAR-10 (JPEG copy)", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
               "digits": "scikit-learn's 8x8 digits (the embedded default: no CIFAR-10 was given)"}


def data_label(spec: str) -> str:
    name = load_data(spec).name
    return DATA_LABELS.get(name, name)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def header(title: str, scale: Scale, data: str, run_dirs: Sequence[Path], command: str) -> str:
    runs = [results(d) for d in run_dirs]
    devices = sorted({r["device"] for r in runs})
    cpu = platform.processor() or platform.machine()
    wall = sum(r["wall_time_s"] for r in runs)
    return "\n".join([
        f"# {title}",
        "",
        f"- command: `{command}`",
        f"- data: {data_label(data)} (`{data}`)",
        f"- {scale.describe()}; recipe `cifar` (paper Section 4.2) otherwise",
        f"- hardware: {', '.join(devices)}; {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        f"- wall time: {wall / 60:.1f} min of training over {len(runs)} runs (evaluation excluded)",
        "",
    ])
