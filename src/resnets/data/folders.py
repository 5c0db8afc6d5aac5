"""Image folders in the ImageNet layout: ``train/`` and ``val/`` (or ``test/``), one folder per class.

A folder small enough to hold in memory, with images of one size (CIFAR-10 as JPEGs, say), is
decoded once to arrays and cached; any other stays on disk as :class:`FolderData`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple, Optional, Union

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..errors import UserError
from .arrays import ArrayData, FolderData
from .cache import Unreadable, fingerprint, load_arrays, load_unreadable, locked, save_arrays, save_unreadable
from .images import UnreadableImage, read_image

MAX_BYTES = 4 << 30  # decoded size above which a folder is streamed rather than held in memory
CHUNK = 1000  # images decoded per worker task
SKIP_HINT = "; --skip-bad-images leaves unreadable images out"


def find_splits(path: Path) -> Optional[tuple[Path, Path]]:
    """``path``'s train folder and its val folder (else its test folder), if it has both."""
    train = path / "train"
    test = next((path / s for s in ("val", "test") if (path / s).is_dir()), None)
    return (train, test) if train.is_dir() and test is not None else None


def load_folder(name: str, train_dir: Path, test_dir: Path, cache_dir: Path, skip_bad_images: bool = False,
                test_only: bool = False, stream: bool = False, channels: Optional[int] = None) -> Union[ArrayData, FolderData]:
    """The image folder's classes (its sorted subfolders) and images, decoded when they fit, unless
    asked to ``stream`` them from disk. With ``test_only`` (evaluation), nothing of the train folder
    but its class names is read: its split comes empty (no ``train_dir`` if streamed), and the test
    split is cached on its own.

    Images are read with ``channels`` (1 or 3: a model's), else with 3 where any image of the
    folder has colour and 1 where none has (a folder of gray images stays gray; a few gray photos
    among colour ones become RGB, as torchvision's ImageFolder reads every image).

    An image that cannot be read stops the data set with one line naming it; with
    ``skip_bad_images`` every image is tried, and those that cannot be read are left out and
    listed in the data's ``skipped``. The list is kept beside the decoded arrays, under the same
    key (every file of the folder, the bad ones included), so that later loads leave out the same
    files without decoding again, and refuse them unless they skip too.
    """
    classes = _classes(train_dir)
    if _classes(test_dir) != classes:
        raise UserError(f"{test_dir} and {train_dir} hold different class folders")
    train = [] if test_only else _images(train_dir, classes)
    test = _images(test_dir, classes)
    root = train_dir.parent
    asked = "" if channels is None else f"{channels}ch-"
    key = f"{name}-{'test-' if test_only else ''}{asked}{fingerprint(root, [p for p, _ in train + test])}"

    def streamed_data(skipped: tuple[str, ...] = ()) -> FolderData:
        return FolderData(name, classes, None if test_only else train_dir, test_dir, skipped)

    # One process decodes; others that want the same folder at once wait, then read the arrays.
    with locked(cache_dir / "locks" / f"{key}.lock", f"decoding {root}"):
        cached, listed = cache_dir / f"{key}.safetensors", cache_dir / f"{key}.unreadable.json"
        before = load_unreadable(listed)  # what an earlier look at these very files found
        if before and before.files and not skip_bad_images:
            raise UserError(_refusal(before.files))
        skipped = tuple(os.path.join(root, f) for f in before.files) if before else ()
        if cached.is_file():
            return streamed_data(skipped) if stream else replace(load_arrays(cached), skipped=skipped)
        if before and before.streamed:
            return streamed_data(skipped)
        if stream and not skip_bad_images:  # a bad file stops the epoch that reaches it
            return streamed_data()
        first = _first_image(train or test, skip_bad_images, channels or 3)
        streamed = first.numel() * (len(train) + len(test)) > MAX_BYTES
        if streamed:  # a pipeline of its own (Section 3.4's crops): said, not switched to silently
            print(f"{root}: {len(train) + len(test):,} images of {tuple(first.shape)} would take "
                  f"{first.numel() * (len(train) + len(test)) / 2**30:.1f} GiB decoded, more than {MAX_BYTES / 2**30:.0f}: "
                  "read from disk as training reaches them, with ImageNet's crops and normalization", file=sys.stderr, flush=True)
        if streamed and not skip_bad_images:  # its images are read as training reaches them
            return streamed_data()
        splits = [_decode_all(items, channels, first.shape[1:], split, skip_bad_images, keep=not streamed)
                  for items, split in ((train, "train"), (test, "test"))]
        if any(split is None for split in splits):  # images of several sizes, and no list to keep
            return streamed_data()
        colour = any(split_colour for *_, split_colour in splits)
        splits = [(images if images is None or channels or colour else images[:, :1].contiguous(), labels, split_bad)
                  for images, labels, split_bad, _ in splits]  # read as RGB: a gray folder keeps one channel
        bad = {path: why for _, _, split_bad in splits for path, why in split_bad.items()}
        sizes = {images.shape[2:] for images, _, _ in splits if images is not None and len(images)}
        streamed = streamed or any(images is None for images, _, _ in splits) or len(sizes) > 1  # train and test of two sizes
        if skip_bad_images:  # the list first: arrays without it would hide the bad files from later loads
            save_unreadable(Unreadable({os.path.relpath(p, root): why for p, why in bad.items()}, streamed), listed)
        if streamed:
            return streamed_data(tuple(bad))
        (train_images, train_labels, _), (test_images, test_labels, _) = splits
        data = ArrayData(name, classes, train_images, train_labels, test_images, test_labels, skipped=tuple(bad))
        save_arrays(data, cached)  # all the same: a later load that does not stream reads them
        return streamed_data(tuple(bad)) if stream else data


def _classes(folder: Path) -> list[str]:
    from torchvision.datasets.folder import find_classes  # loaded on first use (resnets/__init__.py)

    try:
        return find_classes(os.fspath(folder))[0]
    except FileNotFoundError as e:
        raise UserError(f"{folder}: {e}") from None


def _images(folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset  # loaded on first use (resnets/__init__.py)

    try:
        return make_dataset(os.fspath(folder), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise UserError(f"{folder}: {e}") from None


def _first_image(items: list[tuple[str, int]], skip_bad_images: bool, channels: int) -> torch.Tensor:
    """The first readable image, read with ``channels``: how large the folder is, decoded."""
    for path, _ in items:
        image = _decode(path, channels)
        if not isinstance(image, str):
            return image
        if not skip_bad_images:
            raise UserError(image + SKIP_HINT)
    raise UserError(f"no readable image in {Path(items[0][0]).parent.parent}" if items else "no training images")


def _decode(path: str, channels: Optional[int]) -> Union[torch.Tensor, str]:
    """The image, or a one-line reason it cannot be read."""
    try:
        return read_image(path, channels)
    except UnreadableImage as e:
        return str(e)


class _Chunk(NamedTuple):
    images: Optional[torch.Tensor]  # stacked; None if none were kept, or if their sizes differ
    bad: dict[str, str]  # path: why it cannot be read
    differ: bool  # the images are not all of one size
    files: int  # how many were looked at
    colour: bool  # an image has colour (read with the file's own channels)


class _Chunks(Dataset):
    """Chunks of images decoded in worker processes; ``keep=False`` only looks for bad files,
    holding one image at a time. Read with ``channels``, or as RGB noting which have colour (None)."""

    def __init__(self, paths: list[str], channels: Optional[int], keep: bool):
        self.paths, self.channels, self.keep = paths, channels, keep

    def __len__(self) -> int:
        return (len(self.paths) + CHUNK - 1) // CHUNK

    def __getitem__(self, i: int) -> _Chunk:
        paths = self.paths[i * CHUNK:(i + 1) * CHUNK]
        images, shapes, bad, colour = [], set(), {}, False
        for path in paths:
            image = _decode(path, self.channels)
            if isinstance(image, str):
                bad[path] = image
                continue
            if self.channels is None:  # gray to RGB replicates the value, as Pillow's convert("RGB")
                colour = colour or image.shape[0] == 3
                image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
            shapes.add(image.shape)
            if self.keep and len(shapes) == 1:
                images.append(image)
        differ = len(shapes) > 1
        return _Chunk(torch.stack(images) if images and not differ else None, bad, differ, len(paths), colour)


def _decode_all(items: list[tuple[str, int]], channels: Optional[int], size: torch.Size, split: str, skip_bad_images: bool,
                keep: bool) -> Optional[tuple[Optional[torch.Tensor], torch.Tensor, dict[str, str], bool]]:
    """The images, read with ``channels`` (None: as RGB) and stacked (None if ``keep`` is false or
    their sizes differ; empty of ``size`` if there are none), the labels of those read, the files that
    could not be read, and whether an image has colour. Without ``skip_bad_images``, the first
    unreadable file is refused, and images of several sizes end the decoding at once (None)."""
    chunks = _Chunks([p for p, _ in items], channels, keep)
    workers = min(8, os.cpu_count() or 1) if len(chunks) > 1 else 0
    # Its own generator: the workers' seeds are drawn from it, not from torch's global one, so that a
    # first load (decoding) and a later one (from the cache) leave the caller's random numbers alike.
    loader = DataLoader(chunks, batch_size=None, num_workers=workers, generator=torch.Generator())
    images, bad, differ, colour = [], {}, False, False
    with tqdm(total=len(items), desc=f"decoding {split}", unit="img", disable=not sys.stderr.isatty()) as bar:
        for chunk in loader:
            if chunk.bad and not skip_bad_images:
                raise UserError(next(iter(chunk.bad.values())) + SKIP_HINT)
            bad.update(chunk.bad)
            colour = colour or chunk.colour
            differ = differ or chunk.differ or (chunk.images is not None and bool(images)
                                                and chunk.images.shape[1:] != images[0].shape[1:])
            if differ and not skip_bad_images:
                return None
            if differ:
                images = []  # nothing to keep, but every file is still looked at
            elif chunk.images is not None:
                images.append(chunk.images)
            bar.update(chunk.files)
    labels = torch.tensor([label for path, label in items if path not in bad], dtype=torch.int64)
    if differ or not keep:
        return None, labels, bad, colour
    return (torch.cat(images) if images else torch.empty((0, channels or 3, *size), dtype=torch.uint8)), labels, bad, colour


def _refusal(unreadable: dict[str, str]) -> str:
    """One line for the unreadable images of a folder: the first, and how many more."""
    n = len(unreadable) - 1
    more = f" (and {n} more unreadable image{'s' if n > 1 else ''})" if n else ""
    return next(iter(unreadable.values())) + more + SKIP_HINT
