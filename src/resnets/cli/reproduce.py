"""``resnets reproduce``: the paper's experiments as commands."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..experiments import EXPERIMENTS, SCALES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="rerun one of the paper's experiments and write a report beside the paper's numbers",
        description="Rerun an experiment of the paper: degradation (Fig. 6), cifar-table (Table 6), responses "
        "(Fig. 7), shortcuts (Table 3 on CIFAR). Writes OUT/EXPERIMENT.md and PNG figures; the runs go to "
        "OUT/runs/ and are reused, or resumed, by later experiments with the same OUT.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("experiment", choices=list(EXPERIMENTS), metavar="EXPERIMENT", help=", ".join(EXPERIMENTS))
    p.add_argument("--scale", choices=list(SCALES), default="smoke",
                   help="smoke: under a minute; cpu: about 20 min on 2 cores; full: the paper's recipe (GPU)")
    p.add_argument("--data", default="digits", help="CIFAR-10 (any format `resnets train` reads); the default is the bundled digits")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: reproduce/SCALE)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    out = Path(args.out or f"reproduce/{args.scale}")
    out.mkdir(parents=True, exist_ok=True)
    command = "resnets " + " ".join(shlex.quote(a) for a in args.argv if a != "--debug")
    report = EXPERIMENTS[args.experiment](SCALES[args.scale], args.data, out, command)
    print(f"report: {report}")
