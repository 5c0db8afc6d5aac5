"""The preprocessing that trained weights expect, as torchvision's ``ImageClassification`` preset
(``weights.transforms()``): resize, center crop, scale to [0, 1], subtract the mean and divide by
the std. Sections 3.4 and 4.2 subtract a per-pixel mean; a per-channel mean and std broadcast the same."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn


class Preprocess(nn.Module):
    """uint8 images (C, H, W) or batches of them to normalized float32 network input.

    Args:
        input_size: (height, width) the network was trained on.
        mean, std: nested lists or tensors of shape (C, 1, 1) or (C, H, W), in [0, 1] units.
        resize: shorter side to resize to before a center crop of ``input_size`` (ImageNet: 256,
            or torchvision's 232); ``None`` resizes the whole image to ``input_size`` (CIFAR).
    """

    def __init__(self, input_size: Sequence[int], mean: Any, std: Any, resize: Optional[int] = None) -> None:
        from torchvision.transforms import v2  # loaded on first use (resnets/__init__.py)

        super().__init__()
        h, w = input_size
        if resize is not None:
            self.resize = v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop((h, w))])
        else:
            self.resize = v2.Resize((h, w), antialias=True)
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.as_tensor(std, dtype=torch.float32)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Preprocess:
        """From a checkpoint's or weights' description: ``input_size``, ``mean``, ``std``, ``resize``."""
        return cls(meta["input_size"], meta["mean"], meta["std"], meta.get("resize"))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (self.resize(image).float() / 255 - self.mean) / self.std
