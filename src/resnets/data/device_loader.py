"""Batches of an in-memory data set that already lives on the device, augmented a whole batch at a
time with tensor ops: the CIFAR-10 augmentation of Section 4.2 (4-pixel padding, a random 32x32
crop, a random horizontal flip) without a Python loop over images."""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError


class DeviceLoader:
    """Normalized batches ``(x, y)`` of uint8 ``images`` (N, C, H, W) and int64 ``labels``.

    ``x`` is ``(images / 255 - mean) / std`` in float32 on ``device`` (default: the images' device),
    with ``mean`` and ``std`` of shape (C, 1, 1) or, for the per-pixel mean, (C, H, W).
    Training batches are shuffled, and each image is shifted by a random crop of its zero-padded
    (black) self and flipped at random, as torchvision's ``RandomCrop(32, padding=4)`` and
    ``RandomHorizontalFlip`` would. (The paper does not say what colour the padding is;
    fb.resnet.torch normalizes first, so its zeros are the mean colour.) Evaluation batches come
    in order, the last one partial.
    With ``world_size`` > 1 each rank reads its own shard as :class:`DistributedSampler` would:
    ``perm[rank::world_size]`` of one seeded permutation, padded in training so all ranks take the
    same number of steps. ``batch_size`` is per rank. The order and augmentation of an epoch are
    a pure function of ``(seed, epoch)``: call :meth:`set_epoch` before each epoch, as with
    :class:`DistributedSampler`, and a resumed run sees the same batches.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, mean: torch.Tensor,
                 std: torch.Tensor, train: bool, crop_padding: int = 4, flip: bool = True, seed: int = 0,
                 drop_last: Optional[bool] = None, rank: int = 0, world_size: int = 1, device=None,
                 channels_last: bool = False):
        if len(images) != len(labels) or images.dtype != torch.uint8 or images.ndim != 4:
            raise UserError(f"expected uint8 images (N, C, H, W) and N labels, got {tuple(images.shape)} "
                            f"{images.dtype} and {len(labels)} labels")
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is not in 0..{world_size - 1}")
        self.device = torch.device(device) if device is not None else images.device
        self.images, self.labels = images.to(self.device), labels.to(self.device)
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=self.device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.crop_padding, self.flip = crop_padding, flip
        self.drop_last = train if drop_last is None else drop_last
        self.rank, self.world_size, self.channels_last = rank, world_size, channels_last
        self.epoch = 0
        n = len(labels)
        self.per_rank = -(-n // world_size) if train else len(range(rank, n, world_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.per_rank // self.batch_size
        return -(-self.per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, shifts, flips = (t.to(self.device) for t in self._draw())
        for b in range(len(self)):
            batch = slice(b * self.batch_size, (b + 1) * self.batch_size)
            x = self.images[order[batch]]
            if self.train and (self.crop_padding or self.flip):
                x = shift_and_flip(x, self.crop_padding, shifts[batch], flips[batch])
            x = (x.float() / 255 - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[order[batch]]

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's image order, crop offsets (dy, dx) and flip mask, drawn on the CPU."""
        n, total = len(self.labels), self.per_rank * self.world_size
        if not self.train:
            order = torch.arange(self.rank, n, self.world_size)
            return order, torch.zeros(len(order), 2, dtype=torch.long), torch.zeros(len(order), dtype=torch.bool)
        seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0])
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(n, generator=g).repeat(-(-total // n))[:total]
        shifts = torch.randint(0, 2 * self.crop_padding + 1, (total, 2), generator=g)
        flips = torch.rand(total, generator=g) < 0.5 if self.flip else torch.zeros(total, dtype=torch.bool)
        shard = slice(self.rank, None, self.world_size)
        return perm[shard], shifts[shard], flips[shard]


def shift_and_flip(x: torch.Tensor, padding: int, shifts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Crop each image of ``x`` (B, C, H, W) at offset ``shifts[i] = (dy, dx)`` from itself padded
    with ``padding`` zeros on each side, mirrored left-right where ``flips[i]``: one gather for all."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    rows = shifts[:, :1] + torch.arange(h, device=x.device)  # (B, H)
    cols = shifts[:, 1:] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
