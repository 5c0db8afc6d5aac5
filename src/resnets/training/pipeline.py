"""The data of a run as its loop consumes it: array data sets held on the device and augmented a
whole batch at a time (Section 4.2's crop and flip), large image folders streamed through
DataLoader workers (Section 3.4's scale augmentation), and the input statistics subtracted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..data import DeviceLoader, FolderData, channel_stats, folder_loaders, load_data, pixel_mean
from ..errors import UserError
from .distributed import Context
from .recipes import TrainConfig


@dataclass
class Pipeline:
    """What the loop consumes: batches and the facts a checkpoint must remember."""

    train: Any
    test: Any
    val: Optional[Any]
    classes: list[str]
    meta: dict[str, Any]  # preprocessing: mean, std, input size


def build_pipeline(config: TrainConfig, ctx: Context) -> Pipeline:
    """Load the data and wrap it in loaders: whole-batch augmentation on the device for array
    data sets, DataLoader workers for large image folders."""
    batch, processes = config.batch_size, ctx.world_size
    if batch % processes:  # each process takes an equal share: else the run would train with a smaller batch
        below = batch - batch % processes
        raise UserError(f"--batch-size {batch} does not split evenly over {processes} processes: use a multiple of "
                        f"{processes}, such as {f'{below} or ' if below else ''}{below + processes}")
    per_rank = batch // processes
    data = load_data(config.data, skip_bad_images=config.skip_bad_images, log_dir=config.out if ctx.is_main else None)
    if isinstance(data, FolderData):
        given = [f"--{k.replace('_', '-')}" for k in ("validation", "train_subset", "test_subset") if getattr(config, k)]
        if given:  # a streamed folder is read whole, as its own train/ and val/ folders split it
            raise UserError(f"{' and '.join(given)} apply to data sets held in memory; {config.data} is an image "
                            "folder streamed from disk: make a smaller folder instead")
        # Crops of randomly rescaled images have no fixed pixel grid, so the "per-pixel mean" of
        # Section 3.4 becomes the per-channel ImageNet mean and std (as fb.resnet.torch does);
        # --normalize applies to array data sets only.
        loaders = folder_loaders(data, per_rank, config.workers, ten_crop=config.ten_crop, augment=config.augment,
                                 rank=ctx.rank, world_size=ctx.world_size, seed=config.seed)
        meta = dict(loaders.meta)
        return Pipeline(loaders.train, loaders.test, None, data.classes, meta)
    full = data
    if config.validation:  # Section 4.2's 45k/5k split: the held-out images become `data`'s test split
        data = data.holdout(config.validation, seed=config.seed)
    data = data.subset(config.train_subset, None if config.validation else config.test_subset, seed=config.seed)
    if config.normalize == "pixel":  # Section 4.2: "the per-pixel mean subtracted"
        mean, std = pixel_mean(data.train_images), torch.ones(data.train_images.shape[1], 1, 1)
    else:
        mean, std = channel_stats(data.train_images)
    common = dict(mean=mean, std=std, seed=config.seed, rank=ctx.rank, world_size=ctx.world_size,
                  device=ctx.device, channels_last=config.channels_last)
    train = DeviceLoader(data.train_images, data.train_labels, per_rank, train=True,
                         crop_padding=data.crop_padding if config.augment else 0,
                         flip=data.flip and config.augment, **common)
    # Evaluation with large batches: no gradients to keep.
    test = DeviceLoader(data.test_images, data.test_labels, max(per_rank, 500), train=False, **common)
    val_loader = None
    if config.validation:  # `test` holds the held-out images: they validate, and the real test set tests
        real = full.subset(None, config.test_subset, seed=config.seed)
        val_loader, test = test, DeviceLoader(real.test_images, real.test_labels, max(per_rank, 500), train=False, **common)
    meta = dict(mean=mean.tolist(), std=std.tolist(), input_size=list(data.train_images.shape[2:]), resize=None,
                data=data.name)
    return Pipeline(train, test, val_loader, data.classes, meta)
