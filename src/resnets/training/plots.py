"""Training curves in the style of the paper's Fig. 4 and Fig. 6: error against iterations, thin
dashed lines for training error, bold lines for test error, one color per run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..errors import UserError
from .metrics import curve_records


def pyplot():
    """matplotlib.pyplot drawing to files (the Agg backend, no display), imported on first use:
    importing it adds most of a second to the start of every command, and few commands plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_runs(ax, run_dirs: Sequence[str | Path], labels: Optional[Sequence[str]] = None, title: str = "") -> None:
    """Draw each run's training (dashed) and test (bold) error on ``ax``. Runs with the same label
    (one network's seeds) share a colour and a legend entry."""
    labels = labels or [Path(d).name for d in run_dirs]
    palette, colors = pyplot().cm.tab10.colors, {}
    for run_dir, label in zip(run_dirs, labels):
        first = label not in colors
        color = colors.setdefault(label, palette[len(colors) % len(palette)])
        records = curve_records(run_dir)
        steps = [r["step"] for r in records]
        ax.plot(steps, [100 * r["train_error"] for r in records], "--", lw=1, color=color)
        ax.plot(steps, [100 * r["test_error"] for r in records], "-", lw=2, color=color, label=label if first else "_nolegend_")
    ax.set_xlabel("iterations")
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3)
    if run_dirs:
        ax.legend(title="dashed: training, bold: test", fontsize=8, title_fontsize=8)
    if title:
        ax.set_title(title)


CURVES = "curves.png"  # a run's figure, in its directory; plot_runs' name in a folder


FORMATS = ("png", "svg", "pdf")


def plot_runs(run_dirs: Sequence[str | Path], path: str | Path, labels: Optional[Sequence[str]] = None, title: str = "") -> Path:
    """Several runs on one figure, saved at ``path`` as its suffix says (PNG, SVG or PDF; PNG
    without a suffix; in a folder: its ``curves.png``)."""
    path = Path(path) / CURVES if Path(path).is_dir() else Path(path)
    kind = path.suffix.lower().lstrip(".") or "png"
    if kind not in FORMATS:
        raise UserError(f"{path}: a figure is written as {', '.join(f'.{f}' for f in FORMATS)} (or a name without a suffix, as PNG)")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    draw_runs(ax, run_dirs, labels, title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format=kind)  # at the name given: matplotlib adds ".png" to a name without a suffix
    plt.close(fig)
    return path
