"""The degradation problem on CIFAR-10 (Section 4.2, Fig. 6): deeper plain networks reach a higher
training error; deeper residual networks a lower one."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..training.metrics import METRICS, read_metrics
from ..training.plots import draw_runs
from .report import finished, header, pct, progress, table
from .runner import Spec, spec
from .scales import Scale

PARTIAL_REPORT = True  # unfinished runs are reported as such (``--report-only``)
PAPER_TEST_ERROR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97}  # Table 6


def final(run_dir: Path) -> dict:
    return read_metrics(run_dir)[-1]


def specs(scale: Scale) -> list[Spec]:
    return [spec(f"{kind}{d}") for kind in ("plain", "resnet") for d in scale.depths]


def report(scale: Scale, data: str, out: Path, command: str, dirs: dict[str, Path]) -> Path:
    plain = [f"plain{d}" for d in scale.depths]
    residual = [f"resnet{d}" for d in scale.depths]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, names, title in ((axes[0], plain, "plain networks"), (axes[1], residual, "residual networks")):
        shown = [m for m in names if (dirs[m] / METRICS).is_file()]  # unfinished runs: their curves so far
        draw_runs(ax, [dirs[m] for m in shown], [m.replace("plain", "plain-").replace("resnet", "ResNet-") for m in shown], title)
    fig.tight_layout()
    figure = out / "degradation.png"
    fig.savefig(figure, dpi=110)
    plt.close(fig)

    rows = []
    for m in plain + residual:
        if finished(dirs[m]):
            r = final(dirs[m])
            rows.append((m, pct(r["train_error"]), pct(r["test_error"]), PAPER_TEST_ERROR.get(m, "")))
        else:
            rows.append((m, progress(dirs[m], scale), "", PAPER_TEST_ERROR.get(m, "")))
    ends = ("plain20", "plain56", "resnet20", "resnet56")
    if not all(finished(dirs[m]) for m in ends):
        verdict = ["- the comparison waits for plain-20, plain-56, ResNet-20 and ResNet-56 to finish."]
    else:
        verdict = compare({m: final(dirs[m])["train_error"] for m in ends})
    text = "\n".join([
        header("Degradation: plain vs residual networks on CIFAR-10 (paper Fig. 6)", scale, data, list(dirs.values()), command),
        f"![training (dashed) and test (bold) error against iterations]({figure.name})",
        "",
        table(["model", "final training error (%)", "final test error (%)", "paper test error (%), Table 6"], rows),
        "",
        "Training error is the running error over the last epoch's augmented batches, as in Fig. 6.",
        "",
        *verdict,
        "",
    ])
    report = out / "degradation.md"
    report.write_text(text)
    return report


def compare(train_error: dict[str, float]) -> list[str]:
    """The two findings of Fig. 6, as measured."""
    plain_degrades = train_error["plain56"] > train_error["plain20"]
    residual_improves = train_error["resnet56"] < train_error["resnet20"]
    return [
        f"- plain-56 ends with {'higher' if plain_degrades else 'lower'} training error than plain-20 "
        f"({pct(train_error['plain56'])}% vs {pct(train_error['plain20'])}%): "
        f"{'the degradation problem, as in the paper' if plain_degrades else 'the paper saw the opposite'}.",
        f"- ResNet-56 ends with {'lower' if residual_improves else 'higher'} training error than ResNet-20 "
        f"({pct(train_error['resnet56'])}% vs {pct(train_error['resnet20'])}%): "
        f"{'depth helps once shortcuts are added, as in the paper' if residual_improves else 'the paper saw the opposite'}.",
    ]
