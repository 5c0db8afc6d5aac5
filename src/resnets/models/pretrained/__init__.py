"""Trained weights by name, as torchvision's ``weights=`` API has them.

- ImageNet (resnet18 to resnet152): torchvision's own weights, by name (``"IMAGENET1K_V1"``,
  ``"IMAGENET1K_V2"``, ``"DEFAULT"``) or as its enum (``torchvision.models.ResNet50_Weights.IMAGENET1K_V2``),
  fetched by torchvision's ``WeightsEnum.get_state_dict``: from torch.hub's cache
  (``$TORCH_HOME/hub/checkpoints/``), downloaded into it the first time. Our networks keep
  torchvision's state_dict keys, so these load strictly.
- CIFAR-10 (resnet20 to resnet110, and the plain nets of Fig. 6): weights we trained, shipped in this folder as
  ``cifar10-MODEL.safetensors``. Each file's metadata says how it was made (recipe, data, command,
  hardware, wall time) and what it measured; ``scripts/ship_weights.py`` writes one from a run directory.
- Any ``.safetensors`` or ``.pth`` file, by path.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

import torch

from ...errors import UserError, one_line
from ..preprocess import Preprocess
from ..resnet import ResNet
from ..weights import PICKLED, SAFETENSORS, read_description, read_weights
from ..zoo import ARCHITECTURES, OVERRIDES, model_config

if TYPE_CHECKING:  # torchvision itself is imported where it is used (resnets/__init__.py says why)
    from torchvision.models._api import WeightsEnum

FOLDER = Path(__file__).parent  # the shipped files: NAME-MODEL.safetensors
SHIPPED_DEFAULT = "cifar10"  # what "DEFAULT" means for a model torchvision has no weights for
IMAGENET_DATA = "ImageNet-1K"  # the data of torchvision's weights, as their metrics name it
TORCHVISION_MODELS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
# What torchvision's Weights.meta holds beside the categories (torchvision/models/_api.py; its
# docs build their tables from them): parameters, the smallest input, accuracy in percent by data
# set, multiply-adds in G ("GFLOPS"), the file's size in MiB and a line of description.
TORCHVISION_META = ("num_params", "min_size", "_metrics", "_ops", "_file_size", "_docs")
DATA_NAMES = {"cifar10": "CIFAR-10", "cifar10-jpeg": "CIFAR-10"}  # _metrics' key for our data sets' names


@dataclass
class Weights:
    """Trained weights of one named model, with what torchvision's ``Weights`` tell: ``meta``
    (classes, normalization, accuracy, how they were made) and ``transforms()``.

    ``meta`` holds what evaluation and prediction need, as a checkpoint's metadata does: ``model``,
    ``model_config``, ``classes``, ``mean``, ``std``, ``input_size``, ``resize``, ``data``; shipped
    weights add ``test_top1``, ``recipe``, ``command``, ``hardware``, ``wall_time_s`` and more.
    Where known, it also holds torchvision's keys under their names (``categories``, ``num_params``,
    ``min_size``, ``_metrics``, ``_ops``, ``_file_size``, ``_docs``), for code written for its Weights.
    """

    model: str
    name: str
    meta: dict[str, Any]
    source: Union[Path, WeightsEnum]  # a file, or torchvision's enum member

    def __post_init__(self) -> None:
        if "classes" in self.meta:  # under torchvision's name too: code written for its Weights reads meta["categories"]
            self.meta.setdefault("categories", self.meta["classes"])

    def __str__(self) -> str:
        return self.name if Path(self.name) == self.source else f"{self.model}.{self.name}"  # a path, or MODEL.NAME

    def state_dict(self, progress: bool = True) -> dict[str, torch.Tensor]:
        if not isinstance(self.source, Path):
            return _torchvision_state_dict(self.source, progress)
        return read_weights(self.source)[0]

    def transforms(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The preprocessing of an image (uint8 tensor) for these weights, as they were trained."""
        if not isinstance(self.source, Path):
            return self.source.transforms()
        if "mean" not in self.meta:
            raise UserError(f"{self} do not say how their images were normalized (no resnets metadata)")
        return Preprocess.from_meta(self.meta)

    @property
    def overrides(self) -> dict[str, Any]:
        """The model options these weights were trained with (num_classes, in_channels, shortcut...)."""
        return {k: v for k, v in self.meta.get("model_config", {}).items() if k in OVERRIDES}

    def check(self, config: dict[str, Any]) -> None:
        """Refuse a model ``config`` whose shape differs from the one these weights were trained as."""
        trained = self.meta.get("model_config")
        if trained is None:  # a plain file: the strict load will say what does not fit
            return
        trained, asked = _resolved(trained), _resolved(config)
        differ = [k for k in trained if k != "zero_init_residual" and trained[k] != asked.get(k)]
        if "num_classes" in differ:
            n = trained["num_classes"]
            raise UserError(f"{self} classify {n} classes, not num_classes={asked['num_classes']}: build the model "
                            f"with them (num_classes={n}) and call reset_classifier({asked['num_classes']}) to fine-tune")
        if differ:
            raise UserError(f"{self} were trained with {', '.join(f'{k}={trained[k]!r}' for k in differ)}; "
                            f"the model asks for {', '.join(f'{k}={asked.get(k)!r}' for k in differ)}")


WeightsSpec = Union[str, os.PathLike, "WeightsEnum", Weights]


def shipped() -> dict[tuple[str, str], Path]:
    """The weights files in this package, as {(model, name): path}, in the registry's order."""
    found = {}
    for path in FOLDER.glob("*-*.safetensors"):
        name, model = path.name[: -len(".safetensors")].split("-", 1)
        if model in ARCHITECTURES and not name.startswith("."):  # not a file being written
            found[model, name] = path
    order = list(ARCHITECTURES)
    return dict(sorted(found.items(), key=lambda item: (order.index(item[0][0]), item[0][1])))


def list_weights(pattern: str = "") -> list[str]:
    """Every available ``MODEL.WEIGHTS`` containing ``pattern``: torchvision's ImageNet weights, then
    ours. ``resnets.create_model(MODEL, weights=WEIGHTS)`` loads one."""
    from torchvision.models import get_model_weights

    names = [f"{model}.{w.name}" for model in TORCHVISION_MODELS for w in get_model_weights(model)]
    names += [f"{model}.{name}" for model, name in shipped()]
    return [n for n in names if pattern in n]


def get_weights(model: str, weights: WeightsSpec) -> Weights:
    """The weights of a named model: a name (``"cifar10"``, ``"IMAGENET1K_V2"``, ``"DEFAULT"``),
    torchvision's enum, a ``.safetensors`` or ``.pth`` path, or a :class:`Weights`."""
    if model not in ARCHITECTURES:
        raise UserError(f"unknown model {model!r}; valid: {', '.join(ARCHITECTURES)}")
    if isinstance(weights, Weights):
        if weights.model != model:
            raise UserError(f"{weights} are weights for {weights.model}, not {model}")
        return weights
    if _is_torchvision_enum(weights):
        return _torchvision(model, weights)
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be a name, a path, a torchvision WeightsEnum or Weights, not {type(weights).__name__}")
    if isinstance(weights, os.PathLike) or weights.endswith(SAFETENSORS + PICKLED) or "/" in weights or os.sep in weights \
            or (os.path.isfile(weights) and Path(weights).suffix):  # a file of another suffix: refused as such
        return _from_file(model, Path(weights), str(weights))
    if model in TORCHVISION_MODELS:
        return _torchvision(model, weights)
    name = weights.removeprefix(f"{model}.")  # as list_weights() spells them: resnet20.cifar10
    name = SHIPPED_DEFAULT if name == "DEFAULT" else name
    path = shipped().get((model, name))
    if path is None:
        own = [n for m, n in shipped() if m == model]
        raise UserError(f"no weights {weights!r} for {model} in this copy of resnets; "
                        + (f"its weights: {', '.join([*own, 'DEFAULT'])}" if own else
                           f"it has none; available: {', '.join(list_weights()) or 'none'}")
                        + " (or give the path of a .safetensors or .pth file)")
    return _from_file(model, path, name)


def _is_torchvision_enum(weights: Any) -> bool:
    """Whether ``weights`` is a member of one of torchvision's weights enums: never where
    torchvision is not loaded yet (a name or a path), so that asking does not load it."""
    if "torchvision" not in sys.modules:
        return False
    from torchvision.models._api import WeightsEnum

    return isinstance(weights, WeightsEnum)


def _from_file(model: str, path: Path, name: str) -> Weights:
    meta = read_description(path)
    if meta.get("model", model) != model:
        raise UserError(f"{path} holds weights for {meta['model']}, not {model}")
    return Weights(model, name, {"model": model, **meta, **_torchvision_keys(meta, path)}, path)


def _torchvision_keys(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """torchvision's meta keys for one of our files, from what its description says (``num_params``
    and ``_ops`` are written by scripts/ship_weights.py; a file without them gets neither)."""
    keys: dict[str, Any] = {"_file_size": round(path.stat().st_size / 2**20, 3)}
    if "model_config" in meta:
        keys["min_size"] = (1, 1)  # as torchvision's ResNets: global average pooling takes any size
    if "test_top1" in meta:
        accuracy = {"acc@1": round(100 * meta["test_top1"], 3)}
        if meta.get("test_top5") is not None:
            accuracy["acc@5"] = round(100 * meta["test_top5"], 3)
        keys["_metrics"] = {DATA_NAMES.get(meta.get("data"), meta.get("data")): accuracy}
    if {"recipe", "iterations", "hardware", "precision", "command"} <= set(meta):  # as ship_weights.py writes them
        keys["_docs"] = (f"Trained by resnets with the {meta['recipe']} recipe for {meta['iterations']:,} iterations "
                         f"on {meta['hardware']} ({meta['precision']}): {meta['command']}")
    return keys


def _torchvision(model: str, weights: Union[str, WeightsEnum]) -> Weights:
    """torchvision's weights for ``model``, described as our checkpoints are (classes, normalization
    and crop from the enum's ``transforms()``: resize to 256, or 232 for the V2 weights, crop 224)."""
    if model not in TORCHVISION_MODELS:
        raise UserError(f"{weights!r} are torchvision's ImageNet weights; torchvision has none for {model} "
                        f"(ours: {', '.join(list_weights(model + '.')) or 'none'})")
    from torchvision.models import get_model_weights

    enum = get_model_weights(model)
    try:
        member = enum.verify(weights)
    except (KeyError, TypeError):
        raise UserError(f"no weights {weights!r} for {model}; torchvision's: "
                        f"{', '.join(['DEFAULT', *(w.name for w in enum)])}") from None
    t = member.transforms()
    metrics = member.meta["_metrics"][IMAGENET_DATA]
    meta = dict(
        model=model, model_config=model_config(model), classes=member.meta["categories"],
        mean=torch.tensor(t.mean).view(-1, 1, 1).tolist(), std=torch.tensor(t.std).view(-1, 1, 1).tolist(),
        input_size=[t.crop_size[0]] * 2, resize=t.resize_size[0], data=IMAGENET_DATA,
        test_top1=metrics["acc@1"] / 100, test_top5=metrics["acc@5"] / 100, recipe=member.meta["recipe"],
        source=member.url, **{k: member.meta[k] for k in TORCHVISION_META if k in member.meta},
    )
    return Weights(model, member.name, meta, member)


def _torchvision_state_dict(member: WeightsEnum, progress: bool) -> dict[str, torch.Tensor]:
    """torchvision's own loading (torch.hub's cache, else a download into it), reading the file
    with ``weights_only=True`` so that a tampered cache runs no code."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(member.url)
    try:
        return member.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as e:  # no network, a bad hash, a torn or foreign file: one line
        raise UserError(f"cannot load torchvision's {member!r} (torch.hub's cache: {cached}; "
                        f"download: {member.url}): {one_line(e)}") from None


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    """A model config with ResNet's defaults filled in, as JSON values (tuples become lists)."""
    defaults = {k: p.default for k, p in inspect.signature(ResNet).parameters.items() if p.default is not p.empty}
    return json.loads(json.dumps({**defaults, **config}, default=str))
