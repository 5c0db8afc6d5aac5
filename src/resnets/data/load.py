"""One entry point for every data set: a name or a path, whose format is recognized."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from ..errors import UserError
from ..files import atomic_write
from .archives import SUFFIXES, archive_stem, extract, is_archive
from .arrays import ArrayData, FolderData
from .cache import cache_root
from .cifar import LAYOUTS, find_cifar, load_cifar
from .digits import load_digits
from .folders import find_splits, load_folder

LOOKED_FOR = (
    f"'digits', CIFAR batches ({', '.join(layout.folder for layout in LAYOUTS)}), "
    "an image folder with train/ and val/ or test/ holding one folder per class, "
    f"or an archive ({', '.join(SUFFIXES)}) of one of these"
)


SKIPPED_LIST = "skipped_images.txt"  # in ``log_dir``: the unreadable images left out, one path a line


def load_data(spec: str, cache_dir: Optional[Path] = None, skip_bad_images: bool = False,
              log_dir: Optional[str | os.PathLike] = None, test_only: bool = False,
              stream: bool = False, channels: Optional[int] = None) -> Union[ArrayData, FolderData]:
    """The data set named by ``spec``: ``"digits"``, or a path to CIFAR batches, an image folder or
    an archive of either. Decoded images and extracted archives are kept in ``cache_dir``
    (default: $RESNETS_CACHE, else ~/.cache/resnets).

    An image of an image folder that cannot be read is refused in one line naming it; with
    ``skip_bad_images`` those images are left out, printed, listed in the data's ``skipped`` and, given a ``log_dir``, in its
    ``skipped_images.txt``.

    ``test_only`` is for evaluation: an image folder's training images are then neither listed nor
    decoded (its train split comes empty), which spares the 50,000 of CIFAR-10 as JPEGs, or the
    1.28 million of ImageNet. Other formats, cheap to read whole, come whole. ``stream`` keeps an
    image folder on disk whatever its size, for a model that resizes and crops its input (Section
    3.4's testing), whose images must go through that pipeline even when they are all of one size.
    ``channels`` (1 or 3) reads an image folder's images so, as a trained model wants them (else
    3 where any image has colour, 1 where none has).
    """
    if spec == "digits":
        return load_digits()
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"no data set {spec!r}: no such file or directory; looked for {LOOKED_FOR}")
    cache = cache_root(cache_dir)
    name = path.resolve().name
    if is_archive(path):
        name, path = archive_stem(path), extract(path, cache)
    if path.is_dir():
        found = find_cifar(path)
        if found:
            return load_cifar(*found)
        splits = find_splits(path)
        if splits:
            data = load_folder(name, *splits, cache, skip_bad_images, test_only, stream, channels)
            if data.skipped:
                report_skipped(data.skipped, path, log_dir)
            return data
    raise UserError(f"{spec}: unrecognized data set; looked for {LOOKED_FOR}")


def report_skipped(skipped: tuple[str, ...], root: Path, log_dir: Optional[str | os.PathLike], shown: int = 10) -> None:
    """Print the images left out (the first ``shown`` of them) and list them all in ``log_dir``."""
    names = [os.path.relpath(p, root) for p in skipped]
    more = f", ... ({len(names) - shown} more)" if len(names) > shown else ""
    where = ""
    if log_dir is not None:
        listed = Path(log_dir) / SKIPPED_LIST
        atomic_write(listed, lambda tmp: Path(tmp).write_text("".join(f"{p}\n" for p in skipped)))
        where = f"; all are listed in {listed}"
    print(f"skipped {len(names)} unreadable image{'s' if len(names) > 1 else ''}: {', '.join(names[:shown])}{more}{where}",
          flush=True)
