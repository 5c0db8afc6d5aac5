"""The residual network of the paper (Section 3.3, Table 1, Section 4.2), one class for all.

A network is a stem, a sequence of stages (``layer1``, ``layer2``, ...) of residual blocks, global
average pooling and a fully connected classifier. Every stage after the first halves the feature
map in its first block while its width grows (Section 3.3, "plain network", rule (ii)).
"""

from __future__ import annotations

import numbers
from typing import Literal, Optional, Sequence, Type, Union

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck, Shortcut, conv3x3

Block = Union[Type[BasicBlock], Type[Bottleneck]]
BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
STEMS = ("imagenet", "cifar")


class ResNet(nn.Module):
    """A residual (or, with ``shortcut=None``, plain) network.

    Args:
        block: ``"basic"`` / :class:`BasicBlock` or ``"bottleneck"`` / :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50 (Table 1).
        planes: base width of each stage; a stage outputs ``planes * block.expansion`` channels
            (Table 1: 64, 128, 256, 512; Section 4.2: 16, 32, 64). The stem is ``planes[0]`` wide.
        bottleneck_widths: inner width of each stage's bottlenecks (default: ``planes``).
        num_classes: outputs of the classifier; ``0`` gives a headless network that returns the
            pooled features.
        in_channels: channels of the input image.
        stem: ``"imagenet"``: 7x7/2 convolution and 3x3/2 max-pool (Table 1, conv1);
            ``"cifar"``: a 3x3/1 convolution (Section 4.2).
        shortcut: ``"A"``, ``"B"``, ``"C"`` (Section 3.3) or ``None`` for the plain network.
        zero_init_residual: start each residual branch's last batch norm at zero, so each block
            begins as the identity (Goyal et al., 2017; torchvision's option of the same name).
        stride_in_1x1: put a bottleneck's stride on its first 1x1 convolution, as in the paper.
    """

    def __init__(
        self,
        block: Union[str, Block],
        layers: Sequence[int],
        planes: Sequence[int] = (64, 128, 256, 512),
        bottleneck_widths: Optional[Sequence[int]] = None,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem: Literal["imagenet", "cifar"] = "imagenet",
        shortcut: Shortcut = "B",
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        self.block = _checked(block, layers, planes, bottleneck_widths, num_classes, in_channels, stem, shortcut,
                              zero_init_residual, stride_in_1x1)
        self.shortcut = shortcut
        self.stride_in_1x1 = stride_in_1x1
        self.num_classes = num_classes
        self.inplanes = planes[0]

        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_channels, self.inplanes)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()

        widths = bottleneck_widths or [None] * len(layers)
        self.stage_names = []
        for i, (n, p, w) in enumerate(zip(layers, planes, widths)):
            name = f"layer{i + 1}"
            setattr(self, name, self._make_layer(p, n, stride=1 if i == 0 else 2, width=w))
            self.stage_names.append(name)
        self.num_features = self.inplanes

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.reset_classifier(num_classes)

        # Weights as in Section 3.4: He et al. 2015 ("Delving deep into rectifiers") for the
        # convolutions, batch norm starting as the identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, planes: int, blocks: int, stride: int, width: Optional[int]) -> nn.Sequential:
        """One stage: the first block changes width and (after stage 1) halves the resolution;
        whether its shortcut needs a projection or zero-padding is the shortcut option's call."""
        layers = []
        for i in range(blocks):
            layers.append(
                self.block(
                    self.inplanes,
                    planes,
                    stride=stride if i == 0 else 1,
                    shortcut=self.shortcut,
                    width=width,
                    stride_in_1x1=self.stride_in_1x1,
                )
            )
            self.inplanes = planes * self.block.expansion
        return nn.Sequential(*layers)

    @property
    def stages(self) -> list[nn.Sequential]:
        """The stages in order (``layer1``, ``layer2``, ...)."""
        return [getattr(self, name) for name in self.stage_names]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The first convolution, its batch norm and ReLU, and (ImageNet) the max pool."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output, for backbone users (FPN, detection): stride 4..32 on ImageNet."""
        outputs = []
        x = self.forward_stem(x)
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, before pooling."""
        x = self.forward_stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling and the classifier; ``pre_logits=True`` stops after pooling."""
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) of images (N, in_channels, H, W), normalized as the weights expect
        (``weights.transforms()``); pooled features (N, num_features) for a headless network."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The classifier (``fc``), as timm's models name it."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A new, freshly initialized classifier for ``num_classes`` (0: headless), for fine-tuning."""
        _check_counts(num_classes=[num_classes])
        self.num_classes = num_classes
        weight = self.conv1.weight  # where and as what the network is now (a GPU, half precision)
        self.fc = nn.Linear(self.num_features, num_classes, device=weight.device, dtype=weight.dtype) if num_classes \
            else nn.Identity()


def _checked(block: Union[str, Block], layers: Sequence[int], planes: Sequence[int], bottleneck_widths: Optional[Sequence[int]],
             num_classes: int, in_channels: int, stem: str, shortcut: Shortcut, zero_init_residual: bool,
             stride_in_1x1: bool) -> Block:
    """:class:`ResNet`'s arguments refused in one line where no network could have them, or where
    they would be silently ignored; returns the block class that ``block`` names."""
    if isinstance(block, str):
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; valid: {', '.join(BLOCKS)}")
        block = BLOCKS[block]
    if len(layers) != len(planes) or not layers:
        raise ValueError(f"layers {tuple(layers)} and planes {tuple(planes)} must be non-empty and of one length")
    if bottleneck_widths is not None and len(bottleneck_widths) != len(layers):
        raise ValueError(f"bottleneck_widths {tuple(bottleneck_widths)} needs one width per stage")
    if bottleneck_widths is not None and not issubclass(block, Bottleneck):
        raise ValueError("bottleneck_widths are the widths of bottleneck blocks; these blocks have none")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; valid: {', '.join(STEMS)}")
    _check_counts(num_classes=[num_classes], in_channels=[in_channels], layers=layers, planes=planes,
                  bottleneck_widths=bottleneck_widths or [])
    for flag, value in (("zero_init_residual", zero_init_residual), ("stride_in_1x1", stride_in_1x1)):
        if not isinstance(value, bool):  # "false" is true
            raise TypeError(f"{flag} is True or False, not {value!r}")
    if stride_in_1x1 and not issubclass(block, Bottleneck):
        raise ValueError("stride_in_1x1 moves a bottleneck block's stride; these blocks have none")
    if zero_init_residual and shortcut is None:  # the block's output would be 0 whatever its input
        raise ValueError("zero_init_residual starts each residual branch at zero, which leaves a plain network "
                         "(no shortcut) with no signal: it applies to residual networks only")
    return block


def _check_counts(**counts: Sequence[int]) -> None:
    """Refuse a count that is not a whole number, or below its least: no classes (0) is a headless
    network; every other count is at least 1."""
    for name, values in counts.items():
        least = 0 if name == "num_classes" else 1
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:  # numpy's too
                raise ValueError(f"{name} takes whole numbers of at least {least}, not {value!r}")
