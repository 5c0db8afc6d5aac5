"""The degradation problem on CIFAR-10 (Section 4.2, Fig. 6): deeper plain networks reach a higher
training error; deeper residual networks a lower one."""

from __future__ import annotations

from pathlib import Path

from ..training.metrics import METRICS, read_metrics
from ..training.plots import draw_runs, pyplot
from .report import finished, header, label, pct, progress, table
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

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, names, title in ((axes[0], plain, "plain networks"), (axes[1], residual, "residual networks")):
        shown = [m for m in names if (dirs[m] / METRICS).is_file()]  # unfinished runs: their curves so far
        draw_runs(ax, [dirs[m] for m in shown], [label(m) for m in shown], title)
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
            rows.append((m, progress(dirs[m], scale, "train_error"), progress(dirs[m], scale), PAPER_TEST_ERROR.get(m, "")))
    shallow, deep = min(scale.depths), max(scale.depths)
    ends = [f"{kind}{d}" for kind in ("plain", "resnet") for d in (shallow, deep)]
    if not all(finished(dirs[m]) for m in ends):
        verdict = [f"- the comparison waits for {', '.join(map(label, ends))} to finish."]
    else:
        verdict = compare({m: final(dirs[m])["train_error"] for m in ends}, shallow, deep)
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


def compare(train_error: dict[str, float], shallow: int, deep: int) -> list[str]:
    """The two findings of Fig. 6, as measured: the deeper plain net ends with the higher training
    error, the deeper ResNet with the lower."""
    lines = []
    for kind, name, finding, paper_deeper in (
            ("plain", "plain", "the degradation problem, as in the paper", "higher"),
            ("resnet", "ResNet", "depth helps once shortcuts are added, as in the paper", "lower")):
        a, b = train_error[f"{kind}{deep}"], train_error[f"{kind}{shallow}"]
        deeper = "higher" if a > b else "lower"
        lines.append(f"- {name}-{deep} ends with {deeper} training error than {name}-{shallow} ({pct(a)}% vs {pct(b)}%): "
                     f"{finding if deeper == paper_deeper else 'the paper saw the opposite'}.")
    return lines
