"""A network made ready for inference: each batch norm folded into the convolution before it (at
test time a batch norm is a fixed per-channel scale and shift, Section 3.4's "BN ... after each
convolution"), the channels_last layout, and optionally bf16 or fp16 weights. It takes and returns
ordinary NCHW float32 tensors."""

from __future__ import annotations

import copy
from typing import Optional, Union

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import UserError


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold, in place, every batch norm that directly follows a convolution into it (``model`` in
    eval mode): ``convN`` then ``bnN`` of one module, as torchvision's and our blocks name them, or
    a convolution then a batch norm in an ``nn.Sequential`` (a projection shortcut). The batch norm
    becomes an ``nn.Identity``. Returns ``model``."""
    if model.training:
        raise UserError("batch norms fold only in eval mode: call model.eval() first")
    for module in model.modules():
        children = list(module.named_children())
        if isinstance(module, nn.Sequential):
            pairs = [(a, b) for (a, _), (b, _) in zip(children, children[1:])]
        else:
            names = dict(children)
            pairs = [(name, "bn" + name[4:]) for name in names if name.startswith("conv") and "bn" + name[4:] in names]
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return model


class InferenceModel(nn.Module):
    """``network`` (folded, channels_last, of ``dtype``) behind an NCHW float32 interface;
    ``frozen``: ``network`` is ``torch.compile``d, and compiles with inductor's freezing."""

    def __init__(self, network: nn.Module, dtype: torch.dtype, frozen: bool = False) -> None:
        super().__init__()
        self.network, self.dtype, self.frozen = network, dtype, frozen

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = next(self.network.parameters()).device
        x = x.to(device, self.dtype).contiguous(memory_format=torch.channels_last)
        if not self.frozen:
            return self.network(x).float()
        # Dynamo reads inductor's `freezing` from the global config when it traces the call that
        # compiles, not from torch.compile's options (pytorch/pytorch#139272: options={"freezing":
        # True} compiled plain convolutions here), so that call runs under a patch of the config.
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.network(x).float()


def optimize_for_inference(model: nn.Module, dtype: Optional[Union[str, torch.dtype]] = None,
                           device: Optional[Union[str, torch.device]] = None, compile: bool = False) -> nn.Module:
    """A copy of ``model`` for inference: batch norms folded, channels_last, weights in ``dtype``
    (``None``/``"fp32"``, ``"bf16"`` or ``"fp16"``; fp16 on GPUs only) on ``device`` (default: the
    model's). In fp32 its outputs equal the model's in eval mode up to rounding (about 1e-6 relative).

    ``compile=True`` also compiles it with ``torch.compile`` and freezing: the weights become
    constants, so that inductor prepacks them for oneDNN and fuses each convolution with the ReLU
    and addition after it (PyTorch's recipe for CPU inference; in bf16 those elementwise passes
    otherwise take about a third of resnet50's time here, docs/BENCHMARKS.md). One graph per input
    shape, compiled at its first call."""
    dtype = {None: torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype, dtype)
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise UserError(f"unsupported inference dtype {dtype}; valid: fp32, bf16, fp16")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if dtype == torch.float16 and device.type == "cpu":
        raise UserError("fp16 inference needs a GPU; on a CPU use bf16 (fast where the CPU has AVX512-BF16 or AMX)")
    network = fold_batch_norms(copy.deepcopy(model).eval())
    network = network.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    if compile:
        return InferenceModel(torch.compile(network, dynamic=False), dtype, frozen=True).eval()
    return InferenceModel(network, dtype).eval()
