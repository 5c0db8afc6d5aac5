"""Writing files so that a reader, or a run resumed after a crash, never sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def _umask() -> int:
    """The process's umask (read by setting it, the only portable way: once, at import)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``: the
    rename is atomic, so ``path`` holds the old content or the new, never a part. The file gets the
    permissions of one opened for writing (0666 less the umask), not mkstemp's private 0600: a
    run's weights are as readable to a team on a shared machine as its metrics."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)  # a reader that goes by suffix reads it
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
