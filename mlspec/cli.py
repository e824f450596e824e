"""The `mlspec` command: check, run, fmt, summary, export, schema.

Exit codes: 0 success, 2 a mistake in a spec (reported with its location), 1 a failure
while running. `check`, `fmt`, `summary`, `export` and `schema` never import jax.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .dsl.errors import SpecError

EXIT_SPEC_ERROR = 2
EXIT_FAILURE = 1


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _load(path: str):
    from .dsl.parser import load

    return load(path)


def cmd_check(args) -> int:
    from .dsl.canonical import resolved_spec
    from .dsl.resolve import resolve

    status = 0
    for path in args.files:
        try:
            program = resolve(_load(path))
        except SpecError as exc:
            _err(exc.render())
            status = EXIT_SPEC_ERROR
            continue
        if args.resolved:
            sys.stdout.write(resolved_spec(program).to_text())
    return status


def cmd_fmt(args) -> int:
    status = 0
    for path in args.files:
        try:
            spec = _load(path)
        except SpecError as exc:
            _err(exc.render())
            status = EXIT_SPEC_ERROR
            continue
        text = spec.to_text()
        if Path(path).read_text() == text:
            continue
        if args.check:
            _err(f"{path}: would be reformatted")
            status = max(status, EXIT_FAILURE)
        else:
            from .runner import atomic_write

            atomic_write(Path(path), text)
            print(f"reformatted {path}")
    return status


def _parse_sets(items: list[str]) -> dict:
    from .dsl.resolve import parse_override

    return dict(parse_override(item) for item in items)


def _out_dir(requested: str | None, name: str) -> Path:
    if requested:
        return Path(requested)
    base = Path("runs") / name
    candidate, n = base, 1
    while candidate.exists():  # never overwrite an earlier run
        n += 1
        candidate = base.with_name(f"{name}-{n}")
    return candidate


def _metrics_table(result):
    from rich.table import Table

    grouped = result.metrics_by_split()
    splits = [s for s in ("train", "valid", "test") if s in grouped]
    table = Table()
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    names = list(dict.fromkeys(n for s in splits for n in grouped[s]))
    for name in names:
        table.add_row(name, *(f"{grouped[s][name]:.4f}" if name in grouped[s] else ""
                              for s in splits))
    for name, value in grouped.get("training", {}).items():
        table.add_row(name, f"{value:.4f}", *[""] * (len(splits) - 1))
    return table


def cmd_run(args) -> int:
    from rich.console import Console

    from .dsl.resolve import resolve

    console = Console(stderr=True, quiet=args.quiet)
    try:
        program = resolve(_load(args.file), _parse_sets(args.set))
        if program.data is None or program.train is None:
            missing = "data" if program.data is None else "train"
            raise SpecError.at(None, f"{args.file}: run needs a '{missing}' section")
    except SpecError as exc:
        _err(exc.render())
        return EXIT_SPEC_ERROR
    out = _out_dir(args.out, program.name)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _err(f"error: cannot create the output folder {out}: {exc.strerror or exc}")
        return EXIT_FAILURE
    from .runner import train_program

    with console.status(f"training {program.name} (compiling, then "
                        f"{program.train.steps or str(program.train.epochs) + ' epochs'} "
                        f"steps)..."):
        result = train_program(program)
    result.save(out)
    if not args.quiet:
        from rich.console import Console as StdoutConsole

        steps = int(result.history["step"].iloc[-1])
        print(f"{result.program.name}: final metrics after {steps} steps")
        StdoutConsole().print(_metrics_table(result))
        if result.stopped_at is not None:
            print(f"early stopping at step {result.stopped_at}")
        print(f"wrote {out}/")
    return 0


def cmd_summary(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .dsl.resolve import resolve
    from .summary import layer_rows

    try:
        program = resolve(_load(args.file))
    except SpecError as exc:
        _err(exc.render())
        return EXIT_SPEC_ERROR
    table = Table(title=f"model {program.name}: input {list(program.model.input_shape)}")
    table.add_column("layer")
    table.add_column("output shape", justify="right")
    table.add_column("params", justify="right")
    rows = layer_rows(program.model.layers, program.model.input_shape)
    for depth, text, shape, count in rows:
        table.add_row("  " * depth + text, str(list(shape)), f"{count:,}")
    total = sum(count for depth, _, _, count in rows if depth == 0)
    table.add_section()
    table.add_row("total", "", f"{total:,} ({total * 4:,} bytes as float32)")
    Console().print(table)
    return 0


def cmd_export(args) -> int:
    from .dsl.resolve import resolve

    try:
        program = resolve(_load(args.file))
    except SpecError as exc:
        _err(exc.render())
        return EXIT_SPEC_ERROR
    print(program.model_dump_json(indent=2))
    return 0


def cmd_schema(args) -> int:
    from .dsl.ir import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlspec", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="parse and validate specs; print only errors")
    p.add_argument("files", nargs="+")
    p.add_argument("--resolved", action="store_true",
                   help="print each spec with every default filled in")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("run", help="train a spec")
    p.add_argument("file")
    p.add_argument("--out", help="output folder (default runs/MODEL_NAME, numbered if taken)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (hidden=128) or a setting (train.steps=100)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("fmt", help="rewrite specs in canonical form")
    p.add_argument("files", nargs="+")
    p.add_argument("--check", action="store_true", help="only report files that would change")
    p.set_defaults(fn=cmd_fmt)

    p = sub.add_parser("summary", help="layers, output shapes and parameter counts")
    p.add_argument("file")
    p.set_defaults(fn=cmd_summary)

    p = sub.add_parser("export", help="the validated program as JSON")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", default=True,
                   help="JSON output (the only format)")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("schema", help="the JSON Schema of the spec IR")
    p.set_defaults(fn=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except SpecError as exc:
        _err(exc.render())
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
