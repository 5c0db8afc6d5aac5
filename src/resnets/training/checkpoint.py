"""Checkpoints: weights as safetensors (with what inference needs in their metadata) and the
training state as a file that ``torch.load(weights_only=True)`` reads, both written atomically;
and the random number generators' state that the training state holds."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UserError, one_line
from ..files import atomic_write
from ..models import ResNet, create_model, get_weights, save_weights
from ..models.weights import META_KEY, check_architecture, load_state_dict, read_weights

WEIGHTS = "model.safetensors"  # the final weights, in the run directory
LAST_WEIGHTS = "checkpoints/last.safetensors"
LAST_STATE = "checkpoints/last_state.pt"


def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Weights plus ``meta`` (model name and config, class names, normalization) as JSON metadata."""
    save_weights(model, path, metadata={META_KEY: json.dumps(meta)})


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


#: What the trainer's state holds (``Trainer.state_dict``): a file without one of them is not one.
STATE_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "step", "elapsed", "warming_up", "rng")


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no training state at {path}: nothing to resume") from None
    except Exception as e:  # a truncated or foreign file: say which, in one line (torch's reason can be a bare number)
        raise UserError(f"cannot read training state {path} (truncated, or not a state `resnets train` wrote): "
                        f"{type(e).__name__}: {one_line(e)}") from None
    missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing:  # a state_dict, say, put in its place
        raise UserError(f"{path} is not a training state `resnets train` wrote: it has no {', '.join(missing)}")
    return state


def checkpoint_file(path: str | os.PathLike) -> Path:
    """A run directory's final weights (or its last epoch's, while it runs), or the file itself."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / WEIGHTS, path / LAST_WEIGHTS):
            if candidate.is_file():
                return candidate
        raise UserError(f"{path} holds no checkpoint ({WEIGHTS} or {LAST_WEIGHTS})")
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    if path.name == Path(LAST_STATE).name:  # the trainer's state, for --resume
        raise UserError(f"{path} is the state `resnets train --resume` continues from; give its run directory "
                        f"({path.parent.parent}) or a weights file ({WEIGHTS}, {LAST_WEIGHTS})")
    return path


def load_model(path: str | os.PathLike) -> tuple[ResNet, dict[str, Any]]:
    """Rebuild a model from a checkpoint alone; returns it (in eval mode) with its metadata.

    The network its metadata describes is checked against the weights before it is built
    (:func:`~resnets.models.weights.check_architecture`), and the metadata against the network
    after: a checkpoint that contradicts itself is refused in one line, whatever it asks for."""
    file = checkpoint_file(path)
    state, meta = read_weights(file, kind="checkpoint")
    config = meta.get("model_config")
    if not isinstance(config, dict):
        raise UserError(f"{file} is not a resnets checkpoint (no model description in its metadata)")
    check_architecture(config, {k: v.shape for k, v in state.items()}, file)
    try:
        model = ResNet(**config)
    except (TypeError, ValueError) as e:
        raise UserError(f"{file}: its model config cannot be built: {one_line(e)}") from None
    model = load_state_dict(model, state, file)
    check_description(model, meta, file)
    return model.eval(), meta


def load_pretrained(model: str, weights: Any) -> tuple[ResNet, dict[str, Any]]:
    """A named model with trained weights (``"cifar10"``, torchvision's names, a file; see
    :func:`resnets.get_weights`), in eval mode, with their metadata: a checkpoint without a run."""
    trained = get_weights(model, weights)
    net = create_model(model, weights=trained)  # first: a file that cannot be read or loaded says so
    if "classes" not in trained.meta:
        raise UserError(f"{trained} hold weights alone, without the classes and normalization that eval and predict "
                        "need: use named weights or a resnets checkpoint (a run directory or its model.safetensors)")
    check_description(net, trained.meta, trained)
    return net.eval(), trained.meta


def check_description(model: ResNet, meta: dict[str, Any], source: object) -> None:
    """Refuse metadata that evaluation and prediction cannot use with ``model``: a class name per
    output, a mean and a std per input channel, an input size of two positive integers."""
    channels = model.conv1.in_channels
    try:
        classes, size = meta["classes"], meta["input_size"]
        stats = {k: torch.as_tensor(meta[k], dtype=torch.float32) for k in ("mean", "std")}
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"{source}: its metadata lacks or garbles {one_line(e)} "
                        "(a checkpoint's describes classes, mean, std and input_size)") from None
    problems = [f"a {k} of shape {tuple(t.shape)} for {channels} input channels"
                for k, t in stats.items() if t.dim() != 3 or len(t) != channels]
    if model.num_classes and (not isinstance(classes, list) or len(classes) != model.num_classes):
        problems.append(f"{len(classes) if isinstance(classes, list) else repr(classes)} class names for {model.num_classes} outputs")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) and n > 0 for n in size)):
        problems.append(f"an input size of {size!r}")
    if problems:
        raise UserError(f"{source}: its metadata does not fit its network: {'; '.join(problems)}")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators: a run's weights, shuffling and augmentation."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every random number generator's state, as tensors (so ``weights_only`` loading reads them)."""
    _, keys, pos, _, _ = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(keys.astype(np.int64)),
             "numpy_pos": torch.tensor(pos), "python": torch.tensor(random.getstate()[1], dtype=torch.int64)}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (a CUDA state only where there is a GPU)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), int(state["numpy_pos"]), 0, 0.0))
    random.setstate((3, tuple(state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
