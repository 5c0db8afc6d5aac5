"""Where decoded arrays and extracted archives are kept, and how a source is recognized again."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..files import atomic_write
from .arrays import ArrayData

VERSION = "1"  # bump when the decoding changes, so stale caches are not read


def cache_root(cache_dir: Optional[os.PathLike] = None) -> Path:
    """``cache_dir``, else $RESNETS_CACHE, else ~/.cache/resnets."""
    return Path(cache_dir or os.environ.get("RESNETS_CACHE") or Path.home() / ".cache" / "resnets").expanduser()


def fingerprint(source: Path, files: Iterable[str | os.PathLike]) -> str:
    """A short key for ``source`` as it is now: its resolved path and each file's path (relative to
    it), size and modification time. A file renamed, moved to another class or split folder, or
    replaced gives another key, so the arrays decoded before are not read for it."""
    key = hashlib.sha256(f"{VERSION}\0{source.resolve()}\n".encode())
    prefix = os.path.join(source, "")
    for f in map(os.fspath, files):  # one at a time: an ImageNet folder lists 1.3 million
        stat = os.stat(f)
        # Relative to ``source`` by slicing: os.path.relpath and a JSON line per file cost five times
        # the stat itself (1.5 s against 0.3 s for CIFAR-10's 60,000 files on two AMD cores).
        name = f[len(prefix):] if f.startswith(prefix) else f
        key.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return key.hexdigest()[:16]


@contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` while making a cache entry: processes that want the same entry
    at once (torchrun's ranks, parallel runs, test workers) wait for the first to write it, then
    read it, rather than each doing ``what`` again. An advisory ``flock``, which the OS releases if
    its holder dies; where there is none (Windows, some network file systems) nothing waits, and
    the entry's atomic writes keep it whole while the work is repeated."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process {what}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: nothing waits
            yield
            return
        try:
            yield
        finally:  # explicitly: decoding workers forked meanwhile may still hold the file open
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_arrays(data: ArrayData, path: Path) -> None:
    """Write ``data`` as safetensors, atomically: readers see the whole file or none."""
    tensors = {k: getattr(data, k).contiguous() for k in ("train_images", "train_labels", "test_images", "test_labels")}
    meta = {"name": data.name, "classes": json.dumps(data.classes),
            "crop_padding": str(data.crop_padding), "flip": str(int(data.flip))}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_arrays(path: Path) -> ArrayData:
    """Read what :func:`save_arrays` wrote."""
    with safe_open(os.fspath(path), "pt") as f:
        meta = f.metadata()
    return ArrayData(meta["name"], json.loads(meta["classes"]), **load_file(os.fspath(path)),
                     crop_padding=int(meta["crop_padding"]), flip=bool(int(meta["flip"])))


@dataclass
class Unreadable:
    """The images of a folder that could not be read, and whether the others are streamed from
    disk (else they are cached as arrays)."""

    files: dict[str, str]  # path in the folder: why it cannot be read
    streamed: bool


def save_unreadable(unreadable: Unreadable, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(vars(unreadable), indent=1)))


def load_unreadable(path: Path) -> Optional[Unreadable]:
    """What :func:`save_unreadable` wrote, or None if nothing was (or it cannot be read)."""
    try:
        return Unreadable(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
