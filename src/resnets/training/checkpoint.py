"""Checkpoints: weights as safetensors (with what inference needs in their metadata) and the
training state as a file that ``torch.load(weights_only=True)`` reads; both written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..files import atomic_write
from ..models import ResNet, create_model, get_weights, save_weights
from ..models.weights import META_KEY, load_state_dict, read_weights

WEIGHTS = "model.safetensors"  # the final weights, in the run directory
LAST_WEIGHTS = "checkpoints/last.safetensors"
LAST_STATE = "checkpoints/last_state.pt"


def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Weights plus ``meta`` (model name and config, class names, normalization) as JSON metadata."""
    save_weights(model, path, metadata={META_KEY: json.dumps(meta)})


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no training state at {path}: nothing to resume") from None
    except Exception as e:  # a truncated or foreign file: say which, in one line
        raise UserError(f"cannot read training state {path}: {e}") from None


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
    return path


def load_model(path: str | os.PathLike) -> tuple[ResNet, dict[str, Any]]:
    """Rebuild a model from a checkpoint alone; returns it (in eval mode) with its metadata."""
    file = checkpoint_file(path)
    state, meta = read_weights(file, kind="checkpoint")
    if "model_config" not in meta:
        raise UserError(f"{file} is not a resnets checkpoint (no model description in its metadata)")
    model = load_state_dict(ResNet(**meta["model_config"]), state, file)
    return model.eval(), meta


def load_pretrained(model: str, weights: Any) -> tuple[ResNet, dict[str, Any]]:
    """A named model with trained weights (``"cifar10"``, torchvision's names, a file; see
    :func:`resnets.get_weights`), in eval mode, with their metadata: a checkpoint without a run."""
    trained = get_weights(model, weights)
    if "classes" not in trained.meta:
        raise UserError(f"{trained} do not name their classes or normalization: use named weights or a resnets checkpoint")
    return create_model(model, weights=trained).eval(), trained.meta
