"""``resnets predict``: the most probable classes of image files."""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from ..data.images import image_files
from ..errors import check_at_least
from ..training import predict
from ..training.distributed import DEVICE_HELP, resolve_device
from .common import add_model_arguments, open_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k classes of image files with their probabilities",
                       description="Classify image files with a checkpoint (a run directory or a .safetensors file), "
                       "or with a named model and its trained weights.")
    add_model_arguments(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...), or folders: every "
                   "image file under them, sorted")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to show per image (default: 5)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="images classified at once (default: 64)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out images that cannot be read, naming each on stderr (default: refuse the first)")
    p.add_argument("--json", action="store_true", help="print JSON: a list of one object per image")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    check_at_least(1, top=args.top, batch_size=args.batch_size)
    images = image_files(args.images)
    model, meta = open_model(args, resolve_device(args.device))

    def skip(path: str, why: str) -> None:  # why names the file
        tqdm.write(f"skipped: {why}", file=sys.stderr)

    predictions = predict(model, meta, images, args.top, args.batch_size, skip if args.skip_bad_images else None)
    if args.json:
        print(json.dumps([{"image": str(path), "top": [{"class": c, "probability": p} for c, p in top]}
                          for path, top in predictions], indent=2))
        return
    for path, top in predictions:  # as each batch is classified; tqdm.write keeps the progress bar below
        tqdm.write(f"{path}: " + ", ".join(f"{c} {100 * p:.1f}%" for c, p in top))
