"""``resnets plot``: several runs' error curves on one figure (the style of the paper's Fig. 6)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.metrics import windows_table
from ..training.plots import CURVES, plot_runs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="training and test error of runs against iterations, on one figure",
                       description="Draw training (dashed) and test (bold) error against iterations for each run.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories of resnets train (each holds metrics.jsonl)")
    p.add_argument("--out", help="figure to write: .png, .svg or .pdf (default: curves.png; with --windows, no figure unless given)")
    p.add_argument("--labels", nargs="+", help="one label per run (default: the directory names)")
    p.add_argument("--title", default="", help="the figure's title (default: none)")
    p.add_argument("--windows", nargs="+", type=int, metavar="STEP",
                   help="also print a Markdown table of each run's mean training and test error between "
                        "these iterations (0 is prepended), e.g. the lr steps: --windows 32000 48000 64000")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    if args.labels and len(args.labels) != len(args.runs):
        raise ValueError(f"{len(args.labels)} labels for {len(args.runs)} runs")
    if args.windows:
        bounds = [0] + args.windows
        if any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"--windows must be positive and increasing, got {' '.join(map(str, args.windows))}")
        print(windows_table(args.runs, args.labels or [Path(r).name for r in args.runs], bounds))
    if args.out or not args.windows:
        print(f"wrote {plot_runs(args.runs, args.out or CURVES, args.labels, args.title)}")
