"""The data package against files written here in the official layouts: pixels, labels and class
names come back exactly, malformed or hostile files are refused, batches are augmented correctly."""

import io
import os
import pickle
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torchvision.io import write_png

from resnets.data import (ArrayData, DeviceLoader, FolderData, Lighting, channel_stats, folder_loaders, load_data,
                          pixel_mean)
from resnets.data import folders
from resnets.data.imagenet import EIGENVALUES, EIGENVECTORS
from resnets.errors import UserError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# torchvision 0.29 deprecates its image codecs in favour of torchcodec, which is not a dependency.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
JPEG_COPY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def random_batch(n, seed, n_classes=10):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, n_classes, n).tolist()


def dump(path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def write_cifar10_py(root, n=10, protocol=2):
    """cifar-10-batches-py as the official download has it, with n images per batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    batches = {name: random_batch(n, seed) for seed, name in enumerate(names)}
    for name, (data, labels) in batches.items():
        dump(folder / name, {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                             b"filenames": [b"x.png"] * n}, protocol)
    dump(folder / "batches.meta", {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}, protocol)
    return folder, batches


def check_cifar10(data, batches):
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    assert data.name == "cifar10" and data.classes == CIFAR10_CLASSES
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape == (50, 3, 32, 32)
    assert np.array_equal(data.train_images.reshape(50, -1).numpy(), np.concatenate([d for d, _ in train]))
    assert data.train_labels.tolist() == sum((labels for _, labels in train), [])
    assert np.array_equal(data.test_images.reshape(10, -1).numpy(), batches["test_batch"][0])
    assert data.test_labels.dtype == torch.int64 and data.test_labels.tolist() == batches["test_batch"][1]
    # Row-major R, G, B planes: byte 1024 + 32 * 2 + 5 is green at row 2, column 5.
    first = batches["data_batch_1"][0][0]
    assert data.train_images[0, 1, 2, 5] == first[1024 + 64 + 5] and data.train_images[0, 2, 31, 31] == first[-1]


# --- digits -----------------------------------------------------------------------------------

def test_digits_are_sklearns_scaled_to_bytes_in_a_stratified_split():
    data = load_data("digits")
    assert (data.name, data.classes, data.crop_padding, data.flip) == ("digits", [str(d) for d in range(10)], 1, False)
    assert data.train_images.shape == (1437, 1, 8, 8) and data.test_images.shape == (360, 1, 8, 8)
    digits = load_digits()
    expected = np.round(digits.images * 255 / 16).astype(np.uint8).reshape(len(digits.images), -1)
    ours = torch.cat([data.train_images, data.test_images]).reshape(1797, -1).numpy()
    labels = torch.cat([data.train_labels, data.test_labels]).numpy()
    assert sorted(map(bytes, ours)) == sorted(map(bytes, expected))
    assert sorted(zip(map(bytes, ours), labels)) == sorted(zip(map(bytes, expected), digits.target))
    share = torch.from_numpy(np.bincount(digits.target)) * 360 / 1797
    assert (data.test_labels.bincount() - share).abs().max() < 1  # stratified


# --- CIFAR python pickles ---------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 5])  # numpy's _reconstruct, and numpy 2's _frombuffer
def test_cifar10_python_batches_read_back_exactly(tmp_path, cache, protocol):
    folder, batches = write_cifar10_py(tmp_path, protocol=protocol)
    check_cifar10(load_data(str(tmp_path), cache), batches)  # the parent
    check_cifar10(load_data(str(folder), cache), batches)  # the batches folder itself


def test_cifar100_python(tmp_path, cache):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    split = {}
    for seed, name in enumerate(["train", "test"]):
        data, fine = random_batch(20, seed, n_classes=100)
        split[name] = data, fine
        dump(folder / name, {b"data": data, b"fine_labels": fine, b"coarse_labels": [f // 5 for f in fine]})
    names = [f"class{i:02d}" for i in range(100)]
    dump(folder / "meta", {b"fine_label_names": [n.encode() for n in names], b"coarse_label_names": [b"c"] * 20})
    data = load_data(str(tmp_path), cache)
    assert data.name == "cifar100" and data.classes == names
    assert np.array_equal(data.train_images.reshape(20, -1).numpy(), split["train"][0])
    assert data.train_labels.tolist() == split["train"][1] and data.test_labels.tolist() == split["test"][1]


class Exploit:
    """A pickle that, loaded naively, runs ``call(*args)``."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("how", ["os.system", "builtins.exec", "inside the dict"])
def test_hostile_pickles_are_refused_without_running(tmp_path, cache, how):
    folder, _ = write_cifar10_py(tmp_path)
    marker = tmp_path / "pwned"
    if how == "os.system":
        payload = Exploit(os.system, f"touch {marker}")
    elif how == "builtins.exec":
        payload = Exploit(exec, f"open({str(marker)!r}, 'w').close()")
    else:
        payload = {b"data": np.zeros((10, 3072), np.uint8), b"labels": Exploit(os.system, f"touch {marker}")}
    dump(folder / "data_batch_3", payload)
    with pytest.raises(UserError, match=r"refusing to unpickle .*(system|exec) from .*data_batch_3: not a CIFAR batch"):
        load_data(str(folder), cache)
    assert not marker.exists()


@pytest.mark.parametrize("content,match", [
    ({b"data": np.zeros((10, 100), np.uint8), b"labels": [0] * 10}, r"'data' must be uint8 of shape \(N, 3072\)"),
    ({b"data": np.zeros((10, 3072), np.float32), b"labels": [0] * 10}, "'data' must be uint8"),
    ({b"pixels": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10}, "found NoneType"),
    ({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 9}, "'labels' must be 10 integers"),
    ({b"data": np.zeros((10, 3072), np.uint8), b"labels": [10] * 10}, r"labels outside 0..9"),
    ([1, 2, 3], "holds a list, not a CIFAR batch's dict"),
])
def test_malformed_python_batches_are_refused(tmp_path, cache, content, match):
    folder, _ = write_cifar10_py(tmp_path)
    dump(folder / "data_batch_2", content)
    with pytest.raises(UserError, match=match):
        load_data(str(folder), cache)


def test_truncated_pickle_and_missing_batches_are_refused(tmp_path, cache):
    folder, _ = write_cifar10_py(tmp_path)
    path = folder / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match="test_batch: not a CIFAR batch"):
        load_data(str(folder), cache)
    (folder / "data_batch_5").unlink()
    with pytest.raises(UserError, match="lacks data_batch_5"):
        load_data(str(tmp_path), cache)


# --- CIFAR binary -----------------------------------------------------------------------------

def test_cifar10_binary_reads_back_exactly(tmp_path, cache):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    batches = {}
    for seed, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        data, labels = batches[name] = random_batch(10, seed)
        (folder / f"{name}.bin").write_bytes(np.hstack([np.array(labels, np.uint8)[:, None], data]).tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    check_cifar10(load_data(str(tmp_path), cache), batches)
    check_cifar10(load_data(str(folder), cache), batches)

    (folder / "data_batch_4.bin").write_bytes(bytes(3073 * 2 + 7))
    with pytest.raises(UserError, match="6153 bytes is not a whole number of 3073-byte CIFAR records"):
        load_data(str(folder), cache)


def test_cifar100_binary_takes_the_fine_label(tmp_path, cache):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    fine = {}
    for seed, name in enumerate(["train", "test"]):
        data, fine[name] = random_batch(6, seed, n_classes=100)
        fine_bytes = np.array(fine[name], np.uint8)[:, None]
        (folder / f"{name}.bin").write_bytes(np.hstack([fine_bytes // 5, fine_bytes, data]).tobytes())
    (folder / "fine_label_names.txt").write_text("\n".join(f"c{i}" for i in range(100)))
    data = load_data(str(folder), cache)
    assert data.name == "cifar100" and len(data.classes) == 100
    assert data.train_labels.tolist() == fine["train"] and data.test_labels.tolist() == fine["test"]


# --- image folders and archives ---------------------------------------------------------------

def write_folder(root, sizes={"train": 3, "val": 2}, shape=(3, 5, 7), classes=("cat", "ant", "bee"), seed=0):
    """root/<split>/<class>/<i>.png with random pixels; returns {path: (image, label)}."""
    gen = torch.Generator().manual_seed(seed)
    written = {}
    for split, n in sizes.items():
        for label, c in enumerate(sorted(classes)):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                image = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
                write_png(image, str(root / split / c / f"{i}.png"))
                written[root / split / c / f"{i}.png"] = image, label
    return written


def expected(written, root, split):
    items = sorted((p, v) for p, v in written.items() if p.parent.parent == root / split)
    return torch.stack([image for _, (image, _) in items]), [label for _, (_, label) in items]


def test_image_folder_decodes_exactly_and_is_cached(tmp_path, cache, monkeypatch):
    root = tmp_path / "pets"
    written = write_folder(root)
    data = load_data(str(root), cache)
    assert isinstance(data, ArrayData) and data.name == "pets" and data.classes == ["ant", "bee", "cat"]
    for split in ("train", "test"):
        images, labels = expected(written, root, "train" if split == "train" else "val")
        assert torch.equal(getattr(data, f"{split}_images"), images)
        assert getattr(data, f"{split}_labels").tolist() == labels
    assert len(list(cache.glob("pets-*.safetensors"))) == 1

    def fail(*args):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(folders, "_decode", fail)
    again = load_data(str(root), cache)
    assert torch.equal(again.train_images, data.train_images) and again.classes == data.classes


def test_a_changed_folder_is_decoded_again(tmp_path, cache):
    # The data-cleaning loop: fix a label, rename a class, move an image to the other split. Each is
    # read as the folder now is, not from the arrays of the folder as it was (same size, same mtimes).
    root = tmp_path / "pets"
    write_folder(root)
    load_data(str(root), cache)
    (root / "train" / "cat" / "0.png").rename(root / "train" / "ant" / "9.png")  # relabelled
    data = load_data(str(root), cache)
    assert data.train_labels.tolist() == [0] * 4 + [1] * 3 + [2] * 2
    for split in ("train", "val"):
        (root / split / "ant").rename(root / split / "dog")  # renamed: the classes' order changes
    data = load_data(str(root), cache)
    assert data.classes == ["bee", "cat", "dog"] and data.train_labels.tolist() == [0] * 3 + [1] * 2 + [2] * 4
    (root / "val" / "bee" / "0.png").rename(root / "train" / "bee" / "8.png")  # moved to the other split
    data = load_data(str(root), cache)
    assert (len(data.train_labels), len(data.test_labels)) == (10, 5)


def test_train_and_val_of_two_sizes_are_streamed(tmp_path, cache):
    # Each split of one size, but not the same one: arrays could not share a per-pixel mean (training
    # failed at its first evaluation), so the folder is streamed, as one of several sizes is.
    root = tmp_path / "two"
    write_folder(root, sizes={"train": 2})
    write_folder(root, sizes={"val": 1}, shape=(3, 9, 9))
    assert isinstance(load_data(str(root), cache), FolderData)
    assert load_data(str(root), cache, test_only=True).test_images.shape[2:] == (9, 9)  # eval: the test split alone


def test_grayscale_folder_keeps_one_channel_and_test_dir_works(tmp_path, cache):
    root = tmp_path / "gray"
    written = write_folder(root, sizes={"train": 2, "test": 1}, shape=(1, 4, 4))
    data = load_data(str(root), cache)
    assert data.train_images.shape == (6, 1, 4, 4)
    assert torch.equal(data.test_images, expected(written, root, "test")[0])


def test_a_gray_image_among_colour_ones_is_read_as_rgb(tmp_path, cache):
    # The first image in sorted order once decided the channels of all (a gray one made a colour
    # folder gray, silently); now any colour makes the folder RGB, a gray image's value replicated
    # (as Pillow's convert("RGB") and torchvision's ImageFolder read it).
    root = tmp_path / "mixed"
    written = write_folder(root)
    gray = torch.randint(0, 256, (1, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for split in ("train", "val"):
        write_png(gray, str(root / split / "ant" / "0.png"))  # the first of each split
    data = load_data(str(root), cache)
    assert data.train_images.shape == (9, 3, 5, 7) and data.test_images.shape == (6, 3, 5, 7)
    assert torch.equal(data.train_images[0], gray.expand(3, -1, -1)) and torch.equal(data.test_images[0], gray.expand(3, -1, -1))
    assert torch.equal(data.train_images[1], written[root / "train" / "ant" / "1.png"][0])
    # Evaluation reads the test split alone, as the model's channels say (its first image is gray).
    assert load_data(str(root), cache, test_only=True, channels=3).test_images.shape == (6, 3, 5, 7)


def test_images_of_several_sizes_stay_on_disk(tmp_path, cache):
    root = tmp_path / "photos"
    write_folder(root)
    write_png(torch.zeros(3, 9, 9, dtype=torch.uint8), str(root / "train" / "ant" / "big.png"))
    data = load_data(str(root), cache)
    assert data == FolderData("photos", ["ant", "bee", "cat"], root / "train", root / "val")


def test_broken_folders_are_refused(tmp_path, cache):
    root = tmp_path / "broken"
    write_folder(root)
    (root / "train" / "bee" / "2.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"bee/2.png: cannot decode image"):
        load_data(str(root), cache)
    (root / "val" / "dog").mkdir()
    with pytest.raises(UserError, match="hold different class folders"):
        load_data(str(root), cache)


def test_decoding_leaves_the_global_random_numbers_alone(tmp_path, cache, monkeypatch):
    # Decoding in worker processes (as CIFAR-10's 60,000 JPEGs are) draws their seeds from the loader's
    # generator: a run's random numbers are the same whether its data came from the cache or not.
    monkeypatch.setattr(folders, "CHUNK", 2)  # several chunks: worker processes
    root = tmp_path / "pets"
    write_folder(root)
    before = torch.get_rng_state()
    load_data(str(root), cache)
    assert torch.equal(torch.get_rng_state(), before)


def test_test_only_reads_no_training_image(tmp_path, cache):
    """Evaluation's load: the train folder's images are neither listed nor decoded (an unreadable
    one goes unnoticed), the test split is exact and cached apart from the whole folder's."""
    root = tmp_path / "pets"
    written = write_folder(root)
    (root / "train" / "bee" / "2.png").write_bytes(b"not a png")
    data = load_data(str(root), cache, test_only=True)
    images, labels = expected(written, root, "val")
    assert torch.equal(data.test_images, images) and data.test_labels.tolist() == labels
    assert data.train_images.shape == (0, 3, 5, 7) and len(data.train_labels) == 0
    assert [p.name.split("-")[1] for p in cache.glob("pets-*.safetensors")] == ["test"]
    with pytest.raises(UserError, match=r"bee/2.png: cannot decode image"):
        load_data(str(root), cache)  # the whole folder is another entry, decoded on its own
    # Streamed (images of several sizes): no training loader, and the test loader as before.
    write_png(torch.zeros(3, 9, 9, dtype=torch.uint8), str(root / "val" / "ant" / "big.png"))
    data = load_data(str(root), cache, test_only=True)
    assert data == FolderData("pets", ["ant", "bee", "cat"], None, root / "val")
    loaders = folder_loaders(data, batch_size=7, workers=0)
    assert loaders.train is None and len(next(iter(loaders.test))[1]) == 7


def make_tar(path, files):
    """A gzipped tar of {member name: bytes}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def test_archives_are_extracted_once_then_loaded(tmp_path, cache, monkeypatch, capsys):
    root = tmp_path / "src" / "tiny-set"
    written = write_folder(root)
    archive = tmp_path / "tiny-set.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="tiny-set")
    members = len(tarfile.open(archive).getmembers())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal: progress bars
    data = load_data(str(archive), cache)
    err = capsys.readouterr().err
    assert "extracting tiny-set.tgz: 100%|" in err and f"| {members}/{members} [" in err
    assert data.name == "tiny-set" and data.classes == ["ant", "bee", "cat"]
    assert torch.equal(data.train_images, expected(written, root, "train")[0])
    assert len(list((cache / "extracted").iterdir())) == 1

    from resnets.data import archives
    monkeypatch.setattr(archives, "_extract_safely", lambda *a: pytest.fail("extracted twice"))
    monkeypatch.setattr(folders, "_decode", lambda *a: pytest.fail("decoded twice"))
    assert torch.equal(load_data(str(archive), cache).test_images, data.test_images)


def test_an_extraction_killed_midway_leaves_nothing_behind(tmp_path, cache):
    # A run killed while extracting (Ctrl-C, a time limit) leaves its partial tree, named by its pid;
    # the next extraction removes it (an ImageNet tarball left 150 GB each time), not a live one's.
    from resnets.data.cache import fingerprint

    write_folder(tmp_path / "src" / "tiny-set")
    archive = tmp_path / "tiny-set.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "tiny-set", arcname="tiny-set")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = f"tiny-set-{fingerprint(archive, [archive])}"
    killed, alive = (cache / "extracted" / f".{name}.{pid}.partial" for pid in (dead.pid, os.getppid()))
    for left in (killed, alive):
        (left / "tiny-set").mkdir(parents=True)
    load_data(str(archive), cache)
    assert not killed.exists() and alive.exists()


def test_two_loaders_of_one_folder_decode_it_once(tmp_path, cache, monkeypatch, capsys):
    # As torchrun's ranks, or parallel runs, on a data set not yet in the cache: the one that comes
    # second waits for the first to write the arrays, and reads them.
    root = tmp_path / "tiny-set"
    write_folder(root)
    decoded, decode = [], folders._decode_all

    def slow_decode(items, channels, size, split, *args, **kwargs):
        decoded.append(split)
        time.sleep(0.5)  # time for the other loader to arrive
        return decode(items, channels, size, split, *args, **kwargs)

    monkeypatch.setattr(folders, "_decode_all", slow_decode)
    loaded = []
    loaders = [threading.Thread(target=lambda: loaded.append(load_data(str(root), cache))) for _ in range(2)]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join()
    assert decoded == ["train", "test"]  # once, not once each
    assert len(loaded) == 2 and torch.equal(loaded[0].train_images, loaded[1].train_images)
    assert f"waiting for another process decoding {root}" in capsys.readouterr().err


def test_archive_of_cifar_batches(tmp_path, cache):
    _, batches = write_cifar10_py(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    check_cifar10(load_data(str(archive), cache), batches)


@pytest.mark.parametrize("member", ["../escaped.txt", "/tmp/absolute-escape.txt", "a/../../escaped.txt"])
def test_archive_members_outside_the_tree_are_refused(tmp_path, cache, member):
    archive = tmp_path / "evil.tar.gz"
    make_tar(archive, {"evil/train/a/x.txt": b"x", member: b"gotcha"})
    with pytest.raises(UserError, match="refusing member"):
        load_data(str(archive), cache)
    assert not (cache / "escaped.txt").exists() and not (cache / "extracted" / "escaped.txt").exists()
    assert not list((cache / "extracted").iterdir())  # nothing half-extracted is left


def test_archive_links_are_refused(tmp_path, cache):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("links/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(UserError, match="refusing member 'links/passwd'"):
        load_data(str(archive), cache)


def test_unrecognized_inputs_name_what_was_looked_for(tmp_path, cache):
    with pytest.raises(UserError, match="no such file or directory; looked for 'digits', CIFAR batches"):
        load_data(str(tmp_path / "nowhere"), cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="unrecognized data set; looked for .*image folder with train/"):
        load_data(str(tmp_path / "empty"), cache)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="unrecognized data set"):
        load_data(str(tmp_path / "notes.txt"), cache)
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(UserError, match="not a readable tar archive"):
        load_data(str(tmp_path / "bad.tar.gz"), cache)


@pytest.mark.skipif(not JPEG_COPY.exists(), reason=f"the CIFAR-10 JPEG copy is not at {JPEG_COPY}")
@pytest.mark.slow
def test_the_cifar10_jpeg_copy():
    # Its test split, as `resnets eval` and the weights' tests read it (decoded into the suite's cache,
    # conftest.py): the train split's decoding is the image folders' above, at 50,000 times the cost.
    data = load_data(str(JPEG_COPY), test_only=True)
    assert data.name == "cifar10-jpeg" and data.classes == CIFAR10_CLASSES
    assert data.test_images.shape == (10_000, 3, 32, 32) and data.test_labels.bincount().tolist() == [1000] * 10
    mean, _ = channel_stats(data.test_images)
    # CIFAR-10's well-known test-set channel means (0.4942, 0.4851, 0.4504), barely moved by JPEG.
    assert torch.allclose(mean.flatten(), torch.tensor([0.4942, 0.4851, 0.4504]), atol=0.005)
    assert torch.equal(load_data(str(JPEG_COPY), test_only=True).test_images, data.test_images)  # from the cache


# --- statistics, holdout and subsets ----------------------------------------------------------

def numbered(n_train, n_test=10, n_classes=5):
    """Images whose first two pixels spell their index, so that subsets can be traced."""
    def images(n, offset):
        x = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
        x[:, 0, 0, 0], x[:, 0, 0, 1] = (torch.arange(n) + offset) // 256, (torch.arange(n) + offset) % 256
        return x
    return ArrayData("numbers", [str(c) for c in range(n_classes)], images(n_train, 0),
                     torch.arange(n_train) % n_classes, images(n_test, 10_000), torch.arange(n_test) % n_classes)


def ids(images):
    return (images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()).tolist()


def test_holdout_moves_stratified_train_images_to_test():
    data = numbered(1000)
    split = data.holdout(100, seed=1)
    assert len(split.train_images) == 900 and len(split.test_images) == 100
    assert sorted(ids(split.train_images) + ids(split.test_images)) == list(range(1000))
    assert split.test_labels.bincount().tolist() == [20] * 5
    assert [i % 5 for i in ids(split.test_images)] == split.test_labels.tolist()  # images keep their labels
    assert ids(data.holdout(100, seed=2).test_images) != ids(split.test_images)
    with pytest.raises(UserError):
        data.holdout(1000)


def test_subset_is_stratified_and_seeded():
    data = numbered(1000, n_test=100)
    small = data.subset(50, 20, seed=3)
    assert small.train_labels.bincount().tolist() == [10] * 5 and small.test_labels.bincount().tolist() == [4] * 5
    assert set(ids(small.train_images)) <= set(range(1000)) and len(set(ids(small.train_images))) == 50
    assert ids(data.subset(50, 20, seed=3).train_images) == ids(small.train_images)
    assert len(data.subset(None, 7).train_images) == 1000
    with pytest.raises(UserError):
        data.subset(1001)


def test_pixel_mean_and_channel_stats():
    images = torch.randint(0, 256, (64, 3, 4, 5), dtype=torch.uint8)
    x = images.double() / 255
    assert pixel_mean(images).shape == (3, 4, 5)
    assert torch.allclose(pixel_mean(images).double(), x.mean(0), atol=1e-6)
    mean, std = channel_stats(images)
    assert mean.shape == std.shape == (3, 1, 1) and mean.dtype == torch.float32
    assert torch.allclose(mean.double(), x.mean((0, 2, 3), keepdim=True), atol=1e-6)
    assert torch.allclose(std.double(), x.std((0, 2, 3), keepdim=True, unbiased=False), atol=1e-6)


# --- DeviceLoader -----------------------------------------------------------------------------

N = 50


@pytest.fixture
def arrays():
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (N, 3, 6, 5), dtype=torch.uint8, generator=gen), torch.arange(N)


def loader(arrays, **kw):
    kw = {"batch_size": 8, "mean": torch.zeros(3, 1, 1), "std": torch.ones(3, 1, 1), "train": True, **kw}
    return DeviceLoader(*arrays, kw.pop("batch_size"), **kw)


def epoch(loader_, e=0):
    loader_.set_epoch(e)
    return [(x.clone(), y.clone()) for x, y in loader_]


def test_eval_batches_are_in_order_normalized_and_complete(arrays):
    images, labels = arrays
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1)
    batches = epoch(loader(arrays, train=False, mean=mean, std=std))
    assert len(batches) == len(loader(arrays, train=False)) == 7 and len(batches[-1][1]) == 2
    assert torch.cat([y for _, y in batches]).tolist() == list(range(N))
    assert torch.allclose(torch.cat([x for x, _ in batches]), (images / 255 - mean) / std)


def test_train_epochs_shuffle_reproducibly(arrays):
    train = loader(arrays)
    first = epoch(train)
    assert len(first) == len(train) == N // 8 and all(len(y) == 8 for _, y in first)
    seen = torch.cat([y for _, y in first]).tolist()
    assert len(set(seen)) == 48 and seen != sorted(seen)
    whole = torch.cat([y for _, y in epoch(loader(arrays, drop_last=False))]).tolist()
    assert sorted(whole) == list(range(N))
    resumed = epoch(loader(arrays))  # a new loader, as after a restart
    assert all(torch.equal(a, b) and torch.equal(ya, yb) for (a, ya), (b, yb) in zip(first, resumed))
    assert torch.cat([y for _, y in epoch(train, 1)]).tolist() != seen
    assert torch.cat([y for _, y in epoch(loader(arrays, seed=1))]).tolist() != seen


def test_train_crops_are_windows_of_the_zero_padded_image_maybe_mirrored(arrays):
    images, _ = arrays
    padded = F.pad(images, (2, 2, 2, 2))
    shifted = flipped = 0
    for x, y in epoch(loader(arrays, crop_padding=2, drop_last=False)):
        for image, label in zip((x * 255).round().to(torch.uint8), y):
            windows = {(dy, dx): padded[label, :, dy:dy + 6, dx:dx + 5] for dy in range(5) for dx in range(5)}
            matches = [(dy, dx, flip) for (dy, dx), w in windows.items() for flip in (False, True)
                       if torch.equal(w.flip(-1) if flip else w, image)]
            assert matches, f"image {label} is no window of its padded original"
            dy, dx, flip = matches[0]
            shifted += (dy, dx) != (2, 2)
            flipped += flip
    assert 0 < flipped < N and shifted > N // 2


def test_no_flip_and_no_padding_leave_images_alone(arrays):
    images, _ = arrays
    for x, y in epoch(loader(arrays, crop_padding=0, flip=False)):
        assert torch.equal((x * 255).round().to(torch.uint8), images[y])


def test_ranks_read_disjoint_shards(arrays):
    for train in (True, False):
        shards = [torch.cat([y for _, y in epoch(loader(arrays, train=train, drop_last=False, rank=r, world_size=2))])
                  for r in range(2)]
        assert len(shards[0]) == len(shards[1]) == N // 2
        assert not set(shards[0].tolist()) & set(shards[1].tolist())
        assert sorted(shards[0].tolist() + shards[1].tolist()) == list(range(N))
    odd = (arrays[0][:N - 1], arrays[1][:N - 1])
    train_shards = [loader(odd, drop_last=False, rank=r, world_size=2) for r in range(2)]
    assert len(train_shards[0]) == len(train_shards[1])  # padded, so every rank takes as many steps
    eval_shards = [torch.cat([y for _, y in epoch(loader(odd, train=False, rank=r, world_size=2))]) for r in range(2)]
    assert sorted(eval_shards[0].tolist() + eval_shards[1].tolist()) == list(range(N - 1))  # nothing repeated


def test_channels_last(arrays):
    x, _ = next(iter(loader(arrays, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)


# --- the ImageNet pipeline --------------------------------------------------------------------

def test_folder_loaders_follow_section_3_4(tmp_path):
    root = tmp_path / "imagenet"
    write_folder(root, sizes={"train": 2, "val": 1}, shape=(3, 30, 40))
    data = FolderData("imagenet", ["ant", "bee", "cat"], root / "train", root / "val")
    loaders = folder_loaders(data, batch_size=2, workers=0)
    x, y = next(iter(loaders.train))
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.int64
    center, y = next(iter(folder_loaders(data, batch_size=3, workers=0).test))
    assert center.shape == (3, 3, 224, 224) and y.tolist() == [0, 1, 2]
    x, y = next(iter(folder_loaders(data, batch_size=3, workers=0, ten_crop=True).test))
    assert x.shape == (3, 10, 3, 224, 224) and y.tolist() == [0, 1, 2]
    assert torch.allclose(x[:, 4], center, atol=1e-5)  # TenCrop's fifth crop is the center
    same = FolderData("imagenet", data.classes, data.test_dir, data.test_dir)
    plain, y = next(iter(folder_loaders(same, batch_size=3, workers=0, augment=False).train))
    assert torch.allclose(plain, center[y], atol=1e-5)  # without augmentation, training images are as in testing
    assert loaders.meta["resize"] == 256 and torch.tensor(loaders.meta["mean"]).shape == (3, 1, 1)
    shards = [folder_loaders(data, batch_size=1, workers=0, rank=r, world_size=2).test for r in range(2)]
    assert sorted(y.item() for shard in shards for _, y in shard) == [0, 1, 2]


def test_lighting_adds_the_pca_colour_shift():
    image = torch.rand(3, 4, 4)
    torch.manual_seed(5)
    out = Lighting(0.1)(image)
    torch.manual_seed(5)
    alpha = torch.randn(3) * 0.1
    assert torch.allclose(out - image, (EIGENVECTORS @ (alpha * EIGENVALUES)).view(3, 1, 1).expand(3, 4, 4))
