"""Training an experiment's networks through the one trainer, resumably: each network's run lives
in ``OUT/runs/KEY``; a finished run is reused, an interrupted one resumed, and experiments sharing an
output folder share their runs (the CIFAR-10 table reuses the degradation runs' ResNets)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..training import make_config, train
from ..training.checkpoint import LAST_STATE
from ..training.trainer import CONFIG, RESULTS
from .scales import Scale


@dataclass
class Spec:
    key: str  # the run's folder name
    model: str
    overrides: dict[str, Any]


def spec(model: str, shortcut: str | None = "default") -> Spec:
    if shortcut == "default":
        return Spec(model, model, {})
    return Spec(f"{model}-{shortcut or 'none'}", model, {"shortcut": shortcut})


def run_models(specs: list[Spec], scale: Scale, data: str, out: Path) -> dict[str, Path]:
    """Train (or reuse, or resume) each network; returns each key's run directory."""
    dirs = {}
    for s in specs:
        run_dir = out / "runs" / s.key
        config = make_config(
            "cifar", model=s.model, data=data, iterations=scale.iterations, milestones=scale.milestones,
            batch_size=scale.batch_size, train_subset=scale.train_subset, test_subset=scale.test_subset,
            model_overrides=s.overrides, out=str(run_dir), channels_last=True,  # a layout, not a recipe change
        )
        if (run_dir / CONFIG).is_file():
            existing = json.loads((run_dir / CONFIG).read_text())
            wanted = json.loads(config.to_json())
            if existing != wanted:
                raise UserError(f"{run_dir} holds a run with another configuration (scale or data); choose another --out")
        if (run_dir / RESULTS).is_file():
            print(f"{s.key}: reusing the finished run in {run_dir}", flush=True)
        elif (run_dir / LAST_STATE).is_file():
            train(None, resume=run_dir)
        else:
            train(config)
        dirs[s.key] = run_dir
    return dirs


def results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / RESULTS).read_text())
