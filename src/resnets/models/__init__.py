"""Every network of the paper: blocks, the network, the named models, their trained weights and
the preprocessing those expect."""

from .blocks import SHORTCUTS, BasicBlock, Bottleneck, ZeroPadShortcut, conv1x1, conv3x3
from .inference import fold_batch_norms, optimize_for_inference
from .preprocess import Preprocess
from .pretrained import Weights, get_weights, list_weights
from .resnet import ResNet
from .weights import load_weights, read_weights, save_weights
from .zoo import ARCHITECTURES, MODELS, create_model, input_side, list_models, model_config

__all__ = [
    "ARCHITECTURES", "MODELS", "SHORTCUTS", "BasicBlock", "Bottleneck", "Preprocess", "ResNet", "Weights",
    "ZeroPadShortcut", "conv1x1", "conv3x3", "create_model", "fold_batch_norms", "get_weights", "input_side",
    "list_models", "list_weights", "load_weights", "model_config", "optimize_for_inference", "read_weights", "save_weights",
]
