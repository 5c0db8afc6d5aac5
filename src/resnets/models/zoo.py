"""The paper's named networks and a registry to build them by name.

ImageNet models follow Table 1 (shortcut option B, as torchvision); CIFAR-10 models follow
Section 4.2: 6n+2 layers, three stages of n basic blocks at 16, 32 and 64 channels, option A.
"""

from __future__ import annotations

from typing import Any, Callable

from .resnet import ResNet

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
    """Names of the registered models containing ``pattern``, ImageNet ones first."""
    return [name for name in ARCHITECTURES if pattern in name]


def model_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of :class:`ResNet` for a named model, with ``overrides`` applied."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(ARCHITECTURES)}")
    bad = sorted(set(overrides) - set(OVERRIDES))
    if bad:
        raise ValueError(f"unknown override {', '.join(bad)} for {name}; valid: {', '.join(OVERRIDES)}")
    return {**ARCHITECTURES[name], **overrides}


def create_model(name: str, **overrides: Any) -> ResNet:
    """Build a named model, e.g. ``create_model("resnet56", num_classes=100)``."""
    return ResNet(**model_config(name, **overrides))


def _constructor(name: str) -> Callable[..., ResNet]:
    def build(**overrides: Any) -> ResNet:
        return create_model(name, **overrides)

    arch = ARCHITECTURES[name]
    kind = "plain network" if arch["shortcut"] is None else f"shortcut option {arch['shortcut']}"
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}: {arch['block']} blocks {arch['layers']}, {kind}; overrides as create_model."
    return build


# resnets.resnet50(num_classes=10) and friends, one per registered name.
MODELS: dict[str, Callable[..., ResNet]] = {name: _constructor(name) for name in ARCHITECTURES}
