"""Saving and loading weights as safetensors: no pickle, so a weights file cannot run code."""

from __future__ import annotations

import os
from typing import Optional

from safetensors.torch import load_file, save_file
from torch import nn

from ..files import atomic_write


def save_weights(model: nn.Module, path: str | os.PathLike, metadata: Optional[dict[str, str]] = None) -> None:
    """Write ``model.state_dict()`` to a safetensors file (atomically)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Load a safetensors file (ours, or a torchvision state_dict saved as one) into ``model``."""
    model.load_state_dict(load_file(os.fspath(path)), strict=strict)
    return model
