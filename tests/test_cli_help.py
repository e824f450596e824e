"""The command line explains itself: `--version`, `--help` of every command."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest
from conftest import ROOT

import mlspec
from mlspec.cli import build_parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _help(*args: str, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main([*args, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_version_is_the_package_s_and_does_not_import_jax():
    code = ("import sys\nfrom mlspec.cli import main\ntry:\n    main(['--version'])\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            "assert 'jax' not in sys.modules, 'imported jax'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    from importlib.metadata import version

    # The installed distribution's version is read from mlspec/version.py (pyproject's
    # dynamic version), so the two cannot drift apart.
    assert version("mlspec") == mlspec.__version__

    assert result.stdout.startswith(f"mlspec {mlspec.__version__} (jax {version('jax')}, ")


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_positional_argument_is_described(command, capsys):
    parser = _commands()[command]
    text = _help(command, capsys=capsys)
    for action in parser._get_positional_actions():
        assert action.help, f"{command}: {action.dest} has no help"
        name = action.metavar or action.dest
        described = text.split("positional arguments:")[1]
        assert re.search(rf"^  {name}\s+\S", described, re.M), f"{command} {name}:\n{text}"
        first_words = " ".join(action.help.split()[:3])
        assert first_words in " ".join(described.split()), text


def test_run_help_says_set_repeats_and_file_or_resume(capsys):
    text = " ".join(_help("run", capsys=capsys).split())
    assert "repeat it for several: --set hidden=128 --set train.steps=100" in text
    assert "needed unless --resume is given" in text


def test_predict_help_describes_its_columns(capsys):
    text = _help("predict", capsys=capsys)
    columns = text.split("output:")[1]
    for column in ("prediction ", "prediction_0, ...", "proba_NAME, ..."):
        assert f"\n  {column}" in columns, text


def test_the_top_level_help_points_to_the_docs(capsys):
    text = " ".join(_help(capsys=capsys).split())
    assert "docs/language.md" in text and "README.md" in text and "--version" in text


def test_the_top_level_help_names_every_command(capsys):
    text = " ".join(_help(capsys=capsys).split("positional arguments:")[0].split())
    assert f"The `mlspec` command: {', '.join(_commands())}." in text


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_s_help_has_a_description(command, capsys):
    """A paragraph of several words between the usage and the arguments."""
    text = _help(command, capsys=capsys)
    between = text.split("\n\n")[1]
    assert not between.startswith(("positional arguments:", "options:")), text
    assert len(between.split()) > 8, text
