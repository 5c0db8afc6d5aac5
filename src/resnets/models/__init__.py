"""Every network of the paper: blocks, the network, the named models and their weights."""

from .blocks import SHORTCUTS, BasicBlock, Bottleneck, ZeroPadShortcut, conv1x1, conv3x3
from .resnet import ResNet
from .weights import load_weights, save_weights
from .zoo import ARCHITECTURES, MODELS, create_model, list_models, model_config

__all__ = [
    "ARCHITECTURES", "MODELS", "SHORTCUTS", "BasicBlock", "Bottleneck", "ResNet", "ZeroPadShortcut",
    "conv1x1", "conv3x3", "create_model", "list_models", "load_weights", "model_config", "save_weights",
]
