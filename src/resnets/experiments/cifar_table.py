"""The paper's Table 6: layers, parameters and test error of the CIFAR-10 ResNets."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

from ..models import create_model
from ..models.summary import num_params
from .report import cell, done, final_test_error, header, pct, table
from .runner import Spec, spec
from .scales import Scale

PARTIAL_REPORT = True  # unfinished runs are reported as such (``--report-only``)
# Table 6: (layers, parameters, test error %). ResNet-110's 6.43 is the paper's best of 5 runs
# (mean 6.61 +- 0.16).
PAPER = {
    "resnet20": (20, "0.27M", 8.75), "resnet32": (32, "0.46M", 7.51), "resnet44": (44, "0.66M", 7.17),
    "resnet56": (56, "0.85M", 6.97), "resnet110": (110, "1.7M", 6.43), "resnet1202": (1202, "19.4M", 7.93),
}


def models(scale: Scale) -> list[str]:
    return [f"resnet{d}" for d in scale.table]


def specs(scale: Scale) -> list[Spec]:
    return [spec(m) for m in models(scale)]


def report(scale: Scale, data: str, out: Path, command: str, dirs: dict[str, list[Path]]) -> Path:
    names = models(scale)
    rows = []
    for m in names:
        layers, paper_params, paper_error = PAPER[m]
        params = num_params(create_model(m))
        rows.append((m, layers, f"{params / 1e6:.2f}M", paper_params, cell(dirs[m], final_test_error, scale), paper_error))
    measured = [m for m in names[:4] if done(dirs[m])]
    errors = [mean(map(final_test_error, done(dirs[m]))) for m in measured]  # over the seeds
    trend = all(a >= b for a, b in zip(errors, errors[1:]))
    text = "\n".join([
        header("CIFAR-10 classification error (paper Table 6)", scale, data, dirs, command),
        table(["model", "layers", "params", "paper params", "test error (%)", "paper test error (%)"], rows),
        "",
        f"- test error {'falls' if trend else 'does not fall steadily'} with depth over {', '.join(measured)} "
        f"({', '.join(pct(e) for e in errors)}%){'' if trend else '; the paper sees it fall (8.75 to 6.97%)'}.",
        "",
    ])
    report = out / "cifar-table.md"
    report.write_text(text)
    return report
