"""The paper's experiments as functions: each trains its networks through the one trainer and
writes a Markdown report with figures beside the paper's numbers."""

from . import cifar_table, degradation, responses, shortcuts
from .scales import SCALES, Scale

EXPERIMENTS = {
    "degradation": degradation.run,
    "cifar-table": cifar_table.run,
    "responses": responses.run,
    "shortcuts": shortcuts.run,
}

__all__ = ["EXPERIMENTS", "SCALES", "Scale"]
