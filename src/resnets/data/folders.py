"""Image folders in the ImageNet layout: ``train/`` and ``val/`` (or ``test/``), one folder per class.

A folder small enough to hold in memory, with images of one size (CIFAR-10 as JPEGs, say), is
decoded once to arrays and cached; any other stays on disk as :class:`FolderData`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional, Union

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.io import ImageReadMode, decode_image
from tqdm import tqdm

from ..errors import UserError
from .arrays import ArrayData, FolderData
from .cache import fingerprint, load_arrays, save_arrays

MAX_BYTES = 4 << 30  # decoded size above which a folder is streamed rather than held in memory
CHUNK = 1000  # images decoded per worker task


def find_splits(path: Path) -> Optional[tuple[Path, Path]]:
    """``path``'s train folder and its val folder (else its test folder), if it has both."""
    train = path / "train"
    test = next((path / s for s in ("val", "test") if (path / s).is_dir()), None)
    return (train, test) if train.is_dir() and test is not None else None


def load_folder(name: str, train_dir: Path, test_dir: Path, cache_dir: Path) -> Union[ArrayData, FolderData]:
    """The image folder's classes (its sorted subfolders) and images, decoded when they fit."""
    classes = _classes(train_dir)
    if _classes(test_dir) != classes:
        raise UserError(f"{test_dir} and {train_dir} hold different class folders")
    train = _images(train_dir, classes)
    test = _images(test_dir, classes)
    cached = cache_dir / f"{name}-{fingerprint(train_dir.parent, [p for p, _ in train + test])}.safetensors"
    if cached.is_file():
        return load_arrays(cached)
    first = _decode(train[0][0], ImageReadMode.UNCHANGED)
    if isinstance(first, str):
        raise UserError(first)
    if first.numel() * (len(train) + len(test)) > MAX_BYTES:
        return FolderData(name, classes, train_dir, test_dir)
    mode = ImageReadMode.GRAY if first.shape[0] == 1 else ImageReadMode.RGB
    arrays = [_decode_all(items, mode, split) for items, split in ((train, "train"), (test, "test"))]
    if None in arrays:  # images of several sizes
        return FolderData(name, classes, train_dir, test_dir)
    data = ArrayData(name, classes, *arrays[0], *arrays[1])
    save_arrays(data, cached)
    return data


def _classes(folder: Path) -> list[str]:
    try:
        return find_classes(os.fspath(folder))[0]
    except FileNotFoundError as e:
        raise UserError(f"{folder}: {e}") from None


def _images(folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    try:
        return make_dataset(os.fspath(folder), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise UserError(f"{folder}: {e}") from None


def _decode(path: str, mode: ImageReadMode) -> Union[torch.Tensor, str]:
    """The image, or a one-line reason it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
        return decode_image(data, mode=mode)
    except (OSError, RuntimeError, ValueError) as e:
        return f"{path}: cannot decode image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"


class _Chunks(Dataset):
    """Chunks of images decoded in worker processes: a stacked tensor, None if the sizes differ, or
    the first error."""

    def __init__(self, paths: list[str], mode: ImageReadMode):
        self.paths, self.mode = paths, mode

    def __len__(self) -> int:
        return (len(self.paths) + CHUNK - 1) // CHUNK

    def __getitem__(self, i: int) -> Union[torch.Tensor, str, None]:
        images = [_decode(p, self.mode) for p in self.paths[i * CHUNK:(i + 1) * CHUNK]]
        error = next((im for im in images if isinstance(im, str)), None)
        if error is not None:
            return error
        return torch.stack(images) if all(im.shape == images[0].shape for im in images) else None


def _decode_all(items: list[tuple[str, int]], mode: ImageReadMode,
                split: str) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """The images stacked and their labels, or None if their sizes differ."""
    chunks = _Chunks([p for p, _ in items], mode)
    workers = min(8, os.cpu_count() or 1) if len(chunks) > 1 else 0
    loader = DataLoader(chunks, batch_size=None, num_workers=workers)
    images = []
    with tqdm(total=len(items), desc=f"decoding {split}", unit="img", disable=not sys.stderr.isatty()) as bar:
        for chunk in loader:
            if isinstance(chunk, str):
                raise UserError(chunk)
            if chunk is None or (images and chunk.shape[1:] != images[0].shape[1:]):
                return None
            images.append(chunk)
            bar.update(len(chunk))
    return torch.cat(images), torch.tensor([label for _, label in items])
