"""``resnets predict``: the most probable classes of image files."""

from __future__ import annotations

import argparse
import json

from ..training import predict
from .evaluate import add_model_arguments, open_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k classes of image files with their probabilities",
                       description="Classify image files with a checkpoint (a run directory or a .safetensors file), "
                       "or with a named model and its trained weights.")
    add_model_arguments(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to show per image")
    p.add_argument("--json", action="store_true", help="print JSON: one object per image")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    model, meta = open_model(args)
    predictions = predict(model, meta, args.images, args.top)
    if args.json:
        print(json.dumps([{"image": path, "top": [{"class": c, "probability": p} for c, p in top]}
                          for path, top in zip(args.images, predictions)], indent=2))
        return
    for path, top in zip(args.images, predictions):
        print(f"{path}: " + ", ".join(f"{c} {100 * p:.1f}%" for c, p in top))
