"""Evaluation (top-1 and top-5 error; 10-crop and multi-scale testing, Section 3.4) and prediction on image files."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data import ArrayData, DeviceLoader, FolderData
from ..data.images import UnreadableImage, read_image
from ..errors import UserError
from ..models import Preprocess
from ..models.pretrained import IMAGENET_DATA
from .distributed import Context, all_reduce_sum


def autocast(device: torch.device, precision: str):
    """Mixed precision for the forward pass: bf16 or fp16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def errors(logits: torch.Tensor, y: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts of top-1 and top-k misses in a batch."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    hit = top == y[:, None]
    return (~hit[:, 0]).sum(), (~hit.any(dim=1)).sum()


def eval_batches(data: ArrayData, meta: dict[str, Any], batch_size: int = 500,
                 device: Optional[torch.device] = None) -> DeviceLoader:
    """``data``'s test split in batches, normalized as the model that ``meta`` describes expects."""
    return DeviceLoader(data.test_images, data.test_labels, batch_size, train=False, device=device,
                        mean=torch.tensor(meta["mean"]), std=torch.tensor(meta["std"]))


def check_fits(data: ArrayData | FolderData, spec: str, meta: dict[str, Any], model_name: str) -> None:
    """Refuse, in one line, data the model was not trained for: other classes or, for data held in
    memory, images of another size or number of channels than its per-pixel mean."""
    # An ImageNet folder names its classes by WordNet id (n01440764, ...), torchvision's weights
    # by word (tench, ...): the same classes in the same (sorted-id) order.
    imagenet = meta.get("data") == IMAGENET_DATA and len(data.classes) == len(meta["classes"])
    if data.classes != meta["classes"] and not imagenet:
        raise UserError(f"{spec} has classes {data.classes[:5]}..., {model_name} {meta['classes'][:5]}...")
    if isinstance(data, ArrayData):
        shape, wanted = tuple(data.test_images.shape[1:]), (len(meta["mean"]), *meta["input_size"])
        if shape != wanted:
            raise UserError(f"{spec} has images of shape {shape}, {model_name} was trained on {wanted}")


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, ctx: Context = Context(), precision: str = "fp32") -> dict[str, float]:
    """Loss, top-1 and top-5 error over ``batches`` (summed over every process). Section 3.4's
    two ways of testing several views of an image average their softmax outputs: batches of shape
    (B, crops, C, H, W) are crops of one image each (10-crop testing); a list of tensors holds the
    same images at several scales (multi-scale testing)."""
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=ctx.device)  # loss, top1, top5, n
    for x, y in batches:
        x = [v.to(ctx.device, non_blocking=True) for v in x] if isinstance(x, (list, tuple)) else x.to(ctx.device, non_blocking=True)
        y = y.to(ctx.device, non_blocking=True)
        with autocast(ctx.device, precision):
            if isinstance(x, list):  # scales
                logits = torch.stack([model(v).float().softmax(1) for v in x]).mean(0).log()
            elif x.dim() == 5:  # crops
                b, crops = x.shape[:2]
                logits = model(x.flatten(0, 1)).float().softmax(1).view(b, crops, -1).mean(1).log()
            else:
                logits = model(x).float()
        top1, top5 = errors(logits, y)
        totals[:3] += torch.stack([F.cross_entropy(logits, y, reduction="sum"), top1, top5]).double()
        totals[3] += len(y)
    loss, top1, top5, n = all_reduce_sum(totals, ctx).tolist()
    if n == 0:
        raise UserError("the evaluation set is empty")
    return {"loss": loss / n, "top1_error": top1 / n, "top5_error": top5 / n, "images": int(n)}


def preprocess(paths: Sequence[str | Path], meta: dict[str, Any],
               on_unreadable: Optional[Callable[[str | Path, str], None]] = None) -> tuple[torch.Tensor, list[str | Path]]:
    """Image files as a normalized batch the way the checkpoint's model was trained on them: any
    image converted to the model's channels (1: gray, 3: RGB), resized and cropped as in training;
    and the paths of the images in it. Only one image is held decoded at a time. An image that
    cannot be read is refused, or, given ``on_unreadable``, left out and passed to it with why."""
    channels = meta["model_config"].get("in_channels", 3)
    if channels not in (1, 3):
        raise UserError(f"this model takes {channels}-channel input; image files give 1 (gray) or 3 (RGB)")
    transform = Preprocess.from_meta(meta)
    images, read = [], []
    for path in paths:
        try:
            images.append(transform(read_image(path, channels)))
        except UnreadableImage as e:
            if on_unreadable is None:
                raise
            on_unreadable(path, str(e))
            continue
        read.append(path)
    return (torch.stack(images) if images else torch.empty(0)), read


def predict(model: nn.Module, meta: dict[str, Any], paths: Sequence[str | Path], topk: int = 5,
            batch_size: int = 64, on_unreadable: Optional[Callable[[str | Path, str], None]] = None,
            ) -> Iterator[tuple[str | Path, list[tuple[str, float]]]]:
    """Each image with its ``topk`` most probable classes and their probabilities, yielded as each
    batch of ``batch_size`` images is classified, so that a caller can show them as they come (a
    progress bar on a terminal when there are several batches). ``on_unreadable``: as :func:`preprocess`."""
    model.eval()
    classes, device = meta["classes"], next(model.parameters()).device
    starts = range(0, len(paths), batch_size)
    for start in tqdm(starts, desc="predicting", unit="batch", disable=len(starts) < 2 or not sys.stderr.isatty()):
        x, batch = preprocess(paths[start:start + batch_size], meta, on_unreadable)
        if not batch:
            continue
        with torch.no_grad():
            probs = model(x.to(device)).softmax(1)
        values, indices = probs.topk(min(topk, probs.shape[1]), dim=1)
        for path, row_i, row_p in zip(batch, indices.tolist(), values.tolist()):
            yield path, [(classes[i], p) for i, p in zip(row_i, row_p)]
