"""The `mlspec` command: check, run, predict, evaluate, plot, fmt, summary, export, schema,
list, lsp.

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
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from mlspec.syntax.errors import SpecError, located

EXIT_SPEC_ERROR = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _load(path: str):
    from mlspec.syntax.parser import load

    return load(path)


def cmd_check(args) -> int:
    from mlspec.semantics.canonical import resolved_spec
    from mlspec.semantics.imports import merge_imports
    from mlspec.semantics.sweep import check_spec

    status = 0
    for path in args.files:
        try:
            spec = _load(path)
            program = check_spec(spec)
            # a library has no program: its text with its imports merged
            text = (merge_imports(spec) if program is None else resolved_spec(program)).to_text()
        except SpecError as exc:
            _err(exc.render(path))
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


def cmd_fmt(args) -> int:
    status = 0
    for path in args.files:
        try:
            spec = _load(path)
        except SpecError as exc:
            _err(exc.render(path))
            status = EXIT_SPEC_ERROR
            continue
        text = spec.to_text()
        if Path(path).suffix.lower() == ".json":  # rewriting it as text would lose the JSON
            _err(located(path, "fmt formats .mlspec text, not JSON (`mlspec check "
                               "--resolved` prints a JSON spec as text)"))
            status = EXIT_SPEC_ERROR
            continue
        if Path(path).read_bytes() == text.encode():  # as load read it: no decoding again
            continue
        if args.check:
            _err(f"{path}: would be reformatted")
            status = max(status, EXIT_FAILURE)
        else:
            from mlspec.files import atomic_write

            try:
                atomic_write(Path(path), text)
            except OSError as exc:
                _err(located(path, f"cannot rewrite it: {exc.strerror or exc}"))
                status = max(status, EXIT_FAILURE)
                continue
            print(f"reformatted {path}")
    return status


def _parse_sets(items: list[str]) -> dict:
    from mlspec.semantics.overrides import parse_override

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
    """How a training goes, fed between compiled chunks: on a terminal a rich bar; in a
    log or a pipe a plain line at every tenth of the run and one at its end, each short
    enough not to wrap. Both show the latest evaluation: its step and its values."""

    SHOWN = ("train.loss", "valid.loss", "valid.accuracy")
    WIDTH = 99  # characters of a plain line at most
    BAR = 20  # characters of the bar; the bar's other columns take about 40 more

    def __init__(self, console, training, name: str):
        self.console, self.name = console, name
        self.total = training.schedule.total
        self.tenths_shown = 10 * training.steps_done // self.total  # steps >= 1
        self.progress = None
        if console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=self.BAR),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]}"), TimeElapsedColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                console=console, transient=False)
            self.task = self.progress.add_task(f"{name} (compiling)", total=self.total,
                                               speed="", metrics="")
        else:
            start = f" from step {training.steps_done}" if training.steps_done else ""
            line = f"{name}: compiling, then training{start} to {self.total} steps"
            if len(line) > self.WIDTH:  # a long name: the rest of this line goes
                line = name if len(name) <= self.WIDTH else name[:self.WIDTH - 1] + "…"
            self._line(line)

    def __enter__(self):
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            return self.progress.__exit__(*exc)
        return None

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def update(self, training) -> None:
        if not training.rows:
            return
        step, values = training.last_evaluation()
        speed = training.steps_done / training.wall_time if training.wall_time else 0
        metrics = [f"{k} {_number(values[k])}" for k in self.SHOWN if k in values]
        status = training.status
        if status == "early_stopped":
            where = f"stopped early at step {step} of {self.total}"
        elif status == "diverged":
            where = f"diverged at step {step} of {self.total}"
        else:
            where = f"step {step}/{self.total}"
        if self.progress is not None:
            description = self.name if status in (None, "completed") \
                else f"{self.name} ({status.replace('_', ' ')})"
            room = self.console.width - len(description) - self.BAR - 42
            while len("  ".join(metrics)) > room and metrics:  # whole values, not cut
                metrics.pop()
            done = {"total": step} if status == "early_stopped" else {}  # a full bar
            self.progress.update(self.task, completed=step, **done, description=description,
                                 speed=f"{speed:,.0f} steps/s", metrics="  ".join(metrics))
            return
        tenths = 10 * step // self.total
        if status is None and tenths <= self.tenths_shown:
            return
        self.tenths_shown = tenths
        head = f"  {where} ({100 * step // self.total}%)" if status is None \
            else f"  {'done, ' if status == 'completed' else ''}{where}"  # under the name
        parts = [head, *metrics, f"{speed:,.0f} steps/s"]
        while len("  ".join(parts)) > self.WIDTH and len(parts) > 1:
            parts.pop()  # the speed first, then the values from the last
        self._line("  ".join(parts))


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


PROGRESS_UPDATES = 50
PAUSE_VARIABLE = "MLSPEC_TEST_PAUSE_AT"
"""For tests: `MLSPEC_TEST_PAUSE_AT=MOMENT` makes `mlspec run` say `paused at MOMENT` on
stderr there and wait (up to a minute) for a signal, so that a test can send one at a
known moment: start, loaded, training (after a chunk), trained, plots; first_chunk and
chunk (while the first chunk, or a later one, computes) wait for a second signal. With
`import`, `python -m mlspec` says `importing` before its imports and goes on."""


class _Interrupted(Exception):
    """A signal arrived before anything trained."""


class _Stop:
    """The signals (Ctrl-C, SIGTERM) that `mlspec run` has seen. The first asks the run to
    stop where nothing is lost: before training (nothing is written), at the end of a
    training chunk (the folder is written, `interrupted`), or after the last step, before
    the next plot (`completed`; the plots are left for `mlspec plot`). A second one before
    training stops at once; during training it stops without finishing the chunk in
    progress, and the folder is written with the chunks done (`now`); with none done (the
    first chunk computes), nothing is written. Each notice is lines under 100 characters."""

    MESSAGES = {
        "starting": "stopping before training; nothing will be written",
        "training": "stopping at the end of this chunk; the run folder will be written\n"
                    "(press Ctrl-C again to stop now, keeping the chunks done)",
        "first_chunk": "stopping at the end of this chunk; the run folder will be written\n"
                       "(press Ctrl-C again to stop now: no chunk has finished, so nothing "
                       "would be written)",
        "saving": "training has finished: writing the run folder, then stopping before "
                  "the plots",
        "writing": "writing the run folder of the steps done, then stopping",
        "stopping": "stopping; nothing will be written",
        "now": "stopping now, without the chunk in progress;\n"
               "the run folder will be written with the steps done so far",
        "now_nothing": "stopping now, without the chunk in progress;\n"
                       "nothing will be written, since no chunk of training has finished",
        "again": "already stopping; the run folder will be written",
        "again_nothing": "already stopping; nothing will be written",
    }

    def __init__(self, quiet: bool):
        self.signals: list[int] = []
        self.quiet = quiet
        self.phase = "starting"
        self.now = False
        """A second signal during training: drop the chunk in progress."""
        self.left_running = False
        """A chunk was dropped while computing: the process may not wait for it at exit."""
        self.kept: Callable[[], bool] = lambda: False
        """Whether some chunk of training has finished (is kept if the run stops now)."""
        self._paused: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.signals)

    def handle(self, signum, frame) -> None:
        again = bool(self.signals)
        self.signals.append(signum)
        if again and self.phase == "starting":  # a second signal while loading: stop now
            self.phase = "stopping"
            raise _Interrupted
        nothing = "" if self.kept() else "_nothing"
        if again and self.phase == "training":
            message = self.MESSAGES[("again" if self.now else "now") + nothing]
            self.now = True
        elif self.phase == "training" and nothing:
            message = self.MESSAGES["first_chunk"]
        else:
            message = self.MESSAGES[self.phase]
        if not self.quiet:
            _err(message)

    def check(self) -> None:
        if self.signals and self.phase == "starting":
            raise _Interrupted

    def pause(self, moment: str, until=None) -> None:
        if os.environ.get(PAUSE_VARIABLE) != moment:
            return
        _err(f"paused at {moment}")
        deadline = time.monotonic() + 60
        until = until or (lambda: bool(self.signals))
        while not until() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop_now(self, training) -> bool:
        """Asked while a chunk of `training` computes."""
        moment = "chunk" if training.blocks_done else "first_chunk"
        if moment not in self._paused:
            self._paused.add(moment)
            self.pause(moment, until=lambda: self.now)
        if self.now:
            self.left_running = True
        return self.now


@contextlib.contextmanager
def _signals_caught(quiet: bool):
    stop = _Stop(quiet)
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


_LEFT_RUNNING = False
"""A run stopped without waiting for the chunk in progress: `entry` then ends the process
at once, instead of waiting at exit for the device to finish a chunk nobody reads."""


def cmd_run(args) -> int:
    # The handlers come first, before jax is imported or any data is read, so that no
    # signal is lost or kills the process without a word.
    global _LEFT_RUNNING
    with _signals_caught(args.quiet) as stop:
        try:
            stop.pause("start")
            with contextlib.ExitStack() as held:
                code = _run(args, stop, held)
        except _Interrupted:  # a second signal before `_run` could catch it
            _err("interrupted before any training; nothing was written")
            code = EXIT_INTERRUPTED
    _LEFT_RUNNING = _LEFT_RUNNING or stop.left_running
    return code


def _run(args, stop: _Stop, held: contextlib.ExitStack) -> int:
    from rich.console import Console

    from mlspec.runtime.runs import (
        RunFolderError,
        RunFolderWriteError,
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
            from mlspec.runtime.reload import resume_training

            out = require_run_folder(args.resume)
            held.enter_context(locked(out))
            training = resume_training(out)
            members = None
        else:
            if not args.file:  # a usage error, worded as argparse's
                _err("mlspec run: error: give the FILE of a spec to train (or --resume "
                     "RUN_DIR)")
                return EXIT_SPEC_ERROR
            from mlspec.runtime.runner import spec_as_run
            from mlspec.runtime.training import Training
            from mlspec.semantics.sweep import expand

            spec = spec_as_run(_load(args.file), _parse_sets(args.set))
            members = expand(spec)
            program = members[0].program
            if program.data is None or program.train is None:
                missing = "data" if program.data is None else "train"
                raise SpecError.at(None, f"run needs a '{missing}' section")
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
        _err(exc.render(args.file or args.resume))
        if created:
            _discard(out)
        return EXIT_SPEC_ERROR
    except RunFolderError as exc:  # the folder to write (or to resume) cannot be used
        _err(located(out or args.resume, str(exc)))
        return EXIT_FAILURE if isinstance(exc, RunFolderWriteError) else EXIT_SPEC_ERROR
    except _Interrupted:
        _err("interrupted before any training; nothing was written")
        if created:
            _discard(out)
        return EXIT_INTERRUPTED
    stop.phase = "writing" if result.status == "interrupted" else "saving"
    stop.pause("trained")
    where = {} if members else {"blocks_done": training.blocks_done, "chunk": training.chunk}
    if not _save(result, out, stop, **where):
        return EXIT_FAILURE
    # The results first, the plots after them: the final metrics never wait for drawing.
    code = _report(result, out, stop, args, members)
    if result.status != "interrupted" and not _draw_plots(result, out, stop):
        return EXIT_FAILURE
    return code


def _train(training, console, stop: _Stop):
    stop.phase = "training"
    stop.kept = lambda: training.blocks_done > 0
    with _Progress(console, training, training.program.name) as bar:
        bar.update(training)

        def progress(done):
            bar.update(done)
            stop.pause("training")

        result = training.run(on_progress=progress, should_stop=lambda: bool(stop),
                              stop_now=lambda: stop.stop_now(training))
    if result.status == "interrupted" and not training.blocks_done:
        raise _Interrupted  # stopped before its first chunk ended: nothing to keep
    return result


def _train_members(members, spec, console, stop: _Stop):
    """Seeds or a sweep: each group of members sharing a shape trains as one program. An
    interrupted sweep keeps the members trained so far (the members of programs not
    started are left out); it cannot be resumed."""
    from mlspec.runtime.results import combine
    from mlspec.runtime.training import Training
    from mlspec.semantics.structure import groups

    results = []
    shapes = groups(members)
    for i, group in enumerate(shapes, 1):
        if stop:
            break
        training = Training(group[0].program, updates=PROGRESS_UPDATES, members=group)
        stop.phase = "training"
        stop.kept = lambda: bool(results) or training.blocks_done > 0
        label = f"{training.program.name} [{len(group)} members, program {i}/{len(shapes)}]"
        with _Progress(console, training, label) as bar:

            def progress(done):
                bar.update(done)
                stop.pause("training")

            training.run(on_progress=progress, should_stop=lambda: bool(stop),
                         stop_now=lambda: stop.stop_now(training))
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
    from mlspec.runtime.runs import RunFolderError, save_run

    try:
        save_run(result, out, plots=False, **where)
        return True
    except (RunFolderError, OSError) as exc:
        _err(located(out, f"could not write the run folder: {exc}"))
    try:
        fallback = Path(tempfile.mkdtemp(prefix=f"mlspec-{result.program.name}-"))
        save_run(result, fallback, should_stop=_plots_stop(stop), **where)
    except (RunFolderError, OSError) as exc:
        _err(located(fallback, f"could not write the run to this temporary folder either: "
                               f"{exc}"))
    else:
        _err(f"the trained run was written to {fallback} instead")
    return False


def _draw_plots(result, out: Path, stop: _Stop) -> bool:
    """Draws the plots into the written run folder, each while no signal has come, and
    says in the manifest which are missing. False if they could not be written."""
    from mlspec.runtime.plots import draw_all
    from mlspec.runtime.runs import RunFolderError, mark_plots_drawn

    try:
        _, missing = draw_all(result, out, should_stop=_plots_stop(stop))
        mark_plots_drawn(out, missing)
    except (RunFolderError, OSError) as exc:
        _err(f"error: could not write the plots to {out}: {exc}\n(the rest of the run "
             f"folder is written; draw them with: mlspec plot {out})")
        return False
    if missing:
        _err(f"the run is {result.status.replace('_', ' ')}; its plots were not drawn "
             f"(draw them with: mlspec plot {out})")
    return True


def _report(result, out: Path, stop: _Stop, args, members) -> int:
    """Says how the run ended; the exit code follows its status."""
    from rich.console import Console

    if result.status == "interrupted":
        if members:
            finished = sum(m.status != "interrupted" for m in result.members)
            _err(f"interrupted: {finished} of {len(members)} runs finished, "
                 f"{len(result.members) - finished} partly trained; wrote {out}/\n"
                 "(a sweep cannot be resumed: run the spec again)")
        else:
            _err(f"interrupted at step {result.steps_done}; wrote {out}/\n"
                 f"(continue with: mlspec run --resume {out})")
            if result.evaluated_at != result.steps_done:
                _err(f"its metrics.json holds the last evaluation, of step "
                     f"{result.evaluated_at}: the chunk in progress\nwas dropped before the "
                     f"parameters of step {result.steps_done} were evaluated")
        return EXIT_INTERRUPTED
    if result.status == "diverged":
        _err(f"{located(args.file or args.resume, result.divergence_message())}\n"
             f"wrote {out}/")
        return EXIT_FAILURE
    if args.quiet:
        return 0
    if members:
        _members_table(result)
    else:
        if result.best_step is not None:  # early_stop(restore_best=true)
            print(f"{result.program.name}: metrics of the best evaluation, step "
                  f"{result.best_step} of {result.steps_done}\n(its parameters are returned)")
        else:
            print(f"{result.program.name}: final metrics after {result.steps_done} steps")
        Console().print(_metrics_table(result.metrics_by_split()))
        if result.status == "early_stopped":
            print(f"early stopping at step {result.stopped_at}")
    print(f"wrote {out}/")
    return 0


def _members_table(result) -> None:
    from rich.console import Console

    from mlspec.runtime.tables import members_tables

    console = Console()
    for table in members_tables(result, console.width):
        console.print(table)


def _saved(args):
    from mlspec.runtime.reload import load_run

    return load_run(args.run_dir, member=args.member)


def cmd_predict(args) -> int:
    from mlspec.runtime.predict import predictions_frame, rows_for

    result = _saved(args)
    if args.proba and result.program.data.info.target != "class":
        _err(located(args.run_dir, "--proba needs a run of class targets; this run "
                     f"predicts real values (its loss is {result.trainer.data_loss.kind})"))
        return EXIT_SPEC_ERROR
    x, _ = rows_for(result, args.data, need_targets=False)
    frame = predictions_frame(result, x, proba=args.proba)
    text = frame.to_csv(index=False)
    if args.out:
        from mlspec.files import atomic_write
        from mlspec.runtime.runs import RUN_FILES

        if Path(args.out).resolve() in {(Path(args.run_dir) / f).resolve() for f in RUN_FILES}:
            _err(located(args.out, "this is a file of the run folder itself; write the "
                                   "predictions elsewhere\n(the run would no longer load)"))
            return EXIT_FAILURE
        try:
            atomic_write(Path(args.out), text)
        except OSError as exc:
            _err(located(args.out, f"cannot write the predictions: {exc.strerror or exc}"))
            return EXIT_FAILURE
    else:
        sys.stdout.write(text)
    return 0


def cmd_evaluate(args) -> int:
    from rich.console import Console

    from mlspec.runtime.predict import evaluate, rows_for

    result = _saved(args)
    data = args.data
    if data is None:
        data = "test" if "test" in result.program.data.splits else "valid"
    x, y = rows_for(result, data, need_targets=True)
    metrics = evaluate(result, x, y)
    if result.evaluated_at is not None and result.evaluated_at != result.params_step:
        why = "it diverged there and trained on to the end of that chunk" \
            if result.status == "diverged" else \
            "a second signal dropped the chunk in progress before these were evaluated"
        _err(f"note: these are the metrics of the parameters saved in {args.run_dir}, of "
             f"step {result.params_step};\nits metrics.json holds those of step "
             f"{result.evaluated_at}\n({why})")
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
    from mlspec.runtime.plots import draw_all
    from mlspec.runtime.runs import full_history, locked, mark_plots_drawn

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

    from mlspec.semantics.resolve import resolve
    from mlspec.semantics.summary import layer_rows

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
        from mlspec.compiler.sizes import optimizer_state_bytes

        table.add_row(f"optimizer state ({program.train.optimizer.name})", "",
                      f"{optimizer_state_bytes(program):,} bytes")
    Console().print(table)
    return 0


def cmd_export(args) -> int:
    from mlspec.semantics.canonical import resolved_spec
    from mlspec.semantics.resolve import resolve

    program = resolve(_load(args.file))  # a SpecError is reported by main()
    if args.program:
        print(program.model_dump_json(indent=2))
    else:  # the spec IR, every default filled in: loadable wherever a .mlspec is
        print(resolved_spec(program).model_dump_json(indent=2, exclude_none=True))
    return 0


def cmd_schema(args) -> int:
    from mlspec.syntax.ir import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))
    return 0


def cmd_list(args) -> int:
    from shutil import get_terminal_size

    from mlspec.catalog.tables import KINDS, overview_text, terminal_text, unknown_kind

    if args.kind is not None and args.kind not in KINDS:
        _err(f"error: mlspec list: {unknown_kind(args.kind)}")
        return EXIT_SPEC_ERROR
    width = min(get_terminal_size((80, 24)).columns, 100)
    sys.stdout.write(overview_text(width) if args.kind is None
                     else terminal_text(KINDS[args.kind](), width))
    return 0


def cmd_lsp(args) -> int:
    from mlspec.editor.lsp import serve

    serve()
    return 0


def _member_option(parser) -> None:
    parser.add_argument("--member", type=int, default=0, metavar="K",
                        help="for seeds or a sweep: the member in row K of the run's table "
                             "(metrics.json's members), 0 being the best and the default")


class _CommandParser(argparse.ArgumentParser):
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


def _version() -> str:
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


class _VersionAction(argparse.Action):
    """`--version`, its text made only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the versions of mlspec "
                         "and of the jax, flax and optax it uses, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


DOCS = """\
The language, with an example of every feature: docs/language.md; the commands and a
tutorial: README.md (both in the mlspec repository). `mlspec COMMAND --help` describes a
command."""

RUN_DIR_HELP = "a run folder written by `mlspec run` (its --out, or runs/MODEL_NAME)"
SPEC_HELP = "a spec: a .mlspec file, or a .json file of the spec IR (as `export` writes)"
DATA_HELP = ("rows to predict: a split of the run's own data (train, valid or test), a .csv "
             "or .npz file read as the run's training data was, or a data source call such "
             "as 'hill(n=100, seed=5)'")
PREDICT_COLUMNS = """\
output: a CSV table, one row per row of DATA, in its order:
  prediction            for a run of class targets: the predicted class, by its name
                        where the run's targets had names (a CSV's text labels, iris'
                        species), else by its id
  prediction_0, ...     for a run of real targets: the predicted value of each target
  proba_NAME, ...       with --proba, for a run of class targets: each class's
                        probability (softmax of the logits, or sigmoid of the one logit
                        of sigmoid_binary_cross_entropy), named as the prediction column
                        names the class"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlspec", epilog=DOCS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_CommandParser)

    p = sub.add_parser("check", help="parse and validate specs; print only errors",
                       description="Parses and validates specs (every member of a sweep "
                                   "too); prints nothing but errors. A file of params and "
                                   "blocks only is checked as a library (as `import` reads "
                                   "it).")
    p.add_argument("files", nargs="+", metavar="FILE", help=SPEC_HELP + "; one or more")
    p.add_argument("--resolved", action="store_true",
                   help="print each spec with every default filled in")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("run", help="train a spec",
                       description="Trains a spec and writes a run folder: history.csv, "
                                   "metrics.json, the spec as run, the trained state and "
                                   "plots.")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help=SPEC_HELP + "; needed unless --resume is given")
    p.add_argument("--out", help="output folder (default runs/MODEL_NAME, numbered if taken)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (no FILE)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (hidden=128) or a setting (train.steps=100); "
                        "repeat it for several: --set hidden=128 --set train.steps=100")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("predict", help="predictions of a trained run for new rows",
                       description="Predictions of a trained run for the rows of DATA.",
                       epilog=PREDICT_COLUMNS,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--out", help="write the predictions CSV here instead of stdout")
    p.add_argument("--proba", action="store_true",
                   help="also write each class's probability (classification runs only)")
    _member_option(p)
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("evaluate", help="metrics of a trained run on its test split or DATA",
                       description="Measures the metrics of a trained run's saved parameters "
                                   "on DATA, or on the run's own test split (else its valid "
                                   "split), and prints them as a table (or JSON).")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("data", nargs="?", metavar="DATA",
                   help="as for predict, with targets; default: the run's test split, else "
                        "its valid split")
    p.add_argument("--json", action="store_true", help="print JSON")
    _member_option(p)
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("plot", help="redraw the plots of a run folder",
                       description="Draws every plot of a run folder again, from its saved "
                                   "history and state, into the folder (also those that a "
                                   "signal left out); --member draws a member's own.")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    _member_option(p)
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("fmt", help="rewrite specs in canonical form",
                       description="Rewrites .mlspec files in place in canonical form "
                                   "(layout, spacing, alignment), keeping their comments; "
                                   "with --check, only lists the files that would change.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="a .mlspec file to rewrite in place; one or more")
    p.add_argument("--check", action="store_true", help="only report files that would change")
    p.set_defaults(fn=cmd_fmt)

    p = sub.add_parser("summary", help="layers, output shapes and parameter counts",
                       description="Prints a spec's model layer by layer: each layer's output "
                                   "shape and parameter count, with the totals (without "
                                   "importing jax).")
    p.add_argument("file", metavar="FILE", help=SPEC_HELP)
    p.add_argument("--optimizer-state", action="store_true",
                   help="also the bytes of the optimizer state (imports jax to ask optax)")
    p.set_defaults(fn=cmd_summary)

    p = sub.add_parser("export", help="the validated spec as JSON",
                       description="Validates a spec and prints it as JSON: the spec IR with "
                                   "every default filled in (which `check` and `run` read "
                                   "back), or with --program the typed program.")
    p.add_argument("file", metavar="FILE", help=SPEC_HELP)
    p.add_argument("--json", action="store_true", default=True,
                   help="the spec IR in JSON, defaults filled in (the default)")
    p.add_argument("--program", action="store_true",
                   help="the typed program instead: catalogue entries, shapes, data facts")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("schema", help="the JSON Schema of the spec IR",
                       description="Prints the JSON Schema of the spec IR, the form of the "
                                   ".json specs that `export` writes and the commands read.")
    p.set_defaults(fn=cmd_schema)

    p = sub.add_parser("list", help="the catalogue: layers, losses, metrics, optimizers, "
                                    "schedules, sources, with arguments and defaults",
                       description="Lists the catalogue that specs name: layers, losses, "
                                   "metrics, optimizers, schedules and data sources, each "
                                   "with its arguments and their defaults.")
    p.add_argument("kind", nargs="?", metavar="KIND",
                   help="layers, losses, metrics, optimizers, schedules or sources "
                        "(default: every kind with its names)")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("lsp", help="run the .mlspec language server on stdin/stdout",
                       description="Runs the language server of .mlspec files for editors "
                                   "(diagnostics as `check` finds them, and more), speaking "
                                   "the Language Server Protocol on stdin and stdout.")
    p.add_argument("--stdio", action="store_true",
                   help="accepted for editor clients; stdio is the only transport")
    p.set_defaults(fn=cmd_lsp)
    parser.description = textwrap.fill(f"The `mlspec` command: {', '.join(sub.choices)}.", 88)
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
    if _LEFT_RUNNING:  # everything is written: only a dropped chunk is left to wait for
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    # Nothing is left to collect: the interpreter's last garbage collections would walk
    # every object of jax, flax, pandas and matplotlib (about half a second after a run).
    gc.freeze()
    sys.exit(code)


def _subject(args, exc: Exception) -> str:
    """The file or folder that an error without a place in a source is about: the rows of
    DATA for a data error in a file of rows, else the run folder, else the spec."""
    from mlspec.catalog.sources import DataError

    data = getattr(args, "data", None)
    if isinstance(exc, DataError) and data and Path(data).suffix.lower() in (".csv", ".npz"):
        return data
    for name in ("run_dir", "resume", "file"):
        if getattr(args, name, None):
            return str(getattr(args, name))
    return f"mlspec {args.command}"


def _main(args) -> int:
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a full disk behind stdout is reported here, not at exit
        return code
    except SpecError as exc:
        _err(exc.render(_subject(args, exc)))
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`mlspec predict ... | head`)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - let Python's exit flush nowhere
        return 0
    except Exception as exc:  # a run folder or data file that cannot be used
        from mlspec.catalog.sources import DataError
        from mlspec.runtime.runs import RunFolderError, RunFolderWriteError

        if isinstance(exc, (DataError, RunFolderError)):
            _err(located(_subject(args, exc), str(exc)))
            return EXIT_FAILURE if isinstance(exc, RunFolderWriteError) else EXIT_SPEC_ERROR
        if isinstance(exc, OSError):  # most often stdout on a full disk (`> /dev/full`)
            what = "it" if exc.filename else "the output"
            _err(located(exc.filename or "<stdout>",
                         f"cannot write {what}: {exc.strerror or exc}"))
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more to flush there
            return EXIT_FAILURE
        raise


if __name__ == "__main__":
    entry()
