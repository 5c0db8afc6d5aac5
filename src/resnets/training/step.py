"""One SGD step (Section 3.4: SGD with momentum, batch norm after each convolution), as the
trainer takes it: eagerly, or on a GPU as one CUDA graph that replays the whole step.

A CIFAR net's step is hundreds of small kernels. Launched one by one from Python, the host looks
like what limits it: on one H100, resnet20 trained alone no faster than each of four runs sharing
the GPU (docs/REPRODUCTION.md, lease 4, gives the estimate). :class:`GraphedStep` records forward, loss, backward, the
SGD update and the running sums of loss and errors once, and then launches them all at once each
step: PyTorch's "whole network capture" (https://pytorch.org/docs/stable/notes/cuda.html#whole-network-capture).
torch.compile's ``mode="reduce-overhead"`` graphs only the forward and backward passes, leaving
the update and the bookkeeping to Python.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import one_line
from .evaluate import autocast, errors


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler], x: torch.Tensor,
                  y: torch.Tensor, precision: str, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on the batch ``(x, y)``: the forward pass under ``precision``'s autocast, the
    cross-entropy in fp32, backward and update (through ``scaler``, which fp16 needs; ``None`` for
    bf16 and fp32). Returns the loss and logits, left on the device."""
    with autocast(x.device, precision):
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss, logits


def count(sums: torch.Tensor, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
    """Add a batch's summed loss, top-1 misses and images to ``sums`` (on the device: no sync)."""
    sums[0] += loss.detach() * len(y)
    sums[1] += errors(logits.detach(), y, k=1)[0]
    sums[2] += len(y)


class GraphedStep:
    """:func:`training_step` then :func:`count` into ``sums``, replayed as one CUDA graph.

    The first ``eager_steps`` calls run eagerly, on a side stream (cuDNN picks its kernels,
    torch.compile compiles, the momentum buffers are made); the next call records the graph and
    replays it, as does every later call, with its batch copied into the graph's input. The
    update is SGD's fused kernel reading the learning rate from a tensor, so that a schedule
    changes it between replays. Every batch is trained on once, in order: the results are those
    of the eager loop. The optimizer must be SGD without a gradient scaler (bf16 or fp32)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.SGD, sums: torch.Tensor, precision: str,
                 label_smoothing: float = 0.0, eager_steps: int = 3) -> None:
        if precision == "fp16":
            raise ValueError("fp16's gradient scaler reads its overflow check on the host: no CUDA graph")
        self.model, self.optimizer, self.sums = model, optimizer, sums
        self.precision, self.label_smoothing, self.eager_steps = precision, label_smoothing, eager_steps
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.failed = False
        self.side = torch.cuda.Stream()  # the eager steps run off the default stream, as the capture will
        self.x = self.y = None
        self.lrs: list[torch.Tensor] = []  # each parameter group's lr, as the graph reads it

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        count(self.sums, *training_step(self.model, self.optimizer, None, x, y, self.precision, self.label_smoothing), y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.graph is None and self.eager_steps <= 0 and not self.failed:
            self.capture(x, y)
        if self.graph is None:
            self.eager_steps -= 1
            self.eager(x, y)
            return
        self.x.copy_(x)
        self.y.copy_(y)
        for group, lr in zip(self.optimizer.param_groups, self.lrs):
            lr.fill_(group["lr"])  # a scalar written on the device: no sync
        self.graph.replay()

    def eager(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """A step launched from Python, on a side stream as the capture will be."""
        for group in self.optimizer.param_groups:  # again after a resume: its state may say foreach
            group["fused"], group["foreach"] = True, False
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            self.step(x, y)
        torch.cuda.current_stream().wait_stream(self.side)

    def capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Record the step on copies of ``(x, y)``, which later batches are copied into. Where that
        fails, a warning, and the steps stay eager: a capture runs nothing, so the batch is then
        trained on as if nothing had been tried."""
        self.x, self.y = x.clone(), y.clone()
        groups = self.optimizer.param_groups
        rates = [group["lr"] for group in groups]
        self.lrs = [torch.tensor(float(lr), dtype=torch.float32, device=x.device) for lr in rates]  # as the kernel reads it
        for group, lr in zip(groups, self.lrs):
            group["lr"] = lr
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.step(self.x, self.y)
        except RuntimeError as e:
            warnings.warn(f"the training step could not be recorded as a CUDA graph, so it runs uncaptured "
                          f"({type(e).__name__}: {one_line(e)})")
            self.failed = True
            return
        finally:
            for group, lr in zip(groups, rates):  # the schedule and the checkpoints keep numbers
                group["lr"] = lr
        self.graph = graph
