"""`mlspec run`: trains a spec (or resumes an interrupted run) and writes its run folder,
showing the progress and stopping where nothing is lost on a signal (`mlspec.cli.stop`).
The training itself is `mlspec.runtime.runner.Run`'s, as `mlspec.run`'s is."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from mlspec.cli import distributed as many
from mlspec.cli import stop as stops
from mlspec.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_SPEC_ERROR, err
from mlspec.cli.shared import SPEC_HELP, load
from mlspec.syntax.errors import SpecError, located

PROGRESS_UPDATES = 50
"""Chunks of each program's training: the progress shown and the moments a stop can come."""


def cmd_run(args) -> int:
    # The handlers come first, before jax is imported or any data is read, so that no
    # signal is lost or kills the process without a word.
    with stops.signals_caught(args.quiet) as stop:
        try:
            stop.pause("start")
            with contextlib.ExitStack() as held:
                code = _run(args, stop, held)
        except stops.Interrupted:  # a second signal before `_run` could catch it
            err("interrupted before any training; nothing was written")
            code = EXIT_INTERRUPTED
    if stop.left_running:
        stops.mark_left_running()
    return code


def add_run(sub) -> None:
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
    p.add_argument("--mlflow", metavar="URI", help="also log the run to this MLflow tracking "
                   "store (file:PATH, sqlite:///FILE, http://HOST:PORT; the extra 'mlflow')")
    many.add_options(p)
    p.set_defaults(fn=cmd_run, catches_signals=True)  # they stop its training


def _parse_sets(items: list[str]) -> dict:
    from mlspec.semantics.overrides import parse_override

    return dict(parse_override(item) for item in items)


def _run(args, stop: stops.Stop, held: contextlib.ExitStack) -> int:
    from rich.console import Console

    from mlspec.runtime.runner import Run, plan
    from mlspec.runtime.runs import (
        RunFolderError,
        RunFolderWriteError,
        locked,
        numbered_folder,
        prepare_folder,
        require_unused,
    )

    if not args.resume and not args.file:  # a usage error, worded as argparse's
        err("mlspec run: error: give the FILE of a spec to train (or --resume RUN_DIR)")
        return EXIT_SPEC_ERROR
    try:
        spread, main = many.begin(args)  # jax.distributed first, before any other jax use
    except many.Unusable as exc:
        err(str(exc))
        return EXIT_SPEC_ERROR
    stop.quiet = stop.quiet or not main  # only process 0 writes and prints
    console = Console(stderr=True, quiet=args.quiet or not main)
    tracker = _mlflow_client(args.mlflow) if args.mlflow and main else None
    if tracker is False:
        return EXIT_SPEC_ERROR
    out = created = None
    try:
        with many.starting(spread):
            if args.resume:
                from mlspec.runtime.checkpoints import has_checkpoints
                from mlspec.runtime.reload import resume_training

                out = Path(args.resume)
                if main and ((out / "manifest.json").is_file() or has_checkpoints(out)):
                    held.enter_context(locked(out))
                run = Run.resumed(resume_training(out))
            else:
                planned = plan(load(args.file), _parse_sets(args.set))
                if spread and planned.program.train.checkpoint_every is not None:
                    from mlspec.semantics.settings import setting_place

                    raise SpecError.at(setting_place(planned.run_spec.train.get(
                        "checkpoint_every")), "checkpoint_every with --distributed is not "
                        "built yet (it needs orbax's multi-host checkpointing); leave it out")
                if main:
                    out = Path(args.out) if args.out else \
                        numbered_folder(Path("runs") / planned.program.name)
                    created = not out.exists()
                    prepare_folder(out)
                    require_unused(out)
                    held.enter_context(locked(out))
                stop.check()
                run = Run(planned, updates=PROGRESS_UPDATES)
                if not run.single and planned.program.train.checkpoint_every is not None:
                    err("note: checkpoint_every: seeds and sweeps save no checkpoints yet "
                        "(an interrupted one is run again)")
                if run.single and main:
                    from mlspec.runtime.checkpoints import CheckpointError, attach

                    try:
                        attach(run.training, out)
                    except CheckpointError as exc:
                        raise RunFolderWriteError(str(exc)) from None
            stop.kept = run.kept
            stop.pause("loaded")
            stop.check()
        result = _train(run, console, stop, spread)
    except SpecError as exc:
        err(exc.render(args.file or args.resume))
        if created:
            _discard(out)
        return EXIT_SPEC_ERROR
    except RunFolderError as exc:  # the folder to write (or to resume) cannot be used
        err(located(out or args.resume, str(exc)))
        return EXIT_FAILURE if isinstance(exc, RunFolderWriteError) else EXIT_SPEC_ERROR
    except stops.Interrupted:
        err("interrupted before any training; nothing was written")
        if created:
            _discard(out)
        return EXIT_INTERRUPTED
    except many.Unstarted as exc:
        err(f"error: {exc}")
        if created:
            _discard(out)
        return EXIT_SPEC_ERROR
    if not main:  # process 0 writes the folder and says how the run ended
        return {"interrupted": EXIT_INTERRUPTED, "diverged": EXIT_FAILURE}.get(result.status, 0)
    stop.phase = "writing" if result.status == "interrupted" else "saving"
    stop.pause("trained")
    if not _save(result, out, stop, **run.resume_point()):
        return EXIT_FAILURE
    # The results first, the plots after them: the final metrics never wait for drawing.
    code = report(result, out, stop, args, None if run.single else
                  run.plan.members or result.members)  # a search's trials are its members
    if result.status != "interrupted" and not _draw_plots(result, out, stop):
        return EXIT_FAILURE
    if tracker is not None and not _log_mlflow(tracker, result, out, args.mlflow,
                                                  args.quiet):
        return EXIT_FAILURE
    return code


def _mlflow_client(uri: str):
    """The MLflow client for `--mlflow URI`, before any training; False (said why) when
    mlflow is not installed or the store cannot be used."""
    from mlspec.runtime.tracking import MLFLOW_MISSING, TrackingError, mlflow_client

    try:
        return mlflow_client(uri)
    except ImportError:
        err(f"error: {MLFLOW_MISSING}")
    except TrackingError as exc:
        err(f"error: cannot use the MLflow tracking store {uri}: {exc}")
    return False


def _log_mlflow(client, result, out: Path, uri: str, quiet: bool) -> bool:
    from mlspec.runtime.tracking import TrackingError, log_mlflow

    try:
        run_id = log_mlflow(client, result, out)
    except TrackingError as exc:
        err(f"error: could not log the run to MLflow at {uri}: {exc}\n(the run folder "
            f"{out}/ is written)")
        return False
    if not quiet:
        err(f"logged to MLflow at {uri}: run {run_id}")
    return True


def _train(run, console, stop: stops.Stop, spread: bool = False):
    """The run's training with its progress shown, each program's under its name (and
    for members, which program of how many), stopping as the signals say (`spread`:
    over several processes, at the end of a chunk, all together)."""
    from mlspec.cli.progress import Progress

    shown: list[Progress] = []

    @contextlib.contextmanager
    def following(training, i: int, programs: int):
        stop.phase = "training"
        n = len(training.members)
        label = training.program.name if run.single else \
            f"{training.program.name} [{n} member{'s' * (n != 1)}, program {i}/{programs}]"
        with Progress(console, training, label) as bar:
            shown.append(bar)
            bar.update(training)
            yield

    saves = 0

    def progress(training) -> None:
        nonlocal saves
        shown[-1].update(training)
        stop.pause("training")
        if training.checkpoints is not None and training.checkpoints.saves != saves:
            saves = training.checkpoints.saves
            stop.pause(f"checkpoint {saves}")  # the Nth save handed to orbax

    result = run.train(following=following, on_progress=progress,
                       should_stop=many.stopping(lambda: bool(stop), spread),
                       stop_now=None if spread else stop.stop_now)
    checkpoints = run.training.checkpoints if run.single else None
    if checkpoints is not None and checkpoints.error:
        err(f"warning: the checkpoints could not be written (the run trained on without "
            f"them): {checkpoints.error[:300]}")
    if result is None:  # stopped before its first chunk ended: nothing to keep
        raise stops.Interrupted
    return result


def _discard(out: Path) -> None:
    """Removes the folder this run made, which holds nothing but its lock."""
    with contextlib.suppress(OSError):
        (out / ".lock").unlink()
        out.rmdir()


def _save(result, out: Path, stop: stops.Stop, **where) -> bool:
    """Writes the run folder but its plots (`_draw_plots` draws them, once the results
    are printed). One that cannot be written (a full disk) falls back to a new temporary
    folder, plots and all, so that nothing trained is lost; that is still a failure
    (False)."""
    from mlspec.runtime.runs import RunFolderError, save_run

    try:
        save_run(result, out, plots=False, **where)
        return True
    except (RunFolderError, OSError) as exc:
        err(located(out, f"could not write the run folder: {exc}"))
    try:
        fallback = Path(tempfile.mkdtemp(prefix=f"mlspec-{result.program.name}-"))
        save_run(result, fallback, should_stop=stop.plots_stop(), **where)
    except (RunFolderError, OSError) as exc:
        err(located(fallback, f"could not write the run to this temporary folder either: "
                              f"{exc}"))
    else:
        err(f"the trained run was written to {fallback} instead")
    return False


def _draw_plots(result, out: Path, stop: stops.Stop) -> bool:
    """Draws the plots into the written run folder, each while no signal has come, and
    says in the manifest which are missing. False if they could not be written."""
    from mlspec.runtime.plots import draw_all
    from mlspec.runtime.reading import mark_plots_drawn
    from mlspec.runtime.runs import RunFolderError

    try:
        _, missing = draw_all(result, out, should_stop=stop.plots_stop())
        mark_plots_drawn(out, missing)
    except (RunFolderError, OSError) as exc:
        err(f"error: could not write the plots to {out}: {exc}\n(the rest of the run "
            f"folder is written; draw them with: mlspec plot {out})")
        return False
    if missing:
        err(f"the run is {result.status.replace('_', ' ')}; its plots were not drawn "
            f"(draw them with: mlspec plot {out})")
    return True


def report(result, out: Path, stop: stops.Stop, args, members) -> int:
    """Says how the run ended; the exit code follows its status. `members`: those of
    seeds or a sweep, None for a single run."""
    from rich.console import Console

    from mlspec.cli.tables import metrics_table, print_members

    if result.status == "interrupted":
        if members:
            finished = sum(m.status != "interrupted" for m in result.members)
            err(f"interrupted: {finished} of {len(members)} runs finished, "
                f"{len(result.members) - finished} partly trained; wrote {out}/\n"
                "(a sweep cannot be resumed: run the spec again)")
        else:
            err(f"interrupted at step {result.steps_done}; wrote {out}/\n"
                f"(continue with: mlspec run --resume {out})")
            if result.evaluated_at != result.steps_done:
                err(f"its metrics.json holds the last evaluation, of step "
                    f"{result.evaluated_at}: the chunk in progress\nwas dropped before the "
                    f"parameters of step {result.steps_done} were evaluated")
        return EXIT_INTERRUPTED
    if result.status == "diverged":
        err(f"{located(args.file or args.resume, result.divergence_message())}\n"
            f"wrote {out}/")
        return EXIT_FAILURE
    if args.quiet:
        return 0
    if members:
        print_members(result)
    else:
        if result.best_step is not None:  # early_stop(restore_best=true)
            print(f"{result.program.name}: metrics of the best evaluation, step "
                  f"{result.best_step} of {result.steps_done}\n(its parameters are returned)")
        else:
            print(f"{result.program.name}: final metrics after {result.steps_done} steps")
        Console().print(metrics_table(result.metrics_by_split()))
        if result.status == "early_stopped":
            print(f"early stopping at step {result.stopped_at}")
    print(f"wrote {out}/")
    return 0
