"""The one training loop behind ``resnets train`` and every experiment of ``resnets reproduce``.

The loop is short: forward, loss, backward, step, log. Data, schedules, checkpoints, metrics and
the process group are each a named call out of it.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data import ArrayData, DeviceLoader, FolderData, channel_stats, folder_loaders, load_data, pixel_mean
from ..errors import UserError
from ..models import create_model, model_config
from . import checkpoint
from .distributed import Context, all_reduce_sum, barrier, setup
from .evaluate import autocast, errors, evaluate
from .metrics import MetricsLog
from .plots import plot_runs
from .recipes import TrainConfig, validate

CONFIG = "config.json"
RESULTS = "results.json"
CURVES = "curves.png"


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class Run:
    dir: Path
    config: TrainConfig
    model: nn.Module
    results: dict[str, Any]


@dataclass
class Pipeline:
    """What the loop consumes: batches and the facts a checkpoint must remember."""

    train: Any
    test: Any
    val: Optional[Any]
    classes: list[str]
    meta: dict[str, Any]  # preprocessing: mean, std, input size


def default_out(config: TrainConfig) -> Path:
    data = Path(config.data).name.split(".")[0] or "data"
    return Path("runs") / f"{config.model}-{data}-{config.recipe}-{datetime.now():%Y%m%d-%H%M%S}"


def build_pipeline(config: TrainConfig, ctx: Context) -> Pipeline:
    """Load the data and wrap it in loaders: whole-batch augmentation on the device for array
    data sets, DataLoader workers for large image folders."""
    data = load_data(config.data)
    per_rank = config.batch_size // ctx.world_size
    if per_rank < 1:
        raise UserError(f"--batch-size {config.batch_size} is smaller than the {ctx.world_size} processes")
    if isinstance(data, FolderData):
        loaders = folder_loaders(data, per_rank, config.workers, ten_crop=config.ten_crop, augment=config.augment,
                                 rank=ctx.rank, world_size=ctx.world_size, seed=config.seed)
        meta = dict(loaders.meta)
        return Pipeline(loaders.train, loaders.test, None, data.classes, meta)
    if config.validation:
        data, val = data.holdout(config.validation, seed=config.seed), data
    data = data.subset(config.train_subset, config.test_subset, seed=config.seed)
    if config.normalize == "pixel":  # Section 4.2: "the per-pixel mean subtracted"
        mean, std = pixel_mean(data.train_images), torch.ones(data.train_images.shape[1], 1, 1)
    else:
        mean, std = channel_stats(data.train_images)
    common = dict(mean=mean, std=std, seed=config.seed, rank=ctx.rank, world_size=ctx.world_size,
                  device=ctx.device, channels_last=config.channels_last)
    train = DeviceLoader(data.train_images, data.train_labels, per_rank, train=True,
                         crop_padding=data.crop_padding if config.augment else 0,
                         flip=data.flip and config.augment, **common)
    # Evaluation with large batches: no gradients to keep.
    test = DeviceLoader(data.test_images, data.test_labels, max(per_rank, 500), train=False, **common)
    val_loader = None
    if config.validation:
        # holdout() moved the held-out images into the test split; the real test set stays in `val`.
        val_loader, test = test, DeviceLoader(val.test_images, val.test_labels, max(per_rank, 500), train=False, **common)
    meta = dict(mean=mean.tolist(), std=std.tolist(), input_size=list(data.train_images.shape[2:]), resize=None,
                data=data.name)
    return Pipeline(train, test, val_loader, data.classes, meta)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    """The learning-rate schedule, stepped once per iteration (``plateau``: once per epoch)."""
    if config.schedule == "step":
        milestones = sorted(config.milestones)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.1 ** sum(step >= m for m in milestones))
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=total_steps + 1, pct_start=0.25,
                                                   anneal_strategy="linear", div_factor=10, final_div_factor=100,
                                                   cycle_momentum=False)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=5)


def depth(name: str) -> int:
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
             "python": torch.tensor(random.getstate()[1], dtype=torch.int64)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), 624, 0, 0.0))
    random.setstate((3, tuple(state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train(
    config: TrainConfig,
    resume: Optional[str | Path] = None,
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
    progress: Optional[bool] = None,
) -> Run:
    """Train ``config`` (or continue the run in directory ``resume``) and return the run.

    ``callbacks`` are called with each epoch's metrics, after its checkpoint is written.
    ``progress``: show tqdm bars (default: when stderr is a terminal).
    """
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / CONFIG).is_file():
            raise UserError(f"{run_dir} is not a run directory (no {CONFIG})")
        config = TrainConfig.from_dict(json.loads((run_dir / CONFIG).read_text()))
        state = checkpoint.load_state(run_dir / checkpoint.LAST_STATE)
    else:
        validate(config)
        run_dir = Path(config.out) if config.out else default_out(config)
        if (run_dir / checkpoint.LAST_STATE).exists():
            raise UserError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or choose another --out")
        state = None
    ctx = setup(config.device)
    precision = config.precision if config.precision != "auto" else ("bf16" if ctx.device.type == "cuda" else "fp32")
    seed_everything(config.seed)

    pipe = build_pipeline(config, ctx)
    in_channels = len(pipe.meta["mean"])
    arch = model_config(config.model, num_classes=len(pipe.classes), in_channels=in_channels, **config.model_overrides)
    net = create_model(config.model, num_classes=len(pipe.classes), in_channels=in_channels, **config.model_overrides)
    meta = {"model": config.model, "model_config": arch, "classes": pipe.classes, **pipe.meta}
    if config.sync_bn and ctx.distributed:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    net = net.to(ctx.device, memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
    model: nn.Module = net
    if ctx.distributed:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if config.compile:
        model = torch.compile(model)

    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                                weight_decay=config.weight_decay)
    steps_per_epoch = len(pipe.train)
    total_steps = config.iterations or config.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = make_scheduler(config, optimizer, total_steps)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=precision == "fp16")
    warming_up = config.warmup_lr is not None and depth(config.model) >= config.warmup_min_depth

    epoch = step = 0
    elapsed = 0.0
    if state is not None:
        checkpoint_weights = checkpoint.load_model(run_dir / checkpoint.LAST_WEIGHTS)[0].state_dict()
        net.load_state_dict(checkpoint_weights)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        epoch, step, elapsed, warming_up = state["epoch"], state["step"], state["elapsed"], state["warming_up"]
        set_rng_state(state["rng"])
    if warming_up:
        set_lr(optimizer, config.warmup_lr)

    log = None
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CONFIG).write_text(config.to_json())
        log = MetricsLog(run_dir, resume_epoch=epoch)
        print(f"training {config.model} on {config.data} ({len(pipe.classes)} classes) with recipe {config.recipe}: "
              f"{total_steps} iterations, {epochs} epochs, {precision} on {ctx.device}"
              f"{f' x {ctx.world_size} processes' if ctx.distributed else ''}; run directory {run_dir}", flush=True)
    show_progress = ctx.is_main and (sys.stderr.isatty() if progress is None else progress)

    while epoch < epochs and step < total_steps:
        started = time.perf_counter()
        getattr(pipe.train, "sampler", pipe.train).set_epoch(epoch)  # a DataLoader's DistributedSampler, or ours
        model.train()
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss, top-1 misses, images
        window = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # the same since the last report
        end = min(step + steps_per_epoch, total_steps)  # the step this epoch ends at
        bar = tqdm(total=end - step, desc=f"epoch {epoch + 1}/{epochs}", disable=not show_progress, leave=False,
                   dynamic_ncols=True)
        for x, y in pipe.train:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            with autocast(ctx.device, precision):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if config.schedule != "plateau":
                scheduler.step()
            if warming_up:  # Section 4.2: lr 0.01 until the training error is below 80%
                set_lr(optimizer, config.warmup_lr)
            step += 1
            window += torch.stack([loss.detach() * len(y), errors(logits.detach(), y, k=1)[0], torch.tensor(len(y), device=ctx.device)]).double()
            if step % 10 == 0 or step == end:
                # One synchronization per report: check the loss, update the bar, end the warm-up.
                loss_sum, miss, n = all_reduce_sum(window.clone(), ctx).tolist()
                if not math.isfinite(loss_sum):
                    raise Diverged(f"the training loss became {loss_sum / n} at step {step} (epoch {epoch + 1}); "
                                   f"the last good checkpoint is in {run_dir / 'checkpoints'}")
                if warming_up and miss / n < config.warmup_until_error:
                    warming_up = False  # the schedule's next step restores the recipe's lr
                sums += window
                window.zero_()
                bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{1 - miss / n:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.3g}",
                                img_s=f"{sums[2].item() * ctx.world_size / (time.perf_counter() - started):.0f}")
            bar.update(1)
            if step == end:
                break
        bar.close()
        seconds = time.perf_counter() - started
        train_loss, train_miss, n = all_reduce_sum(sums, ctx).tolist()
        elapsed += seconds
        test = evaluate(model, pipe.test, ctx, precision)
        val = evaluate(model, pipe.val, ctx, precision) if pipe.val is not None else None
        if config.schedule == "plateau":
            scheduler.step((val or test)["top1_error"])
        record = {
            "epoch": epoch, "epochs": epochs, "step": step, "lr": optimizer.param_groups[0]["lr"],
            "train_loss": train_loss / n, "train_error": train_miss / n,
            "val_loss": val and val["loss"], "val_error": val and val["top1_error"],
            "test_loss": test["loss"], "test_error": test["top1_error"], "test_top5_error": test["top5_error"],
            "images_per_s": n / seconds, "elapsed": elapsed,
        }
        epoch += 1
        if ctx.is_main:
            checkpoint.save_model(run_dir / checkpoint.LAST_WEIGHTS, net, meta)
            checkpoint.save_state(run_dir / checkpoint.LAST_STATE, {
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "epoch": epoch, "step": step, "elapsed": elapsed, "warming_up": warming_up, "rng": rng_state(),
            })
            log.log(record)
        barrier(ctx)
        for callback in callbacks:
            callback(record)

    results = {}
    if ctx.is_main:
        checkpoint.save_model(run_dir / checkpoint.WEIGHTS, net, meta)
        log.close()
        test_top5 = record["test_top5_error"] if len(pipe.classes) > 5 else None
        results = {
            "model": config.model, "data": config.data, "recipe": config.recipe,
            "test_top1": 1 - record["test_error"], "test_top5": None if test_top5 is None else 1 - test_top5,
            "test_error": record["test_error"], "epochs": epochs, "iterations": step, "wall_time_s": elapsed,
            "device": torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
            "processes": ctx.world_size, "precision": precision,
        }
        checkpoint.atomic_write(run_dir / RESULTS, lambda tmp: Path(tmp).write_text(json.dumps(results, indent=2)))
        plot_runs([run_dir], run_dir / CURVES, labels=[config.model], title=f"{config.model} on {Path(config.data).name}")
        print(f"done: test accuracy {100 * results['test_top1']:.2f}% after {step} iterations in {elapsed:.0f}s; "
              f"results in {run_dir / RESULTS}", flush=True)
    return Run(run_dir, config, net, results)
