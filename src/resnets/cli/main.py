"""The ``resnets`` command: parse, call the library, print. One module per subcommand."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from typing import Optional, Sequence

from .. import __version__
from ..training.trainer import Diverged
from . import bench, evaluate, export, plot, predict, reproduce, summary, train

COMMANDS = [summary, train, evaluate, predict, export, plot, reproduce, bench]


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
    for subparser in sub.choices.values():  # `resnets train --debug` works as well as `resnets --debug train`
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors")
    return parser


def stop_on_signals() -> None:
    """Make Ctrl-C and SIGTERM (``kill``, ``timeout``, a scheduler's time limit) raise
    KeyboardInterrupt: training then says what it kept and how to continue, and ``reproduce``
    stops its jobs rather than leave them running. SIGINT is reset too, because a shell that starts
    a command in the background (``cmd &`` in a script) starts it with SIGINT ignored."""
    def terminate(signum, frame):
        raise KeyboardInterrupt("terminated")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; ``argv`` None: the process's own (and its signals handled as above)."""
    if argv is None:
        stop_on_signals()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.run(args) or 0
    except KeyboardInterrupt as e:  # training says what it kept and how to continue
        print(f"resnets {args.command}: {str(e) or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`resnets summary resnet50 | head -3`)
        # Python's documented idiom (library/signal.html, "Note on SIGPIPE"): stdout to devnull, so
        # that the interpreter's last flush does not fail again; exit quietly, as `cat` would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Diverged as e:  # a run that failed: one line, and the checkpoint it kept
        print(f"resnets {args.command}: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:  # bad input: UserError, unknown names, missing files
        if args.debug:  # the traceback, and still the exit code of bad input
            traceback.print_exc()
            return 2
        message = " ".join(str(e).split()) or type(e).__name__  # one line, whatever the message
        print(f"resnets {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Exception as e:  # a failure nobody anticipated: still one line, and how to see more
        if args.debug:
            raise
        message = " ".join(str(e).split()) or "(no message)"
        print(f"resnets {args.command}: {type(e).__name__}: {message} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
