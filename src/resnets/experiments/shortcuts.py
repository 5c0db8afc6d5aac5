"""Shortcut options A, B and C (Section 3.3, Table 3) compared on CIFAR-10 networks, with the
plain network for reference. The paper compared them on ImageNet with ResNet-34."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

from ..models import create_model
from ..models.summary import num_params
from .report import cell, final_test_error, header, table
from .runner import Spec, spec
from .scales import Scale

# Table 3, ImageNet validation top-1 error (%), 10-crop: plain-34 and ResNet-34 A/B/C.
PAPER_TOP1 = {None: 28.54, "A": 25.03, "B": 24.52, "C": 24.19}
DEPTH = 20
OPTIONS = [None, "A", "B", "C"]  # the plain net, then the three shortcut options


def specs(scale: Scale) -> list[Spec]:
    """One run per entry of ``OPTIONS``, in its order: the plain net, then ResNet-20 with A (its
    default, so the degradation experiment's run), B and C."""
    return [spec(f"plain{DEPTH}") if option is None else spec(f"resnet{DEPTH}") if option == "A"
            else spec(f"resnet{DEPTH}", option) for option in OPTIONS]


def report(scale: Scale, data: str, out: Path, command: str, dirs: dict[str, list[Path]]) -> Path:
    runs = specs(scale)
    rows = []
    for s, option in zip(runs, OPTIONS):
        params = num_params(create_model(s.model, **s.overrides))
        rows.append((s.key, option or "none (plain)", f"{params:,}", cell(dirs[s.key], final_test_error, scale), PAPER_TOP1[option]))
    error = {o: mean(map(final_test_error, dirs[s.key])) for s, o in zip(runs, OPTIONS)}  # over the seeds
    order = "C <= B <= A < plain" if error["C"] <= error["B"] <= error["A"] < error[None] else "not C <= B <= A < plain"
    text = "\n".join([
        header(f"Shortcut options A, B, C on ResNet-{DEPTH} (paper Table 3)", scale, data, dirs, command),
        table(["run", "shortcut", "params", "test error (%)", "paper, ResNet-34 on ImageNet, top-1 error (%)"], rows),
        "",
        f"- ours: {order}; the paper: C < B < A < plain, with small gaps between A, B and C "
        "(\"projection shortcuts are not essential\").",
        "",
    ])
    report = out / "shortcuts.md"
    report.write_text(text)
    return report
