"""``resnets eval``: top-1 and top-5 error of a checkpoint, or of trained weights, on a data set's
test split."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

import torch
from tqdm import tqdm

from ..data import PAPER_SCALES, ArrayData, folder_loaders, load_data
from ..errors import UserError, check_at_least
from ..models import Preprocess
from ..training import evaluate
from ..training.distributed import DEVICE_HELP, Context, resolve_device
from ..training.evaluate import check_fits, eval_batches
from .common import add_model_arguments, open_model

def scales(spec: Optional[str], input_size: int) -> list[int]:
    """``--scales``: none, the paper's (in proportion to ``input_size``) or the lengths given."""
    if spec is None:
        return []
    if spec == "paper":
        return [s * input_size // 224 for s in PAPER_SCALES]
    try:
        lengths = [int(s) for s in spec.split(",")]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1:
        raise UserError(f"--scales takes lengths of the shorter side, such as 224,256,384, not {spec!r}")
    return lengths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 error of a checkpoint or trained weights on a data set",
                       description="Evaluate a checkpoint (a run directory or a .safetensors file), or a named model "
                       "with trained weights, on the test (or val) split of a data set.")
    add_model_arguments(p)
    p.add_argument("--data", required=True, metavar="D", help="data set, as for `resnets train --data`")
    p.add_argument("--test-subset", type=int, metavar="N", help="a seeded, class-stratified subset of N test "
                   "images (array data sets; seed 0's: the subset `resnets train --test-subset N` tests a run of seed 0 on)")
    views = p.add_mutually_exclusive_group()
    views.add_argument("--ten-crop", action="store_true", help="10-crop testing (image folders; paper Section 3.4)")
    views.add_argument("--scales", nargs="?", const="paper", metavar="S,S,...",
                       help="multi-scale testing (image folders; paper Section 3.4, Tables 4 and 5): each image whole, its "
                       "shorter side resized to each length, the softmax outputs averaged; alone, the paper's "
                       f"{','.join(map(str, PAPER_SCALES))} (in proportion for models of another input size); one image "
                       "at a time, whatever --batch-size, since the images' sizes differ")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: leave out images that cannot be read, listing them (default: refuse the data set)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="images evaluated at once (default: 256)")
    p.add_argument("--workers", type=int, default=4, metavar="N",
                   help="DataLoader workers that decode image folders too large to hold in memory (default: 4)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    check_at_least(1, batch_size=args.batch_size, test_subset=args.test_subset)
    check_at_least(0, workers=args.workers)
    ctx = Context(device=resolve_device(args.device))
    model, meta = open_model(args, ctx.device)
    # A model that resizes and crops (trained on a streamed folder; torchvision's) is tested through
    # that pipeline, even on a folder small and uniform enough to be held in memory.
    data = load_data(args.data, skip_bad_images=args.skip_bad_images, test_only=True, stream=meta.get("resize") is not None,
                     channels=len(meta["mean"]))  # as the model reads them, whatever the test images alone would say
    check_fits(data, args.data, meta, "the model")
    if isinstance(data, ArrayData):
        if args.ten_crop or args.scales:
            raise UserError(f"--{'ten-crop' if args.ten_crop else 'scales'} applies to image folders streamed from disk; "
                            f"{args.data} is held in memory, its images all of one size")
        if args.test_subset is not None:
            data = data.subset(None, args.test_subset)
        batches = eval_batches(data, meta, args.batch_size, ctx.device)
    elif args.test_subset is not None:
        raise UserError("--test-subset applies to array data sets (CIFAR, digits, small image folders)")
    else:
        mean, std = torch.tensor(meta["mean"]), torch.tensor(meta["std"])
        views = args.ten_crop or args.scales
        if views and mean[0].numel() > 1:  # a per-pixel mean (Section 4.2) fits images of the input size only
            raise UserError(f"--{'ten-crop' if args.ten_crop else 'scales'} crops and rescales images, which this model's "
                            f"per-pixel mean (of {'x'.join(map(str, mean.shape[1:]))} images) cannot follow")
        # The center view is the model's own preprocessing, as `predict` applies it (torchvision's V2
        # weights: resize 232 and crop 224; CIFAR nets: the whole image resized to 32x32).
        batches = folder_loaders(data, args.batch_size, args.workers, train_size=meta["input_size"][0],
                                 ten_crop=args.ten_crop, mean=mean.flatten().tolist(), std=std.flatten().tolist(),
                                 test_resize=meta.get("resize"), scales=scales(args.scales, meta["input_size"][0]),
                                 test_transform=None if views else Preprocess.from_meta(meta), channels=len(mean)).test
    result = evaluate(model, tqdm(batches, desc="evaluating", unit="batch", disable=not sys.stderr.isatty()), ctx)
    if len(meta["classes"]) <= 5:  # five guesses of five classes or fewer always hold the right one
        result["top5_error"] = None  # as results.json has it
    if args.json:
        print(json.dumps(result))
    else:
        top5 = f", top-5 error {100 * result['top5_error']:.2f}%" if result["top5_error"] is not None else ""
        print(f"{meta['model']} on {args.data}: top-1 error {100 * result['top1_error']:.2f}%{top5} ({result['images']} images)")
