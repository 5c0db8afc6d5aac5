"""What ``eval``, ``predict`` and ``export`` share: the model to use, a checkpoint or a named model
with trained weights, and its opening for inference."""

from __future__ import annotations

import argparse
from typing import Any, Optional

import torch
from torch import nn

from ..errors import UserError
from ..models import ResNet, optimize_for_inference
from ..training import load_model, load_pretrained

PRECISIONS = ("fp32", "bf16", "fp16")


def add_model_arguments(p: argparse.ArgumentParser, optimize: bool = True) -> None:
    """What to classify with: ``--checkpoint``, or ``--model`` with ``--weights`` (eval and predict)."""
    g = p.add_argument_group("the model: a checkpoint, or a named model and its trained weights")
    g.add_argument("--checkpoint", metavar="C", help="run directory or checkpoint file")
    g.add_argument("--model", metavar="NAME", help="a named model (resnets.list_models()), with --weights")
    g.add_argument("--weights", metavar="W", help="with --model: cifar10 (our CIFAR-10 nets), torchvision's "
                   "IMAGENET1K_V1 or DEFAULT (resnet18-152), IMAGENET1K_V2 (resnet50, 101, 152), or a .safetensors or "
                   ".pth file; resnets.list_weights() lists the names")
    if optimize:
        g.add_argument("--no-optimize", action="store_true",
                       help="run the model as trained, without folding its batch norms into its convolutions")
        g.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="the optimized model's weights and arithmetic: fp32 (default), bf16 (fast on GPUs and on "
                       "CPUs with AVX512-BF16 or AMX, emulated and slow on others) or fp16 (GPUs)")


def open_model(args: argparse.Namespace, device: Optional[torch.device] = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model that ``add_model_arguments`` asked for on ``device`` (default: the CPU), made ready
    for inference (batch norms folded, channels_last, ``--precision``) unless ``--no-optimize``, and
    its metadata (classes, normalization)."""
    if args.no_optimize and args.precision != "fp32":
        raise UserError(f"--precision {args.precision} is the optimized model's: drop --no-optimize")
    model, meta = open_trained(args)
    if args.no_optimize:
        return (model if device is None else model.to(device)), meta
    return optimize_for_inference(model, dtype=args.precision, device=device), meta


def open_trained(args: argparse.Namespace) -> tuple[ResNet, dict[str, Any]]:
    if args.checkpoint and (args.model or args.weights):
        raise UserError("give --checkpoint, or --model and --weights, not both")
    if args.checkpoint:
        return load_model(args.checkpoint)
    if not (args.model and args.weights):
        raise UserError("give --checkpoint, or --model and --weights (e.g. --model resnet20 --weights cifar10)")
    return load_pretrained(args.model, args.weights)
