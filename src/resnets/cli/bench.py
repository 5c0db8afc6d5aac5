"""``resnets bench infer``, ``train`` and ``step``: speed beside torchvision's, measured in the same
run, as a table or as JSON (its schema: :mod:`resnets.bench`)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

from ..bench import MODES, bench_infer, bench_step, bench_train, format_infer, format_step, format_train
from ..models import list_models
from ..training.distributed import DEVICE_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="inference and training speed beside torchvision's, measured in the same run",
                       description="Benchmarks whose peers are measured in the same run: `bench infer` (images/s, "
                       "latency, GFLOP/s and the fraction of the matmul peak, in each inference mode), `bench train` "
                       "(our training pipeline against torchvision's usual one, with each run's test accuracy) and `bench step` "
                       "(the training step alone against torchvision's reference loop).")
    what = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)

    infer = what.add_parser("infer", help="images/s and batch-1 latency of each inference mode beside torchvision's model",
                            description="Time a model in the modes eager-fp32, optimized-fp32 (batch norms folded, "
                            "channels_last), optimized-bf16 (where the CPU has avx512_bf16 or amx_bf16, or on a GPU), "
                            "compiled-fp32 and compiled-bf16 (the optimized model through torch.compile with freezing, which "
                            "fuses each convolution with the ReLU and addition after it) and onnxruntime, beside torchvision's same "
                            "model in eager fp32 (our eager model where torchvision has none), round-robin over the "
                            "modes for several rounds (medians), with a large matmul in fp32 and bf16 timed in the "
                            "same rounds as the machine's peak.")
    infer.add_argument("--model", default="resnet50", help=f"one of: {', '.join(list_models())} (default: resnet50)")
    infer.add_argument("--resolution", type=int, default=224, metavar="N", help="square input side in pixels (default: 224)")
    infer.add_argument("--batch-size", type=int, default=8, metavar="N", help="batch size of the images/s (default: 8)")
    infer.add_argument("--rounds", type=int, default=5, metavar="N", help="rounds over all modes (default: 5)")
    infer.add_argument("--calls", type=int, default=5, metavar="N",
                       help="timed calls per mode and round, at the batch size and at batch 1 each (default: 5)")
    infer.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed calls per mode first, at least 1 (default: 3)")
    infer.add_argument("--matmul-size", type=int, metavar="N", help="side of the peak's square matmul (default: 2048 on "
                       "a CPU, 8192 on a GPU)")
    infer.add_argument("--modes", nargs="+", choices=MODES, metavar="MODE",
                       help=f"the modes to time (default: all of {', '.join(MODES[1:])}); the baseline, {MODES[0]}, is "
                       "timed for torchvision's models (resnet18-152) whatever is asked")
    infer.add_argument("--device", default="auto", help=DEVICE_HELP)
    infer.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    infer.set_defaults(run=run_infer)

    train = what.add_parser("train", help="training images/s and test accuracy of our pipeline and torchvision's",
                            description="Train the same model for the same iterations, batch and learning rate with "
                            "resnets' trainer (the fast recipe's precision and memory format, images held on the device) "
                            "and with torchvision's usual pipeline (ImageFolder, RandomCrop with padding 4, "
                            "RandomHorizontalFlip, ToTensor, Normalize, DataLoader workers, fp32 NCHW), one after the "
                            "other in the same run; print each one's images/s and final test accuracy.")
    train.add_argument("--data", required=True, metavar="D", help="an image folder with train/ and test/ (or val/) of "
                       "same-size images, or a tarball of one (e.g. the CIFAR-10 JPEG copy, cifar10-jpeg.tar.gz)")
    train.add_argument("--model", default="resnet20", help="a model name (default: resnet20)")
    train.add_argument("--iterations", type=int, default=400, metavar="N", help="training steps of each run (default: 400)")
    train.add_argument("--batch-size", type=int, default=128, metavar="N", help="images per step (default: 128)")
    train.add_argument("--lr", type=float, default=0.1, metavar="LR", help="peak learning rate, cosine to 0 (default: 0.1)")
    train.add_argument("--workers", type=int, default=4, metavar="N", help="torchvision's DataLoader workers (default: 4)")
    train.add_argument("--seed", type=int, default=0, metavar="N", help="seed of both runs (default: 0)")
    train.add_argument("--device", default="auto", help=DEVICE_HELP)
    train.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    train.set_defaults(run=run_train)

    step = what.add_parser("step", help="training-step images/s beside torchvision's reference loop",
                           description="Time the training step alone (forward, loss, backward, SGD update) on random "
                           "batches held on the device: torchvision's model in the loop of torchvision's reference "
                           "training script (eager, NCHW; --amp autocast to fp16 with a GradScaler on a GPU, fp32 on a "
                           "CPU) beside resnets' step as the trainer takes it (channels_last, bf16 autocast where native), "
                           "eager and compiled, round-robin over the modes for several rounds (medians).")
    step.add_argument("--model", default="resnet50", help=f"one of: {', '.join(list_models())} (default: resnet50)")
    step.add_argument("--resolution", type=int, default=224, metavar="N", help="square input side in pixels (default: 224)")
    step.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per step (default: 64)")
    step.add_argument("--rounds", type=int, default=5, metavar="N", help="rounds over all modes (default: 5)")
    step.add_argument("--steps", type=int, default=5, metavar="N", help="timed steps per mode and round (default: 5)")
    step.add_argument("--warmup", type=int, default=3, metavar="N",
                      help="untimed steps per mode first, compilation included (default: 3)")
    step.add_argument("--no-compile", dest="compile", action="store_false", help="leave out the compiled mode")
    step.add_argument("--device", default="auto", help=DEVICE_HELP)
    step.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    step.set_defaults(run=run_step)

    for benchmark in what.choices.values():
        # As timm's benchmark.py --results-file: the table for the reader, the JSON for a script.
        benchmark.add_argument("--results-file", metavar="FILE", type=results_file,
                               help="also write the JSON object to FILE (the table is printed as usual)")
        # `resnets bench infer --debug` as well as `resnets bench --debug infer`
        benchmark.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                               help="show the full traceback on errors")


def results_file(value: str) -> Path:
    """``--results-file``: a file that can be written, checked before minutes of measuring."""
    path = Path(value).expanduser()
    folder = path.parent
    if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {value}: " + (
            "it is a folder" if path.is_dir() else f"no folder {folder}" if not folder.is_dir() else f"{folder} is not writable"))
    return path


def report(args: argparse.Namespace, result: dict, table: Callable[[dict], str]) -> None:
    """Print the result as a table (or as JSON, with --json), then write it to --results-file too."""
    print(json.dumps(result, indent=2) if args.json else table(result), flush=True)
    if args.results_file:
        args.results_file.write_text(json.dumps(result, indent=2) + "\n")


def run_infer(args: argparse.Namespace) -> None:
    report(args, bench_infer(args.model, args.resolution, args.batch_size, args.rounds, args.calls, args.warmup,
                             args.matmul_size, args.device, args.modes), format_infer)


def run_train(args: argparse.Namespace) -> None:
    report(args, bench_train(args.data, args.model, args.iterations, args.batch_size, args.workers, args.lr, args.device,
                             args.seed), format_train)


def run_step(args: argparse.Namespace) -> None:
    report(args, bench_step(args.model, args.resolution, args.batch_size, args.rounds, args.steps, args.warmup, args.device,
                            args.compile), format_step)
