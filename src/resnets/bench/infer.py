"""``resnets bench infer``: images/s at a batch size and batch-1 latency of one model in each way
of running it (eager, batch norms folded, bf16, compiled with freezing, onnxruntime), beside torchvision's same
model, all measured in one run, interleaved, and held against the machine's matmul peak."""

from __future__ import annotations

import tempfile
from statistics import median
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..errors import UserError, check_at_least, one_line
from ..hardware import native_bf16
from ..models import create_model, model_config, optimize_for_inference
from ..models.export import export
from ..models.summary import giga, summarize
from ..training.distributed import resolve_device
from .measure import describe, format_columns, machine, matmul, number, rotated, timed

MODES = ("torchvision-eager-fp32", "eager-fp32", "optimized-fp32", "optimized-bf16", "compiled-fp32", "compiled-bf16",
         "onnxruntime")
OPTIONAL = ("compiled-fp32", "compiled-bf16", "onnxruntime")  # left out, with a note, where they cannot run here


@dataclass
class Mode:
    name: str
    precision: str  # the matmul peak it is held against: "fp32" or "bf16"
    call: Callable[[torch.Tensor], Any]  # runs a float32 NCHW batch on the device


def bench_infer(model: str = "resnet50", resolution: int = 224, batch_size: int = 8, rounds: int = 5, calls: int = 5,
                warmup: int = 3, matmul_size: Optional[int] = None, device: str = "auto",
                modes: Optional[list[str]] = None) -> dict[str, Any]:
    """Measure ``model`` at ``resolution`` in each of ``modes`` (default: every one that runs here).

    Each round times every mode in turn (the order rotating from round to round), ``calls`` calls
    at ``batch_size`` then ``calls`` at batch 1, after ``warmup`` untimed calls of each; images/s
    is the batch size over the median batch call, the latency percentiles are over all batch-1
    calls. The same rounds time a ``matmul_size`` square matmul in fp32 (and bf16, where the bf16
    mode runs): the peak that each mode's GFLOP/s is a fraction of. Returns the JSON object that
    :mod:`resnets.bench` describes.
    """
    check_at_least(1, resolution=resolution, batch_size=batch_size, rounds=rounds, calls=calls, warmup=warmup,
                   matmul_size=matmul_size)
    unknown = sorted(set(modes or ()) - set(MODES))
    if unknown:
        raise UserError(f"unknown mode {', '.join(unknown)}; valid: {', '.join(MODES)}")
    dev = resolve_device(device)
    matmul_size = matmul_size or (8192 if dev.type == "cuda" else 2048)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="resnets-bench-") as tmp:
        ours, runs = build_modes(model, resolution, dev, modes or list(MODES), Path(tmp), notes)
        baseline = runs[0].name
        g = torch.Generator().manual_seed(0)
        x = {n: torch.randn(n, ours.conv1.in_channels, resolution, resolution, generator=g).to(dev) for n in (batch_size, 1)}
        reference = inference(ours)(x[batch_size]).float()
        errors: dict[str, float] = {}
        for mode in list(runs):
            try:
                for _ in range(warmup):
                    out = mode.call(x[batch_size])
                    mode.call(x[1])
            except Exception as e:  # torch.compile without a C++ compiler, say: a benchmark reports what ran
                if mode.name not in OPTIONAL:
                    raise
                runs.remove(mode)
                notes.append(f"{mode.name}: left out ({type(e).__name__}: {one_line(e)})")
                continue
            out = torch.as_tensor(out[0] if isinstance(out, list) else out).to(dev).float()
            errors[mode.name] = ((out - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()
        precisions = [p for p in ("fp32", "bf16") if any(mode.precision == p for mode in runs)]
        peaks = {p: matmul(matmul_size, torch.float32 if p == "fp32" else torch.bfloat16, dev) for p in precisions}
        for call, _ in peaks.values():
            for _ in range(warmup):
                call()

        batch_s = {mode.name: [] for mode in runs}
        single_s = {mode.name: [] for mode in runs}
        peak_s = {p: [] for p in peaks}
        for r in range(rounds):
            for mode in rotated(runs, r):
                batch_s[mode.name] += [timed(lambda: mode.call(x[batch_size]), dev) for _ in range(calls)]
                single_s[mode.name] += [timed(lambda: mode.call(x[1]), dev) for _ in range(calls)]
            for p, (call, _) in peaks.items():
                peak_s[p] += [timed(call, dev) for _ in range(calls)]

    flops = 2 * summarize(ours, (resolution, resolution))[-1].mult_adds  # per image
    peak_gflops = {p: peaks[p][1] / median(peak_s[p]) / 1e9 for p in peaks}
    rows = []
    for mode in runs:
        images_per_s = batch_size / median(batch_s[mode.name])
        gflops = images_per_s * flops / 1e9
        rows.append({
            "mode": mode.name, "precision": mode.precision, "images_per_s": images_per_s,
            "latency_ms_p50": 1e3 * float(np.percentile(single_s[mode.name], 50)),
            "latency_ms_p90": 1e3 * float(np.percentile(single_s[mode.name], 90)),
            "ratio": None, "gflops": gflops, "peak_fraction": gflops / peak_gflops[mode.precision],
            "max_rel_error": errors[mode.name],
        })
    for row in rows:
        row["ratio"] = row["images_per_s"] / rows[0]["images_per_s"]
    above = [row["mode"] for row in rows if row["peak_fraction"] > 1]
    if above:
        notes.append(f"{', '.join(above)} above 100% of the matmul peak: a {matmul_size}x{matmul_size} matmul does not "
                     "reach this machine's peak; a larger --matmul-size measures it")
    if dev.type == "cuda":
        notes.append("fp32 convolutions may run in TF32 (torch.backends.cudnn.allow_tf32), the fp32 matmul peak does not")
    info = machine(dev)
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return {
        "benchmark": "infer", "machine": info,
        "settings": {"model": model, "resolution": resolution, "batch_size": batch_size, "rounds": rounds, "calls": calls,
                     "warmup": warmup, "matmul_size": matmul_size, "mult_adds_per_image": flops // 2, "baseline": baseline},
        "peak_gflops": peak_gflops, "rows": rows, "notes": notes,
    }


def build_modes(name: str, resolution: int, device: torch.device, wanted: list[str], tmp: Path,
                notes: list[str]) -> tuple[torch.nn.Module, list[Mode]]:
    """Our model (eval mode, on ``device``) and the ways of running it that ``wanted`` names and this
    machine can run, the baseline first: torchvision's model where it has one, else our eager model."""
    import torchvision  # loaded on first use (resnets/__init__.py)

    ours = create_model(name).eval().to(device)
    tv_names = set(torchvision.models.list_models(module=torchvision.models))
    modes: list[Mode] = []
    if name in tv_names:
        tv = torchvision.models.get_model(name).eval().to(device)
        ours.load_state_dict(tv.state_dict())  # the same weights: the outputs are compared too
        modes.append(Mode("torchvision-eager-fp32", "fp32", inference(tv)))
    else:
        notes.append(f"torchvision has no {name}: our eager fp32 model is the baseline")
        wanted = ["eager-fp32", *wanted]
    if "eager-fp32" in wanted:
        modes.append(Mode("eager-fp32", "fp32", inference(ours)))
    bf16 = native_bf16(device)
    if {"optimized-bf16", "compiled-bf16"} & set(wanted) and not bf16:
        notes.append("optimized-bf16, compiled-bf16: left out, the CPU has no native bf16 (avx512_bf16 or amx_bf16)")
    for precision in ("fp32", "bf16"):
        if f"optimized-{precision}" in wanted and (precision == "fp32" or bf16):
            modes.append(Mode(f"optimized-{precision}", precision, optimize_for_inference(ours, dtype=precision)))
    for precision in ("fp32", "bf16"):  # compiled with freezing, one static graph per batch size
        if f"compiled-{precision}" in wanted and (precision == "fp32" or bf16):
            modes.append(Mode(f"compiled-{precision}", precision, optimize_for_inference(ours, dtype=precision, compile=True)))
    if "onnxruntime" in wanted:
        session = onnx_session(ours, name, resolution, device, tmp, notes)
        if session is not None:
            modes.append(Mode("onnxruntime", "fp32", lambda x: session.run(None, {"x": x.cpu().numpy()})))
    return ours, modes


def inference(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module``'s forward without autograd, as the optimized model runs its own."""
    def call(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x)

    return call


def onnx_session(model: torch.nn.Module, name: str, resolution: int, device: torch.device, tmp: Path, notes: list[str]):
    """An onnxruntime session of ``model`` exported with a dynamic batch, on ``device``'s execution
    provider and with torch's thread count; None (and a note) where that cannot be had."""
    try:
        import onnxruntime
    except ImportError:
        notes.append("onnxruntime: left out, not installed (pip install 'resnets[export]')")
        return None
    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    if provider not in onnxruntime.get_available_providers():
        notes.append(f"onnxruntime: left out, this onnxruntime has no {provider}")
        return None
    meta = {"model": name, "model_config": model_config(name), "classes": [str(i) for i in range(model.num_classes)],
            "mean": [0.0] * model.conv1.in_channels, "std": [1.0] * model.conv1.in_channels,
            "input_size": [resolution, resolution]}
    try:
        path = export(model, meta, tmp / f"{name}.onnx", "onnx", dynamic_batch=True)
    except Exception as e:  # no onnx or onnxscript, or an exporter that fails on this torch
        notes.append(f"onnxruntime: left out, the export failed ({type(e).__name__}: {one_line(e)})")
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch's modes use
    if device.type == "cuda":
        notes.append("onnxruntime takes its input from host memory (the copy to the GPU is timed)")
    return onnxruntime.InferenceSession(str(path), options, providers=[provider])


def format_infer(result: dict[str, Any]) -> str:
    """The result of :func:`bench_infer` as the text printed by ``resnets bench infer``."""
    s, peaks = result["settings"], result["peak_gflops"]
    header = ("mode", "precision", "images/s", "ratio", "latency p50 ms", "p90 ms", "GFLOP/s", "of peak", "max rel err")
    rows = [(r["mode"], r["precision"], number(r["images_per_s"]), f"{r['ratio']:.2f}x", number(r["latency_ms_p50"]),
             number(r["latency_ms_p90"]), number(r["gflops"]), f"{100 * r['peak_fraction']:.0f}%",
             f"{r['max_rel_error']:.1e}") for r in result["rows"]]
    lines = [
        describe(result["machine"]),
        f"{s['model']}, {s['resolution']}x{s['resolution']}, batch {s['batch_size']} (latency: batch 1); "
        f"{giga(s['mult_adds_per_image'])} multiply-adds per image; {s['rounds']} rounds of {s['calls']} calls "
        f"per mode, interleaved, after {s['warmup']} warm-up calls; ratio: images/s over {s['baseline']}'s",
        f"matmul peak ({s['matmul_size']}x{s['matmul_size']}, timed in the same rounds): "
        + ", ".join(f"{p} {number(g)} GFLOP/s" for p, g in peaks.items()),
        "",
        *format_columns(header, rows, left=2),
    ]
    lines += [f"note: {note}" for note in result["notes"]]
    return "\n".join(lines)
