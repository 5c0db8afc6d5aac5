"""The ``resnets`` command: parse, call the library, print. One module per subcommand."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .. import __version__
from . import summary

COMMANDS = [summary]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resnets",
        description="The networks of 'Deep Residual Learning for Image Recognition' (He et al., 2015): "
        "build, train, evaluate and reproduce the paper's experiments.",
    )
    parser.add_argument("--version", action="version", version=f"resnets {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("resnets: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:  # bad input: UserError, unknown names, missing files
        if args.debug or "--debug" in argv:
            raise
        message = str(e) or type(e).__name__
        print(f"resnets {args.command}: error: {message}", file=sys.stderr)
        return 2
