"""scripts/reference_cifar.py, the independent ResNet-20 that tells a data set's cost from ours:
it must be the paper's network (Table 6's 0.27M parameters, as ours) and run on an image folder."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import resnets

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reference_cifar.py"
spec = importlib.util.spec_from_file_location("reference_cifar", SCRIPT)
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)


def test_reference_is_the_papers_network():
    for depth in (20, 56):
        theirs = sum(p.numel() for p in reference.CifarResNet((depth - 2) // 6).parameters())
        ours = sum(p.numel() for p in resnets.create_model(f"resnet{depth}").parameters())
        assert theirs == ours
    assert sum(p.numel() for p in reference.CifarResNet(3).parameters()) == 269_722  # Table 6: 0.27M
    x = torch.randn(2, 3, 32, 32)
    assert reference.CifarResNet(3)(x).shape == (2, 10)


@pytest.mark.slow
def test_reference_trains_on_an_image_folder_and_continues_from_its_last_epoch(tmp_path):
    from test_gpu_script import jpeg_folder_tarball
    import tarfile

    with tarfile.open(jpeg_folder_tarball(tmp_path, 16)) as tar:
        tar.extractall(tmp_path, filter="data")
    command = [sys.executable, str(SCRIPT), str(tmp_path / "tiny-cifar"), str(tmp_path / "out"), "--workers", "0"]
    results = tmp_path / "out" / "results.json"
    # 270 training images: 2 steps an epoch of batch 128. Two epochs, then the same run asked for four.
    done = subprocess.run(command + ["--iterations", "4"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    first = json.loads(results.read_text())
    assert first["iterations"] == 4 and 0 <= first["test_error"] <= 1
    done = subprocess.run(command + ["--iterations", "8"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed at iteration 4" in done.stdout
    steps = [json.loads(line)["step"] for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8] and json.loads(results.read_text())["iterations"] == 8
