"""Training recipes: the paper's (Section 3.4 for ImageNet, Section 4.2 for CIFAR-10) and a short
modern one, as plain data. A :class:`TrainConfig` is a recipe plus the run's own choices; every
field can be overridden from the command line."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from ..errors import UserError, check_at_least


# The values the choice fields take (TrainConfig's Literal types), for the command line and validate().
SCHEDULES = ("step", "onecycle", "cosine", "plateau")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
NORMALIZATIONS = ("pixel", "channel")


def is_milestone(value: float) -> bool:
    """An iteration (a whole number from 1), or a fraction of the run between 0 and 1."""
    return 0 < value < 1 or (value >= 1 and value == int(value))


@dataclass
class TrainConfig:
    # What to train, on what.
    model: str = "resnet20"
    data: str = "digits"
    recipe: str = "fast"
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"shortcut": "B"}
    weights: Optional[str] = None  # start from these trained weights (a name or a file): fine-tuning
    # Optimization (Section 3.4 / 4.2: SGD with momentum).
    epochs: Optional[int] = 30
    iterations: Optional[int] = None  # when set, the run stops after this many steps
    batch_size: int = 128  # over all processes
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    # Learning-rate schedule: "step" (divide by 10 at `milestones` iterations), "onecycle",
    # "cosine", or "plateau" (divide by 10 when the validation error, or without `validation` the
    # test error, has not improved for 5 epochs).
    schedule: Literal["step", "onecycle", "cosine", "plateau"] = "step"
    milestones: tuple[float, ...] = ()  # iterations; a value below 1 is a fraction of the run (0.5: halfway)
    # Section 4.2, ResNet-110: start at `warmup_lr` until the training error is below
    # `warmup_until_error`, then use `lr`. Applied to networks of `warmup_min_depth` layers or more.
    warmup_lr: Optional[float] = None
    warmup_until_error: float = 0.8
    warmup_min_depth: int = 110
    # Data handling.
    validation: int = 0  # images held out of the training set for validation (Section 4.2: 5000)
    train_subset: Optional[int] = None  # train on a seeded subset of this many images
    test_subset: Optional[int] = None
    normalize: Literal["pixel", "channel"] = "pixel"  # per-pixel mean (the paper) or channel mean/std
    augment: bool = True  # pad-and-crop and flips for array data; scale and color for image folders
    ten_crop: bool = False  # 10-crop testing for image folders (Section 3.4)
    skip_bad_images: bool = False  # leave out (and list) an image folder's unreadable images, else refuse them
    # Machine.
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"  # "auto": bf16 where native (CUDA, AVX512-BF16, AMX)
    channels_last: bool = False
    compile: Union[bool, Literal["auto"]] = False  # "auto": where it pays for itself (trainer.compiles)
    sync_bn: bool = False
    workers: int = 4
    seed: int = 0
    out: Optional[str] = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown training option {', '.join(unknown)}")
        values = dict(values)
        if "milestones" in values:
            values["milestones"] = tuple(values["milestones"])
        return cls(**values)


# The fields that choose where and how fast a run goes, not what it computes: a resumed run may
# change them (and its data's path), since it continues on whatever machine is at hand.
MACHINE_FIELDS = ("device", "precision", "channels_last", "compile", "workers")


# Each recipe is the set of TrainConfig fields it fixes.
RECIPES: dict[str, dict[str, Any]] = {
    # Section 4.2: batch 128, lr 0.1 divided by 10 at 32k and 48k iterations, stop at 64k,
    # weight decay 1e-4, momentum 0.9, per-pixel mean subtraction, 4-pixel pad, crop and flip;
    # for 110 layers, lr 0.01 until the training error is below 80% (about 400 iterations).
    "cifar": dict(
        epochs=None, iterations=64_000, batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4,
        schedule="step", milestones=(32_000, 48_000), warmup_lr=0.01, warmup_until_error=0.8,
        normalize="pixel", label_smoothing=0.0, precision="fp32", channels_last=False,
    ),
    # Section 3.4: batch 256, lr 0.1 divided by 10 when the error plateaus, up to 60e4
    # iterations, weight decay 1e-4, momentum 0.9; scale and color augmentation; 10-crop testing.
    "imagenet": dict(
        epochs=None, iterations=600_000, batch_size=256, lr=0.1, momentum=0.9, weight_decay=1e-4,
        schedule="plateau", milestones=(), warmup_lr=None, normalize="pixel", ten_crop=True,
        label_smoothing=0.0, precision="auto", channels_last=True,
    ),
    # Not in the paper: a short schedule for when time matters (one-cycle learning rate, label
    # smoothing, Nesterov momentum, channels_last; bf16 on GPUs and on CPUs with native bf16;
    # compiled for runs long enough to repay the compilation). docs/README say what it reaches.
    "fast": dict(
        epochs=30, iterations=None, batch_size=256, lr=0.4, momentum=0.9, nesterov=True,
        weight_decay=5e-4, schedule="onecycle", milestones=(), warmup_lr=None, label_smoothing=0.1,
        normalize="channel", precision="auto", channels_last=True, compile="auto",
    ),
}


def make_config(recipe: str = "fast", **overrides: Any) -> TrainConfig:
    """A recipe's TrainConfig with ``overrides`` (the command line's options) applied."""
    if recipe not in RECIPES:
        raise UserError(f"unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    values = {**RECIPES[recipe], **given, "recipe": recipe}
    # --epochs replaces the recipe's iterations, and --iterations its epochs.
    if "epochs" in given and "iterations" not in given:
        values["iterations"] = None
    if "iterations" in given and "epochs" not in given:
        values["epochs"] = None
    # A run of another length keeps the recipe's step schedule in proportion (cifar: lr divided at
    # 50% and 75% of the run, as at Section 4.2's 32k and 48k of 64k), unless --milestones is given.
    base = RECIPES[recipe]
    if ("epochs" in given or "iterations" in given) and "milestones" not in given and base["milestones"] and base["iterations"]:
        values["milestones"] = tuple(m / base["iterations"] for m in base["milestones"])
    if values["schedule"] != "step":  # the recipe's milestones go with its step schedule
        if given.get("milestones"):
            raise UserError(f"milestones apply to the step schedule, not {values['schedule']}: add --schedule step")
        values["milestones"] = ()
    config = TrainConfig.from_dict(values)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Refuse values no run could use, with one clear line."""
    if (config.epochs is None) == (config.iterations is None):
        raise UserError("give --epochs or --iterations" + (", not both" if config.epochs is not None else ""))
    check_at_least(1, epochs=config.epochs, iterations=config.iterations, batch_size=config.batch_size)
    if not (0 < config.lr < math.inf and 0 <= config.weight_decay < math.inf and 0 <= config.momentum < 1):
        raise UserError(f"need 0 < lr, 0 <= weight decay and 0 <= momentum < 1, all finite; got lr {config.lr}, "
                        f"weight decay {config.weight_decay}, momentum {config.momentum}")
    if not all(map(is_milestone, config.milestones)):
        raise UserError(f"milestones are iterations (whole numbers) or fractions of the run between 0 and 1, "
                        f"got {' '.join(map(str, config.milestones))}")
    if list(config.milestones) != sorted(set(config.milestones)):
        raise UserError(f"milestones must increase, got {' '.join(map(str, config.milestones))}")
    if not 0 <= config.label_smoothing < 1:
        raise UserError(f"--label-smoothing must be in [0, 1), got {config.label_smoothing}")
    check_at_least(0, validation=config.validation, workers=config.workers)
    for name, valid in (("schedule", SCHEDULES), ("precision", PRECISIONS), ("normalize", NORMALIZATIONS)):
        if getattr(config, name) not in valid:
            raise UserError(f"unknown {name} {getattr(config, name)!r}; valid: {', '.join(valid)}")
    if config.compile not in (True, False, "auto"):
        raise UserError(f"compile must be true, false or \"auto\", got {config.compile!r}")

