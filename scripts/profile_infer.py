"""Where resnet50's inference time goes: torch.profiler's self time per operator, as a share of
the whole, for ``resnets.optimize_for_inference`` (eager, or ``--compile``: frozen and fused),
the figures behind docs/BENCHMARKS.md's profile (`resnets bench infer` gives the speeds).

    python scripts/profile_infer.py [--dtype fp32|bf16] [--compile] [--batch-size 8] [--top 8]
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

import resnets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--top", type=int, default=8)
    args = p.parse_args()
    model = resnets.optimize_for_inference(resnets.create_model(args.model).eval(), dtype=args.dtype, compile=args.compile)
    x = torch.randn(args.batch_size, 3, args.resolution, args.resolution)
    for _ in range(args.calls):  # warm-up (and compilation)
        model(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.calls):
            model(x)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{args.model}, {args.dtype}{', compiled' if args.compile else ''}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads: self time per operator over {args.calls} calls")
    for e in events[:args.top]:
        print(f"{100 * e.self_cpu_time_total / total:5.1f}%  {e.count // args.calls:4d} calls  {e.key}")


if __name__ == "__main__":
    main()
