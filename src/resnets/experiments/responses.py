"""Layer responses (Section 4.2, Fig. 7): the standard deviation of each 3x3 layer's output, after
batch norm and before the addition and ReLU, on the test images. Residual functions are expected
to be closer to zero than the plain network's layers, and smaller still in deeper ResNets."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean

import torch
from torch import nn
from tqdm import tqdm

from ..data import load_data
from ..training import load_model
from ..training.evaluate import check_fits, eval_batches
from ..training.plots import pyplot
from .report import cell, done, header, label, progress, table
from .runner import Spec, spec
from .scales import Scale

PARTIAL_REPORT = True  # finished runs are measured, unfinished ones reported as such (``--report-only``)


def response_layers(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """The batch norm after each 3x3 convolution, in network order (``conv1`` -> ``bn1``, ...)."""
    modules = dict(model.named_modules())
    layers = []
    for name, m in modules.items():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            prefix, _, conv = name.rpartition(".")
            bn_name = (prefix + "." if prefix else "") + conv.replace("conv", "bn")
            layers.append((bn_name, modules[bn_name]))
    return layers


@torch.no_grad()
def response_stds(model: nn.Module, batches) -> list[float]:
    """The std of each 3x3 layer's response over all images, channels and positions."""
    layers = response_layers(model)
    moments = torch.zeros(len(layers), 3, dtype=torch.float64)  # count, sum, sum of squares

    def record(i):
        def hook(module, inputs, output):
            o = output.double()
            moments[i] += torch.stack([torch.tensor(o.numel(), dtype=torch.float64), o.sum().cpu(), o.square().sum().cpu()])
        return hook

    handles = [bn.register_forward_hook(record(i)) for i, (_, bn) in enumerate(layers)]
    try:
        model.eval()
        for x, _ in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
    n, s, ss = moments.unbind(1)
    return (ss / n - (s / n) ** 2).clamp_min(0).sqrt().tolist()


def models(scale: Scale) -> list[str]:
    """The plain and residual nets of the scale's shallowest and deepest depths (Fig. 7: 20 and 56)."""
    return [f"{kind}{d}" for kind in ("plain", "resnet") for d in (min(scale.depths), max(scale.depths))]


def specs(scale: Scale) -> list[Spec]:
    return [spec(m) for m in models(scale)]


def report(scale: Scale, data: str, out: Path, command: str, dirs: dict[str, list[Path]]) -> Path:
    test = load_data(data).subset(None, scale.test_subset)
    shallow, deep = min(scale.depths), max(scale.depths)
    run_stds = {}  # each finished run's per-layer stds
    finished = [run_dir for m in models(scale) for run_dir in done(dirs[m])]
    for run_dir in tqdm(finished, desc="measuring layer responses", unit="net", disable=not sys.stderr.isatty()):
        model, meta = load_model(run_dir)
        check_fits(test, data, meta, str(run_dir))
        run_stds[run_dir] = response_stds(model, eval_batches(test, meta))
    stds = {m: [mean(layer) for layer in zip(*(run_stds[d] for d in done(dirs[m])))]  # layer by layer, over the seeds
            for m in models(scale) if done(dirs[m])}

    plt = pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(8, 7))
    for m, values in stds.items():  # as Fig. 7: depth by colour, plain dashed and ResNet solid
        color = "tab:blue" if m.endswith(str(shallow)) else "tab:red"
        line = "--" if m.startswith("plain") else "-"
        axes[0].plot(range(1, len(values) + 1), values, line, color=color, label=label(m))
        axes[1].plot(range(1, len(values) + 1), sorted(values, reverse=True), line, color=color, label=label(m))
    axes[0].set_xlabel("layer index (original)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        if stds:
            ax.legend(fontsize=8)
    fig.tight_layout()
    figure = out / "responses.png"
    fig.savefig(figure, dpi=110)
    plt.close(fig)

    rows = [(m, len(stds[m]), cell(dirs[m], lambda d: mean(run_stds[d]), scale, fmt=lambda x: f"{x:.3f}"),
             f"{max(stds[m]):.3f}", f"{min(stds[m]):.3f}") if m in stds
            else (m, progress(dirs[m][0], scale), "", "", "") for m in models(scale)]
    text = "\n".join([
        header("Standard deviations of layer responses (paper Fig. 7)", scale, data, dirs, command),
        f"![std of each 3x3 layer's response, in network order (top) and sorted (bottom)]({figure.name})",
        "",
        table(["model", "3x3 layers", "mean std", "largest", "smallest"], rows),
        "",
        *findings(stds, shallow, deep),
        "",
    ])
    report = out / "responses.md"
    report.write_text(text)
    # The measurements themselves, so that the report's numbers have a record: each finished run's
    # std per 3x3 layer, in network order, by network and run folder.
    values = {m: {d.name: run_stds[d] for d in done(dirs[m])} for m in models(scale) if done(dirs[m])}
    (out / "responses.json").write_text(json.dumps(values, indent=1) + "\n")
    return report


def ranks_below(a: list[float], b: list[float]) -> str:
    """At how many ranks ``a``'s responses, sorted by size, lie below ``b``'s (Fig. 7, bottom)."""
    below = sum(x < y for x, y in zip(sorted(a, reverse=True), sorted(b, reverse=True)))
    return f"below at {below} of the {min(len(a), len(b))} largest ranks"


def findings(stds: dict[str, list[float]], shallow: int, deep: int) -> list[str]:
    """Fig. 7's two findings, as far as the finished runs (``stds``: each network's per-layer stds,
    averaged over its seeds) show them: on average, and rank by rank in the sorted curves."""
    average = {m: mean(v) for m, v in stds.items()}

    def compared(pairs: list[tuple[str, str]], claim: str, paper: str) -> str:
        measured = [(a, b) for a, b in pairs if a in average and b in average]
        waiting = ", ".join(sorted({label(n) for pair in pairs for n in pair if n not in average}))
        if not measured:
            return f"- {claim}: waits for {waiting} to finish; the paper: \"{paper}\"."
        holds = all(average[a] < average[b] for a, b in measured)
        values = "; ".join(f"{label(a)} {average[a]:.3f} vs {label(b)} {average[b]:.3f}, sorted by size "
                           f"{ranks_below(stds[a], stds[b])}" for a, b in measured)
        rest = f"; {waiting} still to finish" if waiting else ""
        return f"- {claim}: {'yes' if holds else 'no'} ({values}{rest}); the paper: \"{paper}\"."

    return [
        compared([(f"resnet{d}", f"plain{d}") for d in (shallow, deep)],
                 "ResNet responses smaller than the plain nets' at equal depth",
                 "ResNets have generally smaller responses than their plain counterparts"),
        compared([(f"resnet{deep}", f"resnet{shallow}")], f"ResNet-{deep}'s responses smaller than ResNet-{shallow}'s on average",
                 "the deeper ResNet has smaller magnitudes of responses"),
    ]
