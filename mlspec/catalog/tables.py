"""The catalogue as tables, read from the registries: what `mlspec list` prints and what
docs/catalogue.md holds.

    python -m mlspec.catalog.tables --write docs/catalogue.md

Each row is a catalogue entry: its name, its arguments in positional order (`name`
required, `name=value` with its default, `[name]` optional without a value) and the first
sentence of its docstring. Nothing here imports jax: optax's functions are read from its
source (see `optimizers.optax_catalogue`).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec.catalog.registry import Entry, Registry
from mlspec.syntax import ir
from mlspec.syntax.printer import format_expr


@dataclass(frozen=True)
class Table:
    kind: str
    """The name `mlspec list` takes: `layers`, `losses`, ..."""
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str | tuple[str, ...], ...], ...]
    """Cells are text; an `arguments` cell is a tuple of arguments."""
    note: str = ""
    """A sentence under the table's heading in the docs."""

    @property
    def names(self) -> list[str]:
        return [row[0] for row in self.rows]


_ABBREVIATIONS = ("e.g.", "i.e.", "etc.")


def first_sentence(doc: str | None) -> str:
    """The docstring's first sentence (of its first paragraph), on one line; a full stop
    inside a code span does not end it."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    in_code = False
    for i, char in enumerate(paragraph):
        if char == "`":
            in_code = not in_code
        elif char == "." and not in_code and (i + 1 == len(paragraph)
                                               or paragraph[i + 1] == " ") \
                and not paragraph[:i + 1].endswith(_ABBREVIATIONS):
            return paragraph[:i + 1]
    return paragraph


def _value(value: Any) -> str:
    """A default as a spec would write it."""
    return format_expr(ir.as_expr(value))


def entry_arguments(cls: type[Entry]) -> tuple[str, ...]:
    fields = cls.model_fields
    parts = []
    for name in cls.argument_names():
        field = fields[name]
        if field.is_required():
            parts.append(name)
        elif field.default is None:
            parts.append(f"[{name}]")
        else:
            parts.append(f"{name}={_value(field.default)}")
    if getattr(cls, "composite", False):
        parts.append("{ body }")
    return tuple(parts)


def _entry_rows(registry: Registry, extra: Callable[[Any], tuple[str, ...]] = lambda c: ()):
    return tuple((name, entry_arguments(cls), *extra(cls), first_sentence(cls.__doc__))
                 for name, cls in registry.items())


def layers() -> Table:
    from mlspec.catalog.layers import LAYERS

    return Table("layers", "Layers", ("layer", "arguments", "description"),
                 _entry_rows(LAYERS),
                 "A model's layers run top to bottom; `classes` may stand for a number of "
                 "features (the data's number of classes).")


def merges() -> Table:
    from mlspec.catalog.merges import MERGES

    rows = tuple((name, ("a, b, ...", *entry_arguments(cls)), first_sentence(cls.__doc__))
                 for name, cls in MERGES.items())
    return Table("merges", "Merges", ("merge", "arguments", "description"), rows,
                 "A graph model's calls on values: `h = concat(x, c) -> dense(64)`. The "
                 "values are names (inputs or bindings); any other argument is given by "
                 "name.")


_TARGETS = {"class": "class ids", "binary": "0/1", "real": "real", "any": "any"}


def losses() -> Table:
    from mlspec.catalog.losses import LOSSES

    def targets(cls):
        return ("none, a regulariser" if cls.regulariser else _TARGETS[cls.target],)

    return Table("losses", "Losses", ("loss", "arguments", "targets", "description"),
                 _entry_rows(LOSSES, targets),
                 "A `loss` is a weighted sum of these: `softmax_cross_entropy + 1e-4 * l2`.")


def metrics() -> Table:
    from mlspec.catalog.metrics import METRICS

    better = {True: "higher", False: "lower", None: "neither"}
    rows = tuple((name, entry_arguments(m.arguments) if m.arguments else (),
                  "none, of the training" if m.scope == "training" else _TARGETS[m.needs],
                  better[m.higher_is_better], first_sentence(m.doc))
                 for name, m in METRICS.items())
    return Table("metrics", "Metrics", ("metric", "arguments", "targets", "better",
                                        "description"), rows,
                 "Split metrics are recorded as `train.NAME` and `valid.NAME` (`test.NAME` "
                 "at the end); metrics of the training under their bare name.")


def sources() -> Table:
    # Data sources sit in mlspec.data, beside their loaders; read lazily, as a user of
    # the catalogue (the tables look at every registry).
    from mlspec.catalog.sources import SOURCES

    return Table("sources", "Data sources", ("source", "arguments", "description"),
                 _entry_rows(SOURCES),
                 "Relative paths are resolved against the spec file's folder.")


# optax arguments of these kinds hold Python objects (functions, transformations, masks):
# a spec cannot give them, so the tables leave them out.
_UNSETTABLE = ("GradientTransformation", "Callable", "MaskOrFn")


def _optax_default(text: str) -> str:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # an expression such as jnp.float32, shown as optax writes it
    if isinstance(value, dict):
        value = [list(pair) for pair in value.items()]
    return _value(value)


def optax_arguments(fn) -> tuple[str, ...]:
    parts = []
    for arg in fn.arguments:
        if any(t in arg.annotation for t in _UNSETTABLE):
            continue
        if arg.required:
            parts.append(arg.name)
        elif arg.default == "None":
            parts.append(f"[{arg.name}]")
        else:
            parts.append(f"{arg.name}={_optax_default(arg.default)}")
    return tuple(parts)


def _optax_rows(kind: str):
    from mlspec.catalog.optimizers import optax_catalogue

    return tuple((name, optax_arguments(fn), fn.summary)
                 for name, fn in sorted(optax_catalogue().items()) if fn.kind == kind)


def optimizers() -> Table:
    return Table("optimizers", "Optimizers", ("optimizer", "arguments", "description"),
                 _optax_rows("optimizer"),
                 "The optimizer aliases of the installed optax, with optax's argument "
                 "names and defaults; arguments that take Python objects (masks, line "
                 "searches) are left out.")


def schedules() -> Table:
    return Table("schedules", "Schedules", ("schedule", "arguments", "description"),
                 _optax_rows("schedule"),
                 "The schedules of optax, for any argument that takes one (`learning_rate`): "
                 "`adam(learning_rate=exponential_decay(0.01, 100, 0.5))`.")


KINDS: dict[str, Callable[[], Table]] = {
    "layers": layers, "merges": merges, "losses": losses, "metrics": metrics,
    "optimizers": optimizers, "schedules": schedules, "sources": sources,
}


def all_tables() -> list[Table]:
    return [build() for build in KINDS.values()]


def unknown_kind(kind: str) -> str:
    """The error for `mlspec list KIND` of a kind that is none of KINDS."""
    from mlspec.syntax.errors import nearest

    close = nearest(kind, KINDS)
    hint = f"; did you mean '{close}'?" if close else ""
    return f"unknown kind '{kind}'{hint} (the kinds are {', '.join(KINDS)})"


# ------------------------------------------------------------------------- markdown


HEADER = """\
# Catalogue

<!-- Generated from the registries by `python -m mlspec.catalog.tables --write
docs/catalogue.md`: do not edit by hand. tests/test_docs.py fails when this file and the
registries disagree. -->

Every layer, merge, loss, metric, optimizer, schedule and data source a spec can name,
with its arguments in positional order: `name` is required, `name=value` has that
default, and `[name]` may be left out (the description says what it then means); a
merge's values (`a, b, ...`) are names. The same tables
are printed by `mlspec list KIND`. How the pieces fit together is in
[the language reference](language.md).
"""


def _cell(value: str | tuple[str, ...], code: bool = False) -> str:
    if isinstance(value, tuple):  # arguments: each one code
        return ", ".join(_cell(item, code=True) for item in value)
    text = value.replace("|", "\\|")
    return f"`{text}`" if code and text else text


def markdown(tables: list[Table] | None = None) -> str:
    out = [HEADER]
    for table in tables or all_tables():
        out.append(f"\n## {table.title}\n\n{len(table.rows)} {table.kind}. {table.note}\n\n")
        out.append("| " + " | ".join(table.columns) + " |\n")
        out.append("|" + "---|" * len(table.columns) + "\n")
        for row in table.rows:
            # the name and the arguments are code; the other columns are prose
            cells = [_cell(cell, code=i == 0) for i, cell in enumerate(row)]
            out.append("| " + " | ".join(cells) + " |\n")
    return "".join(out)


# ------------------------------------------------------------------------- terminal


def _plain(text: str) -> str:
    return text.replace("`", "")


def signature(row: tuple, columns: tuple[str, ...]) -> str:
    """An entry as a spec calls it: `dense(features, use_bias=true)`, `repeat(times) {
    ... }`, `flatten`."""
    name, cells = row[0], dict(zip(columns, row))
    arguments = [a for a in cells.get("arguments", ()) if a != "{ body }"]
    text = f"{name}({', '.join(arguments)})" if arguments else name
    return text + (" { ... }" if "{ body }" in cells.get("arguments", ()) else "")


def terminal_text(table: Table, width: int = 80) -> str:
    """The table as a terminal shows it at `width` columns: an entry a paragraph, its
    signature (wrapped after a comma, under its opening parenthesis) and under it its
    other columns and description, wrapped at words. No cell is cut."""
    import textwrap

    lines = [f"{table.title} ({len(table.rows)})", ""]
    for row in table.rows:
        cells = dict(zip(table.columns, row))
        head = signature(row, table.columns) + "".join(
            f"  ({c}: {cells[c]})" for c in table.columns[1:]
            if c not in ("arguments", "description"))
        indent = " " * (head.find("(") + 3 if "(" in head else 4)
        lines += textwrap.wrap(head, width, initial_indent="  ", subsequent_indent=indent,
                               break_long_words=False, break_on_hyphens=False)
        lines += textwrap.wrap(_plain(cells["description"]), width, initial_indent="      ",
                               subsequent_indent="      ", break_on_hyphens=False)
    return "\n".join(lines) + "\n"


def overview_text(width: int = 80) -> str:
    """Every kind with its count and names: what `mlspec list` prints."""
    import textwrap

    lines = textwrap.wrap("The catalogue; `mlspec list KIND` shows the arguments, "
                          "defaults and description of each entry.", width) + [""]
    for table in all_tables():
        lines.append(f"{table.kind} ({len(table.rows)})")
        lines += textwrap.wrap(", ".join(table.names), width, initial_indent="    ",
                               subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlspec.catalog.tables",
                                     description="The catalogue tables as Markdown.")
    parser.add_argument("--write", metavar="FILE", type=Path,
                        help="write them to FILE (docs/catalogue.md) instead of stdout")
    args = parser.parse_args(argv)
    text = markdown()
    if args.write is None:
        sys.stdout.write(text)
    else:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
