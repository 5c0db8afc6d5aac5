"""The paper's named networks and a registry to build them by name.

ImageNet models follow Table 1 (shortcut option B, as torchvision); CIFAR-10 models follow
Section 4.2: 6n+2 layers, three stages of n basic blocks at 16, 32 and 64 channels, option A.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable

from .resnet import ResNet
from .weights import check_architecture, load_state_dict

# name -> (architecture, defaults). One builder, ResNet, stands behind every name.
_IMAGENET = dict(planes=(64, 128, 256, 512), stem="imagenet", num_classes=1000, shortcut="B")
_CIFAR = dict(block="basic", planes=(16, 32, 64), stem="cifar", num_classes=10, shortcut="A")

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # Table 1.
    "resnet18": dict(_IMAGENET, block="basic", layers=(2, 2, 2, 2)),
    "resnet34": dict(_IMAGENET, block="basic", layers=(3, 4, 6, 3)),
    "resnet50": dict(_IMAGENET, block="bottleneck", layers=(3, 4, 6, 3)),
    "resnet101": dict(_IMAGENET, block="bottleneck", layers=(3, 4, 23, 3)),
    "resnet152": dict(_IMAGENET, block="bottleneck", layers=(3, 8, 36, 3)),
    # Fig. 3 (middle) and Table 2: the same networks without shortcuts.
    "plain18": dict(_IMAGENET, block="basic", layers=(2, 2, 2, 2), shortcut=None),
    "plain34": dict(_IMAGENET, block="basic", layers=(3, 4, 6, 3), shortcut=None),
}
# Section 4.2 and Table 6: n = 3, 5, 7, 9, 18 and 200.
for _n in (3, 5, 7, 9, 18, 200):
    ARCHITECTURES[f"resnet{6 * _n + 2}"] = dict(_CIFAR, layers=(_n,) * 3)
for _n in (3, 5, 7, 9, 18):
    ARCHITECTURES[f"plain{6 * _n + 2}"] = dict(_CIFAR, layers=(_n,) * 3, shortcut=None)

#: What create_model lets a caller change (the architecture's shape stays fixed by its name).
OVERRIDES = ("num_classes", "in_channels", "shortcut", "zero_init_residual", "stride_in_1x1", "stem", "bottleneck_widths")


def list_models(pattern: str = "") -> list[str]:
    """Names of the registered models containing ``pattern``, or matching it where it has wildcards
    (``"resnet*"``, ``"*56"``: :mod:`fnmatch`'s, as timm's ``list_models``), ImageNet ones first."""
    if any(c in pattern for c in "*?["):
        return fnmatch.filter(ARCHITECTURES, pattern)
    return [name for name in ARCHITECTURES if pattern in name]


def model_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of :class:`ResNet` for a named model, with ``overrides`` applied."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(ARCHITECTURES)}")
    bad = sorted(set(overrides) - set(OVERRIDES))
    if bad:
        raise ValueError(f"unknown override {', '.join(bad)} for {name}; valid: {', '.join(OVERRIDES)}")
    if ARCHITECTURES[name]["shortcut"] is None and overrides.get("shortcut") is not None:  # it would be named wrongly
        residual = name.replace("plain", "resnet")
        raise ValueError(f"{name} is the plain network: with shortcut {overrides['shortcut']} it is {residual} "
                         f"(ask for {residual}, shortcut={overrides['shortcut']!r})")
    return {**ARCHITECTURES[name], **overrides}


def input_side(name: str) -> int:
    """The side of the square images a named model is made for: 224 for the ImageNet nets (the
    crops of Section 3.4), 32 for the CIFAR ones (Section 4.2)."""
    return 224 if model_config(name)["stem"] == "imagenet" else 32


def create_model(name: str, weights: Any = None, progress: bool = True, pretrained: bool = False,
                 **overrides: Any) -> ResNet:
    """Build a named model, e.g. ``create_model("resnet56", num_classes=100)``. ``overrides``: any of
    ``num_classes``, ``in_channels``, ``shortcut``, ``zero_init_residual``, ``stride_in_1x1``,
    ``stem`` and ``bottleneck_widths``, as :class:`ResNet` documents them.

    ``weights`` loads trained weights, strictly, as torchvision's builders do (their number of
    classes, input channels and shortcut option become the defaults): torchvision's
    ``"IMAGENET1K_V1"``, ``"IMAGENET1K_V2"``, ``"DEFAULT"`` or enum for resnet18-152, our ``"cifar10"``
    (or ``"DEFAULT"``) for the CIFAR nets that have them, or a ``.safetensors`` / ``.pth`` path; see
    :func:`resnets.list_weights`. ``progress``: show torch.hub's download bar.

    ``pretrained=True`` is the older spelling that timm and torchvision before 0.13 use (and code
    written for ``torch.hub.load(..., pretrained=True)``): the weights torchvision's legacy
    interface gives it, ``"IMAGENET1K_V1"`` for resnet18-152, and ``"cifar10"`` for our CIFAR nets.
    """
    if not isinstance(pretrained, bool):  # pretrained="IMAGENET1K_V2" would load V1
        raise TypeError(f"pretrained is True or False, not {pretrained!r}: name weights with weights=")
    if pretrained:
        if weights is not None:
            raise ValueError(f"give weights={weights!r} or pretrained=True, not both")
        weights = "IMAGENET1K_V1" if ARCHITECTURES.get(name, {}).get("stem") == "imagenet" else "cifar10"
    if weights is None:
        return ResNet(**model_config(name, **overrides))
    from .pretrained import get_weights  # weights name models of this registry: imported on use

    trained = get_weights(name, weights)
    # As torchvision's builders: what the weights fix (num_classes, ...) is the default, and an
    # override that contradicts them is refused.
    config = model_config(name, **{**trained.overrides, **overrides})
    trained.check(config)
    state = trained.state_dict(progress)  # before the model: a download that fails costs no init
    check_architecture(config, {k: v.shape for k, v in state.items()}, trained)  # and one that does not fit
    return load_state_dict(ResNet(**config), state, trained)


def _constructor(name: str) -> Callable[..., ResNet]:
    def build(*, weights: Any = None, progress: bool = True, pretrained: bool = False, **overrides: Any) -> ResNet:
        return create_model(name, weights=weights, progress=progress, pretrained=pretrained, **overrides)

    arch = ARCHITECTURES[name]
    kind = "plain network" if arch["shortcut"] is None else f"shortcut option {arch['shortcut']}"
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}: {arch['block']} blocks {arch['layers']}, {kind}; weights and overrides as create_model."
    return build


# resnets.resnet50(num_classes=10) and friends, one per registered name.
MODELS: dict[str, Callable[..., ResNet]] = {name: _constructor(name) for name in ARCHITECTURES}
