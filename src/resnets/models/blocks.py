"""The residual building blocks of the paper (Section 3.2-3.3, Fig. 2, Fig. 5).

Key and module names follow torchvision's ``models/resnet.py`` (``conv1``, ``bn1``, ...,
``downsample``) so that state_dicts move freely between the two.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

#: The paper's shortcut options (Section 3.3 and Table 3), plus ``None`` for a plain network.
#: "A": identity, zero-padding for increasing dimensions (parameter-free);
#: "B": identity, projection only where the shape changes;
#: "C": projection on every block.
Shortcut = Optional[Literal["A", "B", "C"]]
SHORTCUTS = ("A", "B", "C", None)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1; no bias, since batch norm follows (Section 3.4)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution; no bias, since batch norm follows."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A (Section 3.3, Section 4.2): identity with stride-``stride`` subsampling and the
    extra channels filled with zeros. It adds no parameters."""

    def __init__(self, extra_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels = extra_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}, stride={self.stride}"


def make_shortcut(shortcut: Shortcut, in_channels: int, out_channels: int, stride: int) -> Optional[nn.Module]:
    """The module added to a block's output: ``None`` means the identity itself (or, for a plain
    network, no shortcut at all; the block tells which by its ``shortcut`` attribute)."""
    if shortcut not in SHORTCUTS:
        raise ValueError(f"unknown shortcut {shortcut!r}; valid: 'A', 'B', 'C' or None")
    shape_changes = stride != 1 or in_channels != out_channels
    if shortcut == "C" or (shortcut == "B" and shape_changes):
        # Projection shortcut, Eq. (2): W_s x, a 1x1 convolution followed by batch norm.
        return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    if shortcut == "A" and shape_changes:
        if out_channels < in_channels:
            raise ValueError("option A can only add channels, not remove them")
        return ZeroPadShortcut(out_channels - in_channels, stride)
    return None


class ResidualBlock(nn.Module):
    """What every block shares: y = ReLU(F(x) + shortcut(x)), Eq. (1)/(2) with the ReLU after
    the addition (Section 3.2). Subclasses build ``residual`` (F) and set ``shortcut`` and
    ``downsample``."""

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x)
        if self.shortcut is not None:  # a plain network (``shortcut=None``) has F(x) alone
            # Eq. (1): the identity x, or Eq. (2): W_s x (option A's zero padding, or a projection).
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions (Fig. 2 and Fig. 5 left): y = ReLU(F(x) + x), batch norm after each
    convolution, ReLU after the addition (Section 3.2). Used by ResNet-18/34 and the CIFAR nets."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        shortcut: Shortcut = "B",
        width: Optional[int] = None,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        # ``width`` and ``stride_in_1x1`` only concern bottlenecks; a basic block is ``planes`` wide.
        del width, stride_in_1x1
        self.shortcut = shortcut
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = make_shortcut(shortcut, in_channels, planes, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): the residual branch, up to its last batch norm (the response of Fig. 7)."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(ResidualBlock):
    """1x1 (reduce), 3x3, 1x1 (restore) convolutions (Fig. 5 right), used by ResNet-50/101/152.

    The stride sits on the 3x3 as in torchvision (sometimes called ResNet v1.5);
    ``stride_in_1x1=True`` puts it on the first 1x1, as in the paper's original models.
    ``width`` is the bottleneck's inner channel count (default ``planes``); the output has
    ``planes * expansion`` channels.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        shortcut: Shortcut = "B",
        width: Optional[int] = None,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        width = width or planes
        out_channels = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.shortcut = shortcut
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride_3x3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): the residual branch, up to its last batch norm."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))
