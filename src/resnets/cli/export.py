"""``resnets export``: a checkpoint, trained weights or a named model as built, as an ONNX file or a
torch.export program."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from ..errors import UserError
from ..models import ResNet, Weights, create_model, get_weights, input_side, model_config
from ..models.export import FORMATS, OLDEST_OPSET, export, export_format
from .common import add_model_arguments, open_trained


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model as ONNX or as a torch.export program, preprocessing in its metadata",
                       description="Export a checkpoint (a run directory or a .safetensors file), or a named model with "
                       "trained weights (without --weights: as built, untrained, for timing and deployment tests), with "
                       "its batch norms folded. The file's metadata holds the model, class names, mean, std and input size "
                       "as JSON (ONNX: metadata_props['resnets']; ExportedProgram: the extra "
                       "file resnets.json, read with torch.export.load(PATH, extra_files={'resnets.json': ''})).")
    add_model_arguments(p, optimize=False)
    p.add_argument("--format", choices=FORMATS, help="onnx or exported-program: needed only where --out's extension "
                   "does not say it, and refused where it says the other")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write; its extension says the format: "
                   ".onnx or .pt2 (exported-program)")
    p.add_argument("--dynamic-batch", action="store_true", help="accept any batch size (default: batch 1)")
    p.add_argument("--opset", type=int, metavar="N", help=f"ONNX opset, {OLDEST_OPSET} to the installed onnx's newest "
                   "(default: torch.onnx's); refused where torch.onnx cannot write it")
    p.set_defaults(run=run)


def undescribed(name: str, weights: Optional[Weights] = None) -> tuple[ResNet, dict[str, Any]]:
    """A named model, as built or with weights that carry no description (a state_dict), described
    by its input size alone: 224x224 for the ImageNet nets (Section 3.4's crops), 32x32 for the
    CIFAR ones (Section 4.2); no classes, no normalization."""
    side = input_side(name)
    config = model_config(name, **(weights.overrides if weights else {}))
    return create_model(name, weights=weights).eval(), {"model": name, "model_config": config, "input_size": [side, side]}


def run(args: argparse.Namespace) -> None:
    if not (args.model or args.checkpoint):
        raise UserError("give --checkpoint, or --model (with --weights W for trained weights)")
    format = export_format(args.out, args.format, args.opset)  # before the model loads: bad options fail at once
    trained = get_weights(args.model, args.weights) if args.model and args.weights and not args.checkpoint else None
    if args.model and not (args.weights or args.checkpoint):
        # An architecture to deploy or time, also where no trained weights are at hand (torchvision's
        # ImageNet weights on a machine without their download, say).
        model, meta = undescribed(args.model)
        print(f"{args.model}: no --weights: its untrained initial weights, for timing and deployment tests, not for "
              "predictions", file=sys.stderr)
    elif trained is not None and "classes" not in trained.meta:  # a state_dict: a fine-tuned torchvision .pth
        model, meta = undescribed(args.model, trained)
        print(f"{trained}: weights alone, without class names or normalization: the file's metadata gives its input "
              "size only", file=sys.stderr)
    else:
        model, meta = open_trained(args)
    path = export(model, meta, args.out, format, dynamic_batch=args.dynamic_batch, opset=args.opset)
    print(f"{meta['model']}: {format} written to {path}")
