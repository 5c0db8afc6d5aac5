"""``resnets reproduce``: the paper's experiments as commands."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch

from ..errors import UserError, check_at_least
from ..experiments import EXPERIMENTS, SCALES, reproduce
from ..experiments.runner import recorded_data, recorded_seeds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="rerun one of the paper's experiments and write a report beside the paper's numbers",
        description="Rerun an experiment of the paper: degradation (Fig. 6), cifar-table (Table 6), responses "
        "(Fig. 7), shortcuts (Table 3 on CIFAR), or all of them. Writes OUT/EXPERIMENT.md and PNG figures; the runs "
        "go to OUT/runs/ and are reused, or resumed, by later experiments with the same OUT.",
    )
    p.add_argument("experiment", choices=[*EXPERIMENTS, "all"], metavar="EXPERIMENT", help=", ".join([*EXPERIMENTS, "all"]))
    p.add_argument("--scale", choices=list(SCALES), default="smoke",
                   help="smoke (the default): under a minute; cpu: 4,000 iterations on a 10k subset, depths 20 and 32 (docs/REPRODUCTION.md gives its measured times); full: the paper's recipe (GPU)")
    p.add_argument("--data", default=None,
                   help="CIFAR-10 (any format `resnets train` reads); the default is the bundled digits, or with "
                   "--report-only the data the runs in OUT were trained on")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: reproduce/SCALE)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train up to N runs at once, each in its own process (several small nets share a GPU well; default: 1)")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="train each network N times, with seeds 0 to N-1, and report mean ± standard deviation, as "
                   "Table 6 does for ResNet-110 over 5 runs (default: 1, or with --report-only as many as OUT holds; "
                   "seed 0's runs are those made without --seeds)")
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="auto",
                   help="autocast precision (default auto: bf16 on CUDA, fp32 on CPUs)")
    p.add_argument("--compile", action="store_true", help="torch.compile each network (on CUDA: with CUDA graphs)")
    p.add_argument("--only", type=run_keys, default=None, metavar="RUN[,RUN]",
                   help="train only these of the experiment's runs (their folder names in OUT/runs: resnet56, "
                   "plain20, resnet20-B), e.g. the four nets a short GPU rental allows; the reports show the "
                   "others as not run, or wait for them")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: report the runs in OUT as they stand (unfinished runs marked as such)")
    p.set_defaults(run=run)


def run_keys(value: str) -> list[str]:
    keys = [k.strip() for k in value.split(",") if k.strip()]
    if not keys:
        raise argparse.ArgumentTypeError(f"names no run: {value!r}")
    return keys


def run(args: argparse.Namespace) -> None:
    check_at_least(1, jobs=args.jobs, seeds=args.seeds)
    out = Path(args.out or f"reproduce/{args.scale}")
    if args.report_only and not any(out.glob("runs/*")):
        raise UserError(f"{out} holds no runs to report on (no {out / 'runs'} folder, or an empty one): "
                        "give the --out of an earlier `resnets reproduce`")
    out.mkdir(parents=True, exist_ok=True)
    data = args.data or (args.report_only and recorded_data(out)) or "digits"
    seeds = args.seeds or (recorded_seeds(out) if args.report_only else 1)
    command = "resnets " + " ".join(shlex.quote(a) for a in args.argv if a != "--debug")
    # The paper's recipe stays fp32 on CPUs, whatever bf16 they have; GPUs use bf16 for speed (at full
    # scale, resnet20 ended at 12.33% in bf16 and 12.60% in fp32: docs/REPRODUCTION.md).
    precision = args.precision if args.precision != "auto" else ("bf16" if torch.cuda.is_available() else "fp32")
    machine = {"precision": precision, "compile": args.compile}
    reports = reproduce(args.experiment, SCALES[args.scale], data, out, command, args.jobs, machine,
                        train=not args.report_only, seeds=seeds, only=args.only)
    for report in reports:
        print(f"report: {report}")
