"""Benchmarks that put numbers beside their peers measured in the same run: ``resnets bench infer``
(inference modes against torchvision's model and the machine's matmul peak), ``resnets bench
train`` (our training pipeline against the usual torchvision one, speed and accuracy) and
``resnets bench step`` (the training step alone against torchvision's reference loop).

Each returns, and ``--json`` prints, one JSON object:

- ``benchmark``: ``"infer"``, ``"train"`` or ``"step"``.
- ``machine``: ``cpu`` (model name), ``cpu_flags`` (``{"avx2", "avx512f", "avx512_bf16", "amx_bf16"}``:
  true or false), ``native_bf16``, ``torch_threads``, ``device``, ``gpu`` (name or null), ``torch``
  (version); infer adds ``onnxruntime`` (version or null).
- ``settings``: the options the numbers were measured with. infer: ``model``, ``resolution``,
  ``batch_size``, ``rounds``, ``calls``, ``warmup``, ``matmul_size``, ``mult_adds_per_image``,
  ``baseline`` (the row the ratios divide by). train: ``model``, ``data``, ``iterations``,
  ``batch_size``, ``lr``, ``momentum``, ``weight_decay``, ``schedule``, ``workers``, ``seed``,
  ``input_size``, ``train_images``, ``test_images``, ``baseline``. step: ``model``, ``resolution``,
  ``batch_size``, ``rounds``, ``steps``, ``warmup``, ``lr``, ``momentum``, ``weight_decay``,
  ``mult_adds_per_image``, ``baseline``.
- ``rows``: one object per mode, the baseline first. infer: ``mode`` (torchvision-eager-fp32,
  eager-fp32, optimized-fp32, optimized-bf16, compiled-fp32, compiled-bf16, onnxruntime),
  ``precision`` (fp32 or bf16), ``images_per_s`` (at ``batch_size``), ``latency_ms_p50`` and ``latency_ms_p90`` (batch 1),
  ``ratio`` (images/s over the baseline's), ``gflops`` (achieved, 2 FLOPs per multiply-add),
  ``peak_fraction`` (of the matmul peak of its precision), ``max_rel_error`` (largest difference from
  our eager fp32 model's output, over its largest value). train: ``mode`` (resnets, torchvision),
  ``pipeline``, ``precision``, ``memory_format``, ``images_per_s``, ``ratio``, ``train_seconds``,
  ``iterations``, ``test_accuracy``. step: ``mode`` (torchvision-amp or torchvision-fp32, or
  eager-nchw-amp/-fp32 where torchvision has no such model; resnets; resnets-compiled),
  ``precision`` (fp16, bf16 or fp32), ``memory_format``, ``images_per_s``, ``ratio``, ``step_ms``
  (median), ``gflops`` (achieved, 3 passes of 2 FLOPs per multiply-add).
- infer also: ``peak_gflops`` (``{"fp32": ..., "bf16": ...}``, the matmul peaks measured in the run).
- ``notes``: what was left out and why, and what a reader must know to read the numbers.
"""

from .infer import MODES, bench_infer, format_infer
from .step import bench_step, format_step
from .train import bench_train, format_train

__all__ = ["MODES", "bench_infer", "bench_step", "bench_train", "format_infer", "format_step", "format_train"]
