"""A model's row of the paper's Table 1: per stage the output size, the blocks, the parameters and
the multiply-adds, counted by ``torch.utils.flop_counter`` (which counts 2 FLOPs per multiply-add;
the paper's "FLOPs" are multiply-adds, so we halve its count)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .resnet import ResNet


@dataclass
class Row:
    name: str
    output_size: tuple[int, ...]  # (channels, height, width) or (features,)
    layout: str
    params: int
    mult_adds: int


def num_params(*modules: nn.Module) -> int:
    """The parameters of ``modules`` (their buffers, such as batch norm statistics, not counted)."""
    return sum(p.numel() for m in modules for p in m.parameters())


def _block_layout(block: nn.Module) -> str:
    convs = [m for name, m in block.named_children() if name.startswith("conv")]
    return "[" + "; ".join(f"{c.kernel_size[0]}x{c.kernel_size[1]}, {c.out_channels}" for c in convs) + "]"


def summarize(model: ResNet, input_size: tuple[int, int] = (224, 224)) -> list[Row]:
    """Rows for the stem, each stage, the head and the total, for one image of ``input_size``."""
    shapes: dict[str, tuple[int, ...]] = {}
    probes = {"conv1": model.bn1, **{n: s for n, s in zip(model.stage_names, model.stages)}, "fc": model.fc}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
        for name, m in probes.items()
    ]
    weight = model.conv1.weight  # the probe image goes where the model is (a GPU), as its dtype
    x = torch.zeros(1, model.conv1.in_channels, *input_size, device=weight.device, dtype=weight.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    flops = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}

    def mult_adds(*names: str) -> int:
        return sum(flops.get(f"{type(model).__name__}.{n}", 0) for n in names) // 2

    c = model.conv1
    stem = f"{c.kernel_size[0]}x{c.kernel_size[1]}, {c.out_channels}, stride {c.stride[0]}"
    rows = [Row("conv1", shapes["conv1"], stem, num_params(model.conv1, model.bn1), mult_adds("conv1"))]
    for i, (name, stage) in enumerate(zip(model.stage_names, model.stages)):
        layout = f"{_block_layout(stage[0])} x {len(stage)}"
        if i == 0 and isinstance(model.maxpool, nn.MaxPool2d):  # Table 1 puts the stem's pool in conv2_x
            layout = f"3x3 max pool, stride 2; {layout}"
        rows.append(Row(name, shapes[name], layout, num_params(stage), mult_adds(name)))
    head = f"average pool, {model.num_classes}-d fc" if model.num_classes else "average pool (headless)"
    rows.append(Row("fc", shapes["fc"], head, num_params(model.fc), mult_adds("fc")))
    rows.append(Row("total", shapes["fc"], "", num_params(model), flops.get("Global", 0) // 2))
    return rows


def format_table(name: str, rows: list[Row], input_size: tuple[int, int]) -> str:
    """The rows as a text table in the layout of the paper's Table 1."""
    def size(shape: tuple[int, ...]) -> str:
        return "x".join(map(str, shape[1:])) + f", {shape[0]}" if len(shape) == 3 else f"{shape[0]}"

    header = ("layer", "output size", "blocks", "params", "mult-adds")
    table = [header] + [
        (r.name, size(r.output_size), r.layout, f"{r.params:,}", giga(r.mult_adds)) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [f"{name}, input {input_size[0]}x{input_size[1]}"]
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) if j < 3 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0 or i == len(table) - 2:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("mult-adds: multiply-adds of convolutions and fc, as the paper's Table 1 counts FLOPs "
                 "(torch.utils.flop_counter's FLOPs / 2).")
    return "\n".join(lines)


def giga(n: int) -> str:
    """A count in words of three digits: 1.82 G, 40.6 M, 270 K."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= scale / 10:
            return f"{n / scale:.3g} {unit}"
    return str(n)
