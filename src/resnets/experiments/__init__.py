"""The paper's experiments: each names the networks it trains (``specs``) and writes a Markdown
report with figures beside the paper's numbers from their runs (``report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import cifar_table, degradation, responses, shortcuts
from ..training.trainer import RESULTS
from .runner import Spec, run_models
from .scales import SCALES, Scale

EXPERIMENTS = {
    "degradation": degradation,
    "cifar-table": cifar_table,
    "responses": responses,
    "shortcuts": shortcuts,
}

# The order in which `all` trains the runs of every experiment: Table 6's ResNets, shallow to
# deep but ResNet-56 second (the table's best-known row), then Fig. 6's plain nets, then the rest.
PRIORITY = ["resnet20", "resnet56", "resnet32", "resnet44", "resnet110", "plain20", "plain56", "plain32", "plain44",
            "resnet20-B", "resnet20-C", "resnet1202"]


def runs_of(names: list[str], scale: Scale) -> list[Spec]:
    """The runs of the experiments ``names``, once each, in :data:`PRIORITY` order."""
    specs = {s.key: s for name in names for s in EXPERIMENTS[name].specs(scale)}
    rank = {key: i for i, key in enumerate(PRIORITY)}
    return sorted(specs.values(), key=lambda s: rank.get(s.key, len(rank)))


def reproduce(experiment: str, scale: Scale, data: str, out: Path, command: str, jobs: int = 1,
              machine: dict[str, Any] | None = None, train: bool = True) -> list[Path]:
    """Train (or reuse) the runs of ``experiment`` (or of ``"all"``) and write its reports.
    With ``train=False``, report what the runs in ``out`` hold so far: experiments that can show
    unfinished runs do, the others wait for theirs."""
    names = list(EXPERIMENTS) if experiment == "all" else [experiment]
    specs = runs_of(names, scale)
    if train:
        dirs = run_models(specs, scale, data, out, jobs=jobs, machine=machine)
    else:
        dirs = {s.key: out / "runs" / s.key for s in specs}
    reports = []
    for name in names:
        module = EXPERIMENTS[name]
        waiting = [s.key for s in module.specs(scale) if not (dirs[s.key] / RESULTS).is_file()]
        if waiting and not getattr(module, "PARTIAL_REPORT", False):
            print(f"{name}: no report until {', '.join(waiting)} finish", flush=True)
            continue
        reports.append(module.report(scale, data, out, command, dirs))
    return reports


__all__ = ["EXPERIMENTS", "PRIORITY", "SCALES", "Scale", "reproduce"]
