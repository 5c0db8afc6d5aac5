"""Reading one image file, for image folders and ``resnets predict``, with Pillow (JPEG, PNG, WebP,
GIF, BMP, TIFF, PPM): torchvision's ``decode_image`` crashes the process on some damaged files. A file either becomes a uint8 (C, H, W) tensor of 1 or 3 channels, or
an :class:`UnreadableImage` error of one line that names it.

Memory is bounded by the image itself: the header is read first, and an image of more pixels than
Pillow's own decompression-bomb limit, ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (about 179 million
pixels: a 10000x10000 photograph, 300 MB as RGB, is read; a 20000x20000 one is refused), is
refused before anything is decoded; setting ``PIL.Image.MAX_IMAGE_PIXELS`` moves the limit. Of an
animated file (GIF, APNG, WebP) only the first frame is decoded.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import UserError, one_line

#: Formats Pillow may open: the still-image formats of image folders. None of their decoders runs
#: an external program (Pillow's EPS plugin would run Ghostscript on a stranger's file).
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "PPM")
WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # Pillow's 16-bit (and 32-bit integer) gray
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # Pillow's one-channel modes


class UnreadableImage(UserError):
    """An image file that cannot be read, in one line naming it.

    Raised in a DataLoader worker, torch re-raises it in the main process with the worker's
    traceback as its message; the constructor keeps that traceback's last line, the original message.
    """

    def __init__(self, message: str) -> None:
        last = message.rstrip().splitlines()[-1] if message.strip() else message
        super().__init__(last.split(f"{type(self).__name__}: ", 1)[-1])


def read_image(path: str | os.PathLike, channels: Optional[int] = None) -> torch.Tensor:
    """The image in ``path`` as a uint8 tensor (C, H, W).

    ``channels``: 1 or 3 converts whatever the file holds (palette, gray, gray + alpha, RGBA,
    16 bits per channel) to gray or RGB, as Pillow's ``convert("L")`` / ``convert("RGB")`` do
    (alpha is dropped, 16-bit values scaled to 8 bits); ``None`` keeps the file's own: 1 channel
    for gray images, else 3. Raises :class:`UnreadableImage` for anything else.
    """
    if channels not in (None, 1, 3):
        raise UserError(f"images are read with 1 or 3 channels, not {channels}")
    with _opened(path) as im:
        if channels is None:
            channels = 1 if im.mode in GRAY_MODES else 3
        # Pillow decodes every format: torchvision's decode_image crashes the whole process
        # (a segfault) on some damaged JPEGs and PNGs that tests/test_fuzz.py generates.
        from torchvision.transforms.v2.functional import pil_to_tensor  # loaded on first use (resnets/__init__.py)

        return pil_to_tensor(_converted(im, channels))


def image_files(paths: Sequence[str | os.PathLike]) -> list[str]:
    """``paths`` with each folder replaced by the image files under it (at any depth, sorted, with
    torchvision's image extensions, as ``ImageFolder`` finds them); files are kept as given."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension  # loaded on first use (resnets/__init__.py)

    files = []
    for path in map(str, paths):
        if not os.path.exists(path):  # said before a model loads
            raise UserError(f"{path}: no such file or folder")
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = sorted(os.path.join(root, name) for root, _, names in os.walk(path, followlinks=True)
                       for name in names if has_file_allowed_extension(name, IMG_EXTENSIONS))
        if not found:
            raise UserError(f"{path}: a folder with no image files ({', '.join(IMG_EXTENSIONS)})")
        files += found
    return files


def read_pil(path: str | os.PathLike, channels: int = 3) -> Image.Image:
    """The image in ``path`` as an RGB (or, ``channels=1``, gray) PIL image, for torchvision's
    ``ImageFolder`` (its ``loader``): Pillow's decoding, as torchvision's default loader, within
    the same limits and with the same one-line errors as :func:`read_image`."""
    with _opened(path) as im:
        return _converted(im, channels)


@contextmanager
def _opened(path: str | os.PathLike) -> Iterator[Image.Image]:
    """The file opened by Pillow (its header read, the pixel limit checked); any error, here or
    while decoding it, becomes one :class:`UnreadableImage` line."""
    try:
        with warnings.catch_warnings():  # palette transparency, DecompressionBombWarning below our limit
            warnings.simplefilter("ignore")
            with Image.open(path, formats=FORMATS) as im:
                yield im
    except Image.DecompressionBombError as e:
        raise UnreadableImage(f"{path}: refused: {e} (the limit is 2 x PIL.Image.MAX_IMAGE_PIXELS; "
                              "raise PIL.Image.MAX_IMAGE_PIXELS to read it)") from None
    except Exception as e:  # a stranger's file: whatever its decoder raises, say it in one line
        raise UnreadableImage(f"{path}: cannot decode image ({_reason(e)})") from None


def _converted(im: Image.Image, channels: int) -> Image.Image:
    """The first frame, as gray ("L") or RGB."""
    im.seek(0)
    if im.mode in WIDE_GRAY_MODES:  # 16 bits a pixel: keep the high byte, as torchvision's to_dtype(scale=True)
        im = Image.fromarray((np.asarray(im, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8), "L")
    if channels == 3 and im.mode in GRAY_MODES:
        im = im.convert("L")  # float and 1-bit gray (and with alpha): to 8 bits first
    return im.convert("L" if channels == 1 else "RGB")


def _reason(error: BaseException) -> str:
    """Why a file was refused, in a few words."""
    if isinstance(error, UnidentifiedImageError):
        return "not a JPEG, PNG, GIF, BMP, TIFF, WebP or PPM image"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return one_line(error)
