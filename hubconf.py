"""torch.hub entry points: every network of the paper by name, with the keyword arguments of
:func:`resnets.create_model` (``weights``, ``num_classes``, ...). From GitHub,
``torch.hub.load("OWNER/resnets", "resnet56", weights="cifar10")``; from a checkout, offline,
``torch.hub.load("path/to/resnets", "resnet56", source="local", weights="cifar10")``.
"""

import os
import sys

dependencies = ["torch", "torchvision", "safetensors", "numpy", "tqdm"]  # what `import resnets` needs

# torch.hub imports this file from the checkout's root, where the package is not importable (it
# lives under src/): put src/ first, so the checkout's own code and shipped weights are used.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from resnets.models.zoo import MODELS as _MODELS  # noqa: E402

globals().update(_MODELS)
