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

FORMATS = ("onnx", "exported-program")
META_KEY = "resnets"  # ONNX metadata_props key, and the ExportedProgram's extra file "resnets.json"


def export(model: nn.Module, meta: dict[str, Any], path: str | Path, format: str = "onnx", dynamic_batch: bool = False,
           opset: Optional[int] = None) -> Path:
    """Write ``model`` (eval mode, batch norms folded, fp32) to ``path`` as ``format``, with
    ``meta`` (what inference needs: ``model``, ``classes``, ``mean``, ``std``, ``input_size``) as
    JSON in the file. ``dynamic_batch``: any batch size, else batch 1 only."""
    if format not in FORMATS:
        raise UserError(f"unknown export format {format!r}; valid: {', '.join(FORMATS)}")
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
    try:
        import onnx  # noqa: F401  (torch.onnx needs onnx and onnxscript, an optional extra)
    except ImportError:
        raise UserError("ONNX export needs the onnx and onnxscript packages: pip install 'resnets[export]'") from None
    program = torch.onnx.export(Named(network).eval(), example, dynamo=True, dynamic_shapes=dynamic, opset_version=opset,
                                input_names=["x"], output_names=["logits"], verbose=False)
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
