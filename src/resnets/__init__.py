"""resnets: the networks of He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition"
(2015), faithful to the paper and compatible with torchvision.

torchvision is imported inside the functions that use it (its weights, transforms, image folders,
the benchmarks' baselines), not by ``import resnets``: importing it imports ``torch._dynamo``
(through ``torchvision.ops``), about 2 s on a slow CPU, which ``resnets --help`` and the commands
that need neither torchvision nor an optimizer (``torch.optim`` imports ``torch._dynamo`` too)
would otherwise pay at start."""

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
