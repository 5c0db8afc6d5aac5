#!/usr/bin/env python
"""Ship a finished run's weights inside the package, as ``resnets.create_model(MODEL, weights=NAME)`` loads them.

    .venv/bin/python scripts/ship_weights.py RUN_DIR [RUN_DIR ...] [--verify DATA] [--command "..."]

Each run directory (``model.safetensors``, ``config.json``, ``results.json``: a finished ``resnets
train``) becomes ``src/resnets/models/pretrained/NAME-MODEL.safetensors``; NAME is the data set's
(``cifar10`` for the CIFAR-10 batches and the JPEG copy). The tensors are stored in half precision
(``--fp32`` keeps float32); the metadata keeps the checkpoint's description (model and config,
classes, normalization) and adds how the weights were made and what they measured: recipe and
config, data, test accuracy, hardware, wall time and the command, and the parameters and
multiply-adds under torchvision's names (``num_params``, ``_ops``). ``--verify DATA`` evaluates the
stored weights on DATA's test split and refuses them if they lose more than 0.1 point.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import save_file

import resnets
from resnets.data import load_data
from resnets.errors import UserError
from resnets.models import ResNet
from resnets.models.summary import summarize
from resnets.models.weights import META_KEY, load_state_dict, read_description, read_weights
from resnets.training import evaluate, load_model
from resnets.training.evaluate import eval_batches
from resnets.files import atomic_write
from resnets.training.checkpoint import WEIGHTS
from resnets.training.recipes import RECIPES, TrainConfig
from resnets.training.trainer import CONFIG, RESULTS

PACKAGE_FOLDER = Path(__file__).resolve().parents[1] / "src" / "resnets" / "models" / "pretrained"
# TrainConfig fields that `resnets train` has no option for: only a recipe sets them.
RECIPE_ONLY = ("nesterov", "warmup_lr", "warmup_until_error", "warmup_min_depth")
NOT_RUN = ("model", "data", "recipe", "model_overrides", "out")


def train_command(config: dict[str, Any]) -> str:
    """The ``resnets train`` command that gives ``config``: its recipe and every value that differs."""
    recipe = json.loads(TrainConfig.from_dict({**RECIPES[config["recipe"]], "recipe": config["recipe"]}).to_json())
    args = ["resnets", "train", "--model", config["model"], "--data", config["data"], "--recipe", config["recipe"]]
    for key, value in config["model_overrides"].items():
        if key == "shortcut":
            args += ["--shortcut", "none" if value is None else value]
        elif value:
            args.append("--" + key.replace("_", "-"))
    changed = {k: v for k, v in config.items() if k not in NOT_RUN and v != recipe.get(k) and v is not None}
    unsettable = sorted(set(changed) & set(RECIPE_ONLY))
    if unsettable:
        raise UserError(f"the run sets {', '.join(unsettable)}, which `resnets train` has no option for: "
                        "give the command that made it with --command")
    for key, value in changed.items():
        flag = "--" + key.replace("_", "-")
        if key == "augment":
            args.append("--no-augment")
        elif isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            args += [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return shlex.join(args)


def size(meta: dict[str, Any]) -> dict[str, Any]:
    """The network's parameters and multiply-adds (in G, for one image of its input size), as
    torchvision's weights state them (``num_params``, ``_ops``); counted on the meta device."""
    with torch.device("meta"):
        model = ResNet(**meta["model_config"])
    total = summarize(model, tuple(meta["input_size"]))[-1]
    return {"num_params": total.params, "_ops": round(total.mult_adds / 1e9, 3)}


def describe(run_dir: Path, command: Optional[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The run's final weights and their description: the checkpoint's, plus provenance and results."""
    files = {name: run_dir / name for name in (WEIGHTS, CONFIG, RESULTS)}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise UserError(f"{run_dir} is not a finished run: it has no {', '.join(missing)}")
    state, meta = read_weights(files[WEIGHTS], kind="checkpoint")
    config = json.loads(files[CONFIG].read_text())
    results = json.loads(files[RESULTS].read_text())
    return state, {
        **meta,  # model, model_config, classes, mean, std, input_size, resize, data (the data set's name)
        "test_top1": results["test_top1"], "test_top5": results["test_top5"],
        "recipe": config["recipe"], "config": {k: v for k, v in config.items() if k != "out"},
        "iterations": results["iterations"], "epochs": results["epochs"], "precision": results["precision"],
        "hardware": results["device"], "processes": results["processes"], "wall_time_s": results["wall_time_s"],
        "command": command or train_command(config), "run": run_dir.name,
        "torch": torch.__version__, "resnets": resnets.__version__, **size(meta),
    }


def verify(path: Path, data: str, stated: float, test_subset: Optional[int]) -> float:
    """Test accuracy of the weights file ``path`` on ``data``; refused 0.1 point below ``stated``."""
    model, meta = load_model(path)
    test = load_data(data, test_only=True, channels=len(meta["mean"])).subset(None, test_subset)
    accuracy = 1 - evaluate(model, eval_batches(test, meta))["top1_error"]
    if accuracy < stated - 0.001:
        raise UserError(f"stored as {meta['storage']}, {meta['model']} measures {100 * accuracy:.2f}% on {data}, "
                        f"below the run's {100 * stated:.2f}%: not shipped (try --fp32)")
    return accuracy


def ship(run_dir: Path, out: Path, name: Optional[str], fp32: bool, command: Optional[str],
         verify_data: Optional[str]) -> Path:
    """Write ``run_dir``'s weights to ``out/NAME-MODEL.safetensors``; nothing is replaced unless
    the new file is whole (and, with ``verify_data``, measured)."""
    state, meta = describe(run_dir, command)
    if not fp32:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        if not all(v.isfinite().all() for v in state.values() if v.is_floating_point()):
            raise UserError(f"{run_dir}: a weight overflows half precision; ship it with --fp32")
    meta["storage"] = "float32" if fp32 else "float16"
    meta["weights"] = name or meta["data"].split("-")[0]
    load_state_dict(ResNet(**meta["model_config"]), state, run_dir)  # they load, strictly
    path = out / f"{meta['weights']}-{meta['model']}.safetensors"

    def write(tmp: str) -> None:  # measured before it replaces anything: a refusal leaves the shipped file as it was
        save_file(state, tmp, metadata={META_KEY: json.dumps(meta)})
        if verify_data:
            accuracy = verify(Path(tmp), verify_data, meta["test_top1"], meta["config"]["test_subset"])
            print(f"  verified: {100 * accuracy:.2f}% on {verify_data}")

    atomic_write(path, write)
    return path


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="finished run directories")
    p.add_argument("--out", type=Path, default=PACKAGE_FOLDER, help=f"where to write (default: {PACKAGE_FOLDER})")
    p.add_argument("--name", help="the weights' name (default: the data set's, e.g. cifar10)")
    p.add_argument("--fp32", action="store_true", help="store float32 (default: float16)")
    p.add_argument("--command", help="the command that made the runs (default: the equivalent `resnets train`)")
    p.add_argument("--verify", metavar="DATA", help="evaluate the stored weights on DATA's test split first")
    args = p.parse_args(argv)
    try:
        for run_dir in args.runs:
            path = ship(run_dir, args.out, args.name, args.fp32, args.command, args.verify)
            meta = read_description(path)
            print(f"{path}: {meta['model']} on {meta['data']}, test accuracy {100 * meta['test_top1']:.2f}% "
                  f"({meta['recipe']} recipe, {meta['wall_time_s'] / 60:.1f} min on {meta['hardware']})")
    except UserError as e:
        print(f"ship_weights: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
