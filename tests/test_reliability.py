"""Foreign checkpoints, odd images and bad files in image folders (issue 8, items 3, 4 and 5): each
is read, converted or refused in one line (exit code 2, no traceback), and never costs more than
the file holds. docs/RELIABILITY.md lists every case with its test."""

import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from resnets.cli import main
from resnets.data import FolderData, folder_loaders, load_data
from resnets.data import folders
from resnets.data.images import read_image
from resnets.errors import UserError
from resnets.models import ResNet, create_model, model_config
from resnets.models.weights import architecture, read_description
from resnets.training.checkpoint import save_model

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
RNG = np.random.default_rng(0)


def refused(capsys, argv, *expected):
    """``resnets ARGV`` exits with 2 and one line on stderr, containing each of ``expected``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "csrc" not in err, err
    for text in expected:
        assert text in err, err
    return err


# --- checkpoints whose metadata disagrees with their weights (item 3) ------------------------------

def checkpoint(path, channels=3, **changes):
    """A resnet20 checkpoint (untrained) whose metadata gets ``changes``; ``model_config`` changes
    are applied to its model config."""
    config = model_config("resnet20", in_channels=channels)
    meta = dict(model="resnet20", model_config=config, classes=[f"c{i}" for i in range(10)],
                mean=[[[0.5]]] * channels, std=[[[0.25]]] * channels, input_size=[32, 32], resize=None, data="test")
    meta["model_config"] = {**config, **changes.pop("model_config", {})}
    meta.update(changes)
    save_model(path, ResNet(**config), meta)
    return str(path)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "photo.png"
    Image.fromarray(RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("config,expected", [
    ({"layers": [5, 5, 5]}, "layers=[5, 5, 5] asked, [3, 3, 3] in the weights"),
    ({"num_classes": 100}, "num_classes=100 asked, 10 in the weights"),
    ({"planes": [16, 32, 128]}, "planes=[16, 32, 128] asked, [16, 32, 64] in the weights"),
    ({"block": "bottleneck"}, "block='bottleneck' asked, 'basic' in the weights"),
    ({"in_channels": 1}, "in_channels=1 asked, 3 in the weights"),
    ({"stem": "imagenet"}, "stem='imagenet' asked, 'cifar' in the weights"),
    ({"shortcut": "C"}, "shortcut='C' asked, 'A or None' in the weights"),
    ({"num_classes": "10"}, "num_classes='10' asked, 10 in the weights"),
])
def test_a_checkpoint_whose_metadata_disagrees_with_its_weights_is_refused(tmp_path, capsys, image, config, expected):
    path = checkpoint(tmp_path / "c.safetensors", model_config=config)
    refused(capsys, ["predict", "--checkpoint", path, image], "the weights do not fit the network asked for", expected)


def test_an_unknown_key_in_the_model_config_is_refused(tmp_path, capsys, image):
    path = checkpoint(tmp_path / "c.safetensors", model_config={"wings": 2})
    refused(capsys, ["predict", "--checkpoint", path, image], "unknown key 'wings' in the model config; valid: block,")


@pytest.mark.parametrize("command", ["predict", "eval"])
def test_a_million_blocks_are_refused_at_once_without_building_the_net(tmp_path, capsys, image, monkeypatch, command):
    path = checkpoint(tmp_path / "c.safetensors", model_config={"layers": [1_000_000, 3, 3]})

    def built(*args, **kwargs):
        raise AssertionError("a network is being built")

    monkeypatch.setattr(torch.nn.Conv2d, "__init__", built)
    argv = ["predict", "--checkpoint", path, image] if command == "predict" else \
        ["eval", "--checkpoint", path, "--data", "digits"]
    refused(capsys, argv, "layers=[1000000, 3, 3] asked, [3, 3, 3] in the weights")  # no Conv2d was made


def test_named_weights_whose_metadata_asks_for_a_huge_head_are_refused_before_building(tmp_path, capsys, image, monkeypatch):
    path = checkpoint(tmp_path / "w.safetensors", model_config={"num_classes": 10**9})
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", lambda *a, **k: pytest.fail("a network is being built"))
    with pytest.raises(UserError, match="num_classes=1000000000 asked, 10 in the weights"):
        create_model("resnet20", weights=path)
    refused(capsys, ["predict", "--model", "resnet20", "--weights", path, image], "num_classes=1000000000 asked")


def test_weights_that_name_blocks_they_do_not_hold_are_refused(tmp_path, capsys, image):
    state = ResNet("basic", (1, 1, 1), (16, 32, 64), stem="cifar", num_classes=10, shortcut="A").state_dict()
    state["layer1.999999.conv1.weight"] = state["layer1.0.conv1.weight"]  # 1 block, claiming a millionth
    with pytest.raises(UserError, match="layer1.999999 without all the blocks before it"):
        architecture({k: v.shape for k, v in state.items()})


@pytest.mark.parametrize("changes,expected", [
    ({"classes": ["only", "three", "names"]}, "3 class names for 10 outputs"),
    ({"mean": [0.5, 0.5]}, "a mean of shape (2,) for 3 input channels"),
    ({"input_size": [32]}, "an input size of [32]"),
    ({"std": "wide"}, "lacks or garbles"),
])
def test_metadata_that_does_not_fit_the_network_is_refused(tmp_path, capsys, image, changes, expected):
    path = checkpoint(tmp_path / "c.safetensors", **changes)
    refused(capsys, ["predict", "--checkpoint", path, image], expected)


@pytest.mark.parametrize("name,overrides", [("resnet50", {}), ("resnet18", {"num_classes": 0}),
                                            ("resnet32", {"shortcut": "C", "in_channels": 1}),
                                            ("resnet50", {"bottleneck_widths": (32, 64, 128, 256), "stem": "cifar"})])
def test_the_architecture_is_read_from_the_weights_alone(name, overrides):
    config = model_config(name, **overrides)
    shapes = {k: v.shape for k, v in ResNet(**config).state_dict().items()}
    found = architecture(shapes)
    assert found["layers"] == list(config["layers"]) and found["planes"] == list(config["planes"])
    assert (found["block"], found["stem"]) == (config["block"], config["stem"])
    assert (found["num_classes"], found["in_channels"]) == (config["num_classes"], config.get("in_channels", 3))
    if config["block"] == "bottleneck":
        assert found["bottleneck_widths"] == list(config.get("bottleneck_widths") or config["planes"])
    if config["shortcut"] == "C":
        assert len(found["projections"]) == sum(config["layers"])


# --- odd images for predict (item 4) ---------------------------------------------------------------

def png16(path, values):
    Image.fromarray(values.astype(np.uint16)).save(path)


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """{kind: path}: the same 12x16 picture in many formats and modes, and a few oddities."""
    folder = tmp_path_factory.mktemp("odd")
    rgb = Image.fromarray(RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    paths = {}
    for kind, im, name in [("png", rgb, "rgb.png"), ("bmp", rgb, "rgb.bmp"), ("tiff", rgb, "rgb.tiff"),
                           ("jpeg", rgb, "rgb.jpg"), ("palette gif", rgb.convert("P"), "palette.gif"),
                           ("gray png", rgb.convert("L"), "gray.png"), ("1x1 png", rgb.resize((1, 1)), "tiny.png")]:
        im.save(folder / name)
        paths[kind] = folder / name
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(RNG.integers(0, 256, (12, 16), dtype=np.uint8)))
    rgba.save(folder / "rgba.png")
    paths["rgba png"] = folder / "rgba.png"
    png16(folder / "gray16.png", np.arange(12 * 16).reshape(12, 16) * 300)
    paths["16-bit png"] = folder / "gray16.png"
    frames = [Image.new("RGB", (16, 12), (60 * i, 0, 0)).convert("P") for i in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    paths["animated gif"] = folder / "animated.gif"
    return paths


def test_every_format_and_mode_is_converted_as_pillow_would(odd_images):
    reference = torch.from_numpy(np.array(Image.open(odd_images["png"]))).permute(2, 0, 1)
    for kind in ("bmp", "tiff"):  # torchvision refuses these: Pillow reads them, pixel for pixel
        assert torch.equal(read_image(odd_images[kind]), reference)
        gray = read_image(odd_images[kind], channels=1).int() - read_image(odd_images["png"], channels=1).int()
        assert gray.abs().max() <= 1  # Pillow's and libpng's RGB-to-gray weights round differently
    assert torch.equal(read_image(odd_images["rgba png"]), reference)  # alpha dropped
    palette = Image.open(odd_images["palette gif"])
    assert torch.equal(read_image(odd_images["palette gif"], channels=1)[0],
                       torch.from_numpy(np.array(palette.convert("L"))))
    sixteen = read_image(odd_images["16-bit png"])
    assert sixteen.dtype == torch.uint8 and sixteen.shape == (1, 12, 16)
    expected = torch.from_numpy((np.arange(12 * 16).reshape(12, 16) * 300) >> 8).to(torch.uint8)
    assert (sixteen[0].int() - expected.int()).abs().max() <= 1  # 16 bits scaled to 8
    assert read_image(odd_images["gray png"]).shape[0] == 1 and read_image(odd_images["gray png"], 3).shape[0] == 3
    assert read_image(odd_images["animated gif"]).shape == (3, 12, 16)  # the first frame only
    assert read_image(odd_images["animated gif"]).max() == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_predict_reads_every_format_for_1_and_3_channel_models(tmp_path, capsys, odd_images, channels):
    path = checkpoint(tmp_path / "c.safetensors", channels=channels)
    images = [str(p) for p in odd_images.values()]
    assert main(["predict", "--checkpoint", path, "--json", *images]) == 0, capsys.readouterr().err
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == images and all(len(r["top"]) == 5 for r in results)


def png_header(path, width, height):
    """A PNG that claims width x height pixels and holds none: what a decompression bomb shows first."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return str(path)


def test_images_that_cannot_be_read_are_one_line_each(tmp_path, capsys, odd_images):
    path = checkpoint(tmp_path / "c.safetensors")
    (tmp_path / "notes.jpg").write_text("not an image")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(odd_images["jpeg"].read_bytes()[:-200])
    (empty := tmp_path / "empty").mkdir()
    for bad, expected in [(tmp_path / "notes.jpg", "not a JPEG, PNG, GIF, BMP, TIFF, WebP or PPM image"),
                          (truncated, "cannot decode image"), (tmp_path / "missing.png", "no such file or folder"),
                          (empty, "a folder with no image files (.jpg, .jpeg, .png")]:
        refused(capsys, ["predict", "--checkpoint", path, str(odd_images["png"]), str(bad)], f"{bad}: ", expected)
    # --skip-bad-images: the others are classified, each unreadable one named on stderr (a missing file
    # is still refused: a typo, not a bad image).
    argv = ["predict", "--checkpoint", path, "--skip-bad-images", "--batch-size", "2", "--top", "1", str(odd_images["png"]),
            str(tmp_path / "notes.jpg"), str(truncated), str(odd_images["jpeg"])]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert [line.split(": ")[0] for line in out.splitlines()] == [str(odd_images["png"]), str(odd_images["jpeg"])]
    assert [line.split(": cannot decode image")[0] for line in err.splitlines()] == [
        f"skipped: {tmp_path / 'notes.jpg'}", f"skipped: {truncated}"]
    assert main(["predict", "--json", *argv[1:-1]]) == 0 and [r["image"] for r in json.loads(capsys.readouterr().out)] == [
        str(odd_images["png"])]


def test_predict_prints_each_batch_as_it_is_classified(tmp_path, capsys, odd_images):
    # A folder of thousands of images shows its results as they come: the batches before an
    # unreadable file are printed before the refusal of that file.
    path = checkpoint(tmp_path / "c.safetensors")
    (tmp_path / "notes.jpg").write_text("not an image")
    argv = ["predict", "--checkpoint", path, "--batch-size", "1", "--top", "1", str(odd_images["png"]), str(tmp_path / "notes.jpg")]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and "notes.jpg: " in err, err
    assert out.startswith(f"{odd_images['png']}: ") and len(out.splitlines()) == 1, out


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, capsys):
    path = checkpoint(tmp_path / "c.safetensors")
    bomb = png_header(tmp_path / "bomb.png", 20_000, 20_000)
    # The file is a header alone: refused for its size, not for pixels it lacks, so none was read.
    refused(capsys, ["predict", "--checkpoint", path, bomb], "bomb.png: refused: Image size (400000000 pixels) exceeds",
            "MAX_IMAGE_PIXELS")


def test_a_10000x10000_image_is_read(tmp_path, capsys):
    path = checkpoint(tmp_path / "c.safetensors", channels=1)
    Image.new("L", (10_000, 10_000), 200).save(tmp_path / "huge.png")
    assert main(["predict", "--checkpoint", path, str(tmp_path / "huge.png")]) == 0, capsys.readouterr().err


# --- image folders with bad files (items 4 and 5) ---------------------------------------------------

def write_folder(root, suffix=".jpg", n=6, size=(8, 8)):
    """root/{train,val}/{ant,bee}/i.SUFFIX: small random photographs."""
    for split, count in (("train", n), ("val", 2)):
        for c in ("ant", "bee"):
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(RNG.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / split / c / f"{i}{suffix}")
    return root


@pytest.mark.parametrize("suffix", [".bmp", ".tiff"])
def test_image_folders_of_bmp_and_tiff(tmp_path, suffix):
    data = load_data(str(write_folder(tmp_path / "pets", suffix)), tmp_path / "cache")
    assert data.train_images.shape == (12, 3, 8, 8) and data.test_images.shape == (4, 3, 8, 8)


@pytest.fixture
def one_bad(tmp_path, monkeypatch):
    """An image folder with one corrupt JPEG among good ones; the cache in tmp_path/cache."""
    root = write_folder(tmp_path / "pets")
    good = (root / "train" / "bee" / "0.jpg").read_bytes()
    (root / "train" / "bee" / "3.jpg").write_bytes(good[:len(good) // 2])  # truncated
    monkeypatch.setenv("RESNETS_CACHE", str(tmp_path / "cache"))
    return root


def test_a_bad_image_in_a_folder_is_refused_by_name_by_default(one_bad, tmp_path, capsys):
    refused(capsys, ["train", "--data", str(one_bad), "--epochs", "1", "--out", str(tmp_path / "run")],
            f"{one_bad}/train/bee/3.jpg: cannot decode image", "--skip-bad-images leaves unreadable images out")
    assert not (tmp_path / "run").exists()


def test_skip_bad_images_trains_on_the_rest_and_lists_what_it_skipped(one_bad, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    argv = ["train", "--data", str(one_bad), "--skip-bad-images", "--epochs", "1", "--batch-size", "8",
            "--device", "cpu", "--out", str(run)]
    assert main(argv) == 0, capsys.readouterr().err
    assert "skipped 1 unreadable image: train/bee/3.jpg" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["skip_bad_images"] is True
    assert (run / "skipped_images.txt").read_text() == f"{one_bad}/train/bee/3.jpg\n"
    assert json.loads((run / "results.json").read_text())["iterations"] == 1  # 11 images in batches of 8
    # eval reads the test split alone: a bad training image is none of its business...
    assert main(["eval", "--checkpoint", str(run), "--data", str(one_bad), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["images"] == 4

    # The cache holds the other images and the list: a second load decodes nothing and skips the same file...
    with monkeypatch.context() as m:
        m.setattr(folders, "_decode", lambda *a: pytest.fail("decoded again"))
        data = load_data(str(one_bad), skip_bad_images=True)
        assert data.train_images.shape[0] == 11 and data.skipped == (f"{one_bad}/train/bee/3.jpg",)
        assert data.train_labels.tolist() == [0] * 6 + [1] * 5
        # ...and a load that does not skip refuses it, as the first did.
        with pytest.raises(UserError, match="train/bee/3.jpg: cannot decode image"):
            load_data(str(one_bad))
    # A bad test image is eval's, refused by name unless skipped.
    (one_bad / "val" / "ant" / "1.jpg").write_bytes(b"not a jpeg")
    refused(capsys, ["eval", "--checkpoint", str(run), "--data", str(one_bad)], "val/ant/1.jpg: cannot decode image")
    assert main(["eval", "--checkpoint", str(run), "--data", str(one_bad), "--skip-bad-images", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["images"] == 3


def test_skipped_images_are_listed_in_the_log_dir(one_bad, tmp_path):
    data = load_data(str(one_bad), skip_bad_images=True, log_dir=tmp_path / "log")
    assert (tmp_path / "log" / "skipped_images.txt").read_text() == f"{one_bad}/train/bee/3.jpg\n"
    assert len(data.train_labels) == 11


def test_a_fixed_file_is_decoded_again(one_bad):
    load_data(str(one_bad), skip_bad_images=True)
    (one_bad / "train" / "bee" / "3.jpg").unlink()  # the cache is keyed on the files: a new key
    data = load_data(str(one_bad))
    assert data.skipped == () and len(data.train_labels) == 11


def test_streamed_folders_leave_skipped_images_out_and_name_bad_ones_in_one_line(one_bad, tmp_path):
    Image.new("RGB", (9, 9)).save(one_bad / "train" / "ant" / "big.png")  # two sizes: streamed from disk
    data = load_data(str(one_bad), skip_bad_images=True)
    assert isinstance(data, FolderData) and data.skipped == (f"{one_bad}/train/bee/3.jpg",)
    loaders = folder_loaders(data, batch_size=4, workers=0, train_size=8)
    assert len(loaders.train.dataset) == 12 and all(x.shape[1:] == (3, 8, 8) for x, _ in loaders.train)

    unchecked = FolderData(data.name, data.classes, data.train_dir, data.test_dir)  # as a default load streams it
    with pytest.raises(UserError) as error:  # raised in a worker process, re-raised here as one line
        list(folder_loaders(unchecked, batch_size=4, workers=1, train_size=8).train)
    assert str(error.value).startswith(f"{one_bad}/train/bee/3.jpg: cannot decode image (")
    assert "\n" not in str(error.value) and "Traceback" not in str(error.value)


def test_folders_too_large_to_hold_are_scanned_once_and_only_when_skipping(one_bad, monkeypatch, capsys):
    monkeypatch.setattr(folders, "MAX_BYTES", 1000)  # as if the folder held ImageNet
    bad = f"{one_bad}/train/bee/3.jpg"
    data = load_data(str(one_bad))  # streamed at once: its files are read as training reaches them
    assert isinstance(data, FolderData) and data.skipped == ()
    assert "read from disk as training reaches them, with ImageNet's crops" in capsys.readouterr().err  # said
    data = load_data(str(one_bad), skip_bad_images=True)  # every file looked at, none kept
    assert isinstance(data, FolderData) and data.skipped == (bad,)
    monkeypatch.setattr(folders, "_decode", lambda *a: pytest.fail("scanned again"))
    assert load_data(str(one_bad), skip_bad_images=True).skipped == (bad,)
    with pytest.raises(UserError, match="train/bee/3.jpg: cannot decode image"):
        load_data(str(one_bad))


class _Payload:
    """Unpickling this runs a command: the marker file appears if anything unpickles it unsafely."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_training_state_is_refused_and_runs_nothing(tmp_path, capsys):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    assert main(["train", "--epochs", "1", "--out", str(run)]) == 0
    torch.save({"epoch": 1, "optimizer": _Payload(marker)}, run / "checkpoints" / "last_state.pt")
    (run / "results.json").unlink()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "cannot read training state" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not marker.exists()


def _binary_cifar(root, records: bytes):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(records)
    (folder / "batches.meta.txt").write_text("\n".join("abcdefghij"))
    return root


@pytest.mark.parametrize("case,message", [
    ("labels", "labels outside 0..9"),
    ("size", "is not a whole number of 3073-byte CIFAR records"),
    ("empty class", "Found no valid file for the classes b"),
    ("truncated state", "cannot read training state"),
    ("foreign state", "is not a training state `resnets train` wrote: it has no model, optimizer, scheduler"),
])
def test_corrupt_data_and_state_are_one_line_errors(tmp_path, capsys, case, message):
    if case == "labels":
        records = np.zeros((4, 3073), np.uint8)
        records[:, 0] = [1, 2, 200, 3]  # a label byte of 200 in a 10-class set
        argv = ["train", "--data", str(_binary_cifar(tmp_path / "d", records.tobytes())), "--epochs", "1"]
    elif case == "size":
        argv = ["train", "--data", str(_binary_cifar(tmp_path / "d", bytes(3073 * 2 + 5))), "--epochs", "1"]
    elif case == "empty class":
        for split in ("train", "test"):
            for name in ("a", "b"):
                (tmp_path / "d" / split / name).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / "d" / split / "a" / "0.png")
        argv = ["train", "--data", str(tmp_path / "d"), "--epochs", "1"]
    else:
        run = tmp_path / "run"
        assert main(["train", "--epochs", "2", "--out", str(run)]) == 0
        state = run / "checkpoints" / "last_state.pt"
        if case == "truncated state":
            state.write_bytes(state.read_bytes()[:1000])
        else:  # the model's state_dict alone, where the trainer's state was
            torch.save(torch.load(state, weights_only=True)["model"], state)
        (run / "results.json").unlink()
        argv = ["train", "--resume", str(run)]
        capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "out")] if not case.endswith("state") else argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_image_folder_of_mixed_files_reads_its_images_only(tmp_path, capsys):
    for split in ("train", "test"):
        for name in ("a", "b"):
            folder = tmp_path / "d" / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (80 * i, 0, 0) if name == "a" else (0, 80 * i, 0)).save(folder / f"{i}.png")
            (folder / "notes.txt").write_text("not an image")
            (folder / "labels.csv").write_text("0,a\n")
    (tmp_path / "d" / "README.md").write_text("a data set")
    argv = ["train", "--data", str(tmp_path / "d"), "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2  # 6 images cannot make one batch of 256: said in one line
    assert "smaller than one batch of 256 images" in capsys.readouterr().err
    assert main([*argv, "--batch-size", "4"]) == 0
    data = load_data(str(tmp_path / "d"))
    assert data.train_images.shape[0] == 6 and data.classes == ["a", "b"]


def test_eval_of_a_gray_folder_streamed_from_disk_reads_gray_images(tmp_path, capsys):
    # A 1-channel model (digits) on gray images of two sizes (so streamed): read as gray and
    # resized whole, as `predict` reads them (eval read RGB and failed in the first convolution),
    # and --ten-crop refused in one line: the per-pixel mean fits 8x8 images only.
    run = tmp_path / "run"
    assert main(["train", "--iterations", "1", "--normalize", "pixel", "--device", "cpu", "--out", str(run)]) == 0
    classes = read_description(run / "model.safetensors")["classes"]
    for split in ("train", "val"):
        for i, c in enumerate(classes):
            (tmp_path / "gray" / split / c).mkdir(parents=True)
            size = (8, 8) if i % 2 else (12, 10)
            Image.fromarray(RNG.integers(0, 256, size, dtype=np.uint8), "L").save(tmp_path / "gray" / split / c / "0.png")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--data", str(tmp_path / "gray"), "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(["predict", "--checkpoint", str(run), "--top", "1", "--json", str(tmp_path / "gray" / "val")]) == 0
    predicted = json.loads(capsys.readouterr().out)
    misses = sum(p["top"][0]["class"] != os.path.basename(os.path.dirname(p["image"])) for p in predicted)
    assert result["images"] == len(classes) and result["top1_error"] == misses / len(classes)
    refused(capsys, ["eval", "--checkpoint", str(run), "--data", str(tmp_path / "gray"), "--ten-crop"],
            "--ten-crop crops and rescales images, which this model's per-pixel mean (of 8x8 images) cannot follow")


def test_images_of_another_size_than_the_model_was_trained_on_are_refused(one_bad, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(one_bad), "--skip-bad-images", "--epochs", "1", "--batch-size", "8",
                 "--device", "cpu", "--out", str(run)]) == 0
    bigger = write_folder(tmp_path / "bigger", size=(16, 16))  # the same classes, at 16x16
    refused(capsys, ["eval", "--checkpoint", str(run), "--data", str(bigger)],
            "has images of shape (3, 16, 16), the model was trained on (3, 8, 8)")
