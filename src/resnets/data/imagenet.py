"""The ImageNet input pipeline of Section 3.4, for any image folder too large to hold in memory."""

from __future__ import annotations

import functools
import os
from typing import Callable, NamedTuple, Optional, Sequence

import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from .arrays import FolderData
from .images import read_pil

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Section 3.4: "for best results, we adopt the fully-convolutional form ... and average the scores at
# multiple scales (images are resized such that the shorter side is in {224, 256, 384, 480, 640})".
PAPER_SCALES = (224, 256, 384, 480, 640)
# The principal components of ImageNet's RGB pixels (Krizhevsky et al., 2012), as fb.resnet.torch,
# the authors' reference reimplementation, publishes them.
EIGENVALUES = torch.tensor([0.2175, 0.0188, 0.0045])
EIGENVECTORS = torch.tensor([[-0.5675, 0.7192, 0.4009],
                             [-0.5808, -0.0045, -0.8140],
                             [-0.5836, -0.6948, 0.4203]])


class Lighting(torch.nn.Module):
    """The "standard color augmentation" of Section 3.4 (Krizhevsky et al., 2012): adds
    ``eigenvectors @ (alpha * eigenvalues)`` to every pixel, alpha ~ N(0, std) per image.
    torchvision has no such transform."""

    def __init__(self, std: float = 0.1):
        super().__init__()
        self.std = std

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * self.std
        return image + (EIGENVECTORS @ (alpha * EIGENVALUES)).view(3, 1, 1)


class MultiScale(torch.nn.Module):
    """One image at several scales, each whole (Section 3.4's fully-convolutional testing):
    ``sizes`` each resize and normalize it, and the image becomes a list of tensors, one per size.
    A ResNet takes any size: its global average pooling then fc equals the fc layer applied at every
    position and averaged, which is what the fully-convolutional form computes. torchvision's
    transforms return one image, hence this one."""

    def __init__(self, sizes: Sequence[Callable]):
        super().__init__()
        self.sizes = list(sizes)

    def forward(self, image) -> list[torch.Tensor]:
        return [size(image) for size in self.sizes]


class FolderLoaders(NamedTuple):
    train: Optional[DataLoader]  # None for data read for its test split only
    test: DataLoader
    meta: dict  # how to prepare a new image the same way: mean, std (C, 1, 1), input_size, resize, data


def folder_loaders(data: FolderData, batch_size: int, workers: int, train_size: int = 224, ten_crop: bool = False,
                   augment: bool = True, rank: int = 0, world_size: int = 1, seed: int = 0, mean=IMAGENET_MEAN,
                   std=IMAGENET_STD, test_resize: Optional[int] = None, scales: Sequence[int] = (),
                   test_transform: Optional[Callable] = None, channels: int = 3) -> FolderLoaders:
    """Training and evaluation loaders of ``data`` as Section 3.4 prescribes.

    Training: the shorter side resized to a random length in [256, 480], a random 224 crop, a
    random horizontal flip, the color augmentation, mean subtraction (``augment=False``: as
    evaluation). Evaluation: the shorter side resized to 256 and the center 224 crop or, with
    ``ten_crop``, the standard 10 crops (the four corners, the center and their mirror images),
    batched as (B, 10, C, H, W). Lengths scale with ``train_size``; ``test_resize`` replaces the
    evaluation's 256 (torchvision's V2 weights are tested at 232). With ``scales``, each test image
    comes whole at each of those lengths of its shorter side (:class:`MultiScale`), one image a
    batch, since their shapes differ. ``test_transform`` replaces the center crop (``eval`` gives
    a model's own :class:`~resnets.models.Preprocess`, as ``predict`` applies it), and images are
    read with ``channels`` (3: RGB, 1: gray). Each of ``world_size`` ranks
    reads its own shard; call ``train.sampler.set_epoch(epoch)`` before each epoch (data without a
    ``train_dir`` has no training loader). Images are
    read by Pillow (:func:`~resnets.data.images.read_pil`); those in ``data.skipped`` are left out.
    """
    from torchvision.datasets import ImageFolder  # loaded on first use (resnets/__init__.py)
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
    from torchvision.transforms import v2

    short, long = 256 * train_size // 224, 480 * train_size // 224
    test_short = test_resize or short
    normalize = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    center = v2.Compose([v2.Resize(test_short), v2.CenterCrop(train_size), *normalize])
    train = center
    if augment:
        train = v2.Compose([v2.RandomShortestSize(list(range(short, long + 1))), v2.RandomCrop(train_size),
                            v2.RandomHorizontalFlip(), *normalize[:2], Lighting(), normalize[2]])
    if test_transform is not None:
        test = test_transform
    elif ten_crop:
        test = v2.Compose([v2.Resize(test_short), *normalize, v2.TenCrop(train_size), torch.stack])
    else:
        test = center
    if scales:
        test = MultiScale([v2.Compose([v2.Resize(s), *normalize]) for s in scales])
    skipped = {os.path.normpath(p) for p in data.skipped}

    def readable(path: str) -> bool:
        return has_file_allowed_extension(path, IMG_EXTENSIONS) and os.path.normpath(path) not in skipped

    read = functools.partial(read_pil, channels=channels)
    test_set = ImageFolder(data.test_dir, transform=test, loader=read, is_valid_file=readable)
    common = dict(batch_size=batch_size, num_workers=workers, pin_memory=torch.cuda.is_available(),
                  persistent_workers=workers > 0)
    train_loader = None
    if data.train_dir is not None:
        train_set = ImageFolder(data.train_dir, transform=train, loader=read, is_valid_file=readable)
        sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        train_loader = DataLoader(train_set, sampler=sampler, drop_last=True, **common)
    meta = dict(mean=torch.tensor(mean).view(-1, 1, 1).tolist(), std=torch.tensor(std).view(-1, 1, 1).tolist(),
                input_size=[train_size, train_size], resize=test_short, data=data.name)
    return FolderLoaders(train_loader,
                         DataLoader(Subset(test_set, range(rank, len(test_set), world_size)),
                                    **{**common, "batch_size": 1 if scales else batch_size}), meta)
