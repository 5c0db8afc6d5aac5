"""The degradation problem on CIFAR-10 (Section 4.2, Fig. 6): deeper plain networks reach a higher
training error; deeper residual networks a lower one."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

from ..training.metrics import METRICS, read_metrics
from ..training.plots import draw_runs, pyplot
from .cifar_table import PAPER
from .report import cell, done, finished, header, label, pct, table
from .runner import Spec, spec
from .scales import Scale

PARTIAL_REPORT = True  # unfinished runs are reported as such (``--report-only``)
PAPER_TEST_ERROR = {model: error for model, (_, _, error) in PAPER.items()}  # Table 6


def final(run_dir: Path) -> dict:
    return read_metrics(run_dir)[-1]


def specs(scale: Scale) -> list[Spec]:
    return [spec(f"{kind}{d}") for kind in ("plain", "resnet") for d in scale.depths]


def report(scale: Scale, data: str, out: Path, command: str, dirs: dict[str, list[Path]]) -> Path:
    plain = [f"plain{d}" for d in scale.depths]
    residual = [f"resnet{d}" for d in scale.depths]

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, names, title in ((axes[0], plain, "plain networks"), (axes[1], residual, "residual networks")):
        shown = [(d, label(m)) for m in names for d in dirs[m] if (d / METRICS).is_file()]  # unfinished: so far
        draw_runs(ax, [d for d, _ in shown], [name for _, name in shown], title)
    fig.tight_layout()
    figure = out / "degradation.png"
    fig.savefig(figure, dpi=110)
    plt.close(fig)

    train_error, test_error = (lambda d: final(d)["train_error"]), (lambda d: final(d)["test_error"])
    rows = [(m, cell(dirs[m], train_error, scale, metric="train_error"), cell(dirs[m], test_error, scale),
             PAPER_TEST_ERROR.get(m, "")) for m in plain + residual]
    shallow, deep = min(scale.depths), max(scale.depths)
    ends = [f"{kind}{d}" for kind in ("plain", "resnet") for d in (shallow, deep)]
    if not all(done(dirs[m]) for m in ends):
        verdict = [f"- the comparison waits for {', '.join(map(label, ends))} to finish."]
    else:
        verdict = compare({m: [train_error(d) if finished(d) else None for d in dirs[m]] for m in ends}, shallow, deep)
    text = "\n".join([
        header("Degradation: plain vs residual networks on CIFAR-10 (paper Fig. 6)", scale, data, dirs, command),
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


def compare(train_error: dict[str, list[float | None]], shallow: int, deep: int) -> list[str]:
    """The two findings of Fig. 6, as measured: the deeper plain net ends with the higher training
    error, the deeper ResNet with the lower. ``train_error``: each network's final training error
    by seed (None: unfinished); the finding reads the means, and says in how many seeds it holds."""
    lines = []
    for kind, name, finding, paper_deeper in (
            ("plain", "plain", "the degradation problem, as in the paper", "higher"),
            ("resnet", "ResNet", "depth helps once shortcuts are added, as in the paper", "lower")):
        deeps, shallows = train_error[f"{kind}{deep}"], train_error[f"{kind}{shallow}"]
        a, b = (mean(e for e in errors if e is not None) for errors in (deeps, shallows))
        deeper = "higher" if a > b else "lower"
        pairs = [(x, y) for x, y in zip(deeps, shallows) if x is not None and y is not None]
        if len(deeps) == 1:
            measured = f"{pct(a)}% vs {pct(b)}%"
        else:
            agree = sum((x > y) == (deeper == "higher") for x, y in pairs)
            measured = f"means {pct(a)}% vs {pct(b)}%; {deeper} in {agree} of {len(pairs)} seeds finished by both"
        lines.append(f"- {name}-{deep} ends with {deeper} training error than {name}-{shallow} ({measured}): "
                     f"{finding if deeper == paper_deeper else 'the paper saw the opposite'}.")
    return lines
