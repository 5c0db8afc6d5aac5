"""Short runs, runs killed before their first checkpoint, and Ctrl-C (issue 8, items 1, 2 and 6)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from resnets.cli import main
from resnets.training import make_config, train
from resnets.training.trainer import Trainer, one_cycle

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


def test_a_config_that_is_not_a_training_configuration_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model": "resnet20", "wings": 2}))
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "unknown training option wings" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{not json")
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "is not a training configuration" in capsys.readouterr().err


def test_bad_input_leaves_no_run_directory(tmp_path, capsys):
    assert main(["train", "--model", "resnet19", "--out", str(tmp_path / "run")]) == 2
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")]) == 2
    assert "no data set" in capsys.readouterr().err and not (tmp_path / "run").exists()
