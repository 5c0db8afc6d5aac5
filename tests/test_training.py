"""The trainer on the bundled digits: run directory contents, recipes, resume, divergence,
distributed training, eval and predict, and the command line's error paths."""

import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import warnings

import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from safetensors.torch import load_file
from torchvision.io import write_png

import resnets
from resnets.cli import main
from resnets.data import DeviceLoader, load_data
from resnets.training import Diverged, load_model, make_config, train
from resnets.training.recipes import RECIPES
from resnets.hardware import can_compile, device_name
from resnets.errors import UserError
from resnets.training.distributed import Context, resolve_device
from resnets.training.pipeline import build_pipeline
from resnets.training.schedules import make_scheduler
from resnets.training.trainer import COMPILE_MIN_STEPS, compiles
import resnets.training.trainer as trainer_module


def small(out, **overrides):
    """A few-second run of resnet20 on the digits."""
    recipe = overrides.pop("recipe", "fast")
    values = dict(model="resnet20", data="digits", epochs=2, batch_size=64, out=str(out), lr=0.2)
    if "iterations" in overrides:
        del values["epochs"]
    values.update(overrides)
    return make_config(recipe, **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    # fp32: eval (fp32, batch norms folded) then reproduces the run's own test error exactly
    return train(small(tmp_path_factory.mktemp("runs") / "digits", epochs=3, precision="fp32"))


def test_cifar_recipe_is_section_4_2():
    r = RECIPES["cifar"]
    assert (r["batch_size"], r["lr"], r["momentum"], r["weight_decay"]) == (128, 0.1, 0.9, 1e-4)
    assert (r["milestones"], r["iterations"]) == ((32_000, 48_000), 64_000)
    assert (r["warmup_lr"], r["warmup_until_error"], r["normalize"]) == (0.01, 0.8, "pixel")
    config = make_config("cifar")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler = make_scheduler(config, optimizer, config.iterations)
    lrs = {}
    for step in range(48_001):
        if step in (0, 31_999, 32_000, 47_999, 48_000):
            lrs[step] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx({0: 0.1, 31_999: 0.1, 32_000: 0.01, 47_999: 0.01, 48_000: 0.001})


def test_imagenet_recipe_is_section_3_4():
    r = RECIPES["imagenet"]
    assert (r["batch_size"], r["lr"], r["momentum"], r["weight_decay"], r["schedule"]) == (256, 0.1, 0.9, 1e-4, "plateau")
    assert r["iterations"] == 600_000 and r["ten_crop"]


def test_overrides_replace_recipe_values():
    config = make_config("cifar", lr=0.05, epochs=3)
    assert config.lr == 0.05 and config.epochs == 3 and config.iterations is None
    assert make_config("fast", iterations=100).epochs is None


def test_run_directory(trained):
    run = trained
    files = {p.relative_to(run.dir).as_posix() for p in run.dir.rglob("*") if p.is_file()}
    for name in ["config.json", "metrics.jsonl", "results.json", "curves.png", "model.safetensors",
                 "checkpoints/last.safetensors", "checkpoints/last_state.pt"]:
        assert name in files
    assert any(f.startswith("tensorboard/events.out.tfevents") for f in files)
    # Every file as open() makes it (0666 less the umask: 0644 as usual), the weights too, not mkstemp's 0600.
    umask = os.umask(0o022)
    os.umask(umask)
    assert {name: (run.dir / name).stat().st_mode & 0o777 for name in files} == {name: 0o666 & ~umask for name in files}
    assert (run.dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    keys = {"epoch", "step", "lr", "train_loss", "train_error", "val_loss", "val_error", "test_loss", "test_error",
            "images_per_s", "elapsed", "device", "precision"}
    assert keys <= set(records[0])
    assert records[-1]["step"] == 3 * (1437 // 64)  # full batches only
    results = json.loads((run.dir / "results.json").read_text())
    assert results["test_top1"] == pytest.approx(1 - records[-1]["test_error"])
    assert {"model", "data", "recipe", "test_top5", "epochs", "wall_time_s"} <= set(results)
    assert results["device"] == device_name(torch.device("cpu")) and results["precision"] == "fp32"
    assert results["test_top1"] > 0.5  # three epochs of learning, far above chance (0.1)
    state = torch.load(run.dir / "checkpoints/last_state.pt", weights_only=True)
    assert state["epoch"] == 3 and {"optimizer", "scheduler", "rng"} <= set(state)
    assert json.loads((run.dir / "config.json").read_text())["model"] == "resnet20"


def test_resume_gives_the_uninterrupted_weights(tmp_path):
    reference = train(small(tmp_path / "whole", epochs=3))

    def interrupt(record):
        if record["epoch"] == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small(tmp_path / "cut", epochs=3), callbacks=[interrupt])
    # As if the first epoch ran on a GPU: its record names it, and its checkpoint holds a CUDA RNG state
    # (torch.cuda.get_rng_state_all()'s shape on one GPU), which a CPU leaves alone.
    metrics = tmp_path / "cut" / "metrics.jsonl"
    first = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**first, "device": "NVIDIA H100 80GB HBM3"}) + "\n")
    state_file = tmp_path / "cut" / "checkpoints" / "last_state.pt"
    state = torch.load(state_file, weights_only=True)
    state["rng"]["cuda"] = torch.zeros(1, 16, dtype=torch.uint8)
    torch.save(state, state_file)
    resumed = train(None, resume=tmp_path / "cut")
    assert resumed.results["device"] == f"NVIDIA H100 80GB HBM3 (epoch 1), then {device_name(torch.device('cpu'))} (epochs 2-3)"
    assert resumed.results["precision"] == first["precision"]  # the same in every epoch: said once
    a, b = load_file(reference.dir / "model.safetensors"), load_file(resumed.dir / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2]


def test_weights_start_a_run_from_trained_weights(trained, tmp_path, capsys):
    # Fine-tuning with a learning rate too small to move them: the run ends where the weights began,
    # classifier included when the classes agree...
    source = load_file(trained.dir / "model.safetensors")
    run = train(small(tmp_path / "same", epochs=1, lr=1e-9, weights=str(trained.dir / "model.safetensors")))
    got = load_file(run.dir / "model.safetensors")
    for key in ("conv1.weight", "layer3.2.conv2.weight", "fc.weight"):
        torch.testing.assert_close(got[key], source[key], rtol=0, atol=1e-6)
    # ...and with a new classifier for other classes: the shipped CIFAR-10 resnet20 on two classes.
    for split, n in (("train", 8), ("test", 2)):
        for c, cls in enumerate(["cat", "dog"]):
            (tmp_path / "pets" / split / cls).mkdir(parents=True)
            for i in range(n):
                write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), str(tmp_path / "pets" / split / cls / f"{i}.png"))
    config = make_config("fast", model="resnet20", data=str(tmp_path / "pets"), epochs=1, batch_size=4, lr=1e-9,
                         weights="cifar10", out=str(tmp_path / "pets-run"))
    got = load_file(train(config).dir / "model.safetensors")
    shipped = resnets.get_weights("resnet20", "cifar10").state_dict()
    assert got["fc.weight"].shape == (2, 64)
    torch.testing.assert_close(got["layer2.0.conv1.weight"], shipped["layer2.0.conv1.weight"].float(), rtol=0, atol=1e-6)
    # Weights that do not fit the data, or do not exist, are one line.
    capsys.readouterr()
    assert main(["train", "--weights", "cifar10", "--epochs", "1", "--out", str(tmp_path / "digits-run")]) == 2
    assert "were trained with in_channels=3; the model asks for in_channels=1" in capsys.readouterr().err
    assert main(["train", "--model", "resnet32", "--weights", "IMAGENET1K_V1", "--out", str(tmp_path / "x")]) == 2
    assert "IMAGENET1K_V1" in capsys.readouterr().err and not (tmp_path / "x" / "checkpoints").exists()


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(small(tmp_path, recipe="cifar", epochs=3), callbacks=[lambda r: (_ for _ in ()).throw(KeyboardInterrupt)])
    good = (tmp_path / "checkpoints/last.safetensors").read_bytes()
    state_file = tmp_path / "checkpoints/last_state.pt"
    state = torch.load(state_file, weights_only=True)
    state["scheduler"]["base_lrs"] = [1e12]  # the step schedule's next step sets an absurd lr
    torch.save(state, state_file)
    with pytest.raises(Diverged, match="last good checkpoint"):
        train(None, resume=tmp_path)
    assert (tmp_path / "checkpoints/last.safetensors").read_bytes() == good
    assert torch.load(state_file, weights_only=True)["epoch"] == 1


def test_a_shorter_run_of_a_step_recipe_keeps_its_milestones_in_proportion(tmp_path, capsys):
    # Section 4.2's drops at 32k and 48k of 64k iterations: at 50% and 75% of any other length.
    assert make_config("cifar").milestones == (32_000, 48_000)
    assert make_config("cifar", epochs=4).milestones == make_config("cifar", iterations=100).milestones == (0.5, 0.75)
    assert make_config("cifar", epochs=4, milestones=(10,)).milestones == (10,)
    run = train(small(tmp_path / "run", recipe="cifar", epochs=4, batch_size=128))  # 11 iterations an epoch
    records = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == pytest.approx([0.2, 0.02, 0.002, 0.002])  # drops at iterations 22 and 33
    with pytest.raises(SystemExit, match="2"):  # argparse's own exit for a bad option value
        main(["train", "--milestones", "2.5", "--out", str(tmp_path / "no")])
    assert "invalid milestone '2.5'" in capsys.readouterr().err
    assert main(["train", "--milestones", "100", "--out", str(tmp_path / "no")]) == 2  # fast: one-cycle
    assert "milestones apply to the step schedule, not onecycle" in capsys.readouterr().err
    assert main(["train", "--lr", "nan", "--out", str(tmp_path / "no")]) == 2
    assert "got lr nan" in capsys.readouterr().err


def test_warmup_holds_lr_until_training_error_falls(tmp_path):
    # Section 4.2's ResNet-110 warm-up, tried on resnet20 by lowering the depth it applies from.
    # (no lr drops in these 30 iterations: milestones=())
    never = train(small(tmp_path / "a", recipe="cifar", iterations=30, milestones=(), warmup_min_depth=20, warmup_until_error=0.0))
    soon = train(small(tmp_path / "b", recipe="cifar", iterations=30, milestones=(), warmup_min_depth=20, warmup_until_error=1.0))
    plain = train(small(tmp_path / "c", recipe="cifar", iterations=30, milestones=()))
    lr = lambda run: [json.loads(line)["lr"] for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert lr(never) == pytest.approx([0.01, 0.01])
    assert lr(soon) == pytest.approx([0.2, 0.2])
    assert lr(plain) == pytest.approx([0.2, 0.2])
    # After the warm-up every schedule goes on from the recipe's lr, not from the warm-up's.
    for schedule in ("cosine", "plateau"):
        soon, plain = (train(small(tmp_path / f"{schedule}-{name}", recipe="cifar", iterations=30, schedule=schedule,
                                   warmup_min_depth=depth, warmup_until_error=1.0)) for name, depth in (("soon", 20), ("plain", 110)))
        assert lr(soon) == pytest.approx(lr(plain)) and lr(plain)[0] > 0.01, schedule  # above the warm-up lr


def test_a_cosine_run_saved_by_an_earlier_version_resumes(tmp_path):
    # Cosine was a CosineAnnealingLR before it became a LambdaLR (so that a warm-up ends at its lr):
    # a run checkpointed then goes on along the same curve, to the uninterrupted run's weights.
    reference = train(small(tmp_path / "whole", epochs=2, schedule="cosine"))

    def interrupt(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small(tmp_path / "cut", epochs=2, schedule="cosine"), callbacks=[interrupt])
    state_file = tmp_path / "cut" / "checkpoints" / "last_state.pt"
    state = torch.load(state_file, weights_only=True)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    old = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, reference.results["iterations"])
    for _ in range(state["step"]):
        optimizer.step()
        old.step()
    state["scheduler"] = old.state_dict()
    torch.save(state, state_file)
    resumed = train(None, resume=tmp_path / "cut")
    a, b = load_file(reference.dir / "model.safetensors"), load_file(resumed.dir / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def _distributed_worker(rank, world_size, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    run = train(small(out / "ddp", epochs=1, batch_size=128, device="cpu"))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in run.model.state_dict().items()}, str(out / f"rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_distributed_worker, args=(2, port, tmp_path), nprocs=2, join=True)
    r0, r1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    single = train(small(tmp_path / "single", epochs=1, batch_size=128))
    ddp = load_file(tmp_path / "ddp" / "model.safetensors")
    expected = load_file(single.dir / "model.safetensors")
    assert {k: v.shape for k, v in ddp.items()} == {k: v.shape for k, v in expected.items()}
    assert not (tmp_path / "ddp" / "rank1").exists()
    records = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(records) == 1  # rank 0 alone logs


@pytest.mark.parametrize("batch, processes, hint", [(128, 3, "such as 126 or 129"), (2, 4, "such as 4")])
def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path, batch, processes, hint):
    # The batch is global and each process takes an equal share: 128 over 3 would train with 126.
    with pytest.raises(UserError, match=f"--batch-size {batch} does not split evenly over {processes} processes.*{hint}$"):
        build_pipeline(small(tmp_path, batch_size=batch), Context(world_size=processes))


def test_validation_holds_out_training_images_and_the_test_set_stays(tmp_path):
    # Section 4.2's 45k/5k split: --validation N holds N training images out to validate on, and
    # --test-subset still draws from the real test set (it drew from the held-out images before).
    digits = load_data("digits")
    pipe = build_pipeline(small(tmp_path, validation=100, test_subset=50), Context())
    assert len(pipe.train.labels) == len(digits.train_labels) - 100 and len(pipe.val.labels) == 100
    expected = digits.subset(None, 50)
    assert torch.equal(pipe.test.images, expected.test_images) and torch.equal(pipe.test.labels, expected.test_labels)
    held = {tuple(x.flatten().tolist()) for x in pipe.val.images}
    assert not held & {tuple(x.flatten().tolist()) for x in pipe.train.images}  # held out, not copied


def test_each_process_takes_its_own_gpu(monkeypatch):
    # torchrun's LOCAL_RANK picks the GPU for "auto" and for a bare "cuda" (DDP and set_device need
    # an index); an index given is kept. No GPU is needed to ask.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [resolve_device(name, local_rank=1) for name in ("auto", "cuda", "cuda:0")] == \
        [torch.device("cuda", 1), torch.device("cuda", 1), torch.device("cuda", 0)]
    # Devices torch can name but resnets does not run on, and a GPU the machine lacks: refused (they
    # failed later with a RuntimeError or NotImplementedError, exit 1).
    for name, message in [("mps", "resnets runs on cpu or cuda"), ("meta", "resnets runs on cpu or cuda"),
                          ("cuda:2", "2 CUDA device(s), cuda:0 to cuda:1")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            resolve_device(name)


def test_eval_matches_the_run(trained, capsys):
    assert main(["eval", "--checkpoint", str(trained.dir), "--data", "digits"]) == 0
    assert "top-5 error" in capsys.readouterr().out  # ten classes
    assert main(["eval", "--checkpoint", str(trained.dir), "--data", "digits", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top1_error"] == pytest.approx(trained.results["test_error"])
    assert result["images"] == 360
    # Several views of an image need images of any size: not a data set held as one array.
    for views in (["--ten-crop"], ["--scales"]):
        assert main(["eval", "--checkpoint", str(trained.dir), "--data", "digits", *views]) == 2
        assert f"{views[0]} applies to image folders streamed from disk; digits is held in memory" in capsys.readouterr().err


def test_predict_reads_image_files_like_the_trainer(trained, tmp_path, capsys):
    model, meta = load_model(trained.dir)
    data = load_data("digits")
    loader = DeviceLoader(data.test_images[:8], data.test_labels[:8], 8, train=False,
                          mean=torch.tensor(meta["mean"]), std=torch.tensor(meta["std"]))
    x, _ = next(iter(loader))
    with torch.no_grad():
        expected = model(x).argmax(1).tolist()
    paths = []
    for i, image in enumerate(data.test_images[:8]):
        paths.append(str(tmp_path / f"{i}.png"))
        write_png(image, paths[-1])
    assert main(["predict", "--checkpoint", str(trained.dir / "model.safetensors"), "--json", "--top", "3", *paths]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [int(o["top"][0]["class"]) for o in out] == expected
    for o in out:
        probs = [t["probability"] for t in o["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6 and len(probs) == 3
    # A folder stands for the image files under it, sorted; batches of 3 give the same answers.
    (tmp_path / "more").mkdir()
    shutil.move(paths[7], tmp_path / "more" / "7.png")
    (tmp_path / "notes.txt").write_text("not an image, not listed")
    assert main(["predict", "--checkpoint", str(trained.dir), "--json", "--top", "3", "--batch-size", "3", str(tmp_path)]) == 0
    by_folder = json.loads(capsys.readouterr().out)
    assert [o["image"] for o in by_folder] == [*paths[:7], str(tmp_path / "more" / "7.png")]
    for a, b in zip(by_folder, out):
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        assert [t["probability"] for t in a["top"]] == pytest.approx([t["probability"] for t in b["top"]], abs=1e-5)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--model", "resnet19"], "unknown model 'resnet19'"),
        (["train", "--data", "/no/such/place"], "/no/such/place"),
        (["train", "--data", "{tmp}"], "recogni"),
        (["train", "--epochs", "0"], "--epochs must be at least 1"),
        (["train", "--epochs", "1", "--iterations", "5"], "give --epochs or --iterations, not both"),
        (["train", "--recipe", "cifar", "--milestones", "0.5", "0.2"], "milestones must increase, got 0.5 0.2"),
        (["train", "--workers", "-1"], "--workers must be at least 0, got -1"),
        (["train", "--lr", "-1"], "0 < lr"),
        (["train", "--resume", "{tmp}"], "not a run directory"),
        (["train", "--resume", "{tmp}/moved"], "trains on 'tiny', which is not there (seen from"),
        (["eval", "--checkpoint", "{tmp}/junk.safetensors", "--data", "digits"], "cannot read checkpoint"),
        (["eval", "--checkpoint", "{tmp}", "--data", "digits"], "holds no checkpoint"),
        (["eval", "--checkpoint", "{tmp}/checkpoints/last_state.pt", "--data", "digits"],
         "is the state `resnets train --resume` continues from; give its run directory"),
        (["eval", "--data", "digits", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["eval", "--data", "digits", "--test-subset", "0"], "--test-subset must be at least 1"),
        (["predict", "--checkpoint", "{tmp}/missing", "{tmp}/junk.safetensors"], "no checkpoint"),  # an image that exists
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, message, tmp_path, capsys):
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last_state.pt").write_bytes(b"a training state")
    (tmp_path / "moved").mkdir()  # a run whose data was given as a relative path, resumed from elsewhere
    (tmp_path / "moved" / "config.json").write_text(make_config("fast", data="tiny").to_json())
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_fp16_on_a_cpu_trains_and_says_it_is_slow(tmp_path, capsys):
    assert main(["train", "--precision", "fp16", "--iterations", "1", "--device", "cpu", "--out", str(tmp_path / "run")]) == 0
    assert "note: fp16 is for GPUs" in capsys.readouterr().err


def test_bad_option_type_is_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["train", "--epochs", "many"])
    assert e.value.code == 2


def test_large_image_folder_streams_with_ten_crop(tmp_path, capsys):
    # Images of several sizes cannot be stacked into arrays: the folder is streamed through
    # DataLoader workers with Section 3.4's scale augmentation, and tested with 10 crops.
    for split, n in [("train", 4), ("val", 2)]:
        for c, cls in enumerate(["cat", "dog"]):
            (tmp_path / "set" / split / cls).mkdir(parents=True)
            for i in range(n):
                image = torch.full((3, 40 + 10 * i, 50), 60 + 120 * c, dtype=torch.uint8)
                write_png(image, str(tmp_path / "set" / split / cls / f"{i}.png"))
    config = make_config("imagenet", model="resnet18", data=str(tmp_path / "set"), epochs=1, batch_size=4,
                         workers=0, out=str(tmp_path / "run"))
    assert config.ten_crop
    for option in ("validation", "train_subset", "test_subset"):  # a streamed folder is read whole: said, not ignored
        with pytest.raises(UserError, match=f"--{option.replace('_', '-')} apply to data sets held in memory"):
            train(dataclasses.replace(config, **{option: 2}))
    run = train(config)
    assert run.results["test_top5"] is None  # two classes: top-5 means nothing
    capsys.readouterr()
    model, meta = load_model(run.dir)
    assert meta["resize"] == 256 and meta["input_size"] == [224, 224] and meta["classes"] == ["cat", "dog"]
    assert main(["eval", "--checkpoint", str(run.dir), "--data", str(tmp_path / "set"), "--ten-crop", "--workers", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 4
    # A folder of images all of one size (which would be held in memory at that size) is tested
    # through the model's own resize and crop too.
    for split in ("train", "val"):
        for c, cls in enumerate(["cat", "dog"]):
            (tmp_path / "uniform" / split / cls).mkdir(parents=True)
            write_png(torch.full((3, 40, 50), 60 + 120 * c, dtype=torch.uint8), str(tmp_path / "uniform" / split / cls / "0.png"))
    uniform = ["eval", "--checkpoint", str(run.dir), "--data", str(tmp_path / "uniform"), "--workers", "0", "--json"]
    assert main(uniform) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 2 and result["top5_error"] is None  # as results.json has it (it said 0.0)
    assert main(uniform[:-1]) == 0 and "top-5" not in capsys.readouterr().out  # two classes: top-5 means nothing
    (tmp_path / "uniform" / "val" / "cat" / "1.png").write_bytes(b"not a png")  # refused by name, or left out
    assert main(uniform) == 2 and "val/cat/1.png: cannot decode image" in capsys.readouterr().err
    assert main([*uniform, "--skip-bad-images"]) == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["images"] == 2

    # Multi-scale testing (Section 3.4): each image whole at each length of its shorter side, the
    # softmax outputs averaged. Against the same computation written with torchvision's transforms,
    # on noise images of two shapes, with the unoptimized model (eval folds its batch norms).
    from torchvision.transforms import v2

    noise, g = tmp_path / "noise", torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (noise / split / cls).mkdir(parents=True)
            for i, shape in enumerate([(40, 56), (64, 36)]):
                write_png(torch.randint(0, 256, (3, *shape), generator=g, dtype=torch.uint8), str(noise / split / cls / f"{i}.png"))
    assert main(["eval", "--checkpoint", str(run.dir), "--data", str(noise), "--scales", "32,48", "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    normalize = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(torch.tensor(meta["mean"]).flatten().tolist(), torch.tensor(meta["std"]).flatten().tolist())])
    model.eval()
    losses, misses = [], 0
    for c, cls in enumerate(["cat", "dog"]):
        for path in sorted((noise / "val" / cls).glob("*.png")):
            image = Image.open(path).convert("RGB")
            with torch.no_grad():
                probs = torch.stack([model(normalize(v2.functional.resize(image, s))[None])[0].softmax(0) for s in (32, 48)]).mean(0)
            losses.append(-probs[c].log().item())
            misses += int(probs.argmax() != c)
    assert result["images"] == 4 and result["top1_error"] == misses / 4
    assert result["loss"] == pytest.approx(sum(losses) / 4, rel=1e-4)
    for wrong in (["--scales", "0,224"], ["--scales", "big"], ["--scales", "--ten-crop"]):
        with pytest.raises(SystemExit) if wrong[-1] == "--ten-crop" else contextlib.nullcontext():
            assert main(["eval", "--checkpoint", str(run.dir), "--data", str(noise), *wrong]) == 2
    assert "--scales takes lengths of the shorter side" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(run.dir), str(tmp_path / "set/val/dog/0.png"), "--top", "2"]) == 0
    shares = re.findall(r"(cat|dog) ([\d.]+)%", capsys.readouterr().out)
    assert {c for c, _ in shares} == {"cat", "dog"} and sum(float(p) for _, p in shares) == pytest.approx(100, abs=0.2)


@pytest.mark.slow
def test_torchrun_command(tmp_path):
    # The documented command: torchrun starts two gloo processes; rank 0 alone writes the run.
    import subprocess
    import sys

    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: a free port, as torch's docs run one machine (the default, 29500, is taken by
    # any other torchrun the suite's other worker starts at the same time).
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "resnets",
                           "train", "--epochs", "1", "--device", "cpu", "--out", str(out)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "x 2 processes" in done.stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert json.loads((out / "results.json").read_text())["processes"] == 2


def test_plot_draws_several_runs(trained, tmp_path, capsys):
    png = tmp_path / "both.png"
    assert main(["plot", str(trained.dir), str(trained.dir), "--labels", "a", "b", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    for out, written in [(tmp_path, tmp_path / "curves.png"), (tmp_path / "figure", tmp_path / "figure")]:  # as said
        assert main(["plot", str(trained.dir), "--out", str(out)]) == 0
        assert capsys.readouterr().out == f"wrote {written}\n" and written.read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(trained.dir), "--labels", "a", "b"]) == 2
    assert main(["plot", str(tmp_path)]) == 2  # not a run directory
    assert "not a run directory" in capsys.readouterr().err


def test_plot_windows_prints_mean_errors_per_window(tmp_path, capsys, monkeypatch):
    # Two hand-written runs: one with epochs of 100 steps to 400, one stopped at 200.
    errors = {100: (0.50, 0.60), 200: (0.30, 0.40), 300: (0.20, 0.30), 400: (0.10, 0.25)}
    for name, last in (("long", 400), ("short", 200)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text("".join(
            json.dumps({"step": step, "train_error": train, "test_error": test}) + "\n"
            for step, (train, test) in errors.items() if step <= last))
    runs = [str(tmp_path / "long"), str(tmp_path / "short")]
    assert main(["plot", *runs, "--windows", "200", "400", "--out", str(tmp_path / "c.png")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[2] == "| 0 to 200 | 40.00 / 50.00 | 40.00 / 50.00 |"
    assert rows[3] == "| 200 to 400 | 15.00 / 27.50 | not reached |"
    assert rows[4] == "| last record | 10.00 / 25.00 at 400 | 30.00 / 40.00 at 200 |"
    assert main(["plot", runs[0], "--windows", "300", "500", "--out", str(tmp_path / "c.png")]) == 0
    assert "| 300 to 500 | 10.00 / 25.00 (to 400) |" in capsys.readouterr().out  # a window the run is inside
    monkeypatch.chdir(tmp_path)
    assert main(["plot", runs[0], "--windows", "400"]) == 0  # the table alone: no figure unless --out
    assert "wrote" not in capsys.readouterr().out and not (tmp_path / "curves.png").exists()
    assert main(["plot", *runs, "--windows", "400", "200"]) == 2


def test_plot_of_runs_cut_short_or_damaged(trained, tmp_path, capsys):
    # A run still in its first epoch (an empty metrics.jsonl), one whose last line is being written,
    # records without a curve's fields, a damaged line: drawn where they can be, else one line
    # naming the run (an IndexError, a blank figure, a KeyError or an unnamed JSON error before).
    def run(name, text):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(text)
        return str(tmp_path / name)

    good = json.dumps({"step": 10, "train_error": 0.5, "test_error": 0.6}) + "\n"
    writing = run("writing", good + '{"step": 20, "train_')
    assert main(["plot", writing, "--windows", "20", "--out", str(tmp_path / "w.png")]) == 0
    assert "| 0 to 20 | 50.00 / 60.00 (to 10) |" in capsys.readouterr().out
    for name, text, message in [("empty", "", "has no finished epoch yet"),
                                ("fields", json.dumps({"step": 10}) + "\n", "records without test_error, train_error"),
                                ("damaged", '{"step": 10,\n' + good, "metrics.jsonl, line 1: not a JSON record")]:
        for options in ([], ["--windows", "10"]):
            assert main(["plot", run(name, text) if not options else str(tmp_path / name), *options,
                         "--out", str(tmp_path / "x.png")]) == 2
            err = capsys.readouterr().err
            assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("suffix", [".svg", ".pdf", ".jpg"])
def test_plot_writes_the_format_its_name_says(suffix, trained, tmp_path, capsys):
    out = tmp_path / f"curves{suffix}"
    code = main(["plot", str(trained.dir), "--out", str(out)])
    if suffix == ".jpg":  # was PNG bytes under any name
        assert code == 2 and "a figure is written as .png, .svg, .pdf" in capsys.readouterr().err
        return
    assert code == 0 and out.read_bytes()[:5] == {".svg": b"<?xml", ".pdf": b"%PDF-"}[suffix]


def test_auto_precision_is_bf16_where_the_cpu_computes_it_natively(tmp_path):
    flags = set()
    if os.path.exists("/proc/cpuinfo"):
        flags = {f for line in open("/proc/cpuinfo") if line.startswith("flags") for f in line.split(":")[1].split()}
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    run = train(small(tmp_path, epochs=1, precision="auto"))
    assert run.results["precision"] == ("bf16" if native else "fp32")


def test_compile_auto_waits_for_a_run_long_enough_to_repay_it(tmp_path):
    cpu = torch.device("cpu")
    assert not compiles("auto", COMPILE_MIN_STEPS - 1, cpu)
    assert compiles("auto", COMPILE_MIN_STEPS, cpu) == can_compile(cpu)
    assert compiles(True, 1, cpu) and not compiles(False, 10 ** 6, cpu)
    if shutil.which("g++"):  # what inductor builds its CPU kernels with
        assert can_compile(cpu)
    run = train(small(tmp_path, epochs=1))  # the fast recipe (compile "auto"), 16 steps
    assert run.config.compile == "auto" and run.results["compiled"] is False


@pytest.mark.slow
def test_a_compiled_run_trains(tmp_path, capsys, monkeypatch):
    # TorchDynamo and AOTAutograd trace the training step as `--compile` does, without inductor's
    # C++ code generation (a minute and a half on two AVX2 cores): test_bench's compiled training step
    # and compiled inference modes run inductor on the same network.
    compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: compile(model, **kwargs, backend="aot_eager"))
    run = train(small(tmp_path, epochs=2, compile=True, precision="fp32"))
    assert run.results["compiled"] is True and run.results["test_top1"] > 0.3
    assert "fp32 on cpu, compiled;" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--sync-bn", "--ten-crop"])
def test_options_that_do_nothing_here_say_so(option, tmp_path, capsys):
    # SyncBatchNorm needs torchrun's processes; 10-crop testing, images larger than their crops.
    # Silently ignored, either would let a user believe a run did what it did not.
    assert main(["train", option, "--iterations", "1", "--device", "cpu", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    notes = {o: note in err for o, note in (("--sync-bn", "note: --sync-bn"), ("--ten-crop", "note: 10-crop testing is"))}
    assert notes == {o: o == option for o in notes}  # the option's note, and only its


@pytest.mark.parametrize("native", [True, False])
def test_emulated_bf16_is_pointed_out(native, tmp_path, monkeypatch, capsys):
    # Where the CPU only emulates bf16, a run asked for it says that fp32 is faster (a resumed GPU run
    # keeps its bf16); where bf16 is native, nothing is said.
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: native)
    train(small(tmp_path, iterations=2, batch_size=16, precision="bf16"))
    assert ("bf16 is emulated" in capsys.readouterr().err) is not native


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs(precision, tmp_path):
    # Batch 16: fp16 has no native kernels on CPUs, and its steps cost 0.8 s at batch 64 on 2 cores.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(small(tmp_path, iterations=60, batch_size=16, lr=0.1, precision=precision))
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]  # fp16's skipped first steps are no error
    assert run.results["precision"] == precision
    assert run.results["test_top1"] > 0.3  # it learns
