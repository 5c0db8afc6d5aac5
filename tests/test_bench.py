"""``resnets bench``: every mode and column at a tiny size, the --json schema, and both training
pipelines on a tiny image folder. Nothing here checks a speed: this only shows the numbers are made."""

import json
from pathlib import Path

import pytest

import torch
import torchvision

from resnets import create_model
from resnets.bench import format_infer, format_step, format_train
from resnets.hardware import cpu_info
from resnets.training.step import training_step
import resnets.bench.train
import resnets.cli.bench
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
    native = has_native_bf16()
    expected = ["eager-fp32", "optimized-fp32", *["optimized-bf16"] * native, "compiled-fp32", *["compiled-bf16"] * native,
                "onnxruntime"]
    assert [row["mode"] for row in result["rows"]] == expected
    # torchvision has no resnet20: our eager model is the baseline, and the notes say so.
    assert result["settings"]["baseline"] == "eager-fp32" and result["rows"][0]["ratio"] == 1
    assert any("torchvision has no resnet20" in note for note in result["notes"])
    assert set(result["peak_gflops"]) == ({"fp32", "bf16"} if has_native_bf16() else {"fp32"})
    above = [row["mode"] for row in result["rows"] if row["peak_fraction"] > 1]  # a 128x128 matmul is far from a peak
    assert [note.split(" above 100%")[0] for note in result["notes"] if "above 100% of the matmul peak" in note] == \
        ([", ".join(above)] if above else [])
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


def test_infer_measures_torchvision_beside_ours(tmp_path, capsys):
    results = tmp_path / "infer.json"
    assert main(["bench", "infer", "--model", "resnet18", *TINY, "--modes", "optimized-fp32", "--results-file", str(results)]) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].startswith("CPU ") and "ratio: images/s over torchvision-eager-fp32's" in lines[1]
    rows = [line.split() for line in lines if line.startswith(("torchvision-", "optimized-"))]
    assert [row[0] for row in rows] == ["torchvision-eager-fp32", "optimized-fp32"]
    assert rows[0][3] == "1.00x" and float(rows[1][-1]) < 1e-4  # torchvision's weights, loaded into ours
    assert format_infer(json.loads(results.read_text())) + "\n" == table  # the same result, as JSON


@pytest.mark.parametrize("where", ["no-such-folder/r.json", "."])
def test_a_results_file_that_cannot_be_written_is_refused_before_measuring(where, tmp_path, capsys, monkeypatch):
    # It was written after minutes of measuring and before the table: a typo lost both.
    monkeypatch.setattr(resnets.cli.bench, "bench_infer", lambda *a: pytest.fail("measured"))
    with pytest.raises(SystemExit) as exit:  # argparse's usage error
        main(["bench", "infer", *TINY, "--results-file", str(tmp_path / where)])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --results-file: cannot write {tmp_path / where}" in err.splitlines()[-1]


STEP_ROW = {"mode", "precision", "memory_format", "images_per_s", "ratio", "step_ms", "gflops"}


@pytest.mark.slow  # resnets-compiled compiles the step: 70 and 79 s in two runs of the suite, under 5 s in another
def test_step_times_every_mode_with_every_column(capsys):
    result = bench_json(capsys, "step", "--model", "resnet20", "--resolution", "32", "--batch-size", "4", "--rounds", "2",
                        "--steps", "2", "--warmup", "1", "--device", "cpu")
    assert result["benchmark"] == "step" and set(result["machine"]) == MACHINE
    assert result["settings"]["mult_adds_per_image"] == RESNET20_MULT_ADDS
    assert [row["mode"] for row in result["rows"]] == ["eager-nchw-fp32", "resnets", "resnets-compiled"]
    assert result["settings"]["baseline"] == "eager-nchw-fp32"
    assert any("torchvision has no resnet20" in note for note in result["notes"])
    for row in result["rows"]:
        assert set(row) == STEP_ROW
        assert row["step_ms"] == pytest.approx(4 / row["images_per_s"] * 1e3)
        assert row["gflops"] == pytest.approx(row["images_per_s"] * 6 * RESNET20_MULT_ADDS / 1e9)
        assert row["ratio"] == pytest.approx(row["images_per_s"] / result["rows"][0]["images_per_s"])
    ours = result["rows"][1]
    assert (ours["precision"], ours["memory_format"]) == ("bf16" if has_native_bf16() else "fp32", "channels_last")
    table = format_step(result)
    for column in ("mode", "precision", "memory", "images/s", "ratio", "ms/step", "GFLOP/s", "avx512_bf16"):
        assert column in table


def test_step_baseline_is_torchvision_where_it_has_the_model(capsys):
    assert main(["bench", "step", "--model", "resnet18", "--resolution", "32", "--batch-size", "2", "--rounds", "1",
                 "--steps", "1", "--warmup", "1", "--no-compile", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("torchvision-", "resnets"))]
    assert [row[:3] for row in rows] == [["torchvision-fp32", "fp32", "NCHW"], ["resnets", rows[1][1], "channels_last"]]


def test_training_step_is_the_sgd_step_of_a_plain_loop():
    # Independent truth: torchvision's resnet18 trained by the usual hand-written loop, in fp32.
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(num_classes=10)
    ours = create_model("resnet18", num_classes=10)
    ours.load_state_dict(theirs.state_dict())
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    sgd = lambda net: torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    opt_theirs, opt_ours = sgd(theirs), sgd(ours)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(theirs(x), y)
        opt_theirs.zero_grad()
        loss.backward()
        opt_theirs.step()
        our_loss, _ = training_step(ours, opt_ours, None, x, y, "fp32")
        assert our_loss.item() == pytest.approx(loss.item(), rel=1e-5)
    for (name, a), b in zip(theirs.state_dict().items(), ours.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5), name


def test_train_runs_both_pipelines_with_their_accuracy(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESNETS_CACHE", str(tmp_path / "cache"))
    tarball = jpeg_folder_tarball(tmp_path)  # 3 classes of 90 training and 70 test 32x32 JPEGs
    result = bench_json(capsys, "train", "--data", str(tarball), "--iterations", "3", "--batch-size", "8", "--workers", "1",
                        "--device", "cpu")
    assert result["benchmark"] == "train" and set(result["machine"]) == MACHINE
    s = result["settings"]
    assert (s["iterations"], s["batch_size"], s["train_images"], s["test_images"]) == (3, 8, 270, 210)
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


def test_train_on_a_gray_folder_compares_two_gray_networks(tmp_path, monkeypatch, capsys):
    # ImageFolder reads gray images as RGB: torchvision's side trained a 3-channel net beside our 1-channel one.
    from PIL import Image

    monkeypatch.setenv("RESNETS_CACHE", str(tmp_path / "cache"))
    for split, n in (("train", 12), ("test", 4)):
        for c in ("a", "b"):
            (tmp_path / "gray" / split / c).mkdir(parents=True)
            for i in range(n):
                Image.new("L", (8, 8), 40 * i + 100 * (c == "b")).save(tmp_path / "gray" / split / c / f"{i}.png")
    built = []
    create = resnets.bench.train.create_model
    monkeypatch.setattr(resnets.bench.train, "create_model", lambda *a, **k: built.append(k) or create(*a, **k))
    result = bench_json(capsys, "train", "--data", str(tmp_path / "gray"), "--iterations", "2", "--batch-size", "4",
                        "--workers", "0", "--device", "cpu")
    assert [k["in_channels"] for k in built] == [1] and len(result["rows"]) == 2


def test_train_refuses_a_folder_without_splits(tmp_path, capsys):
    assert main(["bench", "train", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train/ and test/" in err


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_info(fake) == ("Some CPU", {"fpu", "avx2", "amx_bf16"})


@pytest.mark.parametrize("argv, message", [
    (["bench", "train", "--data", "digits"], "bench train needs an image folder (or a tarball of one)"),
    (["bench", "infer", "--matmul-size", "0"], "--matmul-size must be at least 1, got 0"),  # was taken as the default
    (["bench", "step", "--rounds", "0"], "--rounds must be at least 1, got 0"),
    (["bench", "train", "--data", "digits", "--workers", "-1"], "--workers must be at least 0, got -1"),
])
def test_bench_refuses_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
