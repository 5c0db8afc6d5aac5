"""One entry point for every data set: a name or a path, whose format is recognized."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from ..errors import UserError
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


def load_data(spec: str, cache_dir: Optional[Path] = None) -> Union[ArrayData, FolderData]:
    """The data set named by ``spec``: ``"digits"``, or a path to CIFAR batches, an image folder or
    an archive of either. Decoded images and extracted archives are kept in ``cache_dir``
    (default: $RESNETS_CACHE, else ~/.cache/resnets)."""
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
            return load_folder(name, *splits, cache)
    raise UserError(f"{spec}: unrecognized data set; looked for {LOOKED_FOR}")
