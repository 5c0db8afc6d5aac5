"""The command line; see :mod:`resnets.cli.main`."""

from .main import main

__all__ = ["main"]
