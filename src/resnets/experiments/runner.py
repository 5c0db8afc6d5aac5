"""Training an experiment's networks through the one trainer, resumably: each network's run lives
in ``OUT/runs/KEY``; a finished run is reused, an interrupted one resumed, and experiments sharing an
output folder share their runs (the CIFAR-10 table reuses the degradation runs' ResNets).

With ``jobs`` > 1, up to that many runs train at once, each in its own ``resnets train --resume``
process: small CIFAR networks leave a GPU (or a many-core CPU) mostly idle, so several of them
together finish sooner than one after another.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..data import load_data
from ..errors import UserError
from ..files import atomic_write
from ..training import TrainConfig, make_config, train
from ..training.metrics import read_metrics
from ..training.recipes import MACHINE_FIELDS
from ..training.trainer import CONFIG, RESULTS
from .scales import Scale

# A finished run is reused, and an unfinished one resumed, whatever these were.
UNCOMPARED = {*MACHINE_FIELDS, "out"}
LOG = "train.log"  # a job's output, in its run directory


@dataclass(frozen=True)
class Spec:
    key: str  # the run's folder name
    model: str
    overrides: dict[str, Any]
    seed: int = 0  # of the training subset, the initialization and the batch order


def spec(model: str, shortcut: str | None = "default") -> Spec:
    if shortcut == "default":
        return Spec(model, model, {})
    return Spec(f"{model}-{shortcut or 'none'}", model, {"shortcut": shortcut})


SEED_SUFFIX = "-seed"  # seed k > 0 of a network trains in KEY-seedk


def seeded(s: Spec, seed: int) -> Spec:
    """``s`` trained again with another seed, in its own folder (``resnet20-seed1``); seed 0 keeps
    the plain name, so that runs made before ``--seeds`` existed count as seed 0."""
    return replace(s, key=s.key if seed == 0 else f"{s.key}{SEED_SUFFIX}{seed}", seed=seed)


def run_config(s: Spec, scale: Scale, data: str, run_dir: Path, machine: dict[str, Any]) -> TrainConfig:
    """The paper's Section 4.2 recipe at ``scale``, with ``machine``'s speed settings."""
    return make_config(
        "cifar", model=s.model, data=data, iterations=scale.iterations, milestones=scale.milestones,
        batch_size=scale.batch_size, train_subset=scale.train_subset, test_subset=scale.test_subset,
        model_overrides=s.overrides, seed=s.seed, out=str(run_dir), channels_last=True, **machine,
    )


def prepare(run_dir: Path, config: TrainConfig) -> bool:
    """Write the run's configuration unless it has one; whether the run is finished. An unfinished
    run takes ``config``'s machine fields (precision, compilation, ...): it goes on where this command
    runs, as ``resnets train --resume`` takes them (a run begun on a GPU in bf16 and continued on a
    CPU in fp32 is back in bf16 when a GPU resumes it)."""
    if (run_dir / CONFIG).is_file():
        try:  # options added since the run was configured take their defaults
            existing = json.loads(TrainConfig.from_dict(json.loads((run_dir / CONFIG).read_text())).to_json())
        except (ValueError, TypeError):
            existing = {}
        wanted = json.loads(config.to_json())
        if any(existing.get(k) != v for k, v in wanted.items() if k not in UNCOMPARED):
            raise UserError(f"{run_dir} holds a run with another configuration (scale or data); choose another --out")
        if (run_dir / RESULTS).is_file():
            return True
        config = TrainConfig.from_dict({**existing, **{k: wanted[k] for k in UNCOMPARED}})  # the machine fields and out
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / CONFIG, lambda tmp: Path(tmp).write_text(config.to_json()))
    return False


def run_models(specs: list[Spec], scale: Scale, data: str, out: Path, jobs: int = 1,
               machine: dict[str, Any] | None = None) -> dict[str, Path]:
    """Train (or reuse, or resume) each network, in the order given, up to ``jobs`` at once;
    returns each key's run directory."""
    if any(not (out / "runs" / s.key / RESULTS).is_file() for s in specs):
        # Data that cannot be read is refused here, before any run is configured (a mistyped --data
        # would leave configs that refuse the right one); decoded into the cache the jobs read, here
        # where its progress shows (theirs goes to their logs).
        load_data(data)
    dirs, todo = {}, []
    for s in specs:
        run_dir = out / "runs" / s.key
        if prepare(run_dir, run_config(s, scale, data, run_dir, machine or {})):
            print(f"{s.key}: reusing the finished run in {run_dir}", flush=True)
        else:
            todo.append(run_dir)
        dirs[s.key] = run_dir
    if jobs <= 1:
        for run_dir in todo:
            train(None, resume=run_dir)
    else:
        run_jobs(todo, jobs)
    return dirs


def say(line: str) -> None:
    """A line on stdout, above the progress bar, flushed (jobs run for hours, often into a log)."""
    tqdm.write(line)
    sys.stdout.flush()


def iterations_done(run_dir: Path) -> int:
    """The iterations a run has trained, as of its last finished epoch (its last metrics line)."""
    records = read_metrics(run_dir, in_progress=True)
    return records[-1]["step"] if records else 0


def run_jobs(run_dirs: list[Path], jobs: int) -> None:
    """``resnets train --resume DIR`` for each directory, ``jobs`` processes at a time, each with
    an equal share of the CPU threads and its output in ``DIR/train.log``. A progress bar counts
    the iterations of all the runs, read from their metrics as each epoch ends (the jobs' own bars
    go to their logs)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, torch.get_num_threads() // jobs)), "PYTHONUNBUFFERED": "1"}
    waiting, running, failed = list(run_dirs), {}, []
    totals = {d: json.loads((d / CONFIG).read_text())["iterations"] for d in run_dirs}

    def trained() -> int:  # resumed runs count from where they stood
        return sum(min(iterations_done(d), totals[d]) for d in run_dirs)

    bar = tqdm(total=sum(totals.values()), initial=trained(), desc=f"{len(run_dirs)} runs, {jobs} at a time", unit="it",
               disable=not sys.stderr.isatty())
    started = shown = time.perf_counter()
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                run_dir = waiting.pop(0)
                log = open(run_dir / LOG, "a")
                command = [sys.executable, "-m", "resnets", "train", "--resume", str(run_dir)]
                running[run_dir] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log)
                say(f"{run_dir.name}: started (log in {run_dir / LOG})")
            time.sleep(0.2)
            if not bar.disable and time.perf_counter() - shown > 2:
                bar.n, shown = trained(), time.perf_counter()
                bar.set_postfix_str("training " + ", ".join(d.name for d in running))
            for run_dir, (process, log) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                del running[run_dir]
                minutes = (time.perf_counter() - started) / 60
                if process.returncode == 0:
                    say(f"{run_dir.name}: finished ({minutes:.1f} min since the first job started)")
                else:
                    failed.append(run_dir)
                    say(f"{run_dir.name}: failed with exit code {process.returncode}; see {run_dir / LOG}")
    finally:  # interrupted or killed: stop the jobs, whose last checkpoints stay resumable
        if not bar.disable:
            bar.n = trained()
        bar.close()
        for process, log in running.values():
            process.terminate()
            process.wait()
            log.close()
    if failed:
        raise UserError(f"{len(failed)} of {len(run_dirs)} runs failed: " + ", ".join(str(d / LOG) for d in failed))


def recorded_data(out: Path) -> str | None:
    """The data the runs in ``out`` were configured with (the first one found), if any."""
    for config in sorted(out.glob(f"runs/*/{CONFIG}")):
        try:
            return json.loads(config.read_text())["data"]
        except (ValueError, KeyError):
            continue
    return None


def recorded_seeds(out: Path) -> int:
    """How many seeds the runs in ``out`` were trained with: one more than the highest ``-seedN``."""
    seeds = [int(m.group(1)) for d in out.glob("runs/*") if (m := re.fullmatch(rf".+{SEED_SUFFIX}(\d+)", d.name))]
    return 1 + max(seeds, default=0)


def results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / RESULTS).read_text())
