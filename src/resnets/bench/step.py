"""``resnets bench step``: images/s of the training step alone (forward, loss, backward, SGD
update) on random batches already on the device, so that data loading, which ``bench train``
includes, does not hide the step. torchvision's model in the loop of torchvision's reference
training script (``references/classification/train.py``: eager, NCHW, with ``--amp`` autocast to
fp16 and a GradScaler on a GPU; fp32 on a CPU) beside our step (:func:`training_step`, as the
trainer runs it: channels_last, bf16 autocast where native, then also compiled), interleaved in
the same run."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..errors import check_at_least, one_line
from ..hardware import auto_precision
from ..models import create_model
from ..models.summary import giga, summarize
from ..training.distributed import resolve_device
from ..training.step import GraphedStep, training_step
from .measure import describe, format_columns, machine, number, rotated, timed

MOMENTUM, WEIGHT_DECAY, LR = 0.9, 1e-4, 0.01  # a small lr: random labels, many steps, no divergence


@dataclass
class Mode:
    name: str
    precision: str
    memory_format: str
    step: Callable[[], Any]  # one training step on the mode's batch
    setup_steps: int = 0  # untimed steps before the warm-up: a CUDA graph's eager steps and its recording


def bench_step(model: str = "resnet50", resolution: int = 224, batch_size: int = 64, rounds: int = 5, steps: int = 5,
               warmup: int = 3, device: str = "auto", compile: bool = True) -> dict[str, Any]:
    """Time ``steps`` training steps of each mode per round, for ``rounds`` rounds with the order
    rotating, after ``warmup`` untimed steps (torch.compile compiles in them; a CUDA graph's eager
    steps and its recording come before them); images/s is the
    batch size over the median step. Returns the JSON object that :mod:`resnets.bench` describes."""
    check_at_least(1, resolution=resolution, batch_size=batch_size, rounds=rounds, steps=steps, warmup=warmup)
    dev = resolve_device(device)
    notes: list[str] = []
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, resolution, resolution, generator=g).to(dev)
    net = create_model(model)
    y = torch.randint(0, net.num_classes, (batch_size,), generator=g).to(dev)
    modes = [torchvision_mode(model, x, y, dev, notes), ours(model, x, y, dev, compiled=False)]
    if compile:
        modes.append(ours(model, x, y, dev, compiled=True))
    for mode in list(modes):
        try:
            for _ in range(mode.setup_steps + warmup):
                mode.step()
        except Exception as e:  # torch.compile without a C++ compiler, say: report what ran
            if not mode.name.endswith("compiled"):
                raise
            modes.remove(mode)
            notes.append(f"{mode.name}: left out ({type(e).__name__}: {one_line(e)})")
    seconds: dict[str, list[float]] = {mode.name: [] for mode in modes}
    for r in range(rounds):
        for mode in rotated(modes, r):
            seconds[mode.name] += [timed(mode.step, dev) for _ in range(steps)]

    # A training step costs about three forward passes: forward, then the gradients of the
    # activations and of the weights (2 FLOPs per multiply-add).
    flops = 3 * 2 * summarize(net, (resolution, resolution))[-1].mult_adds
    rows = []
    for mode in modes:
        images_per_s = batch_size / median(seconds[mode.name])
        rows.append({"mode": mode.name, "precision": mode.precision, "memory_format": mode.memory_format,
                     "images_per_s": images_per_s, "ratio": None, "step_ms": 1e3 * median(seconds[mode.name]),
                     "gflops": images_per_s * flops / 1e9})
    for row in rows:
        row["ratio"] = row["images_per_s"] / rows[0]["images_per_s"]
    return {
        "benchmark": "step", "machine": machine(dev),
        "settings": {"model": model, "resolution": resolution, "batch_size": batch_size, "rounds": rounds, "steps": steps,
                     "warmup": warmup, "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                     "mult_adds_per_image": flops // 6, "baseline": rows[0]["mode"]},
        "rows": rows, "notes": notes,
    }


def sgd(net: torch.nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def torchvision_mode(model: str, x: torch.Tensor, y: torch.Tensor, device: torch.device, notes: list[str]) -> Mode:
    """torchvision's reference loop: ``autocast`` (fp16) with a GradScaler under ``--amp`` on a GPU,
    fp32 on a CPU; NCHW. Our model in the same loop where torchvision has none (the CIFAR nets)."""
    import torchvision  # loaded on first use (resnets/__init__.py)

    if model in torchvision.models.list_models(module=torchvision.models):
        net, name = torchvision.models.get_model(model), "torchvision"
    else:
        net, name = create_model(model), "eager-nchw"
        notes.append(f"torchvision has no {model}: the baseline is our model in torchvision's reference loop")
    net = net.to(device).train()
    optimizer, amp = sgd(net), device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step():
        with torch.autocast(device.type, enabled=amp):  # the reference script's --amp: fp16 on CUDA
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return Mode(f"{name}-{'amp' if amp else 'fp32'}", "fp16" if amp else "fp32", "NCHW", step)


def ours(model: str, x: torch.Tensor, y: torch.Tensor, device: torch.device, compiled: bool) -> Mode:
    """Our training step as the trainer takes it with ``--precision auto --channels-last``
    (and ``--compile``: on a GPU, the whole step as one CUDA graph)."""
    net = create_model(model).to(device, memory_format=torch.channels_last).train()
    precision = auto_precision(device)
    forward = torch.compile(net) if compiled else net
    optimizer, x = sgd(net), x.contiguous(memory_format=torch.channels_last)
    if compiled and device.type == "cuda":
        graphed = GraphedStep(forward, optimizer, torch.zeros(3, dtype=torch.float64, device=device), precision)
        return Mode("resnets-compiled", precision, "channels_last", lambda: graphed(x, y), graphed.eager_steps + 1)
    step = lambda: training_step(forward, optimizer, None, x, y, precision)
    return Mode("resnets-compiled" if compiled else "resnets", precision, "channels_last", step)


def format_step(result: dict[str, Any]) -> str:
    """The result of :func:`bench_step` as the text printed by ``resnets bench step``."""
    s = result["settings"]
    header = ("mode", "precision", "memory", "images/s", "ratio", "ms/step", "GFLOP/s")
    rows = [(r["mode"], r["precision"], r["memory_format"], number(r["images_per_s"]), f"{r['ratio']:.2f}x",
             number(r["step_ms"]), number(r["gflops"])) for r in result["rows"]]
    lines = [
        describe(result["machine"]),
        f"{s['model']}, {s['resolution']}x{s['resolution']}, batch {s['batch_size']}: forward, loss, backward and SGD "
        f"update on random batches held on the device; {giga(s['mult_adds_per_image'])} multiply-adds per image "
        f"forward (GFLOP/s count 3 passes); {s['rounds']} rounds of {s['steps']} steps per mode, interleaved, after "
        f"{s['warmup']} warm-up step{'s' if s['warmup'] > 1 else ''}; ratio: images/s over {s['baseline']}'s",
        "",
        *format_columns(header, rows, left=3),
    ]
    lines += [f"note: {note}" for note in result["notes"]]
    return "\n".join(lines)
