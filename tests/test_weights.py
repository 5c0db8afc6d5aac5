"""Trained weights, as torchvision's ``weights=`` API has them: the shipped CIFAR-10 files (their
metadata, shapes and measured accuracy), torchvision's ImageNet names through torch.hub's cache (a
local file stands in for the download), paths to safetensors and .pth files, pickles that would run
code, and scripts/ship_weights.py on a tiny run."""

import importlib.util
import json
import os
import shlex
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torchvision.io import write_png
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import ResNet18_Weights, ResNet50_Weights

import resnets
import resnets.cli.train
from resnets.cli import main
from resnets.cli.main import build_parser
from resnets.data import load_data
from resnets.experiments.responses import response_stds
from resnets.errors import UserError
from resnets.models import Preprocess, pretrained
from resnets.models.weights import read_description
from resnets.training import load_pretrained, make_config, train
from resnets.training.evaluate import eval_batches

ROOT = Path(__file__).resolve().parents[1]
JPEG_COPY = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SHIPPED = list(pretrained.shipped().values())
NONE_SHIPPED = pytest.param(None, marks=pytest.mark.skip(reason="no weights shipped yet (scripts/ship_weights.py RUN_DIR adds them)"))
# What every shipped file must say about itself (scripts/ship_weights.py writes them all).
DESCRIPTION = ("model", "model_config", "classes", "mean", "std", "input_size", "data", "weights", "test_top1",
               "recipe", "config", "iterations", "hardware", "wall_time_s", "command", "storage", "num_params", "_ops")
# Table 6's "# params" in millions, by depth (a plain net has its ResNet's: option A adds none).
TABLE6_PARAMS = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


def one_line_exit_2(argv, capsys, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# --- the shipped CIFAR-10 weights -------------------------------------------------------------

@pytest.mark.parametrize("path", SHIPPED or [NONE_SHIPPED], ids=lambda p: p and p.stem)
def test_shipped_weights_describe_themselves(path):
    meta = read_description(path)
    assert set(DESCRIPTION) <= set(meta)
    assert path.name == f"{meta['weights']}-{meta['model']}.safetensors"
    assert meta["weights"] == "cifar10" and meta["classes"] == CIFAR10_CLASSES and meta["input_size"] == [32, 32]
    assert 0.5 < meta["test_top1"] <= 1 and meta["wall_time_s"] > 0 and meta["command"].startswith("resnets")
    assert f"{meta['model']}.cifar10" in resnets.list_weights()
    weights = resnets.get_weights(meta["model"], "DEFAULT")  # DEFAULT: our CIFAR-10 weights
    assert weights.meta.items() >= {"model": meta["model"], **meta, "categories": CIFAR10_CLASSES}.items()
    assert weights.transforms()(torch.zeros(3, 32, 32, dtype=torch.uint8)).shape == (3, 32, 32)
    # torchvision's keys, for code written for its Weights: size, cost and accuracy in its units.
    depth = int(meta["model"].removeprefix("resnet").removeprefix("plain"))
    assert round(meta["num_params"] / 1e6, 2 if depth < 100 else 1) == TABLE6_PARAMS[depth]
    network = resnets.create_model(meta["model"], weights="cifar10").eval()
    assert meta["num_params"] == sum(p.numel() for p in network.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        network(torch.zeros(1, 3, 32, 32))
    assert meta["_ops"] == round(flops.get_total_flops() / 2 / 1e9, 3)  # multiply-adds, in G
    assert weights.meta["_metrics"] == {"CIFAR-10": {"acc@1": pytest.approx(100 * meta["test_top1"]),
                                                     "acc@5": pytest.approx(100 * meta["test_top5"])}}
    assert weights.meta["_file_size"] == pytest.approx(path.stat().st_size / 2**20, abs=0.001)
    assert network(torch.zeros(1, 3, *weights.meta["min_size"])).shape == (1, 10)
    assert meta["command"] in weights.meta["_docs"]
    expected = resnets.create_model(meta["model"]).state_dict()
    stored = weights.state_dict()
    assert {k: v.shape for k, v in stored.items()} == {k: v.shape for k, v in expected.items()}
    model = resnets.create_model(meta["model"], weights="cifar10")
    torch.testing.assert_close(model.state_dict(), {k: v.to(expected[k].dtype) for k, v in stored.items()})


@pytest.mark.skipif(not JPEG_COPY.exists(), reason=f"the CIFAR-10 JPEG copy is not at {JPEG_COPY}")
@pytest.mark.parametrize("path", SHIPPED or [NONE_SHIPPED], ids=lambda p: p and p.stem)
def test_shipped_weights_measure_what_they_state(path, capsys):
    meta = read_description(path)
    argv = ["eval", "--model", meta["model"], "--weights", "cifar10", "--data", str(JPEG_COPY), "--test-subset", "2000", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 2000
    assert abs((1 - result["top1_error"]) - meta["test_top1"]) <= 0.015


@pytest.mark.skipif(not JPEG_COPY.exists(), reason=f"the CIFAR-10 JPEG copy is not at {JPEG_COPY}")
def test_eval_of_a_folder_streamed_from_disk_preprocesses_as_predict(tmp_path, capsys):
    # 200 test images, every other one upscaled to 64x64, so that the folder is streamed: each is
    # resized whole to 32x32 and has the weights' per-pixel mean subtracted, as `predict` does
    # (eval applied ImageNet's resize-and-crop and failed on the per-pixel mean).
    from torchvision.transforms.v2.functional import resize

    test = load_data(str(JPEG_COPY), test_only=True).subset(None, 200)
    root = tmp_path / "two-sizes"
    for i, (image, label) in enumerate(zip(test.test_images, test.test_labels.tolist())):
        for split in ("train", "test"):  # eval reads train/'s class names only
            (root / split / test.classes[label]).mkdir(parents=True, exist_ok=True)
        write_png(resize(image, [64, 64]) if i % 2 else image, str(root / "test" / test.classes[label] / f"{i}.png"))
    for c in test.classes:
        write_png(test.test_images[0], str(root / "train" / c / "0.png"))
    model = ["--model", "resnet20", "--weights", "cifar10"]
    assert main(["eval", *model, "--data", str(root), "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(["predict", *model, "--top", "1", "--json", str(root / "test")]) == 0
    predicted = json.loads(capsys.readouterr().out)
    misses = sum(p["top"][0]["class"] != Path(p["image"]).parent.name for p in predicted)
    assert result["images"] == len(predicted) == 200 and result["top1_error"] == misses / 200
    assert result["top1_error"] < 1 - resnets.get_weights("resnet20", "cifar10").meta["test_top1"] + 0.06


@pytest.mark.skipif(not JPEG_COPY.exists(), reason=f"the CIFAR-10 JPEG copy is not at {JPEG_COPY}")
@pytest.mark.slow
def test_bf16_inference_keeps_the_accuracy(capsys):
    # `eval --precision bf16` (bf16 weights and arithmetic) against fp32, on the same 500 images.
    argv = ["eval", "--model", "resnet20", "--weights", "cifar10", "--data", str(JPEG_COPY), "--test-subset", "500", "--json"]
    errors = []
    for precision in ("fp32", "bf16"):
        assert main([*argv, "--precision", precision]) == 0
        errors.append(json.loads(capsys.readouterr().out)["top1_error"])
    assert abs(errors[0] - errors[1]) <= 0.006, errors  # 3 images of 500


@pytest.mark.skipif(not JPEG_COPY.exists(), reason=f"the CIFAR-10 JPEG copy is not at {JPEG_COPY}")
def test_shipped_weights_show_fig7s_orderings():
    """Fig. 7: residual functions respond less than plain layers at equal depth, and the deeper
    ResNet less than the shallower (mean std of the 3x3 layers' responses, 250 test images: the
    means move by less than 0.003 from those of 1,000, and the closest pair is 0.09 apart)."""
    shipped = {model for model, _ in pretrained.shipped()}
    pairs = [(a, b) for a, b in [("resnet20", "plain20"), ("resnet32", "plain32"), ("resnet44", "plain44"), ("resnet56", "plain56"), ("resnet56", "resnet20"),
                                 ("resnet110", "resnet56")] if {a, b} <= shipped]
    assert pairs, "no pair of shipped weights to compare"
    test = load_data(str(JPEG_COPY), test_only=True).subset(None, 250)
    mean = {}
    for model in {m for pair in pairs for m in pair}:
        meta = resnets.get_weights(model, "cifar10").meta
        stds = response_stds(resnets.create_model(model, weights="cifar10"), eval_batches(test, meta))
        mean[model] = sum(stds) / len(stds)
    for smaller, larger in pairs:
        assert mean[smaller] < mean[larger], mean


def test_weights_not_shipped_name_those_that_exist(capsys):
    with pytest.raises(UserError, match=r"no weights 'cifar10' for plain110 .*available: resnet18\.IMAGENET1K_V1"):
        resnets.plain110(weights="cifar10")
    with pytest.raises(UserError, match=r"no weights 'CIFAR10' for resnet20 in this copy of resnets; its weights: "
                                        r"cifar10, DEFAULT \(or give the path"):  # its own, not every model's
        resnets.resnet20(weights="CIFAR10")
    assert str(resnets.get_weights("resnet20", "resnet20.cifar10")) == "resnet20.cifar10"  # as list_weights() spells it
    with pytest.raises(UserError, match="torchvision's: DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2"):
        resnets.resnet50(weights="cifar10")
    with pytest.raises(UserError, match="unknown model 'resnet19'"):
        resnets.get_weights("resnet19", "DEFAULT")
    one_line_exit_2(["eval", "--model", "plain110", "--weights", "cifar10", "--data", "digits"], capsys, "no weights 'cifar10' for plain110")
    one_line_exit_2(["predict", "--model", "resnet20", __file__], capsys, "give --checkpoint, or --model and --weights")


# --- torchvision's ImageNet weights, by their names ---------------------------------------------

@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch.hub's cache in tmp_path, holding a resnet18 state_dict under the file name of
    torchvision's IMAGENET1K_V1 URL; any download fails (nothing is downloaded in tests)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(url, *args, **kwargs):
        raise OSError(f"no downloads in tests: {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), checkpoints / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url))
    return checkpoints


def test_torchvision_names_load_through_the_hub_cache(hub):
    theirs = torchvision.models.resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).eval()  # from the same file
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = theirs(x)
        for spec in ["IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1", ResNet18_Weights.IMAGENET1K_V1]:
            torch.testing.assert_close(resnets.resnet18(weights=spec, progress=False).eval()(x), expected, rtol=0, atol=0)
    default = resnets.create_model("resnet18", weights="DEFAULT")
    torch.testing.assert_close(default.state_dict(), theirs.state_dict(), rtol=0, atol=0)
    with pytest.raises(UserError, match="1000 classes, not num_classes=10.*reset_classifier"):
        resnets.resnet18(weights="DEFAULT", num_classes=10)
    with pytest.raises(UserError, match="stride_in_1x1=False"):
        resnets.resnet18(weights="DEFAULT", stride_in_1x1=True)
    with pytest.raises(UserError, match=r"cannot load torchvision's ResNet34_Weights\.IMAGENET1K_V1 .*no downloads in tests"):
        resnets.resnet34(weights="DEFAULT")
    with pytest.raises(UserError, match="torchvision has none for resnet20"):
        resnets.resnet20(weights=ResNet18_Weights.IMAGENET1K_V1)
    # pretrained=True, as timm and torchvision before 0.13 spell it: torchvision's legacy choice, V1.
    torch.testing.assert_close(resnets.create_model("resnet18", pretrained=True).state_dict(), theirs.state_dict(),
                               rtol=0, atol=0)
    with pytest.raises(UserError, match=r"cannot load torchvision's ResNet34_Weights\.IMAGENET1K_V1 "):
        resnets.resnet34(pretrained=True)


def test_torch_hub_loads_every_network_from_a_checkout(hub):
    # hubconf.py at the repository's root; torch.hub.list reads GitHub only, so its rule is applied
    # here: every public callable of hubconf is an entry point.
    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    entries = [name for name in dir(hubconf) if callable(getattr(hubconf, name)) and not name.startswith("_")]
    assert sorted(entries) == sorted(resnets.list_models())
    ours = torch.hub.load(str(ROOT), "resnet20", source="local", weights="cifar10")
    torch.testing.assert_close(ours.state_dict(), resnets.resnet20(weights="cifar10").state_dict(), rtol=0, atol=0)
    theirs = torch.hub.load(str(ROOT), "resnet18", source="local", weights="IMAGENET1K_V1", progress=False)
    expected = torchvision.models.resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).state_dict()
    torch.testing.assert_close(theirs.state_dict(), expected, rtol=0, atol=0)
    assert torch.hub.load(str(ROOT), "plain56", source="local", num_classes=100).fc.out_features == 100
    legacy = torch.hub.load(str(ROOT), "resnet20", source="local", pretrained=True)  # torch.hub's older idiom
    torch.testing.assert_close(legacy.state_dict(), ours.state_dict(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="give weights='cifar10' or pretrained=True, not both"):
        resnets.resnet20(weights="cifar10", pretrained=True)
    with pytest.raises(UserError, match="no weights 'cifar10' for plain110"):
        resnets.plain110(pretrained=True)


def test_torchvision_weights_carry_torchvisions_preprocessing(hub, tmp_path, capsys):
    v2 = resnets.get_weights("resnet50", "IMAGENET1K_V2")  # the description needs no file
    assert (v2.meta["resize"], v2.meta["input_size"], len(v2.meta["classes"])) == (232, [224, 224], 1000)
    assert v2.meta["categories"] == ResNet50_Weights.IMAGENET1K_V2.meta["categories"]  # torchvision's name, for its code
    assert v2.meta["test_top1"] == pytest.approx(0.80858)
    assert v2.meta.items() >= {k: ResNet50_Weights.IMAGENET1K_V2.meta[k] for k in ("num_params", "_ops", "_metrics", "min_size")}.items()
    assert v2.meta["num_params"] == sum(p.numel() for p in resnets.resnet50().parameters())
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    theirs = v2.transforms()(image)  # torchvision's ImageClassification preset
    assert theirs.shape == (3, 224, 224)
    # Predict's preprocessing is torchvision's up to rounding (one level of 255).
    ours = Preprocess.from_meta(v2.meta)
    torch.testing.assert_close(ours(image), theirs, rtol=0, atol=1.01 / 255 / 0.224)
    # It takes what torchvision's preset takes: a PIL image, a float tensor in [0, 1] (not scaled twice),
    # and moves to a device with its mean and std.
    from torchvision.transforms.v2.functional import to_pil_image

    for same in (to_pil_image(image), image.float() / 255):
        torch.testing.assert_close(ours(same), v2.transforms()(same), rtol=0, atol=1.01 / 255 / 0.224)
    assert ours.to("meta")(image.to("meta")).device.type == "meta"
    write_png(image, str(tmp_path / "image.png"))
    assert main(["predict", "--model", "resnet18", "--weights", "IMAGENET1K_V1", str(tmp_path / "image.png"), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert len(top) == 5 and all(t["class"] in ResNet18_Weights.IMAGENET1K_V1.meta["categories"] for t in top)


# --- weights by path ------------------------------------------------------------------------------

def test_pth_and_safetensors_paths(tmp_path):
    source = resnets.resnet20().eval()
    torch.save(source.state_dict(), tmp_path / "w.pth")
    save_file(source.state_dict(), tmp_path / "plain.safetensors")
    x = torch.randn(2, 3, 32, 32)
    for path in [tmp_path / "w.pth", str(tmp_path / "w.pth"), tmp_path / "plain.safetensors"]:
        model = resnets.resnet20(weights=path).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x), source(x), rtol=0, atol=0)
    with pytest.raises(UserError, match=r"w\.pth: the weights do not fit the network asked for: layers=\[5, 5, 5\] asked, "
                                        r"\[3, 3, 3\] in the weights$"):
        resnets.resnet32(weights=tmp_path / "w.pth")
    with pytest.raises(UserError, match=r"num_classes=100 asked, 10 in the weights"):
        resnets.resnet20(weights=tmp_path / "w.pth", num_classes=100)
    with pytest.raises(UserError, match="w.pth hold weights alone, without the classes and normalization"):
        load_pretrained("resnet20", tmp_path / "w.pth")
    with pytest.raises(UserError, match=r"layers=\[5, 5, 5\] asked, \[3, 3, 3\] in the weights"):  # what is wrong first
        load_pretrained("resnet32", tmp_path / "w.pth")


def test_unreadable_weights_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    (tmp_path / "junk.pth").write_bytes(b"not a zip or pickle")
    (tmp_path / "w.txt").write_text("weights?")
    torch.save({"epoch": 3, "step": 10}, tmp_path / "state.pt")  # a training state, not a state_dict
    for path, message in [("missing.pth", "no weights file at"), ("junk.safetensors", "cannot read weights"),
                          ("junk.pth", "cannot read weights"), ("w.txt", "unknown weights format"),
                          ("state.pt", r"is not a state_dict: 'epoch' \(int\), 'step' \(int\) are not tensors")]:
        with pytest.raises(UserError, match=message) as e:
            resnets.resnet20(weights=tmp_path / path)
        assert "\n" not in str(e.value)
    monkeypatch.chdir(tmp_path)  # a bare file name, not a weights name
    with pytest.raises(UserError, match="w.txt: unknown weights format"):  # not "no weights 'w.txt' for resnet20"
        resnets.resnet20(weights="w.txt")


class Payload:
    """Pickles into a call of os.system: what a malicious .pth file does when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_a_pth_that_would_run_code_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    torch.save({"conv1.weight": Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match=r"cannot read weights .*evil\.pth with torch\.load\(weights_only=True\): "
                                        r"it holds more than tensors \(.*posix\.system") as e:
        resnets.resnet20(weights=tmp_path / "evil.pth")
    assert "weights_only` set to `False`" not in str(e.value)  # torch's advice, wrong for a file of unknown origin
    one_line_exit_2(["eval", "--model", "resnet20", "--weights", str(tmp_path / "evil.pth"), "--data", "digits"], capsys,
                    "it holds more than tensors")
    one_line_exit_2(["eval", "--checkpoint", str(tmp_path / "evil.pth"), "--data", "digits"], capsys,
                    "cannot read checkpoint")
    with pytest.raises(UserError, match="weights_only=True"):
        resnets.load_weights(resnets.resnet20(), tmp_path / "evil.pth")
    assert not marker.exists()


# --- shipping a run: scripts/ship_weights.py --------------------------------------------------------

@pytest.fixture(scope="module")
def ship_weights():
    spec = importlib.util.spec_from_file_location("ship_weights", ROOT / "scripts" / "ship_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ship_weights_from_a_run(ship_weights, tmp_path, monkeypatch, capsys):
    config = make_config("fast", model="resnet20", data="digits", iterations=2, batch_size=64, out=str(tmp_path / "run"))
    run = train(config)
    assert ship_weights.main([str(run.dir), "--out", str(tmp_path / "pretrained"), "--verify", "digits"]) == 0
    path = tmp_path / "pretrained" / "digits-resnet20.safetensors"
    assert "verified" in capsys.readouterr().out and path.is_file()
    meta = read_description(path)
    assert set(DESCRIPTION) <= set(meta) and meta["storage"] == "float16" and meta["weights"] == "digits"
    assert meta["test_top1"] == run.results["test_top1"] and meta["hardware"] == run.results["device"]
    assert meta["num_params"] == sum(p.numel() for p in resnets.resnet20(in_channels=1).parameters())  # digits: grey
    assert meta["command"] == "resnets train --model resnet20 --data digits --recipe fast --iterations 2 --batch-size 64"

    # The command gives the run's configuration back.
    made = []
    monkeypatch.setattr(resnets.cli.train, "train", made.append)
    args = build_parser().parse_args(shlex.split(meta["command"])[1:])
    args.run(args)
    assert {**made[0].__dict__, "out": None} == {**config.__dict__, "out": None}

    # Shipped, the weights load by name, with the run's input channels, and classify as the run did.
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "pretrained")
    assert resnets.list_weights("digits") == ["resnet20.digits"]
    assert resnets.resnet20(weights="digits").conv1.in_channels == 1
    assert main(["eval", "--model", "resnet20", "--weights", "digits", "--data", "digits", "--json"]) == 0
    assert 1 - json.loads(capsys.readouterr().out)["top1_error"] == pytest.approx(meta["test_top1"], abs=0.01)
    image = tmp_path / "digit.png"
    write_png(load_data("digits").test_images[0], str(image))
    assert main(["predict", "--model", "resnet20", "--weights", "digits", str(image), "--top", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")

    # Weights that lose accuracy in half precision are refused, and leave the shipped file as it was.
    before = path.read_bytes()
    monkeypatch.setattr(ship_weights, "verify", lambda *args: (_ for _ in ()).throw(UserError("measures less")))
    assert ship_weights.main([str(run.dir), "--out", str(tmp_path / "pretrained"), "--verify", "digits"]) == 2
    assert "measures less" in capsys.readouterr().err
    assert path.read_bytes() == before and [p.name for p in (tmp_path / "pretrained").iterdir()] == [path.name]

    assert ship_weights.main([str(tmp_path)]) == 2  # not a run
    assert "is not a finished run" in capsys.readouterr().err
