"""What the commands share: their parser class, help texts, options and the spec loader."""

from __future__ import annotations

import argparse

RUN_DIR_HELP = "a run folder written by `mlspec run` (its --out, or runs/MODEL_NAME)"
SPEC_HELP = "a spec: a .mlspec file, or a .json file of the spec IR (as `export` writes)"


def load(path: str):
    from mlspec.syntax.reader import load as load_spec

    return load_spec(path)


def member_option(parser) -> None:
    parser.add_argument("--member", type=int, default=0, metavar="K",
                        help="for seeds or a sweep: the member in row K of the run's table "
                             "(metrics.json's members), 0 being the best and the default")


class CommandParser(argparse.ArgumentParser):
    """A command's parser: its options may come anywhere among its positionals
    (`evaluate RUN --member 2 valid`, `check a.mlspec --resolved b.mlspec`), as argparse's
    intermixed parsing reads them; plain parsing stops filling the positionals at the
    first option."""

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._parsing:  # the intermixed parse runs the plain one, twice
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def version_text() -> str:
    """mlspec's version and those of the libraries it compiles to, read from the installed
    packages' metadata (importing jax would take a second)."""
    from importlib import metadata

    from mlspec.version import __version__

    found = []
    for name in ("jax", "flax", "optax"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return f"mlspec {__version__} ({', '.join(found)})"


class VersionAction(argparse.Action):
    """`--version`, its text made only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the versions of mlspec "
                         "and of the jax, flax and optax it uses, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()
