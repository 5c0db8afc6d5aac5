"""``resnets export``: a checkpoint or trained weights as an ONNX file or a torch.export program."""

from __future__ import annotations

import argparse

from ..models.export import FORMATS, export
from .evaluate import add_model_arguments, open_trained


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model as ONNX or as a torch.export program, preprocessing in its metadata",
                       description="Export a checkpoint (a run directory or a .safetensors file), or a named model with "
                       "trained weights, with its batch norms folded. The file's metadata holds the model, class names, "
                       "mean, std and input size as JSON (ONNX: metadata_props['resnets']; ExportedProgram: the extra "
                       "file resnets.json, read with torch.export.load(PATH, extra_files={'resnets.json': ''})).")
    add_model_arguments(p, optimize=False)
    p.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (default) or exported-program (.pt2)")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--dynamic-batch", action="store_true", help="accept any batch size (default: batch 1)")
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default: torch.onnx's)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    model, meta = open_trained(args)
    path = export(model, meta, args.out, args.format, dynamic_batch=args.dynamic_batch, opset=args.opset)
    print(f"{meta['model']}: {args.format} written to {path}")
