"""Tar archives of a data set, extracted once into the cache and refused if a member would land
outside it."""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import UserError
from .cache import fingerprint, locked

SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(SUFFIXES)


def archive_stem(path: Path) -> str:
    """``cifar10-jpeg`` for ``cifar10-jpeg.tar.gz``."""
    return next(path.name[: -len(s)] for s in SUFFIXES if path.name.endswith(s))


def extract(archive: Path, cache_dir: Path) -> Path:
    """The extracted tree of ``archive`` (its one top folder, if it has just one), extracted into
    ``cache_dir`` unless it already is."""
    target = cache_dir / "extracted" / f"{archive_stem(archive)}-{fingerprint(archive, [archive])}"
    with locked(cache_dir / "locks" / f"{target.name}.lock", f"extracting {archive}"):
        if not target.is_dir():
            for left in target.parent.glob(f".{target.name}.*.partial"):  # by runs killed while extracting
                if not _running(int(left.name.split(".")[-2])):
                    shutil.rmtree(left, ignore_errors=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            try:
                _extract_safely(archive, partial)
                os.replace(partial, target)
            except OSError:
                if not target.is_dir():  # else another process finished the same extraction first (no lock)
                    raise
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    entries = list(target.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one that extracts is not to be disturbed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _extract_safely(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                    raise UserError(f"{archive}: refusing member {member.name!r} (absolute, '..' or not a plain file)")
            # The "data" filter (Python 3.12, backported to 3.8.17+) also strips modes that are unsafe.
            with tqdm(members, desc=f"extracting {archive.name}", unit="file", disable=not sys.stderr.isatty()) as bar:
                tar.extractall(into, members=bar, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise UserError(f"{archive}: not a readable tar archive ({e})") from None
