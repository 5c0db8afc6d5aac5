"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009; Section 4.2) in their official python and binary
distributions, read without ever running code from a file."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import UserError
from .arrays import ArrayData

PIXELS = 3 * 32 * 32  # one image: the R, G and B planes of 32x32, row-major


@dataclass(frozen=True)
class Layout:
    """One official distribution: its folder's name and the files it must hold."""

    folder: str
    name: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    labels: str = ""  # python pickles: the key of the labels (the class names are under labels[:-1] + "_names")
    label_bytes: int = 0  # binary: bytes before each image's pixels, the last being its label

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train, *self.test, self.meta)


LAYOUTS = (
    Layout("cifar-10-batches-py", "cifar10", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
           "batches.meta", labels="labels"),
    Layout("cifar-100-python", "cifar100", ("train",), ("test",), "meta", labels="fine_labels"),
    Layout("cifar-10-batches-bin", "cifar10", tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",),
           "batches.meta.txt", label_bytes=1),
    Layout("cifar-100-binary", "cifar100", ("train.bin",), ("test.bin",), "fine_label_names.txt", label_bytes=2),
)


def find_cifar(path: Path) -> Optional[tuple[Layout, Path]]:
    """The layout of the CIFAR batches in ``path`` or in its official subfolder, if any; a folder
    holding only part of an official set is refused, naming the files it lacks."""
    for layout in LAYOUTS:
        for folder in (path, path / layout.folder):
            present = [f for f in layout.files if (folder / f).is_file()]
            if present:
                missing = [f for f in layout.files if f not in present]
                if missing:
                    raise UserError(f"{folder} holds part of {layout.folder} but lacks {', '.join(missing)}")
                return layout, folder
    return None


def load_cifar(layout: Layout, folder: Path) -> ArrayData:
    """All batches of one official distribution, as arrays (N, 3, 32, 32)."""
    classes = _read_names(folder / layout.meta, layout)
    splits = []
    for names in (layout.train, layout.test):
        batches = [_read_batch(folder / name, layout, len(classes)) for name in names]
        images = np.concatenate([images for images, _ in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([labels for _, labels in batches]).astype(np.int64)
        splits += [torch.from_numpy(images), torch.from_numpy(labels)]
    return ArrayData(layout.name, classes, *splits)


def _read_names(path: Path, layout: Layout) -> list[str]:
    if layout.label_bytes:
        names = path.read_text().split("\n")
    else:
        meta = _unpickle_dict(path)
        names = meta.get(layout.labels[:-1] + "_names")
        if not isinstance(names, list):
            raise UserError(f"{path}: no list of {layout.labels[:-1]}_names: not a CIFAR meta file")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise UserError(f"{path}: no class names")
    return names


def _read_batch(path: Path, layout: Layout, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if layout.label_bytes:
        raw = np.fromfile(path, dtype=np.uint8)
        record = layout.label_bytes + PIXELS
        if raw.size == 0 or raw.size % record:
            raise UserError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records")
        rows = raw.reshape(-1, record)
        images, labels = rows[:, layout.label_bytes:], rows[:, layout.label_bytes - 1]
    else:
        batch = _unpickle_dict(path)
        images, labels = batch.get("data"), batch.get(layout.labels)
        if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
                and images.shape[1] == PIXELS):
            found = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
            raise UserError(f"{path}: 'data' must be uint8 of shape (N, {PIXELS}), found {found}")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.shape != (len(images),):
            raise UserError(f"{path}: '{layout.labels}' must be {len(images)} integers, "
                            f"found {labels.dtype} {labels.shape}")
    if labels.size and not 0 <= labels.min() <= labels.max() < n_classes:
        raise UserError(f"{path}: labels outside 0..{n_classes - 1}")
    return images, labels


def _unpickle_dict(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            content = _BatchUnpickler(f, path).load()
    except UserError:
        raise
    except Exception as e:  # a malformed pickle fails in any number of ways
        raise UserError(f"{path}: not a CIFAR batch ({type(e).__name__}: {e})") from None
    if not isinstance(content, dict):
        raise UserError(f"{path}: holds a {type(content).__name__}, not a CIFAR batch's dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """How Python 3 pickles bytes at protocol 2; no other codec is admitted."""
    if encoding != "latin1" or not isinstance(text, str):
        raise UserError(f"refusing to unpickle _codecs.encode({encoding!r}): not a CIFAR batch")
    return text.encode("latin1")


# The only callables a CIFAR batch needs: numpy's array (and scalar) reconstruction, under the
# module names that numpy 1 and numpy 2 write, and the bytes codec of protocol 2.
_RECONSTRUCT, _SCALAR = np.empty(0).__reduce__()[0], np.int64(0).__reduce__()[0]
_FROMBUFFER = np.empty(0).__reduce_ex__(5)[0]
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
    **{(f"{m}.multiarray", "_reconstruct"): _RECONSTRUCT for m in ("numpy.core", "numpy._core")},
    **{(f"{m}.multiarray", "scalar"): _SCALAR for m in ("numpy.core", "numpy._core")},
    **{(f"{m}.numeric", "_frombuffer"): _FROMBUFFER for m in ("numpy.core", "numpy._core")},
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays; refuses every other global before it can be called."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")  # the official batches are Python 2 pickles
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[module, name]
        raise UserError(f"refusing to unpickle {module}.{name} from {self.path}: not a CIFAR batch")
