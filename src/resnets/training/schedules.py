"""Learning-rate schedules (Section 4.2's steps, Section 3.4's plateau, and two modern ones), and
Section 4.2's warm-up for ResNet-110."""

from __future__ import annotations

import math
from typing import Callable

import torch

from .recipes import TrainConfig


def one_cycle(total_steps: int, warmup: float = 0.25, start: float = 0.1, end: float = 0.001) -> Callable[[int], float]:
    """The one-cycle factor of the peak lr at each step: linear from ``start`` up to 1 over the first
    ``warmup`` of the steps, then linear down to ``end`` at the last step. Written out because
    torch's OneCycleLR divides by zero for runs of fewer than about 8 steps."""
    peak = warmup * total_steps

    def factor(step: int) -> float:
        if step < peak:
            return start + (1 - start) * step / peak
        return 1 - (1 - end) * min(1.0, (step - peak) / (total_steps - peak))

    return factor


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    """The learning-rate schedule, stepped once per iteration (``plateau``: once per epoch); each
    works for any number of steps from 1.

    The per-step schedules are ``LambdaLR``s: they compute each step's lr from the base lr, where
    ``MultiStepLR`` and ``CosineAnnealingLR`` scale the current one, which would keep ResNet-110's
    warm-up lr (Section 4.2) for the whole run once the warm-up had overridden it."""
    if config.schedule == "step":
        milestones = sorted(m if m >= 1 else max(1, round(m * total_steps)) for m in config.milestones)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.1 ** sum(step >= m for m in milestones))
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(total_steps))
    if config.schedule == "cosine":  # CosineAnnealingLR's curve, to 0 at the last step
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=5)
    raise ValueError(f"unknown schedule {config.schedule!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def depth(name: str) -> int:
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else 0


def warms_up(config: TrainConfig) -> bool:
    """Section 4.2, ResNet-110: lr ``warmup_lr`` (0.01) until the training error is below
    ``warmup_until_error`` (80%), for networks of ``warmup_min_depth`` layers or more."""
    return config.warmup_lr is not None and depth(config.model) >= config.warmup_min_depth


def end_warmup(config: TrainConfig, optimizer: torch.optim.Optimizer) -> None:
    """Section 4.2: "then go back to 0.1". A ``LambdaLR``'s next step computes the recipe's lr from
    the base lr by itself; ``ReduceLROnPlateau`` only ever scales the current lr, so it is set here."""
    if config.schedule == "plateau":
        set_lr(optimizer, config.lr)
