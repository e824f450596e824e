"""The `mlspec` command: check, run, predict, evaluate, plot, fmt, summary, export, schema.

Exit codes: 0 success, 2 a mistake in a spec (reported with its location), 1 a failure
while running, 130 interrupted. `check`, `fmt`, `summary`, `export`, `schema` and `lsp`
never import jax.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

from .dsl.errors import SpecError

EXIT_SPEC_ERROR = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _load(path: str):
    from .dsl.parser import load

    return load(path)


def cmd_check(args) -> int:
    from .dsl.canonical import resolved_spec
    from .dsl.resolve import resolve
    from .sweep import expand

    status = 0
    for path in args.files:
        try:
            spec = _load(path)
            program = resolve(spec)
            if spec.sweep is not None:
                expand(spec)  # every member of the grid must be valid too
        except SpecError as exc:
            _err(exc.render())
            status = EXIT_SPEC_ERROR
            continue
        if args.resolved:
            _write_spec_text(resolved_spec(program).to_text())
    return status


def _write_spec_text(text: str) -> None:
    """Spec text to stdout, coloured by the .mlspec Pygments lexer on a terminal."""
    if sys.stdout.isatty() and os.environ.get("NO_COLOR") is None:
        from pygments import highlight
        from pygments.formatters import TerminalFormatter

        from .editor.lexer import MlspecLexer

        text = highlight(text, MlspecLexer(), TerminalFormatter())
    sys.stdout.write(text)


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
        if Path(path).suffix.lower() == ".json":  # rewriting it as text would lose the JSON
            _err(f"error: {path}: fmt formats .mlspec text, not JSON (`mlspec check "
                 "--resolved` prints a JSON spec as text)")
            status = EXIT_SPEC_ERROR
            continue
        if Path(path).read_bytes() == text.encode():  # as load read it: no decoding again
            continue
        if args.check:
            _err(f"{path}: would be reformatted")
            status = max(status, EXIT_FAILURE)
        else:
            from .files import atomic_write

            atomic_write(Path(path), text)
            print(f"reformatted {path}")
    return status


def _parse_sets(items: list[str]) -> dict:
    from .dsl.resolve import parse_override

    return dict(parse_override(item) for item in items)


def _metrics_table(grouped: dict[str, dict[str, float]]):
    from rich.table import Table

    splits = [s for s in grouped if s != "training"]
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


class _Progress:
    """A rich progress bar fed between compiled chunks."""

    def __init__(self, console, total: int, name: str):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"), console=console, transient=False,
        )
        self.task = self.progress.add_task(f"{name} (compiling)", total=total, speed="",
                                           metrics="")
        self.name = name

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, training) -> None:
        latest = training.latest()
        shown = [k for k in ("train.loss", "valid.loss", "valid.accuracy") if k in latest]
        speed = training.steps_done / training.wall_time if training.wall_time else 0
        metrics = "  ".join(f"{k} {latest[k]:.4f}" for k in shown)
        if not self.progress.console.is_terminal and training.rows:
            # No live bar in logs: one plain line per chunk instead.
            self.progress.console.print(
                f"{self.name}: step {training.steps_done}/{training.schedule.total}  "
                f"{speed:,.0f} steps/s  {metrics}", highlight=False)
        self.progress.update(
            self.task, completed=training.steps_done, description=self.name,
            speed=f"{speed:,.0f} steps/s", metrics=metrics)


PROGRESS_UPDATES = 50


def cmd_run(args) -> int:
    from rich.console import Console

    from .runner import Training
    from .runs import RunFolderError, numbered_folder, prepare_folder, save_run

    console = Console(stderr=True, quiet=args.quiet)
    try:
        if args.resume:
            from .runs import resume_training

            out = Path(args.resume)
            training = resume_training(out)
        else:
            if not args.file:
                raise SpecError.at(None, "run needs a FILE (or --resume RUN_DIR)")
            from .sweep import expand

            members = expand(_load(args.file), _parse_sets(args.set))
            program = members[0].program
            if program.data is None or program.train is None:
                missing = "data" if program.data is None else "train"
                raise SpecError.at(None, f"{args.file}: run needs a '{missing}' section")
            out = Path(args.out) if args.out else numbered_folder(Path("runs") / program.name)
            prepare_folder(out)
            if len(members) > 1 or members[0].settings:
                return _run_members(members, out, console, args.quiet)
            training = Training(program, updates=PROGRESS_UPDATES)
    except SpecError as exc:
        _err(exc.render())
        return EXIT_SPEC_ERROR
    except RunFolderError as exc:
        _err(f"error: {exc}")
        return EXIT_FAILURE

    with _stop_on_signal(console) as stop_requested:
        with _Progress(console, training.schedule.total, training.program.name) as bar:
            bar.update(training)
            result = training.run(on_progress=bar.update,
                                  should_stop=lambda: bool(stop_requested))
    try:
        save_run(result, out, blocks_done=training.blocks_done, chunk=training.chunk)
    except (RunFolderError, OSError) as exc:
        _err(f"error: could not write the run folder {out}: {exc}")
        fallback = Path(tempfile.mkdtemp(prefix=f"mlspec-{result.program.name}-"))
        save_run(result, fallback, blocks_done=training.blocks_done, chunk=training.chunk)
        _err(f"the trained run was written to {fallback} instead")
        return EXIT_FAILURE
    if result.status == "interrupted":
        _err(f"interrupted at step {result.steps_done}; wrote {out}/ "
             f"(continue with: mlspec run --resume {out})")
        return EXIT_INTERRUPTED
    if result.status == "diverged":
        _err(f"error: {result.divergence_message()}\nwrote {out}/")
        return EXIT_FAILURE
    if not args.quiet:
        print(f"{result.program.name}: final metrics after {result.steps_done} steps")
        Console().print(_metrics_table(result.metrics_by_split()))
        if result.status == "early_stopped":
            print(f"early stopping at step {result.stopped_at}")
        print(f"wrote {out}/")
    return 0


@contextlib.contextmanager
def _stop_on_signal(console):
    """While inside, Ctrl-C and SIGTERM ask the run to stop at the end of its chunk (the
    yielded list fills); a second one stops at once."""
    stop_requested: list[int] = []

    def request_stop(signum, frame):
        if stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop_requested.append(signum)
        console.print("stopping at the end of this chunk; the run folder will be written")

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop_requested
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run_members(members, out: Path, console, quiet: bool) -> int:
    """Seeds or a sweep: each group of members sharing a shape trains as one program. An
    interrupted sweep writes its folder with the members trained so far (the members of
    programs not started are left out); it cannot be resumed."""
    from rich.console import Console
    from rich.table import Table

    from .runner import Training, combine
    from .runs import save_run
    from .sweep import groups

    results = []
    shapes = groups(members)
    with _stop_on_signal(console) as stop_requested:
        for i, group in enumerate(shapes, 1):
            if stop_requested:
                break
            training = Training(group[0].program, updates=PROGRESS_UPDATES, members=group)
            label = f"{training.program.name} [{len(group)} members, program {i}/{len(shapes)}]"
            with _Progress(console, training.schedule.total, label) as bar:
                training.run(on_progress=bar.update, should_stop=lambda: bool(stop_requested))
            if training.blocks_done:  # a program stopped before its first step is left out
                results.extend(training.member_results())
    finished = sum(r.status != "interrupted" for r in results)
    if not results:
        _err("interrupted before any run trained; nothing was written")
        return EXIT_INTERRUPTED
    result = combine(results)
    if finished < len(members):
        result.status = "interrupted"
    save_run(result, out)
    if result.status == "interrupted":
        _err(f"interrupted: {finished} of {len(members)} runs finished, "
             f"{len(results) - finished} partly trained; wrote {out}/ (a sweep cannot be "
             "resumed: run the spec again)")
        return EXIT_INTERRUPTED
    if not quiet:
        keys = list(result.members[0].settings)
        metric_keys = [k for k in result.members[0].metrics if "." in k]
        table = Table(title=f"{len(members)} runs in {len(shapes)} compiled program(s), "
                            "best first")
        for key in keys + metric_keys:
            table.add_column(key, justify="right")
        for member in result.members:
            table.add_row(*[str(member.settings[k]) for k in keys],
                          *[f"{member.metrics[k]:.4f}" for k in metric_keys])
        Console().print(table)
        print(f"wrote {out}/")
    return 0


def _saved(run_dir: str):
    from .runs import load_run

    return load_run(run_dir)


def cmd_predict(args) -> int:
    from .predict import predictions_frame, rows_for

    result = _saved(args.run_dir)
    x, _ = rows_for(result, args.data, need_targets=False)
    frame = predictions_frame(result, x)
    text = frame.to_csv(index=False)
    if args.out:
        from .files import atomic_write

        atomic_write(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_evaluate(args) -> int:
    from rich.console import Console

    from .predict import evaluate, rows_for

    result = _saved(args.run_dir)
    data = args.data
    if data is None:
        data = "test" if "test" in result.program.data.splits else "valid"
    x, y = rows_for(result, data, need_targets=True)
    metrics = evaluate(result, x, y)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        label = data if data in ("train", "valid", "test") else "data"
        Console().print(_metrics_table({label: metrics}))
    return 0


def cmd_plot(args) -> int:
    from .plots import draw_all

    result = _saved(args.run_dir)
    for path in draw_all(result, Path(args.run_dir)):
        print(f"wrote {path}")
    return 0


def cmd_summary(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .dsl.resolve import resolve
    from .summary import layer_rows

    program = resolve(_load(args.file))  # a SpecError is reported by main()
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
    if args.optimizer_state and program.train is not None:
        from .summary import optimizer_state_bytes

        table.add_row(f"optimizer state ({program.train.optimizer.name})", "",
                      f"{optimizer_state_bytes(program):,} bytes")
    Console().print(table)
    return 0


def cmd_export(args) -> int:
    from .dsl.canonical import resolved_spec
    from .dsl.resolve import resolve

    program = resolve(_load(args.file))  # a SpecError is reported by main()
    if args.program:
        print(program.model_dump_json(indent=2))
    else:  # the spec IR, every default filled in: loadable wherever a .mlspec is
        print(resolved_spec(program).model_dump_json(indent=2, exclude_none=True))
    return 0


def cmd_schema(args) -> int:
    from .dsl.ir import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))
    return 0


def cmd_lsp(args) -> int:
    from .editor.lsp import serve

    serve()
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
    p.add_argument("file", nargs="?")
    p.add_argument("--out", help="output folder (default runs/MODEL_NAME, numbered if taken)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (hidden=128) or a setting (train.steps=100)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("predict", help="predictions of a trained run for new rows")
    p.add_argument("run_dir")
    p.add_argument("data", help="a split (train/valid/test), a .csv or .npz file, or a "
                                "data source call such as 'hill(n=100)'")
    p.add_argument("--out", help="write the predictions CSV here instead of stdout")
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("evaluate", help="metrics of a trained run on its test split or DATA")
    p.add_argument("run_dir")
    p.add_argument("data", nargs="?", help="as for predict, with targets; default: the "
                                           "run's test split, else its valid split")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("plot", help="redraw the plots of a run folder")
    p.add_argument("run_dir")
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("fmt", help="rewrite specs in canonical form")
    p.add_argument("files", nargs="+")
    p.add_argument("--check", action="store_true", help="only report files that would change")
    p.set_defaults(fn=cmd_fmt)

    p = sub.add_parser("summary", help="layers, output shapes and parameter counts")
    p.add_argument("file")
    p.add_argument("--optimizer-state", action="store_true",
                   help="also the bytes of the optimizer state (imports jax to ask optax)")
    p.set_defaults(fn=cmd_summary)

    p = sub.add_parser("export", help="the validated spec as JSON")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", default=True,
                   help="the spec IR in JSON, defaults filled in (the default)")
    p.add_argument("--program", action="store_true",
                   help="the typed program instead: catalogue entries, shapes, data facts")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("schema", help="the JSON Schema of the spec IR")
    p.set_defaults(fn=cmd_schema)

    p = sub.add_parser("lsp", help="run the .mlspec language server on stdin/stdout")
    p.add_argument("--stdio", action="store_true",
                   help="accepted for editor clients; stdio is the only transport")
    p.set_defaults(fn=cmd_lsp)
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
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`mlspec predict ... | head`)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - let Python's exit flush nowhere
        return 0
    except Exception as exc:  # a run folder or data file that cannot be used
        from .data.sources import DataError
        from .runs import RunFolderError

        if isinstance(exc, (DataError, RunFolderError)):
            _err(f"error: {exc}")
            return EXIT_SPEC_ERROR if isinstance(exc, DataError) else EXIT_FAILURE
        raise


if __name__ == "__main__":
    sys.exit(main())
