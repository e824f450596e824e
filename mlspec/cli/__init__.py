"""The `mlspec` command: check, run, predict, evaluate, plot, serve, fmt, summary, export,
schema, list, lsp.

Each command is a module of this package that parses its arguments and prints; what it
does is the runtime's or the semantics' (a run is `mlspec.runtime.runner.Run`, as for
`mlspec.run`). A command is added by its module's `add_NAME(sub)` and an entry in
`COMMANDS`. Exit codes are `mlspec.cli.errors`'. `check`, `fmt`, `summary`, `export`,
`schema` and `lsp` never import jax.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import textwrap

from mlspec.cli import check, export, lsp, results, serve, stop, train
from mlspec.cli.errors import run_command
from mlspec.cli.shared import CommandParser, VersionAction

COMMANDS = (check.add_check, train.add_run, results.add_predict, results.add_evaluate,
            results.add_plot, serve.add_serve, check.add_fmt, check.add_summary,
            export.add_export, export.add_schema, check.add_list, lsp.add_lsp)
"""Each command's `add_NAME(sub)`, in the order that `mlspec --help` lists them."""

DOCS = """\
The language, with an example of every feature: docs/language.md; the commands and a
tutorial: README.md (both in the mlspec repository). `mlspec COMMAND --help` describes a
command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlspec", epilog=DOCS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=CommandParser)
    for add in COMMANDS:
        add(sub)
    parser.description = textwrap.fill(f"The `mlspec` command: {', '.join(sub.choices)}.", 88)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A command that catches signals itself (`run`: they stop its training where nothing
    # is lost; the language server, stopped by its client) is left to them; any other
    # stops at once.
    own = not getattr(args, "catches_signals", False)
    previous = {s: signal.signal(s, stop.stop_at_once) for s in stop.STOP_SIGNALS} \
        if own else {}
    try:
        return run_command(args)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def entry() -> None:
    """The `mlspec` command. Once main has answered, a signal no longer changes how the
    process ends: its results and status are settled, the interpreter only tidies up."""
    import gc
    import os

    code = main()
    for s in stop.STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if stop.left_running():  # everything is written: only a dropped chunk is left to wait for
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    # Nothing is left to collect: the interpreter's last garbage collections would walk
    # every object of jax, flax, pandas and matplotlib (about half a second after a run).
    gc.freeze()
    sys.exit(code)
