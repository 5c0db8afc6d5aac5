"""``resnets eval``: top-1 and top-5 error of a checkpoint on a data set's test split."""

from __future__ import annotations

import argparse
import json

import torch

from ..data import ArrayData, DeviceLoader, folder_loaders, load_data
from ..errors import UserError
from ..training import evaluate, load_model
from ..training.distributed import Context, resolve_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 error of a checkpoint on a data set",
                       description="Evaluate a checkpoint (a run directory or a .safetensors file) on the test "
                       "(or val) split of a data set.")
    p.add_argument("--checkpoint", required=True, metavar="C", help="run directory or checkpoint file")
    p.add_argument("--data", required=True, metavar="D", help="data set, as for `resnets train --data`")
    p.add_argument("--ten-crop", action="store_true", help="10-crop testing (image folders; paper Section 3.4)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    model, meta = load_model(args.checkpoint)
    ctx = Context(device=resolve_device(args.device))
    data = load_data(args.data)
    if data.classes != meta["classes"]:
        raise UserError(f"{args.data} has classes {data.classes[:5]}..., the checkpoint {meta['classes'][:5]}...")
    if isinstance(data, ArrayData):
        batches = DeviceLoader(data.test_images, data.test_labels, args.batch_size, train=False, device=ctx.device,
                               mean=torch.tensor(meta["mean"]), std=torch.tensor(meta["std"]))
    else:
        batches = folder_loaders(data, args.batch_size, args.workers, ten_crop=args.ten_crop).test
    result = evaluate(model.to(ctx.device), batches, ctx)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{meta['model']} on {args.data}: top-1 error {100 * result['top1_error']:.2f}%, "
              f"top-5 error {100 * result['top5_error']:.2f}% ({result['images']} images)")
