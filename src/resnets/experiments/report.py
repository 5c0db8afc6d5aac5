"""The Markdown report every experiment writes: what ran, where, on what, for how long, and a
table beside the paper's numbers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from statistics import mean, stdev
from typing import Callable, Sequence

import torch

from ..data import load_data
from ..hardware import cpu_info
from ..models.weights import read_description
from ..training.checkpoint import WEIGHTS
from ..training.metrics import METRICS, read_metrics
from ..training.trainer import RESULTS
from .runner import results
from .scales import Scale

DATA_LABELS = {"cifar10-jpeg": "CIFAR-10 (JPEG copy)", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
               "digits": "scikit-learn's 8x8 digits (the embedded default: no CIFAR-10 was given)"}


def label(model: str) -> str:
    """The paper's name of a network: plain20 -> plain-20, resnet20 -> ResNet-20."""
    return model.replace("plain", "plain-").replace("resnet", "ResNet-")


def data_label(spec: str, run_dirs: Sequence[Path] = ()) -> str:
    """The data set's name for a report: as a finished run's weights record it (so that a report
    needs no copy of the data), else as ``spec`` loads."""
    recorded = (read_description(d / WEIGHTS).get("data") for d in run_dirs if (d / WEIGHTS).is_file())
    name = next((n for n in recorded if n), None) or load_data(spec).name
    return DATA_LABELS.get(name, name)


def final_test_error(run_dir: Path) -> float:
    """A finished run's final test error."""
    return results(run_dir)["test_error"]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def finished(run_dir: Path) -> bool:
    return (run_dir / RESULTS).is_file()


def done(runs: Sequence[Path]) -> list[Path]:
    """A network's finished runs, one per seed."""
    return [d for d in runs if finished(d)]


def spread(values: Sequence[float], fmt: Callable[[float], str] = pct) -> str:
    """One run's value, or several seeds' mean +- standard deviation (the sample's, as Table 6
    gives ResNet-110's "6.61+-0.16" over 5 runs)."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(mean(values))} ± {fmt(stdev(values))}"


def cell(runs: Sequence[Path], value: Callable[[Path], float], scale: Scale, fmt: Callable[[float], str] = pct,
         metric: str = "test_error") -> str:
    """A network's entry in a report's table: ``value`` over its finished seeds (with how many
    finished, where not all did), or, where none did, its first run's progress in ``metric``."""
    runs_done = done(runs)
    if not runs_done:
        return progress(runs[0], scale, metric)
    text = spread([value(d) for d in runs_done], fmt)
    return text if len(runs_done) == len(runs) else f"{text} ({len(runs_done)} of {len(runs)} seeds finished)"


def progress(run_dir: Path, scale: Scale, metric: str = "test_error") -> str:
    """What an unfinished run has done so far, for a report's table: its iterations and its last
    epoch's ``metric``."""
    if not (run_dir / METRICS).is_file():
        return "not run"
    last = read_metrics(run_dir)[-1]
    return f"unfinished: {last['step']:,} of {scale.iterations:,} iterations, {pct(last[metric])} so far"


def runs_count(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def header(title: str, scale: Scale, data: str, dirs: dict[str, list[Path]], command: str) -> str:
    """What ran, where and for how long; a report written before every run finished says so."""
    run_dirs = [d for runs in dirs.values() for d in runs]
    seeds = max(len(runs) for runs in dirs.values())
    runs = []
    by_device: dict[str, Counter[str]] = {}  # each device (or mix of devices): its networks, and how many seeds of each
    for network, network_runs in dirs.items():
        for d in done(network_runs):
            runs.append(results(d))
            by_device.setdefault(runs[-1]["device"], Counter())[network] += 1
    hardware = "; ".join(", ".join(n if k == 1 else f"{n} ({k} seeds)" for n, k in networks.items()) + f" on {device}"
                         for device, networks in by_device.items())
    wall = sum(r["wall_time_s"] for r in runs)
    return "\n".join([
        f"# {title}",
        "",
        f"- command: `{command}`",
        f"- data: {data_label(data, run_dirs)} (`{data}`)",
        f"- {scale.describe()}; recipe `cifar` (paper Section 4.2) otherwise",
        *([f"- seeds: {seeds} runs of each network (seeds 0 to {seeds - 1}, which draw the initialization, the batch "
           "order and any subset); the tables give their mean ± standard deviation"] if seeds > 1 else []),
        f"- hardware: {hardware or 'no finished run'}; report written on {cpu_info()[0]} with torch {torch.__version__}",
        f"- wall time: {wall / 60:.1f} min of training over {runs_count(len(runs))} finished (evaluation excluded)"
        + (f"; {runs_count(len(run_dirs) - len(runs))} unfinished" if len(runs) < len(run_dirs) else ""),
        "",
    ])
