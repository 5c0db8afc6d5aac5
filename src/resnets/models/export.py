"""A trained network out of Python: ONNX (run by onnxruntime and most inference engines) or a
``torch.export`` ExportedProgram (run by PyTorch without the model's code). Batch norms are folded
first (:func:`fold_batch_norms`), and the preprocessing the network expects (mean, std, input
size, class names) travels in the file's metadata."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..errors import UserError
from .inference import fold_batch_norms
from .weights import META_KEY  # also ONNX's metadata_props key, and the ExportedProgram's extra file META_KEY.json

SUFFIXES = {"onnx": ".onnx", "exported-program": ".pt2"}  # each format and the extension that names it
FORMATS = tuple(SUFFIXES)
# torch.onnx's exporter (dynamo=True) builds opset 18 graphs; for an older opset it tries the onnx
# version converter, which fails on these nets (no adapter for Pad) and keeps 18, with only a logged warning.
OLDEST_OPSET = 18


def export_format(path: str | Path, format: Optional[str] = None, opset: Optional[int] = None) -> str:
    """The format to write ``path`` in: the one its extension names (.onnx, .pt2), which ``format``
    must not contradict; for another name, ``format``, which must then be given: a default would
    write a file that its name does not describe, as ``r.pt2`` holding ONNX once did. ONNX needs
    the onnx package, and ``opset`` one it and torch.onnx write: all said before a model loads."""
    if format is not None and format not in FORMATS:
        raise UserError(f"unknown export format {format!r}; valid: {', '.join(FORMATS)}")
    path = Path(path)
    named = {suffix: f for f, suffix in SUFFIXES.items()}.get(path.suffix.lower())
    if named and format not in (None, named):
        raise UserError(f"{path.name} is named as {named}, not {format}: name it {path.stem}{SUFFIXES[format]}, "
                        f"or ask for {named}")
    if not (named or format):
        raise UserError(f"cannot tell the export format from {path.name!r}: name it .onnx or .pt2, or say the format "
                        f"(--format {' or '.join(FORMATS)})")
    format = named or format
    if opset is not None and format != "onnx":
        raise UserError(f"an opset is for ONNX only, not {format}")
    if format == "onnx":
        newest, supported = onnx_opsets()
        if opset is not None and not OLDEST_OPSET <= opset <= newest:
            raise UserError(f"ONNX opset {opset} is not supported; torch.onnx writes {supported}")
    return format


def onnx_opsets() -> tuple[int, str]:
    """The newest opset the installed onnx knows, and the range torch.onnx writes, in words."""
    try:
        import onnx  # torch.onnx needs onnx and onnxscript, an optional extra
    except ImportError:
        raise UserError("ONNX export needs the onnx and onnxscript packages: pip install 'resnets[export]'") from None
    newest = onnx.defs.onnx_opset_version()
    return newest, f"opsets {OLDEST_OPSET} to {newest} (onnx {onnx.__version__})"


def export(model: nn.Module, meta: dict[str, Any], path: str | Path, format: Optional[str] = None,
           dynamic_batch: bool = False, opset: Optional[int] = None) -> Path:
    """Write ``model`` (eval mode, batch norms folded, fp32) to ``path`` as ``format`` (default:
    the one ``path``'s extension names, :func:`export_format`), with ``meta`` (what inference
    needs: ``model``, ``classes``, ``mean``, ``std``, ``input_size``) as JSON in the file.
    ``dynamic_batch``: any batch size, else batch 1 only. ``opset``: ONNX's, 18 to the installed
    onnx's newest (default: torch.onnx's)."""
    format = export_format(path, format, opset)
    network = fold_batch_norms(copy.deepcopy(model).float().eval()).cpu()  # traced on the CPU, wherever the model ran
    height, width = meta["input_size"]
    example = (torch.randn(2 if dynamic_batch else 1, meta["model_config"].get("in_channels", 3), height, width),)
    dynamic = {"x": {0: torch.export.Dim("batch", min=1)}} if dynamic_batch else None
    described = json.dumps({k: meta[k] for k in ("model", "model_config", "classes", "mean", "std", "input_size", "resize")
                            if k in meta})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "exported-program":
        program = torch.export.export(Named(network).eval(), example, dynamic_shapes=dynamic)
        torch.export.save(program, path, extra_files={f"{META_KEY}.json": described})
        return path
    program = torch.onnx.export(Named(network).eval(), example, dynamo=True, dynamic_shapes=dynamic, opset_version=opset,
                                input_names=["x"], output_names=["logits"], verbose=False)
    written = program.model.opset_imports[""]
    if opset is not None and written != opset:  # torch.onnx keeps its own opset where a conversion fails
        raise UserError(f"torch.onnx could not convert this model to opset {opset} (only to {written}); "
                        f"it writes {onnx_opsets()[1]}")
    program.model.metadata_props[META_KEY] = described
    program.save(str(path))
    return path


class Named(nn.Module):
    """``network`` with its input named ``x``, the name the exported graph's dynamic shapes use."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)
