"""Checkpoints: weights as safetensors (with what inference needs in their metadata) and the
training state as a file that ``torch.load(weights_only=True)`` reads; both written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from ..errors import UserError
from ..files import atomic_write
from ..models import ResNet, save_weights

WEIGHTS = "model.safetensors"  # the final weights, in the run directory
LAST_WEIGHTS = "checkpoints/last.safetensors"
LAST_STATE = "checkpoints/last_state.pt"


def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Weights plus ``meta`` (model name and config, class names, normalization) as JSON metadata."""
    save_weights(model, path, metadata={"resnets": json.dumps(meta)})


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
    try:
        with safe_open(str(file), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["resnets"])
        state = load_file(str(file))
    except (KeyError, json.JSONDecodeError):
        raise UserError(f"{file} is not a resnets checkpoint (no model description in its metadata)") from None
    except Exception as e:
        raise UserError(f"cannot read checkpoint {file}: {e}") from None
    model = ResNet(**meta["model_config"])
    model.load_state_dict(state)
    return model.eval(), meta
