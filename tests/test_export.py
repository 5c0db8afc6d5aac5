"""resnets export: the ONNX file gives onnxruntime the outputs of our model (within 1e-4), the
exported program reloads with torch.export.load and gives them too, and both carry the
preprocessing in their metadata."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import resnets
import resnets.cli.export
from resnets.cli import main


@pytest.fixture(scope="module")
def reference():
    model, weights = resnets.resnet20(weights="cifar10").eval(), resnets.get_weights("resnet20", "cifar10")
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(x), x, weights.meta


def relative(a, b) -> float:
    return (torch.as_tensor(a) - b).norm().item() / b.norm().item()


def test_onnx_matches_onnxruntime_for_batch_1_and_5(tmp_path, reference, capsys):
    logits, x, meta = reference
    path = tmp_path / "resnet20.onnx"
    assert main(["export", "--model", "resnet20", "--weights", "cifar10", "--dynamic-batch", "--opset", "18",
                 "--out", str(path)]) == 0
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        (out,) = session.run(None, {"x": x[:batch].numpy()})
        assert out.shape == (batch, 10) and relative(out, logits[:batch]) < 1e-4
    model = onnx.load(str(path))
    stored = json.loads({p.key: p.value for p in model.metadata_props}["resnets"])
    assert stored["mean"] == meta["mean"] and stored["input_size"] == [32, 32] and stored["classes"][3] == "cat"
    assert model.opset_import[0].version == 18 and "written to" in capsys.readouterr().out


def test_onnx_without_dynamic_batch_takes_batch_1(tmp_path, reference):
    logits, x, _ = reference
    path = tmp_path / "fixed.onnx"
    assert main(["export", "--model", "resnet20", "--weights", "cifar10", "--out", str(path)]) == 0
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 32, 32]
    assert relative(session.run(None, {"x": x[:1].numpy()})[0], logits[:1]) < 1e-4


def test_exported_program_reloads_and_matches(tmp_path, reference):
    logits, x, meta = reference
    path = tmp_path / "resnet20.pt2"
    assert main(["export", "--model", "resnet20", "--weights", "cifar10", "--format", "exported-program",
                 "--dynamic-batch", "--out", str(path)]) == 0
    extra = {"resnets.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    assert relative(program.module()(x), logits) < 1e-4
    assert json.loads(extra["resnets.json"])["std"] == meta["std"]


def test_a_checkpoint_exports_too(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(run)]) == 0  # the bundled digits: 1 channel, 8x8
    path = tmp_path / "digits.onnx"
    assert main(["export", "--checkpoint", str(run), "--out", str(path)]) == 0
    model, _ = resnets.training.load_model(run)
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        expected = model(x)
    out = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert np.allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_a_named_model_without_weights_exports_as_built(tmp_path, capsys):
    # No --weights: resnet18's initial weights, which the same seed builds again here; its
    # metadata says the input size (Section 3.4's 224x224 crops) and claims no classes or normalization.
    path = tmp_path / "resnet18.pt2"
    torch.manual_seed(0)
    assert main(["export", "--model", "resnet18", "--format", "exported-program", "--out", str(path)]) == 0
    assert "untrained" in capsys.readouterr().err
    torch.manual_seed(0)
    model = resnets.resnet18().eval()
    extra = {"resnets.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert relative(program.module()(x), model(x)) < 1e-4
    stored = json.loads(extra["resnets.json"])
    assert stored["input_size"] == [224, 224] and stored["model"] == "resnet18"
    assert not {"classes", "mean", "std"} & set(stored)


def test_a_state_dict_without_description_exports_with_its_input_size(tmp_path, reference, capsys):
    # A bare .pth (a fine-tuned torchvision state_dict, say): eval and predict need its classes and
    # normalization, export does not (it was refused as they refuse it).
    logits, x, _ = reference
    bare = tmp_path / "fine-tuned.pth"
    torch.save(resnets.resnet20(weights="cifar10").state_dict(), bare)
    path = tmp_path / "r.pt2"
    assert main(["export", "--model", "resnet20", "--weights", str(bare), "--out", str(path), "--dynamic-batch"]) == 0
    assert "weights alone, without class names or normalization" in capsys.readouterr().err
    extra = {"resnets.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    assert relative(program.module()(x), logits) < 1e-4
    stored = json.loads(extra["resnets.json"])
    assert stored["input_size"] == [32, 32] and not {"classes", "mean", "std"} & set(stored)


def test_bad_export_options_are_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(resnets.cli.export, "open_trained", lambda args: pytest.fail("loaded"))
    for argv, message in [(["--opset", "3", "--out", str(tmp_path / "r.onnx")], "opset 3 is not supported"),
                          (["--opset", "18", "--out", str(tmp_path / "r.pt2")], "ONNX only")]:
        assert message in refused(["--weights", "cifar10", *argv], capsys)


def refused(argv, capsys) -> str:
    """The one line ``resnets export ARGV`` refuses with (exit code 2)."""
    capsys.readouterr()
    assert main(["export", "--model", "resnet20", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("resnets export: error: ")
    return lines[-1]


def test_the_opset_asked_for_is_written_or_refused(tmp_path, capsys):
    path = tmp_path / "r21.onnx"
    assert main(["export", "--model", "resnet20", "--opset", "21", "--out", str(path)]) == 0
    assert [(o.domain, o.version) for o in onnx.load(str(path)).opset_import if o.domain == ""] == [("", 21)]
    for opset in ("3", "0", str(onnx.defs.onnx_opset_version() + 1)):
        line = refused(["--opset", opset, "--out", str(tmp_path / f"r{opset}.onnx")], capsys)
        assert f"opset {opset} is not supported" in line and f"18 to {onnx.defs.onnx_opset_version()}" in line
        assert not (tmp_path / f"r{opset}.onnx").exists()
    assert "ONNX only" in refused(["--opset", "18", "--out", str(tmp_path / "r.pt2")], capsys)


def test_an_opset_torch_onnx_cannot_convert_to_is_refused_not_written(tmp_path, capsys, monkeypatch):
    # Were 17 in the range: torch.onnx builds opset 18, fails to convert it down (no adapter for
    # Pad) and keeps 18 with a logged warning; the export sees the file's opset and refuses.
    monkeypatch.setattr(resnets.models.export, "OLDEST_OPSET", 17)
    assert "could not convert this model to opset 17 (only to 18)" in refused(
        ["--opset", "17", "--out", str(tmp_path / "r17.onnx")], capsys)
    assert not (tmp_path / "r17.onnx").exists()


def test_the_format_follows_the_extension_of_out(tmp_path, capsys):
    assert main(["export", "--model", "resnet20", "--out", str(tmp_path / "r.pt2")]) == 0
    assert "exported-program written to" in capsys.readouterr().out
    assert torch.export.load(str(tmp_path / "r.pt2")).module()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    # A name without a telling extension takes the format it is given, and without one is refused.
    assert main(["export", "--model", "resnet20", "--format", "onnx", "--out", str(tmp_path / "model")]) == 0
    assert onnx.load(str(tmp_path / "model")).graph.input[0].name == "x"
    assert "cannot tell the export format from 'r.pt'" in refused(["--out", str(tmp_path / "r.pt")], capsys)
    line = refused(["--format", "exported-program", "--out", str(tmp_path / "r.onnx")], capsys)
    assert "r.onnx is named as onnx, not exported-program: name it r.pt2, or ask for onnx" in line
    assert not (tmp_path / "r.onnx").exists() and not (tmp_path / "r.pt").exists()
