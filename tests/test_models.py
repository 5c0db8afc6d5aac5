"""The model zoo against independent truth: torchvision's models and the paper's numbers."""

import re

import pytest
import torch
import torchvision

import resnets
from resnets.errors import UserError
from resnets.models import BasicBlock, Bottleneck, create_model, list_models
from resnets.models.summary import summarize

TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
# Section 4.2, Table 6 ("# params": 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M), exactly.
CIFAR_PARAMS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}
# Table 1, "FLOPs" (multiply-adds), with the stride in the first 1x1 as in the paper.
PAPER_MULT_ADDS = {"resnet18": 1.8e9, "resnet34": 3.6e9, "resnet50": 3.8e9, "resnet101": 7.6e9, "resnet152": 11.3e9}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,count", {**TORCHVISION_PARAMS, **CIFAR_PARAMS}.items())
def test_parameter_counts(name, count):
    assert n_params(create_model(name)) == count


@pytest.mark.parametrize("name", TORCHVISION_PARAMS)
def test_same_outputs_as_torchvision(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)()
    ours = create_model(name)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(2, 3, 96, 80)
    for mode in ("eval", "train"):
        theirs.train(mode == "train")
        ours.train(mode == "train")
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5, msg=f"{name} {mode}")
    # Train mode updated the running statistics alike.
    torch.testing.assert_close(ours.state_dict(), theirs.state_dict())


def test_torchvision_weights_via_safetensors(tmp_path):
    theirs = torchvision.models.resnet18().eval()
    from safetensors.torch import save_file

    save_file(theirs.state_dict(), tmp_path / "tv.safetensors")
    ours = resnets.load_weights(resnets.resnet18(), tmp_path / "tv.safetensors").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_save_and_load_weights_round_trip(tmp_path):
    a = resnets.resnet20()
    resnets.save_weights(a, tmp_path / "w.safetensors")
    b = resnets.load_weights(resnets.resnet20(), tmp_path / "w.safetensors")
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    with pytest.raises(UserError, match="missing keys"):  # strict: a different architecture does not load
        resnets.load_weights(resnets.resnet32(), tmp_path / "w.safetensors")


def zero_residual_branches(model):
    """Make every block's F(x) exactly zero: last batch norm with weight and bias 0."""
    for m in model.modules():
        if isinstance(m, (BasicBlock, Bottleneck)):
            bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2
            torch.nn.init.zeros_(bn.weight)
            torch.nn.init.zeros_(bn.bias)
    return model.eval()


@pytest.mark.parametrize("name", ["plain20", "plain56", "plain18"])
def test_plain_nets_have_no_shortcut(name):
    # With every residual branch zeroed, a plain net's features vanish whatever the input,
    # while the residual net of the same depth still carries its input through the shortcuts.
    x = torch.randn(2, 3, 64, 64)
    plain = zero_residual_branches(create_model(name))
    residual = zero_residual_branches(create_model(name.replace("plain", "resnet")))
    with torch.no_grad():
        assert torch.count_nonzero(plain.forward_features(x)) == 0
        assert torch.count_nonzero(residual.forward_features(x)) > 0


def test_option_a_is_parameter_free_and_pads_with_zeros():
    assert n_params(create_model("resnet56", shortcut="A")) == n_params(create_model("plain56"))
    assert n_params(create_model("resnet56", shortcut="B")) > n_params(create_model("plain56"))
    # The identity through a down-sampling block: stride-2 subsampling, zeros in the new channels.
    block = zero_residual_branches(create_model("resnet20").layer2[0])
    x = torch.rand(1, 16, 8, 8)
    with torch.no_grad():
        y = block(x)
    assert y.shape == (1, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


@pytest.mark.parametrize("option,projected", [("A", 0), ("B", 2), ("C", 9)])
def test_shortcut_options_project_where_the_paper_says(option, projected):
    # A block projects its input if, with F(x) = 0, it does not return relu(x) zero-padded.
    model = zero_residual_branches(create_model("resnet20", shortcut=option))
    count = 0
    for stage in model.stages:
        for block in stage:
            x = torch.rand(1, block.conv1.in_channels, 8, 8)
            with torch.no_grad():
                y = block(x)
            identity = x[:, :, :: block.conv1.stride[0], :: block.conv1.stride[0]]
            same = y.shape[1] >= x.shape[1] and torch.allclose(y[:, : x.shape[1]], identity)
            count += not same
    assert count == projected


@pytest.mark.parametrize(
    "name,size,channels",
    [("resnet18", (224, 224), 3), ("resnet50", (97, 131), 1), ("resnet20", (32, 32), 3), ("resnet32", (28, 20), 1), ("plain20", (8, 8), 1)],
)
def test_shapes(name, size, channels):
    model = create_model(name, in_channels=channels, num_classes=7).eval()
    x = torch.randn(2, channels, *size)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
        stages = model.forward_stages(x)
        features = model.forward_features(x)
        pooled = create_model(name, in_channels=channels, num_classes=0).eval()(x)
    imagenet = name in ("resnet18", "resnet50")
    assert len(stages) == (4 if imagenet else 3)
    first_stride = 4 if imagenet else 1
    for i, s in enumerate(stages):
        stride = first_stride * 2**i
        # Each convolution/pool with padding rounds up: ceil(size / stride).
        assert s.shape[2:] == tuple(-(-d // stride) for d in size)
    assert features.shape == stages[-1].shape
    assert pooled.shape == (2, model.num_features)
    assert model.num_features == (2048 if name == "resnet50" else 512 if imagenet else 64)


@pytest.mark.parametrize("name", ["resnet50", "resnet20", "plain20"])
def test_torchvision_feature_extraction_traces_every_stage(name):
    # torchvision's create_feature_extractor (torch.fx), as detection and segmentation backbones use it.
    from torchvision.models.feature_extraction import create_feature_extractor

    model = create_model(name).eval()
    x = torch.randn(2, 3, 64, 64)
    stages = [f"layer{i + 1}" for i in range(len(model.stage_names))]
    extractor = create_feature_extractor(model, return_nodes=stages)
    with torch.no_grad():
        for got, expected in zip(extractor(x).values(), model.forward_stages(x), strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_classifier_can_be_reset():
    model = resnets.resnet18()
    model.reset_classifier(5)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 512)


def test_init_follows_the_paper():
    model = create_model("resnet50", zero_init_residual=True)
    conv = model.layer3[1].conv2
    fan_out = conv.out_channels * 9
    assert abs(conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.05 * (2 / fan_out) ** 0.5
    assert torch.all(model.layer1[0].bn3.weight == 0) and torch.all(model.layer1[0].bn1.weight == 1)
    assert torch.all(create_model("resnet50").layer1[0].bn3.weight == 1)
    with pytest.raises(ValueError, match="applies to residual networks only"):  # plain20 would output a constant
        create_model("plain20", zero_init_residual=True)
    with pytest.raises(ValueError, match="plain20 is the plain network: with shortcut A it is resnet20"):  # not "plain20"
        create_model("plain20", shortcut="A")
    with pytest.raises(ValueError, match="moves a bottleneck block's stride; these blocks have none"):  # as torchvision
        create_model("resnet18", stride_in_1x1=True)  # refuses groups or dilation for basic blocks


def test_stride_in_1x1_moves_the_stride():
    ours = create_model("resnet50", stride_in_1x1=True).layer2[0]
    assert (ours.conv1.stride, ours.conv2.stride) == ((2, 2), (1, 1))
    tv = create_model("resnet50").layer2[0]
    assert (tv.conv1.stride, tv.conv2.stride) == ((1, 1), (2, 2))


@pytest.mark.parametrize("name,paper", PAPER_MULT_ADDS.items())
def test_mult_adds_match_table_1(name, paper):
    bottleneck = name not in ("resnet18", "resnet34")  # basic blocks have no 1x1 to move the stride to
    total = summarize(create_model(name, stride_in_1x1=bottleneck))[-1]
    assert total.name == "total"
    assert abs(total.mult_adds - paper) / paper < 0.05


def test_summary_counts_a_model_wherever_it_lives():
    # `bench infer` summarizes a model already on the GPU (lease 4 crashed there on a CPU probe image):
    # the meta device stands in for one, and bf16 for a converted model; the counts must not change.
    expected = summarize(create_model("resnet20"), (32, 32))
    assert summarize(create_model("resnet20").to("meta"), (32, 32)) == expected
    assert summarize(create_model("resnet20").to(torch.bfloat16), (32, 32)) == expected


def test_summary_rows():
    rows = summarize(create_model("resnet50"))
    assert [r.name for r in rows] == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc", "total"]
    # Table 1's "output size": conv1 112x112, conv2_x (after the max pool) 56x56, ...
    assert [r.output_size for r in rows[:5]] == [(64, 112, 112), (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
    assert sum(r.params for r in rows[:-1]) == rows[-1].params == TORCHVISION_PARAMS["resnet50"]
    assert sum(r.mult_adds for r in rows[:-1]) == rows[-1].mult_adds


def test_registry():
    names = list_models()
    for expected in ["resnet18", "resnet152", "plain18", "plain34", "resnet20", "resnet1202", "plain110"]:
        assert expected in names
        assert callable(getattr(resnets, expected))
    assert list_models("plain") == ["plain18", "plain34", "plain20", "plain32", "plain44", "plain56", "plain110"]
    with pytest.raises(ValueError, match="valid: resnet18"):
        create_model("resnet19")
    with pytest.raises(ValueError, match="valid: num_classes"):
        create_model("resnet18", colour=True)
    with pytest.raises(ValueError, match="shortcut"):
        create_model("resnet18", shortcut="D")
    # timm's wildcards (fnmatch), beside the substring match
    assert list_models("resnet*") == [n for n in names if n.startswith("resnet")] and list_models("*56") == ["resnet56", "plain56"]


@pytest.mark.parametrize("arguments, error, message", [
    (dict(num_classes="10"), ValueError, "num_classes takes whole numbers of at least 0, not '10'"),
    (dict(num_classes=True), ValueError, "num_classes takes whole numbers of at least 0, not True"),
    (dict(in_channels=1.5), ValueError, "in_channels takes whole numbers of at least 1, not 1.5"),
    (dict(bottleneck_widths=(0, 8, 8, 8)), ValueError, "bottleneck_widths takes whole numbers of at least 1, not 0"),
    (dict(zero_init_residual="false"), TypeError, "zero_init_residual is True or False, not 'false'"),  # "false" is true
    (dict(pretrained="IMAGENET1K_V2"), TypeError, "pretrained is True or False"),  # it loaded V1
])
def test_arguments_of_the_wrong_kind_are_refused_by_name(arguments, error, message):
    with pytest.raises(error, match=re.escape(message)):
        create_model("resnet50", **arguments)


def test_counts_and_options_that_build_no_network_are_refused():
    from resnets.models import ResNet

    with pytest.raises(ValueError, match="layers takes whole numbers of at least 1, not 0"):
        ResNet("basic", layers=(0, 2), planes=(8, 16))  # built a network without its first stage's blocks
    with pytest.raises(ValueError, match="planes takes whole numbers of at least 1, not 0"):
        ResNet("basic", layers=(1, 2), planes=(0, 16))
    with pytest.raises(ValueError, match="bottleneck_widths are the widths of bottleneck blocks"):
        create_model("resnet18", bottleneck_widths=(8, 8, 8, 8))  # was ignored
    model = create_model("resnet20")
    with pytest.raises(ValueError, match="num_classes takes whole numbers of at least 0, not -1"):
        model.reset_classifier(-1)
    model.half().reset_classifier(3)  # a new classifier where and as what the network is
    assert model.fc.weight.dtype == torch.float16 and model.fc.out_features == 3
    with pytest.raises(UserError, match=r"x\.pth: save_weights writes safetensors"):  # read back as a pickle: refused
        resnets.save_weights(model, "x.pth")


def test_bottleneck_widths_are_configurable():
    model = resnets.ResNet("bottleneck", layers=(1, 1), planes=(16, 32), bottleneck_widths=(8, 24), stem="cifar", num_classes=3)
    assert model.layer2[0].conv2.out_channels == 24
    assert model.layer2[0].conv3.out_channels == 128
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 3)
