"""``resnets bench train``: images/s of our trainer and its pipeline (uint8 images held on the
device, crop and flip a whole batch at a time) against the pipeline most torchvision users write
(ImageFolder, per-image transforms, DataLoader workers, fp32 NCHW), training the same model with
the same settings in the same run; and each run's test accuracy, so that speed is not bought with
accuracy."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data import ArrayData, channel_stats, load_data
from ..data.archives import extract, is_archive
from ..data.cache import cache_root
from ..data.folders import find_splits
from ..errors import UserError, check_at_least
from ..models import create_model
from ..training.distributed import Context, resolve_device
from ..training.evaluate import evaluate
from ..training.recipes import make_config
from ..training.trainer import train
from .measure import describe, format_columns, machine, number, synchronize

# The optimization both runs share: SGD with momentum, a cosine schedule stepped every iteration,
# no label smoothing (plain cross-entropy, as a torchvision user writes it).
MOMENTUM, WEIGHT_DECAY, SCHEDULE = 0.9, 5e-4, "cosine"


def bench_train(data: str, model: str = "resnet20", iterations: int = 400, batch_size: int = 128, workers: int = 4,
                lr: float = 0.1, device: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Train ``model`` for ``iterations`` steps twice on the image folder ``data`` (train/ and
    test/ or val/ of same-size images, or a tarball of one): with :func:`resnets.training.train`
    (the ``fast`` recipe's machine settings: precision, memory format, compilation) and with the
    torchvision pipeline, then evaluate each on the test split. images/s counts the training steps
    (data loading included, evaluation not). Returns the JSON object :mod:`resnets.bench` describes.
    """
    check_at_least(1, iterations=iterations, batch_size=batch_size)
    check_at_least(0, workers=workers)
    if not lr > 0:
        raise UserError(f"--lr must be above 0, got {lr}")
    dev = resolve_device(device)
    train_dir, test_dir = image_folder(data)
    arrays = load_data(data)
    if not isinstance(arrays, ArrayData):
        raise UserError(f"{data}: bench train compares the CIFAR pipelines, which need images of one size that fit in "
                        "memory; this folder is streamed from disk")
    mean, std = channel_stats(arrays.train_images)  # what our "channel" normalization subtracts and divides by
    size = tuple(arrays.train_images.shape[2:])
    notes = []
    if arrays.train_labels.numel() < batch_size:
        raise UserError(f"--batch-size {batch_size} is larger than the {arrays.train_labels.numel()} training images")

    with tempfile.TemporaryDirectory(prefix="resnets-bench-") as tmp, contextlib.redirect_stdout(sys.stderr):
        config = make_config("fast", model=model, data=data, iterations=iterations, batch_size=batch_size, lr=lr,
                             momentum=MOMENTUM, nesterov=False, weight_decay=WEIGHT_DECAY, schedule=SCHEDULE,
                             label_smoothing=0.0, normalize="channel", workers=workers, device=str(dev), seed=seed,
                             out=str(Path(tmp) / "run"))
        run = train(config, progress=False)
    ours = {
        "mode": "resnets",
        "pipeline": "uint8 images held on the device, crop and flip a whole batch at a time (DeviceLoader); "
                    "resnets.training.train",
        "precision": run.results["precision"],
        "memory_format": "channels_last" if config.channels_last else "NCHW",
        "train_seconds": run.results["wall_time_s"],
        "iterations": run.results["iterations"],
        "test_accuracy": run.results["test_top1"],
    }
    if run.results["compiled"]:
        notes.append("resnets: compiled (torch.compile); the compilation is part of the timed steps")

    theirs = torchvision_run(model, train_dir, test_dir, size, arrays.crop_padding, arrays.flip, mean, std,
                             len(arrays.classes), iterations, batch_size, workers, lr, dev, seed)
    rows = [theirs, ours]
    for row in rows:
        row["images_per_s"] = row["iterations"] * batch_size / row["train_seconds"]
    for row in rows:
        row["ratio"] = row["images_per_s"] / theirs["images_per_s"]
    return {
        "benchmark": "train", "machine": machine(dev),
        "settings": {"model": model, "data": data, "iterations": iterations, "batch_size": batch_size, "lr": lr,
                     "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY, "schedule": SCHEDULE, "workers": workers,
                     "seed": seed, "input_size": list(size), "train_images": arrays.train_labels.numel(),
                     "test_images": arrays.test_labels.numel(), "baseline": "torchvision"},
        "rows": rows, "notes": notes,
    }


def image_folder(data: str) -> tuple[Path, Path]:
    """The train and test (or val) folders of ``data``: an image folder, or a tarball of one, which
    is extracted into the cache where ``resnets train`` extracts it too."""
    path = Path(data).expanduser()
    if not path.exists():  # 'digits' too: torchvision's pipeline reads image files
        raise UserError(f"{data!r}: bench train needs an image folder (or a tarball of one): no such file or directory")
    root = extract(path, cache_root()) if is_archive(path) else path
    splits = find_splits(root)
    if splits is None:
        raise UserError(f"{data}: bench train needs an image folder with train/ and test/ (or val/), one folder per class, "
                        "or a tarball of one")
    return splits


def torchvision_run(model: str, train_dir: Path, test_dir: Path, size: tuple[int, int], padding: int, flip: bool,
                    mean: torch.Tensor, std: torch.Tensor, num_classes: int, iterations: int, batch_size: int, workers: int,
                    lr: float, device: torch.device, seed: int) -> dict[str, Any]:
    """The same model trained as a torchvision user trains it: ImageFolder, per-image transforms in
    DataLoader workers, fp32 NCHW, SGD with the same settings; then top-1 accuracy on ``test_dir``."""
    from torchvision import datasets, transforms  # loaded on first use (resnets/__init__.py)

    channels = len(mean)  # a gray folder, which ImageFolder reads as RGB, trains the 1-channel net ours does
    gray = [transforms.Grayscale()] if channels == 1 else []
    normalize = [transforms.ToTensor(), transforms.Normalize(mean.flatten().tolist(), std.flatten().tolist())]
    augment = [transforms.RandomCrop(size, padding=padding)] + ([transforms.RandomHorizontalFlip()] if flip else [])
    train_set = datasets.ImageFolder(str(train_dir), transforms.Compose(gray + augment + normalize))
    test_set = datasets.ImageFolder(str(test_dir), transforms.Compose(gray + normalize))
    pin = device.type == "cuda"
    loader = DataLoader(train_set, batch_size, shuffle=True, num_workers=workers, drop_last=True, pin_memory=pin)
    torch.manual_seed(seed)
    net = create_model(model, num_classes=num_classes, in_channels=channels).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations)
    net.train()
    step = 0
    synchronize(device)
    started = time.perf_counter()
    while step < iterations:
        for x, y in loader:  # a new epoch starts its workers again, as in the usual loop
            x, y = x.to(device, non_blocking=pin), y.to(device, non_blocking=pin)
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step == iterations:
                break
    synchronize(device)
    seconds = time.perf_counter() - started
    test = DataLoader(test_set, batch_size=max(batch_size, 500), num_workers=workers, pin_memory=pin)
    accuracy = 1 - evaluate(net, test, Context(device=device))["top1_error"]
    tfs = ", ".join(type(t).__name__ for t in augment + normalize)
    loading = f"DataLoader with {workers} worker{'' if workers == 1 else 's'}"
    return {"mode": "torchvision", "pipeline": f"ImageFolder, {tfs}, {loading}",
            "precision": "fp32", "memory_format": "NCHW", "train_seconds": seconds, "iterations": step,
            "test_accuracy": accuracy}


def format_train(result: dict[str, Any]) -> str:
    """The result of :func:`bench_train` as the text printed by ``resnets bench train``."""
    s = result["settings"]
    header = ("mode", "precision", "memory", "images/s", "ratio", "train s", "test accuracy")
    rows = [(r["mode"], r["precision"], r["memory_format"], number(r["images_per_s"]), f"{r['ratio']:.2f}x",
             number(r["train_seconds"]), f"{100 * r['test_accuracy']:.2f}%") for r in result["rows"]]
    lines = [
        describe(result["machine"]),
        f"{s['model']} on {s['data']} ({s['train_images']:,} training, {s['test_images']:,} test images of "
        f"{s['input_size'][0]}x{s['input_size'][1]}): {s['iterations']} iterations of batch {s['batch_size']} each, "
        f"SGD lr {s['lr']:g} ({s['schedule']}), momentum {s['momentum']:g}, weight decay {s['weight_decay']:g}, seed "
        f"{s['seed']}; images/s over the training steps (data loading included, evaluation not)",
        "",
        *format_columns(header, rows, left=3),
        "",
    ]
    lines += [f"{r['mode']}: {r['pipeline']}" for r in result["rows"]]
    lines += [f"note: {note}" for note in result["notes"]]
    return "\n".join(lines)
