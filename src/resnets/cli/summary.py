"""``resnets summary NAME``: the paper's Table 1 for one model."""

from __future__ import annotations

import argparse

from ..errors import check_at_least
from ..models import create_model, input_side, list_models
from ..models.summary import format_table, summarize


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="per-stage output sizes, blocks, parameters and multiply-adds (paper, Table 1)",
        description="Print a model's layout as in the paper's Table 1: per stage the output size, the "
        "blocks, the parameters and the multiply-adds, and the totals.",
    )
    p.add_argument("name", metavar="NAME", help=f"a model name: {', '.join(list_models())}")
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="square input side in pixels (default: 224 for ImageNet models, 32 for CIFAR ones)")
    p.add_argument("--stride-in-1x1", action="store_true",
                   help="bottleneck stride on the first 1x1 convolution, as in the paper (default: on the 3x3, as torchvision)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    side = input_side(args.name) if args.input_size is None else args.input_size
    check_at_least(1, input_size=side)
    # On the meta device: shapes and counts without memory, so that any input size can be asked.
    model = create_model(args.name, stride_in_1x1=args.stride_in_1x1).to("meta")
    print(format_table(args.name, summarize(model, (side, side)), (side, side)))
