"""Weights files: safetensors (ours, with a JSON description in their metadata, or plain tensors)
and torchvision-style ``.pth`` state_dicts. Neither runs code when read: safetensors holds no
pickle, and a ``.pth`` file is read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError, one_line
from ..files import atomic_write

#: The safetensors metadata key under which a file describes itself (model, classes, normalization...).
META_KEY = "resnets"
SAFETENSORS = (".safetensors",)
PICKLED = (".pth", ".pt", ".bin")  # torch.save's state_dicts, as torchvision and torch.hub ship them


def save_weights(model: nn.Module, path: str | os.PathLike, metadata: Optional[dict[str, str]] = None) -> None:
    """Write ``model.state_dict()`` to a safetensors file (atomically)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def read_weights(path: str | os.PathLike, kind: str = "weights") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a weights file and its description (``{}`` if it has none, as a ``.pth`` file).

    Raises :class:`UserError` (one line, naming the file as ``kind``) for a missing or unreadable
    file, and for a pickle that holds anything but tensors: ``weights_only=True`` builds no other
    objects, so it runs no code.
    """
    path = _existing(path, kind)
    if path.name.endswith(PICKLED):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError for code, RuntimeError for a torn file
            raise UserError(f"cannot read {kind} {path} with torch.load(weights_only=True): {one_line(e)}") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise UserError(f"{path} is not a state_dict: expected a dict of tensors, got {type(state).__name__}")
        return state, {}
    description = read_description(path, kind)
    try:
        return load_file(os.fspath(path)), description
    except Exception as e:
        raise UserError(f"cannot read {kind} {path}: {one_line(e)}") from None


def read_description(path: str | os.PathLike, kind: str = "weights") -> dict[str, Any]:
    """The JSON description in a safetensors file's metadata, without reading its tensors
    (``{}`` for a file without one, and for a ``.pth`` file)."""
    path = _existing(path, kind)
    if path.name.endswith(PICKLED):
        return {}
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            description = (f.metadata() or {}).get(META_KEY)
        return json.loads(description) if description else {}
    except Exception as e:
        raise UserError(f"cannot read {kind} {path}: {one_line(e)}") from None


def _existing(path: str | os.PathLike, kind: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no {kind} file at {path}")
    if not path.name.endswith(SAFETENSORS + PICKLED):
        raise UserError(f"{path}: unknown {kind} format; expected {', '.join(SAFETENSORS + PICKLED)}")
    return path


def load_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: object) -> nn.Module:
    """``model.load_state_dict(state)``, strictly; a mismatch is one line saying what differs.
    Tensors stored in half precision are copied into the model's own dtype."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (the model: {tuple(v.shape)})" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    problems = [f"{len(keys)} {what} (e.g. {keys[0]})" for keys, what in
                ((missing, "missing keys"), (unexpected, "unexpected keys"), (shapes, "shapes differ")) if keys]
    if problems:
        raise UserError(f"{source} does not fit this {type(model).__name__}: {'; '.join(problems)}")
    model.load_state_dict(state)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Load a weights file (safetensors, ours or torchvision's state_dict saved as one, or a
    ``.pth`` state_dict) into ``model``."""
    state, _ = read_weights(path)
    if strict:
        return load_state_dict(model, state, path)
    model.load_state_dict(state, strict=False)
    return model
