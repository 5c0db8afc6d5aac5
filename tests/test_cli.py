"""The command line: help, the summary table, and one-line errors with exit code 2."""

import argparse
import os
import subprocess
import sys

import pytest

from resnets.cli import main
from resnets.cli.main import build_parser


def test_help_reads_well():
    # The installed command's own process, as a user starts it; -X importtime lists every module
    # it imports (on stderr): torchvision, which costs about 2 s, is not one (resnets/__init__.py).
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "resnets", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "summary" in out.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")]
    assert "resnets.cli" in imported and not [m for m in imported if m.startswith("torchvision")]


@pytest.mark.parametrize("command", ["summary", "train", "eval", "predict", "export", "plot", "reproduce", "bench"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: resnets " + command in capsys.readouterr().out


def test_every_argument_is_explained_in_help():
    # Every option and positional argument of every subcommand says what it is for in --help.
    def unexplained(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from unexplained(sub, f"{prefix} {name}")
            elif not action.help and not isinstance(action, argparse._HelpAction):
                yield f"{prefix} {action.option_strings[0] if action.option_strings else action.dest}"

    assert list(unexplained(build_parser(), "resnets")) == []


def test_summary_prints_table_1(capsys):
    assert main(["summary", "resnet34", "--input-size", "224"]) == 0
    out = capsys.readouterr().out
    assert "layer4" in out and "7x7, 512" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("conv1 ", "layer1 "))}
    # Table 1's rows: conv1 is 112x112 after its stride-2 7x7; conv2_x (layer1) begins with the max pool.
    assert "112x112, 64" in rows["conv1"] and "max pool" not in rows["conv1"]
    assert "56x56, 64" in rows["layer1"] and "3x3 max pool, stride 2; [3x3, 64; 3x3, 64] x 3" in rows["layer1"]
    assert "21,797,672" in out and "3.6" in out  # torchvision's parameter count; the paper's 3.6 G


def test_summary_cifar_defaults_to_32_pixels(capsys):
    main(["summary", "resnet56"])
    out = capsys.readouterr().out
    assert "8x8, 64" in out and "853,018" in out


def test_summary_of_a_huge_input_allocates_nothing(capsys):
    # 100,000 pixels square would take 120 GB as a probe image: the counts come from shapes alone.
    # Multiply-adds grow with the area: layer4's 7x7 at 224 becomes 3125x3125 (100000 / 32).
    assert main(["summary", "resnet18", "--input-size", "100000"]) == 0
    out = capsys.readouterr().out
    assert "11,689,512" in out and "3125x3125" in out


def test_summary_refuses_an_input_size_of_0(capsys):
    assert main(["summary", "resnet20", "--input-size", "0"]) == 2
    assert capsys.readouterr().err == "resnets summary: error: --input-size must be at least 1, got 0\n"


def test_a_closed_pipe_ends_the_command_quietly():
    # `resnets summary resnet50 | head -3`: the reader leaves before the table is written.
    read, write = os.pipe()
    os.close(read)
    done = subprocess.run([sys.executable, "-m", "resnets", "summary", "resnet50"], stdout=write, stderr=subprocess.PIPE,
                          text=True)
    os.close(write)
    assert done.returncode == 1 and done.stderr == ""


def test_unknown_model_is_one_line_exit_2(capsys):
    assert main(["summary", "resnet19"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "unknown model 'resnet19'" in err and "resnet18" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys):
    assert main(["--debug", "summary", "resnet19"]) == 2  # bad input's exit code all the same
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "unknown model 'resnet19'" in err


def test_bad_option_value_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["summary", "resnet18", "--input-size", "big"])
    assert e.value.code == 2 and "invalid int value" in capsys.readouterr().err
