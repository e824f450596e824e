"""The `mlspec` command: check, run, predict, evaluate, plot, fmt, summary, export, schema.

Exit codes: 0 success; 2 bad input: a mistake in a spec (reported with its location), a data
file or a run folder that cannot be used (a file missing, corrupt, or edited since the
run); 1 a failure while running, a folder that cannot be written (a full disk, another
run holding it); 130 a training interrupted by a signal. `check`, `fmt`, `summary`,
`export`, `schema` and `lsp` never import jax.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import time
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

            try:
                atomic_write(Path(path), text)
            except OSError as exc:
                _err(f"error: cannot rewrite {path}: {exc.strerror or exc}")
                status = max(status, EXIT_FAILURE)
                continue
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
PAUSE_VARIABLE = "MLSPEC_TEST_PAUSE_AT"
"""For tests: `MLSPEC_TEST_PAUSE_AT=MOMENT` (start, loaded, training, trained, plots)
makes `mlspec run` say `paused at MOMENT` on stderr there and wait (up to a minute) for a
signal, so that a test can send one at a known moment."""


class _Interrupted(Exception):
    """A signal arrived before anything trained."""


class _Stop:
    """The signals (Ctrl-C, SIGTERM) that `mlspec run` has seen. The first asks the run to
    stop where nothing is lost: before training (nothing is written), at the end of a
    training chunk (the folder is written, `interrupted`), or after the last step, before
    the next plot (`completed`; the plots are left for `mlspec plot`). A second one before
    or during training stops at once."""

    MESSAGES = {
        "starting": "stopping before training; nothing will be written",
        "training": "stopping at the end of this chunk; the run folder will be written",
        "saving": "training has finished: writing the run folder, then stopping before "
                  "the plots",
    }

    def __init__(self, quiet: bool):
        self.signals: list[int] = []
        self.quiet = quiet
        self.phase = "starting"

    def __bool__(self) -> bool:
        return bool(self.signals)

    def handle(self, signum, frame) -> None:
        if self.signals and self.phase != "saving":  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signals.append(signum)
        if not self.quiet:
            _err(self.MESSAGES[self.phase])

    def check(self) -> None:
        if self.signals and self.phase == "starting":
            raise _Interrupted

    def pause(self, moment: str) -> None:
        if os.environ.get(PAUSE_VARIABLE) != moment:
            return
        _err(f"paused at {moment}")
        deadline = time.monotonic() + 60
        while not self.signals and time.monotonic() < deadline:
            time.sleep(0.01)


@contextlib.contextmanager
def _signals_caught(quiet: bool):
    stop = _Stop(quiet)
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_run(args) -> int:
    # The handlers come first, before jax is imported or any data is read, so that no
    # signal is lost or kills the process without a word.
    with _signals_caught(args.quiet) as stop:
        stop.pause("start")
        with contextlib.ExitStack() as held:
            return _run(args, stop, held)


def _run(args, stop: _Stop, held: contextlib.ExitStack) -> int:
    from rich.console import Console

    from .runs import (
        locked,
        numbered_folder,
        prepare_folder,
        require_run_folder,
        require_unused,
    )

    console = Console(stderr=True, quiet=args.quiet)
    out = created = None
    try:
        if args.resume:
            from .runs import resume_training

            out = require_run_folder(args.resume)
            held.enter_context(locked(out))
            training = resume_training(out)
            members = None
        else:
            if not args.file:
                raise SpecError.at(None, "run needs a FILE (or --resume RUN_DIR)")
            from .runner import Training, spec_as_run
            from .sweep import expand

            spec = spec_as_run(_load(args.file), _parse_sets(args.set))
            members = expand(spec)
            program = members[0].program
            if program.data is None or program.train is None:
                missing = "data" if program.data is None else "train"
                raise SpecError.at(None, f"{args.file}: run needs a '{missing}' section")
            out = Path(args.out) if args.out else numbered_folder(Path("runs") / program.name)
            created = not out.exists()
            prepare_folder(out)
            require_unused(out)
            held.enter_context(locked(out))
            stop.check()
            if len(members) == 1 and not members[0].settings:
                training = Training(program, updates=PROGRESS_UPDATES)
                members = None
        stop.pause("loaded")
        stop.check()
        if members is None:
            result = _train(training, console, stop)
        else:
            result = _train_members(members, spec, console, stop)
    except SpecError as exc:
        _err(exc.render())
        if created:
            _discard(out)
        return EXIT_SPEC_ERROR
    except _Interrupted:
        _err("interrupted before any training; nothing was written")
        if created:
            _discard(out)
        return EXIT_INTERRUPTED
    stop.phase = "saving"
    stop.pause("trained")
    where = {} if members else {"blocks_done": training.blocks_done, "chunk": training.chunk}
    if not _save(result, out, stop, **where):
        return EXIT_FAILURE
    # The results first, the plots after them: the final metrics never wait for drawing.
    code = _report(result, out, stop, args.quiet, members)
    if result.status != "interrupted" and not _draw_plots(result, out, stop):
        return EXIT_FAILURE
    return code


def _train(training, console, stop: _Stop):
    stop.phase = "training"
    with _Progress(console, training.schedule.total, training.program.name) as bar:
        bar.update(training)

        def progress(done):
            bar.update(done)
            stop.pause("training")

        return training.run(on_progress=progress, should_stop=lambda: bool(stop))


def _train_members(members, spec, console, stop: _Stop):
    """Seeds or a sweep: each group of members sharing a shape trains as one program. An
    interrupted sweep keeps the members trained so far (the members of programs not
    started are left out); it cannot be resumed."""
    from .runner import Training, combine
    from .sweep import groups

    results = []
    shapes = groups(members)
    for i, group in enumerate(shapes, 1):
        if stop:
            break
        training = Training(group[0].program, updates=PROGRESS_UPDATES, members=group)
        stop.phase = "training"
        label = f"{training.program.name} [{len(group)} members, program {i}/{len(shapes)}]"
        with _Progress(console, training.schedule.total, label) as bar:

            def progress(done):
                bar.update(done)
                stop.pause("training")

            training.run(on_progress=progress, should_stop=lambda: bool(stop))
        if training.blocks_done:  # a program stopped before its first step is left out
            results.extend(training.member_results())
    if not results:
        raise _Interrupted
    result = combine(results, spec)
    if len(results) < len(members) or any(r.status == "interrupted" for r in results):
        result.status = "interrupted"
    return result


def _discard(out: Path) -> None:
    """Removes the folder this run made, which holds nothing but its lock."""
    with contextlib.suppress(OSError):
        (out / ".lock").unlink()
        out.rmdir()


def _plots_stop(stop: _Stop):
    """`should_stop` for the plots: asked before each one."""
    checks = 0

    def should_stop() -> bool:
        nonlocal checks
        checks += 1
        if checks == 2:
            stop.pause("plots")
        return bool(stop)

    return should_stop


def _save(result, out: Path, stop: _Stop, **where) -> bool:
    """Writes the run folder but its plots (`_draw_plots` draws them, once the results
    are printed). One that cannot be written (a full disk) falls back to a new temporary
    folder, plots and all, so that nothing trained is lost; that is still a failure
    (False)."""
    from .runs import RunFolderError, save_run

    try:
        save_run(result, out, plots=False, **where)
        return True
    except (RunFolderError, OSError) as exc:
        _err(f"error: could not write the run folder {out}: {exc}")
    try:
        fallback = Path(tempfile.mkdtemp(prefix=f"mlspec-{result.program.name}-"))
        save_run(result, fallback, should_stop=_plots_stop(stop), **where)
    except (RunFolderError, OSError) as exc:
        _err(f"error: could not write the run to a temporary folder either: {exc}")
    else:
        _err(f"the trained run was written to {fallback} instead")
    return False


def _draw_plots(result, out: Path, stop: _Stop) -> bool:
    """Draws the plots into the written run folder, each while no signal has come, and
    says in the manifest which are missing. False if they could not be written."""
    from .plots import draw_all
    from .runs import RunFolderError, mark_plots_drawn

    try:
        _, missing = draw_all(result, out, should_stop=_plots_stop(stop))
        mark_plots_drawn(out, missing)
    except (RunFolderError, OSError) as exc:
        _err(f"error: could not write the plots to {out}: {exc} (the rest of the run "
             f"folder is written; draw them with: mlspec plot {out})")
        return False
    if missing:
        _err(f"the run is {result.status.replace('_', ' ')}; its plots were not drawn "
             f"(draw them with: mlspec plot {out})")
    return True


def _report(result, out: Path, stop: _Stop, quiet: bool, members) -> int:
    """Says how the run ended; the exit code follows its status."""
    from rich.console import Console

    if result.status == "interrupted":
        if members:
            finished = sum(m.status != "interrupted" for m in result.members)
            _err(f"interrupted: {finished} of {len(members)} runs finished, "
                 f"{len(result.members) - finished} partly trained; wrote {out}/ (a sweep "
                 "cannot be resumed: run the spec again)")
        else:
            _err(f"interrupted at step {result.steps_done}; wrote {out}/ "
                 f"(continue with: mlspec run --resume {out})")
        return EXIT_INTERRUPTED
    if result.status == "diverged":
        _err(f"error: {result.divergence_message()}\nwrote {out}/")
        return EXIT_FAILURE
    if quiet:
        return 0
    if members:
        _members_table(result, len(members))
    else:
        if result.best_step is not None:  # early_stop(restore_best=true)
            print(f"{result.program.name}: metrics of the best evaluation, step "
                  f"{result.best_step} of {result.steps_done} (its parameters are returned)")
        else:
            print(f"{result.program.name}: final metrics after {result.steps_done} steps")
        Console().print(_metrics_table(result.metrics_by_split()))
        if result.status == "early_stopped":
            print(f"early stopping at step {result.stopped_at}")
    print(f"wrote {out}/")
    return 0


def _members_table(result, runs: int) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = list(result.members[0].settings)
    metric_keys = [k for k in result.members[0].metrics if "." in k]
    programs = len({id(m.trainer) for m in result.members})
    table = Table(title=f"{runs} runs in {programs} compiled program(s), best first "
                        "(--member K: the K-th row, 0 the best)")
    table.add_column("member", justify="right")
    for key in keys + metric_keys:
        table.add_column(key, justify="right")
    for i, member in enumerate(result.members):
        table.add_row(str(i), *[str(member.settings[k]) for k in keys],
                      *[f"{member.metrics[k]:.4f}" for k in metric_keys])
    Console().print(table)


def _saved(args):
    from .runs import load_run

    return load_run(args.run_dir, member=args.member)


def cmd_predict(args) -> int:
    from .predict import predictions_frame, rows_for

    result = _saved(args)
    x, _ = rows_for(result, args.data, need_targets=False)
    frame = predictions_frame(result, x)
    text = frame.to_csv(index=False)
    if args.out:
        from .files import atomic_write
        from .runs import RUN_FILES

        if Path(args.out).resolve() in {(Path(args.run_dir) / f).resolve() for f in RUN_FILES}:
            _err(f"error: {args.out} is a file of the run folder itself; write the "
                 "predictions elsewhere (the run would no longer load)")
            return EXIT_FAILURE
        try:
            atomic_write(Path(args.out), text)
        except OSError as exc:
            _err(f"error: cannot write the predictions to {args.out}: "
                 f"{exc.strerror or exc}")
            return EXIT_FAILURE
    else:
        sys.stdout.write(text)
    return 0


def cmd_evaluate(args) -> int:
    from rich.console import Console

    from .predict import evaluate, rows_for

    result = _saved(args)
    data = args.data
    if data is None:
        data = "test" if "test" in result.program.data.splits else "valid"
    x, y = rows_for(result, data, need_targets=True)
    metrics = evaluate(result, x, y)
    if args.json:  # strict JSON: a NaN or infinite metric is null
        print(json.dumps({k: v if math.isfinite(v) else None for k, v in metrics.items()},
                         indent=2))
    else:
        label = data if data in ("train", "valid", "test") else "data"
        Console().print(_metrics_table({label: metrics}))
    return 0


def cmd_plot(args) -> int:
    """Draws the plots of a run folder; for the best member (the default) this also
    clears the manifest's `plots_missing`. A member other than the best gets its own
    files (`decision_regions-member-K.png`)."""
    from .plots import draw_all
    from .runs import full_history, locked, mark_plots_drawn

    folder = Path(args.run_dir)
    result = _saved(args)
    history, member_columns = full_history(folder)
    with locked(folder):
        suffix = f"-member-{args.member}" if args.member else ""
        written, _ = draw_all(result, folder, history=history, member_columns=member_columns,
                              suffix=suffix)
        if not args.member:
            mark_plots_drawn(folder, [])
    for path in written:
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


def _member_option(parser) -> None:
    parser.add_argument("--member", type=int, default=0, metavar="K",
                        help="for seeds or a sweep: the member in row K of the run's table "
                             "(metrics.json's members), 0 being the best and the default")


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
    _member_option(p)
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("evaluate", help="metrics of a trained run on its test split or DATA")
    p.add_argument("run_dir")
    p.add_argument("data", nargs="?", help="as for predict, with targets; default: the "
                                           "run's test split, else its valid split")
    p.add_argument("--json", action="store_true", help="print JSON")
    _member_option(p)
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("plot", help="redraw the plots of a run folder")
    p.add_argument("run_dir")
    _member_option(p)
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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_now(signum, frame) -> None:
    """Ctrl-C or SIGTERM outside a training run: nothing is worth finishing, so stop at
    once (a KeyboardInterrupt raised inside jax's start-up is swallowed, or crashes it)."""
    _err("interrupted")
    os._exit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `run` catches signals itself (they stop its training where nothing is lost); the
    # language server is stopped by its client
    own = args.command not in ("run", "lsp")
    previous = {s: signal.signal(s, _stop_now) for s in STOP_SIGNALS} if own else {}
    try:
        return _main(args)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def entry() -> None:
    """The `mlspec` command. Once main has answered, a signal no longer changes how the
    process ends: its results and status are settled, the interpreter only tidies up."""
    import gc

    code = main()
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    # Nothing is left to collect: the interpreter's last garbage collections would walk
    # every object of jax, flax, pandas and matplotlib (about half a second after a run).
    gc.freeze()
    sys.exit(code)


def _main(args) -> int:
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a full disk behind stdout is reported here, not at exit
        return code
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
        from .runs import RunFolderError, RunFolderWriteError

        if isinstance(exc, (DataError, RunFolderError)):
            _err(f"error: {exc}")
            return EXIT_FAILURE if isinstance(exc, RunFolderWriteError) else EXIT_SPEC_ERROR
        if isinstance(exc, OSError):  # most often stdout on a full disk (`> /dev/full`)
            where = exc.filename or "the output"
            _err(f"error: cannot write {where}: {exc.strerror or exc}")
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more to flush there
            return EXIT_FAILURE
        raise


if __name__ == "__main__":
    entry()
