"""The one training loop behind ``resnets train`` and every experiment of ``resnets reproduce``.

The loop is short: forward, loss, backward, step, log. Data, schedules, checkpoints, metrics and
the process group are each a named call out of it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import UserError
from ..files import atomic_write
from ..hardware import auto_precision, can_compile, device_name, native_bf16
from ..models import ResNet, get_weights, model_config
from ..models.weights import load_state_dict
from . import checkpoint
from .distributed import Context, all_reduce_sum, barrier, setup
from .evaluate import evaluate
from .metrics import MetricsLog, read_metrics, spans
from .pipeline import build_pipeline
from .plots import CURVES, plot_runs
from .recipes import MACHINE_FIELDS, TrainConfig, validate
from .schedules import end_warmup, make_scheduler, set_lr, warms_up
from .step import GraphedStep, count, training_step

CONFIG = "config.json"
RESULTS = "results.json"


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class Run:
    dir: Path
    config: TrainConfig
    model: nn.Module
    results: dict[str, Any]


def default_out(config: TrainConfig) -> Path:
    data = Path(config.data).name.split(".")[0] or "data"
    return Path("runs") / f"{config.model}-{data}-{config.recipe}-{datetime.now():%Y%m%d-%H%M%S}"


# "auto" compiles runs of this many steps or more: compiling resnet20's training step cost about
# 35 s on 2 CPU cores and made each step 1.36x faster in bf16 (docs/BENCHMARKS.md), so a few
# hundred steps repay it; 2,000 leaves a margin for bigger nets and slower compilers, and keeps
# short runs (tests, demos) from waiting on a compiler.
COMPILE_MIN_STEPS = 2_000


def compiles(compile: Union[bool, str], total_steps: int, device: torch.device) -> bool:
    """Whether a run compiles its model: as asked, or for ``"auto"`` where a compiler is there and
    the run is long enough to repay the compilation."""
    if compile == "auto":
        return total_steps >= COMPILE_MIN_STEPS and can_compile(device)
    return bool(compile)


def start_from(net: ResNet, arch: dict[str, Any], config: TrainConfig) -> None:
    """``--weights``: begin from trained weights (fine-tuning), loaded strictly, but for a classifier
    of another number of classes, which starts afresh (as timm's pretrained models given another
    ``num_classes``). Their other options (input channels, shortcut, ...) must be the run's."""
    trained = get_weights(config.model, config.weights)
    trained.check({**arch, "num_classes": trained.overrides.get("num_classes", arch["num_classes"])})
    state = trained.state_dict(progress=False)
    if "fc.weight" in state and state["fc.weight"].shape[0] != arch["num_classes"]:
        state = {**state, "fc.weight": net.fc.weight.detach(), "fc.bias": net.fc.bias.detach()}
    load_state_dict(net, state, trained)


class Trainer:
    """One run: its data, model, optimizer and schedule, and where it stands (epoch and step)."""

    def __init__(self, config: TrainConfig, ctx: Context) -> None:
        self.config, self.ctx = config, ctx
        self.precision = config.precision if config.precision != "auto" else auto_precision(ctx.device)
        self.pipe = build_pipeline(config, ctx)
        checkpoint.seed_everything(config.seed)  # after the data: a first load (decoding) must not change the run
        classes = self.pipe.classes
        arch = model_config(config.model, num_classes=len(classes), in_channels=len(self.pipe.meta["mean"]),
                            **config.model_overrides)
        self.meta = {"model": config.model, "model_config": arch, "classes": classes, **self.pipe.meta}
        net = ResNet(**arch)
        if config.sync_bn and ctx.distributed:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        self.net = net.to(ctx.device, memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
        self.model: nn.Module = self.net  # what the forward pass calls: maybe wrapped for DDP, compiled
        if ctx.distributed:
            self.model = nn.parallel.DistributedDataParallel(self.net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        if ctx.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once

        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr, momentum=config.momentum,
                                         nesterov=config.nesterov, weight_decay=config.weight_decay)
        self.steps_per_epoch = len(self.pipe.train)
        if self.steps_per_epoch == 0:  # training batches are whole: fewer images than one batch make none
            raise UserError(f"the training set is smaller than one batch of {self.pipe.train.batch_size} images: "
                            "give a smaller --batch-size")
        self.total_steps = config.iterations or config.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.scheduler = make_scheduler(config, self.optimizer, self.total_steps)
        # Compiled on one GPU, the whole step replays as one CUDA graph (GraphedStep): small CIFAR
        # nets otherwise look bound by kernel launches (docs/REPRODUCTION.md, lease 4). Evaluation then runs the eager net, so that
        # only the training graph is compiled; otherwise it goes through the wrapper (DDP broadcasts
        # the batch norm statistics of rank 0 in its forward).
        self.compiled = compiles(config.compile, self.total_steps, ctx.device)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.precision == "fp16")
        if self.compiled:
            self.model = torch.compile(self.model)
        self.window = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss, top-1 misses, images since the last report
        graphs = self.compiled and ctx.device.type == "cuda" and not ctx.distributed and not self.scaler.is_enabled()
        self.graphed = (GraphedStep(self.model, self.optimizer, self.window, self.precision, config.label_smoothing)
                        if graphs else None)
        self.eval_model = self.net if self.graphed is not None else self.model
        if self.scaler.is_enabled():
            # The scaler skips the update of a step whose scaled gradients overflow (the first few,
            # by design) while the schedule advances, as in torchvision's reference scripts; torch's
            # scheduler then warns of a wrong call order that is not there (pytorch/pytorch#44511).
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
        self.epoch = self.step = 0
        self.elapsed = 0.0
        self.warming_up = warms_up(config)
        if self.warming_up:
            set_lr(self.optimizer, config.warmup_lr)

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, the weights included: one file, written atomically, so
        that a kill between two writes can never pair one epoch's weights with another's state."""
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "epoch": self.epoch, "step": self.step, "elapsed": self.elapsed,
                "warming_up": self.warming_up, "rng": checkpoint.rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``, refusing one that this run's data cannot have produced (a
        resumed run's data may have moved: ``open_run``'s ``changes``)."""
        config = self.config
        load_state_dict(self.net, state["model"], f"the checkpoint in {config.out} (was it trained on other data than {config.data}?)")
        if state["step"] != min(state["epoch"] * self.steps_per_epoch, self.total_steps):
            # The batch is split over the processes: another number of them can round an epoch differently.
            processes = f" in {self.ctx.world_size} processes" if self.ctx.distributed else ""
            raise UserError(f"the checkpoint is at iteration {state['step']} after {state['epoch']} epochs, but "
                            f"{config.data} makes epochs of {self.steps_per_epoch} iterations{processes}, so it was "
                            "trained on other data or another number of processes")
        self.optimizer.load_state_dict(state["optimizer"])
        scheduler = state["scheduler"]
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR) and "lr_lambdas" not in scheduler:
            # A cosine run saved when its schedule was a CosineAnnealingLR: the same curve, by step.
            scheduler = {**scheduler, "lr_lambdas": [None] * len(self.optimizer.param_groups)}
        self.scheduler.load_state_dict(scheduler)
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.elapsed, self.warming_up = state["epoch"], state["step"], state["elapsed"], state["warming_up"]
        checkpoint.set_rng_state(state["rng"])

    def train_epoch(self, show_progress: bool) -> dict[str, float]:
        """One pass over the training data (or up to the last iteration): forward, loss, backward,
        step. The device is synchronized every 10 steps only, to report and check the loss."""
        config, ctx = self.config, self.ctx
        started = time.perf_counter()
        getattr(self.pipe.train, "sampler", self.pipe.train).set_epoch(self.epoch)  # a DistributedSampler, or ours
        self.model.train()
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss, top-1 misses, images
        window = self.window.zero_()  # the same since the last report
        end = min(self.step + self.steps_per_epoch, self.total_steps)
        bar = tqdm(total=end - self.step, desc=f"epoch {self.epoch + 1}/{self.epochs}", disable=not show_progress,
                   leave=False, dynamic_ncols=True)
        for x, y in self.pipe.train:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            if self.graphed is not None:
                self.graphed(x, y)  # the step, and its counts added to the window
            else:
                loss, logits = training_step(self.model, self.optimizer, self.scaler, x, y, self.precision, config.label_smoothing)
                count(window, loss, logits, y)  # accumulated on the device: no sync per step
            if config.schedule != "plateau":
                self.scheduler.step()
            if self.warming_up:
                set_lr(self.optimizer, config.warmup_lr)
            self.step += 1
            if self.step % 10 == 0 or self.step == end:
                loss_sum, miss, n = all_reduce_sum(window.clone(), ctx).tolist()
                if not math.isfinite(loss_sum):
                    raise Diverged(f"the training loss became {loss_sum / n} at step {self.step} (epoch {self.epoch + 1}); "
                                   f"the last good checkpoint is in {self.config.out}/checkpoints")
                if self.warming_up and miss / n < config.warmup_until_error:
                    self.warming_up = False
                    end_warmup(config, self.optimizer)
                sums += window
                window.zero_()
                bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{1 - miss / n:.3f}",
                                lr=f"{self.optimizer.param_groups[0]['lr']:.3g}",
                                img_s=f"{sums[2].item() * ctx.world_size / (time.perf_counter() - started):.0f}")
            bar.update(1)
            if self.step == end:
                break
        bar.close()
        seconds = time.perf_counter() - started
        self.elapsed += seconds
        self.epoch += 1
        loss_sum, miss, n = all_reduce_sum(sums, ctx).tolist()
        return {"train_loss": loss_sum / n, "train_error": miss / n, "images_per_s": n / seconds}

    def evaluate_epoch(self) -> dict[str, Any]:
        """Validation (if held out) and test metrics; steps a plateau schedule."""
        test = evaluate(self.eval_model, self.pipe.test, self.ctx, self.precision)
        val = evaluate(self.eval_model, self.pipe.val, self.ctx, self.precision) if self.pipe.val is not None else None
        if self.config.schedule == "plateau":
            self.scheduler.step((val or test)["top1_error"])
        return {"val_loss": val and val["loss"], "val_error": val and val["top1_error"], "test_loss": test["loss"],
                "test_error": test["top1_error"], "test_top5_error": test["top5_error"]}


def open_run(config: Optional[TrainConfig], resume: Optional[str | Path],
             changes: Optional[dict[str, Any]] = None) -> tuple[TrainConfig, Path, Optional[dict]]:
    """The run's config and directory, and its saved state when it is resumed (None for a run
    stopped before its first checkpoint: it starts afresh from its saved configuration). A resumed
    run takes ``changes`` of where it runs: its data's path and the machine fields."""
    if resume is None:
        validate(config)
        if config.weights:
            get_weights(config.model, config.weights)  # a name or file that does not exist: said before the data loads
        run_dir = Path(config.out) if config.out else default_out(config)
        if (run_dir / checkpoint.LAST_STATE).exists():
            raise UserError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or choose another --out")
        return dataclasses.replace(config, out=str(run_dir)), run_dir, None
    run_dir = Path(resume)
    if not (run_dir / CONFIG).is_file():
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG})")
    try:
        config = TrainConfig.from_dict(json.loads((run_dir / CONFIG).read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise UserError(f"{run_dir / CONFIG} is not a training configuration: {e}") from None
    refused = sorted(set(changes or {}) - {"data", *MACHINE_FIELDS})
    if refused:
        allowed = ", ".join("--" + k.replace("_", "-") for k in ("data", *MACHINE_FIELDS))
        raise UserError(f"--resume continues {run_dir} as it was configured: only where it runs may change "
                        f"({allowed}), not --{refused[0].replace('_', '-')}")
    config = dataclasses.replace(config, **(changes or {}), out=str(run_dir))
    if config.data != "digits" and not Path(config.data).expanduser().exists():  # a relative path, or data moved
        raise UserError(f"{run_dir} trains on {config.data!r}, which is not there (seen from {os.getcwd()}): "
                        f"say where its data is with --resume {run_dir} --data PATH")
    validate(config)
    if not (run_dir / checkpoint.LAST_STATE).is_file():
        print(f"{run_dir} has no checkpoint yet: starting it afresh with its saved configuration", flush=True)
        return config, run_dir, None
    return config, run_dir, checkpoint.load_state(run_dir / checkpoint.LAST_STATE)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; its message says what is kept and how to continue."""


def train(
    config: Optional[TrainConfig],
    resume: Optional[str | Path] = None,
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
    progress: Optional[bool] = None,
    changes: Optional[dict[str, Any]] = None,
) -> Run:
    """Train ``config`` (or continue the run in directory ``resume``) and return the run.

    ``config.json`` is written first, before the data is loaded, so that a run killed at any
    moment can be continued with ``resume``. ``callbacks`` are called with each epoch's metrics,
    after its checkpoint is written. ``progress``: show tqdm bars (default: when stderr is a terminal).
    ``changes``: for a resumed run, its data's new path and machine fields (``MACHINE_FIELDS``).
    """
    config, run_dir, state = open_run(config, resume, changes)
    ctx = setup(config.device)
    created = next((d for d in reversed((run_dir, *run_dir.parents)) if not d.exists()), None)  # the topmost made
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / CONFIG, lambda tmp: Path(tmp).write_text(config.to_json()))
    try:
        return run_loop(config, run_dir, state, ctx, callbacks, progress)
    except (ValueError, OSError):  # bad input (a model name, a data set): leave no run that cannot run
        if created and ctx.is_main and not (run_dir / checkpoint.LAST_STATE).exists():
            shutil.rmtree(created, ignore_errors=True)
        raise
    except KeyboardInterrupt:
        kept = ("the last finished epoch's checkpoint is kept" if (run_dir / checkpoint.LAST_STATE).is_file()
                else "no epoch had finished, so there is no checkpoint; the configuration is kept")
        raise Interrupted(f"interrupted: {kept} in {run_dir}; continue with: resnets train --resume {run_dir}") from None


def announce(trainer: Trainer, run_dir: Path) -> None:
    """What the run trains, how and where (one line), and a note where the precision asked for is
    emulated on this CPU."""
    config, ctx = trainer.config, trainer.ctx
    print(f"training {config.model} on {config.data} ({len(trainer.pipe.classes)} classes) with recipe {config.recipe}: "
          f"{trainer.total_steps} iteration{'s' * (trainer.total_steps != 1)}, {trainer.epochs} epoch{'s' * (trainer.epochs != 1)}, "
          f"{trainer.precision} on {ctx.device}"
          f"{f' x {ctx.world_size} processes' if ctx.distributed else ''}"
          f"{', compiled (CUDA graphs)' if trainer.graphed is not None else ', compiled' if trainer.compiled else ''}; "
          f"run directory {run_dir}", flush=True)
    if trainer.precision == "bf16" and ctx.device.type == "cpu" and not native_bf16(ctx.device):
        # resnet110 on an AVX2-only CPU: 4 images/s in bf16, 35 in fp32 (docs/REPRODUCTION.md).
        print("note: this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 is emulated and several times "
              "slower than fp32: --precision fp32 (or auto) trains faster here", file=sys.stderr, flush=True)
    if trainer.precision == "fp16" and ctx.device.type == "cpu":  # resnet20 on digits, 2 AMD cores: 85 images/s, fp32 ~1,200
        print("note: fp16 is for GPUs (eval and predict refuse it on a CPU); on a CPU it is emulated and many times "
              "slower than fp32: --precision fp32 (or auto) trains faster here", file=sys.stderr, flush=True)
    if config.sync_bn and not ctx.distributed:
        print("note: --sync-bn shares batch statistics between torchrun's processes; in one process each batch norm "
              "already sees the whole batch", file=sys.stderr, flush=True)
    if config.ten_crop and not isinstance(trainer.pipe.test, DataLoader):  # the imagenet recipe on a small folder
        print(f"note: 10-crop testing is for image folders streamed from disk; {config.data} is held in memory, so it "
              "is tested on its whole images", file=sys.stderr, flush=True)


def run_loop(config: TrainConfig, run_dir: Path, state: Optional[dict], ctx: Context,
             callbacks: Sequence[Callable[[dict[str, Any]], None]], progress: Optional[bool]) -> Run:
    trainer = Trainer(config, ctx)
    if state is not None:
        trainer.load_state_dict(state)
    elif config.weights:
        start_from(trainer.net, trainer.meta["model_config"], config)
    log = None
    if ctx.is_main:
        log = MetricsLog(run_dir, resume_epoch=trainer.epoch)
        announce(trainer, run_dir)
    show_progress = ctx.is_main and (sys.stderr.isatty() if progress is None else progress)

    while not trainer.done:
        record = {"epoch": trainer.epoch, "epochs": trainer.epochs}
        record.update(trainer.train_epoch(show_progress))
        record.update(trainer.evaluate_epoch())
        record.update(step=trainer.step, lr=trainer.optimizer.param_groups[0]["lr"], elapsed=trainer.elapsed,
                      device=device_name(ctx.device), precision=trainer.precision)
        if ctx.is_main:
            checkpoint.save_model(run_dir / checkpoint.LAST_WEIGHTS, trainer.net, trainer.meta)
            checkpoint.save_state(run_dir / checkpoint.LAST_STATE, trainer.state_dict())
            log.log(record)
        barrier(ctx)
        for callback in callbacks:
            callback(record)

    results: dict[str, Any] = {}
    if ctx.is_main:
        log.close()
        results = finish(trainer, run_dir)
    return Run(run_dir, config, trainer.net, results)


def finish(trainer: Trainer, run_dir: Path) -> dict[str, Any]:
    """The final weights, ``results.json`` and the error curves."""
    config, ctx, history = trainer.config, trainer.ctx, read_metrics(run_dir)
    record = history[-1]
    checkpoint.save_model(run_dir / checkpoint.WEIGHTS, trainer.net, trainer.meta)
    top5 = record["test_top5_error"] if len(trainer.pipe.classes) > 5 else None
    results = {
        "model": config.model, "data": config.data, "recipe": config.recipe,
        "test_top1": 1 - record["test_error"], "test_top5": None if top5 is None else 1 - top5,
        "test_error": record["test_error"], "epochs": trainer.epochs, "iterations": trainer.step,
        "wall_time_s": trainer.elapsed, "processes": ctx.world_size, "compiled": trainer.compiled,
        "precision": spans(history, "precision", trainer.precision), "device": spans(history, "device", device_name(ctx.device)),
    }
    atomic_write(run_dir / RESULTS, lambda tmp: Path(tmp).write_text(json.dumps(results, indent=2)))
    plot_runs([run_dir], run_dir / CURVES, labels=[config.model], title=f"{config.model} on {Path(config.data).name}")
    print(f"done: test accuracy {100 * results['test_top1']:.2f}% after {trainer.step} iterations in "
          f"{trainer.elapsed:.0f}s; results in {run_dir / RESULTS}", flush=True)
    return results
