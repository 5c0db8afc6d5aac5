"""The paper's experiments: each names the networks it trains (``specs``) and writes a Markdown
report with figures beside the paper's numbers from their runs (``report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import cifar_table, degradation, responses, shortcuts
from ..errors import UserError
from ..training.trainer import RESULTS
from .runner import Spec, run_models, seeded
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
              machine: dict[str, Any] | None = None, train: bool = True, seeds: int = 1,
              only: list[str] | None = None) -> list[Path]:
    """Train (or reuse) the runs of ``experiment`` (or of ``"all"``), each network ``seeds`` times
    (seed 0 of every network first, then seed 1, ...), and write its reports: means and standard
    deviations over the seeds where there are several, as Table 6 gives ResNet-110's. With
    ``train=False``, report what the runs in ``out`` hold so far: experiments that can show
    unfinished runs do, the others wait for theirs. ``only`` (run keys such as ``"resnet56"``)
    trains those of the runs alone: a GPU rental too short for the whole experiment."""
    names = list(EXPERIMENTS) if experiment == "all" else [experiment]
    specs = runs_of(names, scale)
    if only is not None:
        unknown = sorted(set(only) - {s.key for s in specs})
        if unknown:
            raise UserError(f"{experiment} at scale {scale.name} has no run {', '.join(unknown)}; "
                            f"its runs: {', '.join(s.key for s in specs)}")
    every_seed = [seeded(s, seed) for seed in range(seeds) for s in specs if only is None or s.key in only]
    if train:
        run_models(every_seed, scale, data, out, jobs=jobs, machine=machine)
    dirs = {s.key: [out / "runs" / seeded(s, seed).key for seed in range(seeds)] for s in specs}  # each network's runs
    reports = []
    for name in names:
        module = EXPERIMENTS[name]
        waiting = [s.key for s in module.specs(scale) if not all((d / RESULTS).is_file() for d in dirs[s.key])]
        if waiting and not getattr(module, "PARTIAL_REPORT", False):
            print(f"{name}: no report until {', '.join(waiting)} finish", flush=True)
            continue
        reports.append(module.report(scale, data, out, command, dirs))
    return reports


__all__ = ["EXPERIMENTS", "PRIORITY", "SCALES", "Scale", "reproduce"]
