"""``resnets bench``: every mode and column at a tiny size, the --json schema, and both training
pipelines on a tiny image folder. Nothing here checks a speed: this only shows the numbers are made."""

import json
from pathlib import Path

import pytest

from resnets.bench import cpu_info, format_infer, format_train
from resnets.cli import main
from test_gpu_script import jpeg_folder_tarball  # tests/ is on the path, as for test_reference

MACHINE = {"cpu", "cpu_flags", "native_bf16", "torch_threads", "device", "gpu", "torch"}
INFER_ROW = {"mode", "precision", "images_per_s", "latency_ms_p50", "latency_ms_p90", "ratio", "gflops", "peak_fraction",
             "max_rel_error"}
TRAIN_ROW = {"mode", "pipeline", "precision", "memory_format", "images_per_s", "ratio", "train_seconds", "iterations",
             "test_accuracy"}
TINY = ["--resolution", "32", "--batch-size", "2", "--rounds", "2", "--calls", "2", "--warmup", "1", "--matmul-size", "128",
        "--device", "cpu"]
RESNET20_MULT_ADDS = 40_551_040  # at 32x32 (README: 40.6 M)


def has_native_bf16() -> bool:
    """Read /proc/cpuinfo here too, rather than trust the code under test."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        flags = []
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def bench_json(capsys, *argv):
    assert main(["bench", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # stdout holds the JSON alone: progress goes to stderr


def test_infer_times_every_mode_with_every_column(capsys):
    result = bench_json(capsys, "infer", "--model", "resnet20", *TINY)
    assert result["benchmark"] == "infer"
    assert set(result["machine"]) == MACHINE | {"onnxruntime"}
    assert result["machine"]["native_bf16"] == has_native_bf16()
    assert result["settings"]["model"] == "resnet20" and result["settings"]["batch_size"] == 2
    assert result["settings"]["mult_adds_per_image"] == RESNET20_MULT_ADDS
    bf16 = ["optimized-bf16"] if has_native_bf16() else []
    expected = ["eager-fp32", "optimized-fp32", *bf16, "compiled", "onnxruntime"]
    assert [row["mode"] for row in result["rows"]] == expected
    # torchvision has no resnet20: our eager model is the baseline, and the notes say so.
    assert result["settings"]["baseline"] == "eager-fp32" and result["rows"][0]["ratio"] == 1
    assert any("torchvision has no resnet20" in note for note in result["notes"])
    assert set(result["peak_gflops"]) == ({"fp32", "bf16"} if has_native_bf16() else {"fp32"})
    for row in result["rows"]:
        assert set(row) == INFER_ROW
        assert row["images_per_s"] > 0 and 0 < row["latency_ms_p50"] <= row["latency_ms_p90"]
        assert row["gflops"] == pytest.approx(row["images_per_s"] * 2 * RESNET20_MULT_ADDS / 1e9)
        assert row["peak_fraction"] == pytest.approx(row["gflops"] / result["peak_gflops"][row["precision"]])
        assert row["max_rel_error"] < (2e-2 if row["precision"] == "bf16" else 1e-4)  # each mode computes the same
    table = format_infer(result)
    for column in ("mode", "precision", "images/s", "ratio", "latency p50 ms", "p90 ms", "GFLOP/s", "of peak", "matmul peak",
                   "avx512_bf16", "thread"):
        assert column in table


def test_infer_measures_torchvision_beside_ours(capsys):
    assert main(["bench", "infer", "--model", "resnet18", *TINY, "--modes", "optimized-fp32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CPU ") and "ratio: images/s over torchvision-eager-fp32's" in lines[1]
    rows = [line.split() for line in lines if line.startswith(("torchvision-", "optimized-"))]
    assert [row[0] for row in rows] == ["torchvision-eager-fp32", "optimized-fp32"]
    assert rows[0][3] == "1.00x" and float(rows[1][-1]) < 1e-4  # torchvision's weights, loaded into ours


def test_train_runs_both_pipelines_with_their_accuracy(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESNETS_CACHE", str(tmp_path / "cache"))
    tarball = jpeg_folder_tarball(tmp_path)  # 3 classes of 175 training and 70 test 32x32 JPEGs
    result = bench_json(capsys, "train", "--data", str(tarball), "--iterations", "3", "--batch-size", "8", "--workers", "1",
                        "--device", "cpu")
    assert result["benchmark"] == "train" and set(result["machine"]) == MACHINE
    s = result["settings"]
    assert (s["iterations"], s["batch_size"], s["train_images"], s["test_images"]) == (3, 8, 525, 210)
    assert s["input_size"] == [32, 32]
    assert [row["mode"] for row in result["rows"]] == ["torchvision", "resnets"]
    for row in result["rows"]:
        assert set(row) == TRAIN_ROW
        assert row["iterations"] == 3 and row["images_per_s"] > 0 and 0 <= row["test_accuracy"] <= 1
    torchvision, ours = result["rows"]
    assert torchvision["ratio"] == 1 and ours["ratio"] == pytest.approx(ours["images_per_s"] / torchvision["images_per_s"])
    assert "RandomCrop, RandomHorizontalFlip, ToTensor, Normalize, DataLoader with 1 worker" in torchvision["pipeline"]
    table = format_train(result)
    assert "images/s" in table and "test accuracy" in table and "DeviceLoader" in table


def test_train_refuses_a_folder_without_splits(tmp_path, capsys):
    assert main(["bench", "train", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train/ and test/" in err


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_info(fake) == ("Some CPU", {"fpu", "avx2", "amx_bf16"})
