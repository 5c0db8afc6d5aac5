"""``resnets train``: one command for the paper's recipes on any supported data set."""

from __future__ import annotations

import argparse
import dataclasses

from ..models import SHORTCUTS, list_models
from ..training.distributed import DEVICE_HELP
from ..training.recipes import NORMALIZATIONS, PRECISIONS, RECIPES, SCHEDULES, TrainConfig, is_milestone, make_config
from ..training.trainer import COMPILE_MIN_STEPS, train


def shortcut(value: str):
    if value.lower() == "none":
        return None
    if value.upper() not in [s for s in SHORTCUTS if s]:
        raise argparse.ArgumentTypeError(f"invalid shortcut {value!r}; valid: A, B, C, none")
    return value.upper()


def milestone(value: str) -> float:
    """An iteration (a whole number), or a fraction of the run between 0 and 1."""
    number = float(value)
    if is_milestone(number):
        return int(number) if number >= 1 else number
    raise argparse.ArgumentTypeError(f"invalid milestone {value!r}: an iteration (a whole number) or a fraction between 0 and 1")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model with one of the paper's recipes (default: resnet20 on the bundled digits)",
        description="Train a model. Every recipe value can be overridden by an option; the run directory "
        "gets config.json, metrics.jsonl, TensorBoard events, checkpoints, results.json and curves.png. "
        "Run under `torchrun --standalone --nproc_per_node=N -m resnets train ...` for DistributedDataParallel.",
    )
    d = TrainConfig()
    what = p.add_argument_group("what to train")
    what.add_argument("--model", help=f"one of: {', '.join(list_models())} (default: {d.model})")
    what.add_argument("--data", help="'digits' (bundled), or a path: CIFAR-10/100 python or binary "
                      "batches, an image folder with train/ and val/ or test/, or a .tar.gz of one (default: digits)")
    what.add_argument("--recipe", choices=list(RECIPES),
                      help="cifar: paper Section 4.2; imagenet: Section 3.4; fast: a short modern schedule (default: fast)")
    what.add_argument("--shortcut", type=shortcut, default=argparse.SUPPRESS, metavar="{A,B,C,none}",
                      help="shortcut option A, B, C, or none for a plain network (default: the model's)")
    what.add_argument("--zero-init-residual", action="store_true", default=None, help="start each residual branch's last BN at zero")
    what.add_argument("--stride-in-1x1", action="store_true", default=None, help="bottleneck stride on the first 1x1 (the paper's placement)")
    what.add_argument("--weights", metavar="W",
                      help="start from trained weights, to fine-tune: a name (IMAGENET1K_V1, cifar10: see resnets.list_weights()) "
                      "or a .safetensors/.pth file; a classifier for another number of classes starts afresh")
    what.add_argument("--out", default=None, metavar="DIR", help="run directory (default: runs/MODEL-DATA-RECIPE-TIME)")
    what.add_argument("--resume", default=None, metavar="RUN_DIR",
                      help="continue the run in RUN_DIR where it stopped, as it was configured; on another machine, "
                      "--data, --device, --precision, --channels-last, --compile and --workers may change")

    opt = p.add_argument_group("recipe overrides (default: the recipe's value)")
    opt.add_argument("--epochs", type=int, metavar="N", help="epochs to train (replaces the recipe's iterations)")
    opt.add_argument("--iterations", type=int, metavar="N", help="iterations to train (replaces the recipe's epochs)")
    opt.add_argument("--batch-size", type=int, metavar="N", help="images per step, over all processes")
    opt.add_argument("--lr", type=float, metavar="LR", help="(peak) learning rate")
    opt.add_argument("--momentum", type=float, metavar="M", help="SGD momentum")
    opt.add_argument("--weight-decay", type=float, metavar="WD", help="L2 weight decay")
    opt.add_argument("--label-smoothing", type=float, metavar="EPS", help="label smoothing of the loss")
    opt.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    opt.add_argument("--milestones", type=milestone, nargs="+", metavar="STEP",
                     help="iterations at which a step schedule divides lr by 10, or fractions of the run (0.5 0.75); "
                     "default: the recipe's, in proportion when --epochs or --iterations changes the run's length")
    opt.add_argument("--validation", type=int, metavar="N", help="hold N training images out for validation (paper: 5000)")
    opt.add_argument("--train-subset", type=int, metavar="N", help="train on a seeded subset of N images")
    opt.add_argument("--test-subset", type=int, metavar="N", help="test on a seeded subset of N images")
    opt.add_argument("--normalize", choices=NORMALIZATIONS, help="per-pixel mean (paper) or per-channel mean/std, for array data sets")
    opt.add_argument("--no-augment", dest="augment", action="store_false", default=None, help="no data augmentation")
    opt.add_argument("--ten-crop", action="store_true", default=None, help="10-crop testing (image folders)")
    opt.add_argument("--skip-bad-images", action="store_true", default=None,
                     help="image folders: leave out images that cannot be read, listing them (default: refuse the data set, "
                     "naming the first)")

    machine = p.add_argument_group("machine")
    machine.add_argument("--device", default=None, help=DEVICE_HELP)
    machine.add_argument("--precision", choices=PRECISIONS, help="autocast precision (auto: bf16 where it is native: CUDA GPUs, CPUs with AVX512-BF16 or AMX; else fp32)")
    machine.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None, help="channels_last memory format")
    machine.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                         help="torch.compile the model (CUDA graphs on a GPU); the fast recipe compiles runs of "
                         f"{COMPILE_MIN_STEPS:,} steps or more where a compiler is available")
    machine.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm across processes")
    machine.add_argument("--workers", type=int, metavar="N", help="data loading workers (image folders)")
    machine.add_argument("--seed", type=int, metavar="N", default=None, help="seed of the weights, shuffling and augmentation (default: 0)")
    p.set_defaults(run=run)




def run(args: argparse.Namespace) -> None:
    model_overrides = {k: getattr(args, k) for k in ("zero_init_residual", "stride_in_1x1") if getattr(args, k)}
    if hasattr(args, "shortcut"):
        model_overrides["shortcut"] = args.shortcut
    # The TrainConfig fields that have an option (the recipe and the model's options go their own ways).
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
               if f.name not in ("recipe", "model_overrides") and hasattr(args, f.name)}
    if args.resume:
        given = {k: v for k, v in {**options, "recipe": args.recipe}.items() if v is not None} | model_overrides
        train(None, resume=args.resume, changes=given)
        return
    config = make_config(args.recipe or TrainConfig.recipe, model_overrides=model_overrides, **options)
    train(config)
