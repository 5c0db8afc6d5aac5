"""scripts/gpu-reproduce.sh at smoke scale on the CPU: the smoke steps, the jobs, and one tarball
per run that holds what the run measured."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from torchvision.io import encode_jpeg

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["cat", "dog", "ship"]


def jpeg_folder_tarball(path: Path, size: int = 32) -> Path:
    """A CIFAR-10-like image folder of JPEGs, 32x32 unless asked (enough for the smoke scale's
    256-image subset). The scripts take any size: at 16x16 a CIFAR net trains four times faster."""
    g = torch.Generator().manual_seed(0)
    root = path / "tiny-cifar"
    for split, n in [("train", 90), ("test", 70)]:
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                image = torch.randint(0, 80, (3, size, size), generator=g, dtype=torch.uint8) + 80 * c
                (folder / f"{i:04d}.jpg").write_bytes(encode_jpeg(image, quality=75).numpy().tobytes())
    tarball = path / "tiny-cifar.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root, arcname="tiny-cifar")
    return tarball


@pytest.mark.slow
def test_gpu_script_at_smoke_scale_on_cpu(tmp_path):
    tarball, out = jpeg_folder_tarball(tmp_path, 16), tmp_path / "out"
    # One thread per process: up to six train at once, and two threads each would thrash two cores.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "SCALE": "smoke", "EXPERIMENT": "shortcuts", "ONLY": "resnet20,plain20", "JOBS": "2", "RUNS": "3",
           "SMOKE_ITERATIONS": "4", "INSTALL": "0",
           "BUDGET": "400", "WORK": str(tmp_path / "work"), "RESNETS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(["bash", "scripts/gpu-reproduce.sh", str(tarball), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = (out / "log.txt").read_text()
    assert "no CUDA device: --compile (CUDA graphs) is not tried" in log
    assert "done: test accuracy" in log and "top-1 error" in log  # smoke training, then eval
    assert log.count(".jpg: ") == 3  # predict, one line per image
    # Of shortcuts' runs (resnet20, plain20, resnet20-B, resnet20-C), ONLY trains the first two; beside
    # them the independent ResNet-20 and our resnet20 in fp32. RUNS=3 tarballs: the last is left out.
    assert "--only resnet20,plain20 --seeds 1" in log and not (tmp_path / "work" / "full" / "runs" / "resnet20-B").exists()
    assert sorted(p.name for p in out.glob("run-*")) == ["run-plain20.tar.gz", "run-reference-resnet20.tar.gz",
                                                         "run-resnet20.tar.gz"]
    with tarfile.open(out / "run-reference-resnet20.tar.gz") as tar:
        assert json.load(tar.extractfile("reference-resnet20/results.json"))["iterations"] == 24
    fp32_run = tmp_path / "work" / "full" / "runs" / "resnet20-fp32"
    fp32, config = (json.loads((fp32_run / f"{name}.json").read_text()) for name in ("results", "config"))
    assert fp32["iterations"] == 24 and fp32["precision"] == "fp32" and config["milestones"] == [12, 18]
    for key in ("resnet20", "plain20"):
        with tarfile.open(out / f"run-{key}.tar.gz") as tar:
            names = tar.getnames()
            results = json.load(tar.extractfile(f"{key}/results.json"))
            last = json.loads(tar.extractfile(f"{key}/metrics.jsonl").read().decode().splitlines()[-1])
        assert {f"{key}/model.safetensors", f"{key}/config.json", f"{key}/train.log"} <= set(names)
        assert not any("checkpoints" in n for n in names)  # finished: the final weights suffice
        assert results["iterations"] == 24 and results["test_error"] == last["test_error"]
        assert f"{key}  test error {100 * results['test_error']:.2f}%" in log
    # A second machine continues from the first one's tarballs: finished runs are reused, not retrained
    # (and, as finished before the call, get no tarball again); SEEDS=2 trains a second seed of the
    # one ONLY names.
    again = {**env, "WORK": str(tmp_path / "work2"), "RESUME_FROM": str(out), "REFERENCE": "0", "FP32": "0",
             "SMOKE": "0", "ONLY": "resnet20", "SEEDS": "2"}
    done = subprocess.run(["bash", "scripts/gpu-reproduce.sh", str(tarball), str(tmp_path / "out2")], cwd=ROOT,
                          env=again, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = (tmp_path / "out2" / "log.txt").read_text()
    assert "resuming run-resnet20.tar.gz" in log and "resnet20: reusing the finished run" in log
    assert "--only resnet20 --seeds 2" in log and "plain20: reusing" not in log
    assert "no smoke test (SMOKE=0)" in log
    assert [p.name for p in (tmp_path / "out2").glob("run-*")] == ["run-resnet20-seed1.tar.gz"]
    config = json.loads((tmp_path / "work2" / "full" / "runs" / "resnet20" / "config.json").read_text())
    assert config["data"] == str(tmp_path / "work2" / "data" / "tiny-cifar")  # pointed at the new machine's copy


@pytest.mark.slow
def test_gpu_bench_script_on_cpu(tmp_path):
    tarball, out = jpeg_folder_tarball(tmp_path, 16), tmp_path / "out"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "MODEL": "resnet18",
           "RESOLUTION": "32", "BATCH": "4", "ROUNDS": "2", "MODES": "optimized-fp32", "COMPILE": "0", "FAST_EPOCHS": "1", "INSTALL": "0",
           "WORK": str(tmp_path / "work"), "RESNETS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(["bash", "scripts/gpu-bench.sh", str(tarball), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["fast-metrics.jsonl", "fast-results.json", "infer.json", "log.txt",
                                                     "step.json"]
    step, infer = (json.loads((out / f"{name}.json").read_text()) for name in ("step", "infer"))
    assert [r["mode"] for r in step["rows"]] == ["torchvision-fp32", "resnets"] and step["settings"]["batch_size"] == 4
    assert [r["mode"] for r in infer["rows"]] == ["torchvision-eager-fp32", "optimized-fp32"]
    assert infer["settings"]["batch_size"] == 2
    results = json.loads((out / "fast-results.json").read_text())
    assert results["recipe"] == "fast" and results["epochs"] == 1
    log = (out / "log.txt").read_text()
    assert "ratio: images/s over torchvision-fp32's" in log and "ratio: images/s over torchvision-eager-fp32's" in log
