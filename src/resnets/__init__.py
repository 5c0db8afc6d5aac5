"""resnets: the networks of He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition"
(2015), faithful to the paper and compatible with torchvision."""

__version__ = "0.1.0"

from .models import (  # noqa: E402
    MODELS,
    BasicBlock,
    Bottleneck,
    ResNet,
    Weights,
    create_model,
    get_weights,
    list_models,
    list_weights,
    load_weights,
    optimize_for_inference,
    save_weights,
)

globals().update(MODELS)  # resnets.resnet18(), resnets.plain56(), ...: one per registered name

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "Weights", "create_model", "get_weights", "list_models", "list_weights",
           "load_weights", "optimize_for_inference", "save_weights", *MODELS]
