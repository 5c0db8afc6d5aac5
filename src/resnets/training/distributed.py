"""One process or many: torchrun's environment decides (DistributedDataParallel, NCCL on GPUs,
gloo on CPUs). Without torchrun the same code runs as a single process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


#: What ``--device`` takes, in every command: the names ``resolve_device`` reads.
DEVICE_HELP = "auto (default: CUDA when present), cpu, cuda, cuda:1, ..."


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"``: the process's CUDA device when there is one, else the CPU. ``"cuda"`` without
    an index is the process's own GPU too (torchrun's ``LOCAL_RANK``), as DDP needs."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}: {e}") from None
    if device.type not in ("cpu", "cuda"):  # torch parses mps, meta, xpu...: none is one resnets runs on
        raise ValueError(f"--device {name}: resnets runs on cpu or cuda (a CUDA GPU)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def setup(device: str = "auto") -> Context:
    """Join the process group that torchrun describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size == 1:
        return Context(device=resolved)
    if not dist.is_initialized():
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), resolved)


def all_reduce_sum(t: torch.Tensor, ctx: Context) -> torch.Tensor:
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()
