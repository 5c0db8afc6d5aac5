"""Fuzzing every reader of files from strangers (hypothesis, a bounded number of examples each):
CIFAR batches (pickle and binary), weights and checkpoint metadata, and images. Whatever the
bytes, a reader returns its result or raises UserError, the documented error type, which the
command line prints as one line; never anything else."""

import json
import pickle

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes
from torchvision.io import encode_jpeg, encode_png

import resnets
from resnets.data.cifar import LAYOUTS, _read_batch
from resnets.data.images import read_image
from resnets.errors import UserError
from resnets.models.weights import architecture, read_weights

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutated(valid: bytes):
    """``valid`` with random bytes overwritten, cut short, or both: the damaged files of real life."""
    return st.tuples(st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), max_size=8),
                     st.integers(0, len(valid))).map(lambda m: _apply(valid, *m))


def _apply(valid: bytes, edits, length) -> bytes:
    data = bytearray(valid)
    for at, value in edits:
        data[at] = value
    return bytes(data[:length])


def files(valid: bytes):
    return st.one_of(st.binary(max_size=4096), mutated(valid))


def raises_only_user_errors(read, data: bytes, path):
    path.write_bytes(data)
    try:
        read(path)
    except UserError:
        pass


PICKLE_BATCH = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2]}, protocol=2)
BINARY_BATCH = bytes(2 * 3073)


@FUZZ
@given(data=files(PICKLE_BATCH))
def test_cifar_pickle_batches(tmp_path, data):
    raises_only_user_errors(lambda p: _read_batch(p, LAYOUTS[0], 10), data, tmp_path / "data_batch_1")


@FUZZ
@given(data=files(BINARY_BATCH))
def test_cifar_binary_batches(tmp_path, data):
    raises_only_user_errors(lambda p: _read_batch(p, LAYOUTS[2], 10), data, tmp_path / "data_batch_1.bin")


WEIGHTS = safetensors_bytes({k: v.contiguous() for k, v in resnets.create_model("resnet20", num_classes=3).state_dict().items()},
                            metadata={"resnets": json.dumps({"model": "resnet20"})})


@FUZZ
@given(data=files(WEIGHTS[:4096] + WEIGHTS[-64:]))
def test_weights_files(tmp_path, data):
    raises_only_user_errors(read_weights, data, tmp_path / "w.safetensors")


@FUZZ
@given(shapes=st.dictionaries(
    st.from_regex(r"(conv1|fc|layer[0-9]{1,2}\.[0-9]{1,7}\.(conv[1-3]|bn[1-3]|downsample\.[01]))\.(weight|bias)",
                  fullmatch=True),
    st.lists(st.integers(0, 2048), min_size=0, max_size=4), max_size=12))
def test_architecture_from_any_names_and_shapes(shapes):
    try:
        config = architecture(shapes)
    except UserError:
        return
    assert all(0 < n <= len(shapes) for n in config.get("layers", [1]))  # never more blocks than tensors


@FUZZ
@given(block=st.sampled_from(["basic", "bottleneck"]), layers=st.lists(st.integers(1, 3), min_size=1, max_size=4),
       data=st.data())
def test_architecture_round_trips_any_resnet(block, layers, data):
    # Independent truth: the network the shapes come from, built from a random config.
    n = len(layers)
    planes = data.draw(st.lists(st.integers(1, 12), min_size=n, max_size=n))
    widths = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 12), min_size=n, max_size=n))) if block == "bottleneck" else None
    shortcuts = ["B", "C"] + (["A"] if block == "basic" and planes == sorted(planes) else [])
    config = dict(block=block, layers=layers, planes=planes, bottleneck_widths=widths,
                  num_classes=data.draw(st.integers(0, 20)), in_channels=data.draw(st.integers(1, 4)),
                  stem=data.draw(st.sampled_from(["imagenet", "cifar"])), shortcut=data.draw(st.sampled_from(shortcuts)))
    model = resnets.ResNet(**config)
    found = architecture({k: v.shape for k, v in model.state_dict().items()})
    projections = {(s + 1, b) for s, name in enumerate(model.stage_names)
                   for b, unit in enumerate(getattr(model, name)) if isinstance(unit.downsample, torch.nn.Sequential)}
    expected = {k: v for k, v in config.items() if k != "shortcut"}  # the shapes show projections, not options
    assert found == {**expected, "bottleneck_widths": (widths or planes) if block == "bottleneck" else None,
                     "projections": projections}


def image_bytes() -> bytes:
    image = torch.randint(0, 255, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return encode_jpeg(image).numpy().tobytes()


@FUZZ
@given(data=st.one_of(files(image_bytes()), files(encode_png(torch.zeros(1, 8, 8, dtype=torch.uint8)).numpy().tobytes())),
       channels=st.sampled_from([1, 3]))
def test_images(tmp_path, data, channels):
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    try:
        image = read_image(path, channels)
    except UserError:
        return
    assert image.dtype == torch.uint8 and image.shape[0] == channels
