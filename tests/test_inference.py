"""optimize_for_inference: batch norms folded into their convolutions give the unfused model's
outputs (eval mode, fp32) within 1e-4 relative, for every block and shortcut kind."""

import json

import pytest
import torch
import torchvision

import resnets
from resnets.models.inference import fold_batch_norms, optimize_for_inference


def trained_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Batch norms with non-trivial running statistics and affine parameters, as after training."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


@pytest.mark.parametrize("name,size", [("resnet20", 32), ("plain20", 32), ("resnet18", 64), ("resnet50", 64)])
def test_folding_keeps_the_outputs(name, size):
    model = trained_statistics(resnets.create_model(name))
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    got = fast(x)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert ((got - expected).norm() / expected.norm()).item() < 1e-4
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched


@pytest.mark.parametrize("shortcut", ["B", "C"])
def test_projection_shortcuts_fold_too(shortcut):
    model = trained_statistics(resnets.create_model("resnet20", shortcut=shortcut))
    folded = fold_batch_norms(resnets.create_model("resnet20", shortcut=shortcut).eval())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(optimize_for_inference(model)(x), model(x), rtol=1e-4, atol=1e-5)


def test_folds_torchvisions_own_resnet():
    model = trained_statistics(torchvision.models.resnet34())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    assert ((optimize_for_inference(model)(x) - expected).norm() / expected.norm()).item() < 1e-4


def test_compiled_with_freezing_keeps_the_outputs():
    model = trained_statistics(resnets.create_model("resnet20", shortcut="B"))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    compiled = optimize_for_inference(model, compile=True)
    got = compiled(x)
    assert got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    if torch.backends.mkldnn.is_available():  # freezing took: oneDNN ran each convolution fused with its ReLU
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            compiled(x)
        ops = {event.key for event in profile.key_averages()}
        assert "mkldnn::_convolution_pointwise" in ops and "aten::convolution" not in ops


def test_bf16_is_close_and_fp16_needs_a_gpu():
    model = trained_statistics(resnets.create_model("resnet20"))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    got = optimize_for_inference(model, dtype="bf16")(x)
    assert got.dtype == torch.float32 and ((got - expected).norm() / expected.norm()).item() < 5e-2
    with pytest.raises(ValueError, match="needs a GPU"):
        optimize_for_inference(model, dtype="fp16")
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(resnets.create_model("resnet20"))


def test_eval_and_predict_fold_by_default_and_take_a_precision(tmp_path, capsys):
    from resnets.cli import main

    run, image = tmp_path / "run", tmp_path / "digit.png"
    torchvision.io.write_png(torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8), str(image))
    assert main(["train", "--epochs", "1", "--out", str(run)]) == 0
    results = []
    for extra in ([], ["--no-optimize"]):
        assert main(["eval", "--checkpoint", str(run), "--data", "digits", "--json", *extra]) == 0
        results.append(json.loads(capsys.readouterr().out.splitlines()[-1]))
    assert results[0]["top1_error"] == results[1]["top1_error"]
    assert abs(results[0]["loss"] - results[1]["loss"]) < 1e-4 * results[1]["loss"]
    assert main(["predict", "--checkpoint", str(run), "--precision", "bf16", "--top", "1", str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")
    for extra, expected in [(["--precision", "fp16"], "fp16 inference needs a GPU"),
                            (["--precision", "bf16", "--no-optimize"], "--precision bf16 is the optimized model's")]:
        assert main(["eval", "--checkpoint", str(run), "--data", "digits", *extra]) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
