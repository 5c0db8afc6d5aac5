"""The two shapes a data set takes: small ones decoded to uint8 arrays, large image folders streamed
from disk; and the input statistics that Sections 3.4 and 4.2 subtract."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch

from ..errors import UserError


@dataclass
class ArrayData:
    """A small data set decoded to uint8 arrays (N, C, H, W) and int64 labels, held in memory.

    ``crop_padding`` and ``flip`` are the augmentation that suits the images: Section 4.2's "4 pixels
    are padded on each side" and horizontal flips for 32x32 photographs, less for 8x8 digits.
    """

    name: str
    classes: list[str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    crop_padding: int = 4
    flip: bool = True
    skipped: tuple[str, ...] = ()  # unreadable images left out (image folders read with skip_bad_images)

    def holdout(self, n: int, seed: int = 0) -> ArrayData:
        """A copy whose train set loses n random images (stratified by class), which become its test
        set: the 45k/5k train/val split of Section 4.2."""
        if not 0 < n < len(self.train_labels):
            raise UserError(f"cannot hold out {n} of {len(self.train_labels)} training images")
        held = stratified_sample(self.train_labels, n, seed)
        kept = torch.ones(len(self.train_labels), dtype=torch.bool)
        kept[held] = False
        return replace(
            self,
            train_images=self.train_images[kept], train_labels=self.train_labels[kept],
            test_images=self.train_images[held], test_labels=self.train_labels[held],
        )

    def subset(self, n_train: Optional[int], n_test: Optional[int] = None, seed: int = 0) -> ArrayData:
        """A seeded, class-stratified subset of n_train training and n_test test images (None keeps
        all), for short experiments on a CPU."""
        train = _indices(self.train_labels, n_train, seed, "training")
        test = _indices(self.test_labels, n_test, seed, "test")
        return replace(
            self,
            train_images=self.train_images[train], train_labels=self.train_labels[train],
            test_images=self.test_images[test], test_labels=self.test_labels[test],
        )


@dataclass
class FolderData:
    """A large image folder (ImageNet-style: one folder per class), streamed from disk."""

    name: str
    classes: list[str]
    train_dir: Optional[Path]  # None: only the test split was asked for (evaluation)
    test_dir: Path
    skipped: tuple[str, ...] = ()  # unreadable images left out (read with skip_bad_images)


def stratified_sample(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n sorted indices drawn at random so that each class keeps its share of the labels."""
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    shuffled = labels[perm]
    counts = torch.bincount(shuffled)
    order = torch.argsort(shuffled, stable=True)
    rank = torch.empty_like(shuffled)  # each image's place among its class, in shuffled order
    rank[order] = torch.arange(len(labels)) - (counts.cumsum(0) - counts)[shuffled[order]]
    # Taking images in order of their quantile within their class interleaves the classes evenly.
    quantile = (rank + 0.5) / counts[shuffled]
    return perm[torch.argsort(quantile, stable=True)[:n]].sort().values


def _indices(labels: torch.Tensor, n: Optional[int], seed: int, split: str) -> torch.Tensor:
    if n is None:
        return torch.arange(len(labels))
    if not 0 < n <= len(labels):
        raise UserError(f"cannot take {n} {split} images from {len(labels)}")
    return stratified_sample(labels, n, seed)


def pixel_mean(images: torch.Tensor) -> torch.Tensor:
    """The per-pixel mean (C, H, W) of uint8 images, float32 in [0, 1] (Sections 3.4 and 4.2)."""
    return (images.sum(0, dtype=torch.float64) / (255.0 * len(images))).float()


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (C, 1, 1) of uint8 images, float32 in [0, 1] units."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean, std = [], []
    for c in range(images.shape[1]):
        # A histogram of the 256 levels gives exact moments without a float copy of the data set.
        freq = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        freq /= freq.sum()
        m = (freq * values).sum()
        mean.append(m)
        # A constant channel (all one level) has std 0: one level's step keeps its division finite.
        std.append(((freq * values.square()).sum() - m.square()).clamp_min(0).sqrt().clamp_min(1 / 255))
    return torch.stack(mean).float().view(-1, 1, 1), torch.stack(std).float().view(-1, 1, 1)
