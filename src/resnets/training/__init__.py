"""Training, evaluation and prediction: recipes, the trainer, checkpoints, metrics and plots.
Models know nothing of this package."""

from .checkpoint import load_model, load_pretrained
from .evaluate import evaluate, predict
from .recipes import RECIPES, TrainConfig, make_config
from .trainer import Diverged, Run, train

__all__ = ["RECIPES", "Diverged", "Run", "TrainConfig", "evaluate", "load_model", "load_pretrained", "make_config", "predict", "train"]
