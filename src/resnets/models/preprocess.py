"""The preprocessing that trained weights expect, as torchvision's ``ImageClassification`` preset
(``weights.transforms()``): resize, center crop, scale to [0, 1], subtract the mean and divide by
the std. Sections 3.4 and 4.2 subtract a per-pixel mean; a per-channel mean and std broadcast the same."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from PIL import Image
from torch import nn


class Preprocess(nn.Module):
    """An image (a PIL image, or a tensor (C, H, W) or batch of them: uint8, or float in [0, 1]) to
    normalized float32 network input, as torchvision's ``ImageClassification`` takes them.

    Args:
        input_size: (height, width) the network was trained on.
        mean, std: nested lists or tensors of shape (C, 1, 1) or (C, H, W), in [0, 1] units (buffers:
            ``.to(device)`` moves them with the module).
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
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32), persistent=False)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Preprocess:
        """From a checkpoint's or weights' description: ``input_size``, ``mean``, ``std``, ``resize``."""
        return cls(meta["input_size"], meta["mean"], meta["std"], meta.get("resize"))

    def forward(self, image: Union[torch.Tensor, Image.Image]) -> torch.Tensor:
        from torchvision.transforms.v2.functional import pil_to_tensor

        x = self.resize(image if isinstance(image, torch.Tensor) else pil_to_tensor(image))
        x = x.float() if x.is_floating_point() else x.float() / 255  # as ToDtype(float32, scale=True)
        if x.shape[-3] != self.mean.shape[0]:
            raise ValueError(f"an image of {x.shape[-3]} channels for weights of {self.mean.shape[0]} "
                             "(convert it first: image.convert('RGB') or 'L')")
        return (x - self.mean) / self.std
