"""scikit-learn's bundled handwritten digits: a data set that needs no download, for tests and demos."""

from __future__ import annotations

import numpy as np
import torch

from .arrays import ArrayData

TEST_SIZE = 360  # of 1,797 images, about 20%


def load_digits() -> ArrayData:
    """1,797 8x8 grayscale digits (levels 0..16 scaled to 0..255), a fixed stratified train/test
    split, augmented with 1-pixel shifts and no flips (a mirrored digit is another glyph)."""
    # Imported here: scikit-learn takes a second to import, and only this data set needs it.
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=TEST_SIZE, random_state=0, stratify=digits.target
    )
    return ArrayData(
        name="digits",
        classes=[str(d) for d in range(10)],
        train_images=torch.from_numpy(x_train),
        train_labels=torch.from_numpy(y_train).long(),
        test_images=torch.from_numpy(x_test),
        test_labels=torch.from_numpy(y_test).long(),
        crop_padding=1,
        flip=False,
    )
