"""Where a model's time goes: torch.profiler's self time per operator, as a share of the whole,
the figures behind docs/BENCHMARKS.md's profiles (`resnets bench infer` and `bench step` give the
speeds). Inference goes through ``resnets.optimize_for_inference`` (eager, or ``--compile``:
frozen and fused); ``--train`` profiles the training step as the trainer takes it
(channels_last, autocast to ``--dtype``, SGD with momentum; ``--compile``: torch.compile).

    python scripts/profile_ops.py [--model resnet50] [--dtype fp32|bf16] [--compile] [--batch-size 8]
    python scripts/profile_ops.py --train --model resnet20 --resolution 32 --batch-size 128 --calls 5
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

import resnets
from resnets.training.step import training_step


def inference(args: argparse.Namespace, x: torch.Tensor):
    model = resnets.optimize_for_inference(resnets.create_model(args.model).eval(), dtype=args.dtype, compile=args.compile)
    return lambda: model(x)


def train_step(args: argparse.Namespace, x: torch.Tensor):
    model = resnets.create_model(args.model).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    net = torch.compile(model) if args.compile else model
    x, y = x.to(memory_format=torch.channels_last), torch.randint(0, model.fc.out_features, (len(x),))
    return lambda: training_step(net, optimizer, scaler, x, y, args.dtype)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--train", action="store_true", help="the training step, not inference")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--top", type=int, default=8)
    args = p.parse_args()
    x = torch.randn(args.batch_size, 3, args.resolution, args.resolution)
    call = (train_step if args.train else inference)(args, x)
    for _ in range(args.calls):  # warm-up (and compilation)
        call()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.calls):
            call()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{args.model}, {'training step' if args.train else 'inference'}, {args.dtype}{', compiled' if args.compile else ''}, "
          f"batch {args.batch_size}, {torch.get_num_threads()} threads: self time per operator over {args.calls} calls")
    for e in events[:args.top]:
        print(f"{100 * e.self_cpu_time_total / total:5.1f}%  {e.count // args.calls:4d} calls  {e.key}")


if __name__ == "__main__":
    main()
