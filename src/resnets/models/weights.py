"""Weights files: safetensors (ours, with a JSON description in their metadata, or plain tensors)
and torchvision-style ``.pth`` state_dicts. Neither runs code when read: safetensors holds no
pickle, and a ``.pth`` file is read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import inspect
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError, one_line
from ..files import atomic_write
from .blocks import SHORTCUTS
from .resnet import BLOCKS, ResNet

#: The safetensors metadata key under which a file describes itself (model, classes, normalization...).
META_KEY = "resnets"
SAFETENSORS = (".safetensors",)
PICKLED = (".pth", ".pt", ".bin")  # torch.save's state_dicts, as torchvision and torch.hub ship them


def save_weights(model: nn.Module, path: str | os.PathLike, metadata: Optional[dict[str, str]] = None) -> None:
    """Write ``model.state_dict()`` to a safetensors file (atomically)."""
    if not str(path).endswith(SAFETENSORS):  # read back by its suffix: a .pth would be unpickled
        raise UserError(f"{path}: save_weights writes safetensors; name the file {', '.join(SAFETENSORS)}")
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
            with warnings.catch_warnings():  # about pickle protocols the safe unpickler may not read: it says if so
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError for code, RuntimeError for a torn file, others for text
            raise UserError(f"cannot read {kind} {path} with torch.load(weights_only=True): {_why_unloadable(e)}") from None
        if not isinstance(state, dict):
            raise UserError(f"{path} is not a state_dict: expected a dict of tensors, got {type(state).__name__}")
        others = [f"{k!r} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, torch.Tensor)]
        if others:  # a training checkpoint, say, with the state_dict under one of its keys
            raise UserError(f"{path} is not a state_dict: {', '.join(others[:3])}{', ...' if len(others) > 3 else ''} "
                            "are not tensors (save the model's state_dict alone)")
        return state, {}
    description = read_description(path, kind)
    try:
        return load_file(os.fspath(path)), description
    except Exception as e:
        raise UserError(f"cannot read {kind} {path}: {one_line(e)}") from None


def _why_unloadable(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words. torch's own first line
    advises ``weights_only=False``, which is wrong for a file of unknown origin: its cause is a
    paragraph further on (the exact wording differs between torch versions)."""
    paragraphs = [p.strip() for p in str(error).split("\n\n") if p.strip()]
    if not paragraphs or not paragraphs[0].startswith("Weights only load failed"):
        return f"not a PyTorch file ({one_line(error)})"
    causes = [p for p in paragraphs[1:] if not p.startswith(("Check the documentation", "Please file an issue"))]
    return f"it holds more than tensors ({one_line(Exception(causes[0])) if causes else 'objects torch does not allow'})"


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


def architecture(shapes: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """The shape of the :class:`ResNet` whose state_dict has these tensor shapes (by key), read
    from the names and shapes alone: its ``block``, ``layers``, ``planes``, ``bottleneck_widths``,
    ``num_classes``, ``in_channels`` and ``stem``, and ``projections``: the (stage, block) pairs
    whose shortcut is a projection. Keys ``layerS.B.*`` give the blocks of each stage
    (``layer3.8.conv2.weight``: stage 3 has at least 9); a ``conv3`` makes them bottlenecks; each
    stage's first block gives its widths; the stem's ``conv1.weight`` (out, in, k, k) the input
    channels and, by k, the stem (7: ImageNet, 3: CIFAR); ``fc.weight`` the classes (none: headless).
    Raises :class:`UserError` for tensors that are not a ResNet's.
    """
    blocks: dict[int, set[int]] = {}  # stage: the indices of its blocks
    for key in shapes:
        m = re.match(r"layer(\d+)\.(\d+)\.", key)
        if m:
            blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    stages = range(1, len(blocks) + 1)
    if "conv1.weight" not in shapes or not blocks or sorted(blocks) != list(stages):
        raise UserError("the tensors are not a ResNet's (no conv1.weight, or no stages layer1, layer2, ...)")
    missing = next((f"layer{s}.{max(b)}" for s, b in blocks.items() if len(b) != max(b) + 1), None)
    if missing:  # so that the blocks counted are blocks held, not a name's claim
        raise UserError(f"the tensors are not a ResNet's: {missing} without all the blocks before it")
    bottleneck = "layer1.0.conv3.weight" in shapes
    last, expansion = ("conv3", 4) if bottleneck else ("conv2", 1)
    try:
        planes = [shapes[f"layer{s}.0.{last}.weight"][0] // expansion for s in stages]
        widths = [shapes[f"layer{s}.0.conv1.weight"][0] for s in stages]
    except KeyError as e:
        raise UserError(f"the tensors are not a ResNet's: no {e.args[0]}") from None
    stem = shapes["conv1.weight"]
    projections = (re.match(r"layer(\d+)\.(\d+)\.downsample\.0\.weight$", k) for k in shapes)
    return dict(
        block="bottleneck" if bottleneck else "basic", layers=[len(blocks[s]) for s in stages], planes=planes,
        bottleneck_widths=widths if bottleneck else None,
        num_classes=shapes["fc.weight"][0] if "fc.weight" in shapes else 0,
        in_channels=stem[1], stem={7: "imagenet", 3: "cifar"}.get(stem[-1], f"{stem[-1]}x{stem[-1]}"),
        projections={(int(m[1]), int(m[2])) for m in projections if m},
    )


def check_architecture(config: Mapping[str, Any], shapes: Mapping[str, Sequence[int]], source: object) -> None:
    """Refuse in one line a :class:`ResNet` config (its keyword arguments, as a checkpoint's metadata
    holds them) that the tensors of ``source`` (their shapes, by key) do not describe: an unknown
    key, or a shape that differs from their :func:`architecture`. Called before the network is
    built, so that a config far larger than the file costs nothing. What the shapes cannot show
    (option A against a plain net, ``stride_in_1x1``, ``zero_init_residual``) is left to the strict load.
    """
    parameters = inspect.signature(ResNet).parameters
    unknown = sorted(set(config) - set(parameters))
    if unknown:
        raise UserError(f"{source}: unknown key {', '.join(map(repr, unknown))} in the model config; "
                        f"valid: {', '.join(parameters)}")
    asked = {name: p.default for name, p in parameters.items() if p.default is not p.empty} | dict(config)
    asked = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in asked.items()}
    asked["block"] = next((name for name, cls in BLOCKS.items() if asked.get("block") in (name, cls)), asked.get("block"))
    try:
        found = architecture(shapes)
    except UserError as e:
        raise UserError(f"{source}: {e}") from None
    projections = found.pop("projections")
    if found["block"] == "bottleneck":
        asked["bottleneck_widths"] = asked["bottleneck_widths"] or asked["planes"]
    else:
        found.pop("bottleneck_widths")
    differ = [k for k in found if asked.get(k) != found[k]]
    shortcut = asked["shortcut"]
    if shortcut not in SHORTCUTS:
        differ.append("shortcut")
    elif shortcut == "C" and len(projections) != sum(found["layers"]):
        differ.append("shortcut")  # C projects every block's shortcut
    elif projections and (shortcut in ("A", None) or any(b > 0 for _, b in projections)):
        differ.append("shortcut")  # A and plain nets have no projections, B only on a stage's first block
    if differ:
        found["shortcut"] = "C" if len(projections) == sum(found["layers"]) else "B" if projections else "A or None"
        raise UserError(f"{source}: the weights do not fit the network asked for: "
                        + "; ".join(f"{k}={asked.get(k)!r} asked, {found[k]!r} in the weights" for k in differ))


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Load a weights file (safetensors, ours or torchvision's state_dict saved as one, or a
    ``.pth`` state_dict) into ``model``."""
    state, _ = read_weights(path)
    if strict:
        return load_state_dict(model, state, path)
    model.load_state_dict(state, strict=False)
    return model
