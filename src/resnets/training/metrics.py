"""Where a run's numbers go: ``metrics.jsonl`` (one JSON object per epoch), TensorBoard events,
and a one-line summary per epoch on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import UserError

METRICS = "metrics.jsonl"
CURVE_FIELDS = ("step", "train_error", "test_error")


def read_metrics(run_dir: str | Path, in_progress: bool = False) -> list[dict[str, Any]]:
    """The epoch records of a run. ``in_progress``: of a run another process may be training,
    read as it stands: no records yet if it has not started, and a last line still being written
    left out."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        if in_progress:
            return []
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {METRICS})")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if in_progress and lines:
        try:
            json.loads(lines[-1])
        except ValueError:
            lines.pop()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError as e:
            raise UserError(f"{path}, line {number}: not a JSON record ({e})") from None
    return records


def curve_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """The epoch records to draw or tabulate, of a finished run or one still training (a last
    line being written is left out). A run without a finished epoch, or records without the
    fields a curve needs, is refused in one line naming it."""
    if not (Path(run_dir) / METRICS).is_file():
        raise UserError(f"{run_dir} is not a run directory (no {METRICS})")
    records = read_metrics(run_dir, in_progress=True)
    if not records:
        raise UserError(f"{run_dir} has no finished epoch yet: nothing to draw")
    lacking = sorted({key for r in records for key in CURVE_FIELDS if key not in r})
    if lacking:
        raise UserError(f"{Path(run_dir) / METRICS}: records without {', '.join(lacking)}")
    return records


def spans(history: Sequence[dict[str, Any]], key: str, current: str) -> str:
    """``current`` for a run that ran all its epochs with it; for one resumed elsewhere (a run
    started on a GPU and finished on a CPU), each value with the epochs it ran, in order."""
    stretches: list[list] = []  # [value, first epoch, last epoch]
    for r in history:
        value = r.get(key, "unrecorded")  # metrics written before the field existed
        if stretches and stretches[-1][0] == value:
            stretches[-1][2] = r["epoch"] + 1
        else:
            stretches.append([value, r["epoch"] + 1, r["epoch"] + 1])
    if len(stretches) <= 1:
        return current
    return ", then ".join(f"{value} ({f'epoch {first}' if first == last else f'epochs {first}-{last}'})"
                          for value, first, last in stretches)


def window_means(records: Sequence[dict[str, Any]], bounds: Sequence[int]) -> list[Optional[tuple[float, float]]]:
    """Mean training and test error of the epoch records whose step falls in each window
    (``bounds[i]``, ``bounds[i + 1]``]; None for a window the run has not reached. Averaging over windows smooths out one epoch's noise when runs are compared
    phase by phase (the lr steps of Section 4.2)."""
    means = []
    for low, high in zip(bounds, bounds[1:]):
        inside = [r for r in records if low < r["step"] <= high]
        if not inside:
            means.append(None)
            continue
        means.append((sum(r["train_error"] for r in inside) / len(inside),
                      sum(r["test_error"] for r in inside) / len(inside)))
    return means


def windows_table(run_dirs: Sequence[str | Path], labels: Sequence[str], bounds: Sequence[int]) -> str:
    """A Markdown table: one row per window of iterations, one column per run, each cell the
    run's mean training / test error (%) there; a last row with each run's final record."""
    runs = [curve_records(d) for d in run_dirs]
    columns = [window_means(records, bounds) for records in runs]
    lines = ["| iterations | " + " | ".join(f"{label}: training / test error (%)" for label in labels) + " |",
             "|---" * (len(labels) + 1) + "|"]
    for i, (low, high) in enumerate(zip(bounds, bounds[1:])):
        cells = []
        for records, means in zip(runs, columns):
            if means[i] is None:
                cells.append("not reached")
                continue
            train, test = means[i]
            partial = f" (to {records[-1]['step']:,})" if records[-1]["step"] < high else ""
            cells.append(f"{100 * train:.2f} / {100 * test:.2f}{partial}")
        lines.append(f"| {low:,} to {high:,} | " + " | ".join(cells) + " |")
    finals = [f"{100 * r[-1]['train_error']:.2f} / {100 * r[-1]['test_error']:.2f} at {r[-1]['step']:,}" for r in runs]
    lines.append("| last record | " + " | ".join(finals) + " |")
    return "\n".join(lines)


class MetricsLog:
    """Appends each epoch's record; on resume, drops records from epochs that will run again."""

    def __init__(self, run_dir: Path, resume_epoch: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imported here: it is slow to import

        self.path = run_dir / METRICS
        kept = [r for r in read_metrics(run_dir) if r["epoch"] < resume_epoch] if resume_epoch and self.path.exists() else []
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                self.tensorboard.add_scalar(key, value, record["step"])
        self.tensorboard.flush()
        print(summary_line(record), flush=True)

    def close(self) -> None:
        self.tensorboard.close()


def summary_line(r: dict[str, Any]) -> str:
    def pct(key: str) -> Optional[str]:
        return f"{100 * r[key]:.2f}%" if r.get(key) is not None else None

    parts = [
        f"epoch {r['epoch'] + 1}/{r['epochs']}",
        f"step {r['step']}",
        f"lr {r['lr']:.4g}",
        f"train loss {r['train_loss']:.4f} err {pct('train_error')}",
    ]
    if r.get("val_error") is not None:
        parts.append(f"val loss {r['val_loss']:.4f} err {pct('val_error')}")
    parts.append(f"test loss {r['test_loss']:.4f} err {pct('test_error')}")
    parts.append(f"{r['images_per_s']:.0f} img/s")
    parts.append(f"{r['elapsed']:.0f}s")
    return " | ".join(parts)
