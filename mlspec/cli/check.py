"""`mlspec check`, `fmt`, `summary` and `list`: specs and the catalogue read, never
trained (none of them imports jax, but `summary --optimizer-state`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlspec.cli.errors import EXIT_FAILURE, EXIT_SPEC_ERROR, err
from mlspec.cli.shared import SPEC_HELP, load
from mlspec.syntax.errors import SpecError, located


def cmd_check(args) -> int:
    from mlspec.semantics.canonical import resolved_spec
    from mlspec.semantics.imports import merge_imports
    from mlspec.semantics.sweep import check_spec

    status = 0
    for path in args.files:
        try:
            spec = load(path)
            program = check_spec(spec)
            # a library has no program: its text with its imports merged
            text = (merge_imports(spec) if program is None else resolved_spec(program)).to_text()
        except SpecError as exc:
            err(exc.render(path))
            status = EXIT_SPEC_ERROR
            continue
        if args.resolved:
            _write_spec_text(text)
    return status


def _write_spec_text(text: str) -> None:
    """Spec text to stdout, coloured by the .mlspec Pygments lexer on a terminal."""
    if sys.stdout.isatty() and os.environ.get("NO_COLOR") is None:
        from pygments import highlight
        from pygments.formatters import TerminalFormatter

        from mlspec.editor.lexer import MlspecLexer

        text = highlight(text, MlspecLexer(), TerminalFormatter())
    sys.stdout.write(text)


def add_check(sub) -> None:
    p = sub.add_parser("check", help="parse and validate specs; print only errors",
                       description="Parses and validates specs (every member of a sweep "
                                   "too); prints nothing but errors. A file of params and "
                                   "blocks only is checked as a library (as `import` reads "
                                   "it).")
    p.add_argument("files", nargs="+", metavar="FILE", help=SPEC_HELP + "; one or more")
    p.add_argument("--resolved", action="store_true",
                   help="print each spec with every default filled in")
    p.set_defaults(fn=cmd_check)


def cmd_fmt(args) -> int:
    status = 0
    for path in args.files:
        try:
            spec = load(path)
        except SpecError as exc:
            err(exc.render(path))
            status = EXIT_SPEC_ERROR
            continue
        text = spec.to_text()
        if Path(path).suffix.lower() == ".json":  # rewriting it as text would lose the JSON
            err(located(path, "fmt formats .mlspec text, not JSON (`mlspec check "
                              "--resolved` prints a JSON spec as text)"))
            status = EXIT_SPEC_ERROR
            continue
        if Path(path).read_bytes() == text.encode():  # as load read it: no decoding again
            continue
        if args.check:
            err(f"{path}: would be reformatted")
            status = max(status, EXIT_FAILURE)
        else:
            from mlspec.files import atomic_write

            try:
                atomic_write(Path(path), text)
            except OSError as exc:
                err(located(path, f"cannot rewrite it: {exc.strerror or exc}"))
                status = max(status, EXIT_FAILURE)
                continue
            print(f"reformatted {path}")
    return status


def add_fmt(sub) -> None:
    p = sub.add_parser("fmt", help="rewrite specs in canonical form",
                       description="Rewrites .mlspec files in place in canonical form "
                                   "(layout, spacing, alignment), keeping their comments; "
                                   "with --check, only lists the files that would change.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="a .mlspec file to rewrite in place; one or more")
    p.add_argument("--check", action="store_true", help="only report files that would change")
    p.set_defaults(fn=cmd_fmt)


def cmd_summary(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from mlspec.semantics.resolve import resolve
    from mlspec.semantics.summary import input_text, model_rows

    program = resolve(load(args.file))  # a SpecError is reported by main()
    table = Table(title=f"model {program.name}: {input_text(program.model)}")
    table.add_column("layer")
    table.add_column("output shape", justify="right")
    table.add_column("params", justify="right")
    rows = model_rows(program.model)
    for depth, text, shape, count in rows:
        table.add_row("  " * depth + text, str(list(shape)), f"{count:,}")
    total = sum(count for depth, _, _, count in rows if depth == 0)
    table.add_section()
    table.add_row("total", "", f"{total:,} ({total * 4:,} bytes as float32)")
    if args.optimizer_state and program.train is not None:
        from mlspec.compiler.sizes import optimizer_state_bytes

        table.add_row(f"optimizer state ({program.train.optimizer.name})", "",
                      f"{optimizer_state_bytes(program):,} bytes")
    Console().print(table)
    return 0


def add_summary(sub) -> None:
    p = sub.add_parser("summary", help="layers, output shapes and parameter counts",
                       description="Prints a spec's model layer by layer: each layer's output "
                                   "shape and parameter count, with the totals (without "
                                   "importing jax).")
    p.add_argument("file", metavar="FILE", help=SPEC_HELP)
    p.add_argument("--optimizer-state", action="store_true",
                   help="also the bytes of the optimizer state (imports jax to ask optax)")
    p.set_defaults(fn=cmd_summary)


def cmd_list(args) -> int:
    from shutil import get_terminal_size

    from mlspec.catalog.tables import KINDS, overview_text, terminal_text, unknown_kind

    if args.kind is not None and args.kind not in KINDS:
        err(f"error: mlspec list: {unknown_kind(args.kind)}")
        return EXIT_SPEC_ERROR
    width = min(get_terminal_size((80, 24)).columns, 100)
    sys.stdout.write(overview_text(width) if args.kind is None
                     else terminal_text(KINDS[args.kind](), width))
    return 0


def add_list(sub) -> None:
    p = sub.add_parser("list", help="the catalogue: layers, merges, losses, metrics, "
                                    "optimizers, schedules, sources, with arguments and "
                                    "defaults",
                       description="Lists the catalogue that specs name: layers, merges, "
                                   "losses, metrics, optimizers, schedules and data "
                                   "sources, each with its arguments and their defaults.")
    p.add_argument("kind", nargs="?", metavar="KIND",
                   help="layers, merges, losses, metrics, optimizers, schedules or sources "
                        "(default: every kind with its names)")
    p.set_defaults(fn=cmd_list)
