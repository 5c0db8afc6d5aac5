"""Short runs, runs killed before their first checkpoint, and Ctrl-C (issue 8, items 1, 2 and 6)."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from torchvision.io import write_png

from resnets.cli import main
from resnets.training import make_config, train
from resnets.training.schedules import one_cycle
from resnets.training.trainer import Trainer

from test_training import small


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 8, 100])
def test_one_cycle_works_for_any_number_of_steps(steps):
    factor = one_cycle(steps)
    lrs = [factor(s) for s in range(steps + 1)]
    assert all(0 < lr <= 1 for lr in lrs)
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.001)
    peak = lrs.index(max(lrs))
    assert lrs[:peak + 1] == sorted(lrs[:peak + 1]) and lrs[peak:] == sorted(lrs[peak:], reverse=True)


@pytest.mark.parametrize("recipe,schedule", [("fast", "onecycle"), ("cifar", "step"), ("cifar", "cosine")])
def test_a_run_of_one_step_finishes(tmp_path, recipe, schedule, capsys):
    # The digits' 1,437 training images in batches of 1,024: one step per epoch.
    argv = ["train", "--recipe", recipe, "--schedule", schedule, "--epochs", "1", "--batch-size", "1024",
            "--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["iterations"] == 1 and 0 <= results["test_error"] <= 1


def test_a_run_killed_while_loading_data_resumes_with_its_configuration(tmp_path, monkeypatch):
    config = small(tmp_path, epochs=2, lr=0.15, seed=3)
    real_init = Trainer.__init__

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt  # as if the process died while the data loaded

    monkeypatch.setattr(Trainer, "__init__", killed)
    with pytest.raises(KeyboardInterrupt, match=f"no epoch had finished.*resnets train --resume {tmp_path}"):
        train(config)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["lr"] == 0.15 and saved["seed"] == 3 and not (tmp_path / "checkpoints").exists()

    monkeypatch.setattr(Trainer, "__init__", real_init)
    resumed = train(None, resume=tmp_path)
    fresh = train(small(tmp_path / "fresh", epochs=2, lr=0.15, seed=3))
    a, b = load_file(resumed.dir / "model.safetensors"), load_file(fresh.dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_prints_the_resume_command(tmp_path, monkeypatch, capsys):
    calls = []
    real_epoch = Trainer.train_epoch

    def second_epoch_interrupted(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(self, *args)

    monkeypatch.setattr(Trainer, "train_epoch", second_epoch_interrupted)
    assert main(["train", "--epochs", "3", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (f"resnets train: interrupted: the last finished epoch's checkpoint is kept in {tmp_path}; "
                   f"continue with: resnets train --resume {tmp_path}")
    assert (tmp_path / "checkpoints" / "last_state.pt").is_file()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_background_run_keeping_its_checkpoint(tmp_path, sig):
    # Started as `resnets train ... &` from a script: SIGINT ignored, as a shell does for background
    # commands. SIGINT and SIGTERM (kill, timeout, a scheduler) must still stop it as Ctrl-C does.
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --no-compile: 500 epochs would compile ("auto"), a minute of this test's time on two cores.
    p = subprocess.Popen([sys.executable, "-m", "resnets", "train", "--epochs", "500", "--no-compile", "--out", str(tmp_path)],
                         preexec_fn=ignore_sigint, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "checkpoints" / "last_state.pt").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        p.send_signal(getattr(signal, sig))
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1].endswith(f"continue with: resnets train --resume {tmp_path}")


def test_a_config_that_is_not_a_training_configuration_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model": "resnet20", "wings": 2}))
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "unknown training option wings" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{not json")
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "is not a training configuration" in capsys.readouterr().err


def test_a_resumed_run_may_move_its_data_and_machine_but_not_its_recipe(tmp_path, capsys):
    def folder(root, n):  # n training images in each of two classes, 8x8 RGB
        for split, count in (("train", n), ("test", 2)):
            for c, cls in enumerate(["a", "b"]):
                (root / split / cls).mkdir(parents=True)
                for i in range(count):
                    write_png(torch.full((3, 8, 8), 40 + 150 * c + i, dtype=torch.uint8), str(root / split / cls / f"{i}.png"))

    folder(tmp_path / "here", 8)
    folder(tmp_path / "other", 16)  # twice the images: twice the iterations an epoch

    def interrupt(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    config = make_config("cifar", model="resnet20", data=str(tmp_path / "here"), epochs=3, batch_size=4, out=str(run))
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[interrupt])
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--lr", "0.5"]) == 2
    assert "only where it runs may change (--data, --device, --precision, --channels-last, --compile, --workers), " \
           "not --lr" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--data", str(tmp_path / "other")]) == 2
    assert (f"at iteration 8 after 2 epochs, but {tmp_path / 'other'} makes epochs of 8 iterations, so it was trained on "
            "other data or another number of processes") in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--data", "digits"]) == 2  # 1 channel, 10 classes
    assert "trained on other data than digits?) does not fit this ResNet: 3 shapes differ (e.g. conv1.weight (16, 3, 3, 3) (the model: (16, 1, 3, 3)))" in capsys.readouterr().err

    shutil.move(tmp_path / "here", tmp_path / "moved")
    assert main(["train", "--resume", str(run), "--data", str(tmp_path / "moved"), "--workers", "0"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"] == str(tmp_path / "moved") and saved["workers"] == 0 and saved["lr"] == config.lr
    assert json.loads((run / "results.json").read_text())["iterations"] == 12


def test_bad_input_leaves_no_run_directory(tmp_path, capsys):
    assert main(["train", "--model", "resnet19", "--out", str(tmp_path / "run")]) == 2
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "runs" / "new")]) == 2
    # nor the folders made for it (the default --out is runs/NAME: a failed first run left an empty runs/)
    assert "no data set" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


# A driver that trains resnet20 on the digits in a fresh process, optionally killing itself
# (SIGKILL: no cleanup, no exception) at a chosen moment: while the data loads, while a checkpoint
# file is half written, between the end-of-epoch writes of the weights and the state, or after a
# given number of training steps.
DRIVER = r"""
import os, signal, sys
import resnets.files, resnets.training.checkpoint as checkpoint, resnets.training.pipeline as pipeline
from resnets.cli import main

moment, epoch = sys.argv[1], int(sys.argv[2])
die = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
if moment == "loading":
    pipeline.load_data = die
if moment == "step":
    import torch
    real_step, steps = torch.optim.SGD.step, []
    def step(self, *args, **kwargs):
        steps.append(1)
        if len(steps) > epoch:
            die()
        return real_step(self, *args, **kwargs)
    torch.optim.SGD.step = step
real_save_state, real_replace = checkpoint.save_state, os.replace
def save_state(path, state):
    if state["epoch"] == epoch and moment == "between-writes":
        die()  # the epoch's weights are written, its state is not
    if state["epoch"] == epoch and moment == "writing":
        os.replace = lambda tmp, target: (open(tmp, "r+b").truncate(100), die())  # half a file, never renamed
    real_save_state(path, state)
    os.replace = real_replace
checkpoint.save_state = save_state
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_gives_the_uninterrupted_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train_args = ["train", "--recipe", "cifar", "--epochs", "5", "--batch-size", "128"]

    def start(moment, epoch, run, resume):
        args = ["train", "--resume", str(run)] if resume else [*train_args, "--out", str(run)]
        return subprocess.Popen([sys.executable, "-c", DRIVER, moment, str(epoch), *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    reference = start("never", 0, tmp_path / "whole", resume=False)  # beside the killed run: one thread each

    # The digits' 1,437 training images make 11 steps an epoch; the state of epoch e says epoch=e+1.
    run, rng = tmp_path / "killed", random.Random(0)
    kills = [("loading", 0, None), ("writing", 2, 1), ("between-writes", 3, 2), ("step", rng.randint(1, 20), 2)]
    for i, (moment, at, kept) in enumerate(kills):
        p = start(moment, at, run, resume=i > 0)
        assert p.wait(timeout=300) == -signal.SIGKILL, (moment, p.stderr.read())
        assert (run / "config.json").is_file()
        if kept:  # the last finished epoch's checkpoint, whole, whatever the moment of the kill
            assert torch.load(run / "checkpoints" / "last_state.pt", weights_only=True)["epoch"] >= kept
    finish = start("never", 0, run, resume=True)
    assert finish.wait(timeout=300) == 0, finish.stderr.read()
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(run / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2, 3, 4]


def test_an_unanticipated_error_is_one_line_with_exit_code_1(tmp_path, monkeypatch, capsys):
    def broken(self, *args):
        raise RuntimeError("CUDA error: an illegal memory access\nwas encountered")

    monkeypatch.setattr(Trainer, "train_epoch", broken)
    assert main(["train", "--epochs", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == ("resnets train: RuntimeError: CUDA error: an illegal memory access was encountered "
                   "(rerun with --debug for the traceback)\n")
    with pytest.raises(RuntimeError):
        main(["--debug", "train", "--resume", str(tmp_path)])


@pytest.mark.slow
def test_a_run_interrupted_in_one_process_is_resumed_by_two(tmp_path):
    # A run moved from a laptop to torchrun: the global batch (128) is split in two, so an epoch
    # keeps its iterations and the checkpoint fits.
    def interrupt(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(small(run, epochs=3, batch_size=128, device="cpu"), callbacks=[interrupt])
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "resnets",
                           "train", "--resume", str(run)], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "x 2 processes" in done.stdout
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2] and records[2]["step"] == 3 * records[0]["step"]  # continued
    assert json.loads((run / "results.json").read_text())["processes"] == 2
