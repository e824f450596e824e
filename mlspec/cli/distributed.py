"""`mlspec run --distributed`: its options, and the start of `jax.distributed` before any
other use of jax. Process 0 writes the run folder and prints; the others print nothing
but errors. They all start training together, or none does, and stop together: a signal
to any one of them stops every one at the end of the chunk."""

from __future__ import annotations

import contextlib
import os
import re
import sys

TRIO = ("coordinator", "num_processes", "process_id")


def add_options(p) -> None:
    group = p.add_argument_group(
        "many machines", "one data-parallel training over every device of several processes "
        "(`devices = all`); start the same command in each process")
    group.add_argument("--distributed", action="store_true",
                       help="start jax.distributed: from the cluster's environment (SLURM, "
                            "Open MPI, TPU pods), or from the three options below")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="process 0's address and a free port on it, the same in every "
                            "process (implies --distributed)")
    group.add_argument("--num-processes", type=int, metavar="N",
                       help="how many processes train together")
    group.add_argument("--process-id", type=int, metavar="I",
                       help="this process's number, 0 to N-1 (0 writes the run folder)")
    group.add_argument("--distributed-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="how long to wait for every process to start (default 300)")


def usage_error(args) -> str | None:
    """What is wrong with the options (argparse's wording), or None."""
    given = [name for name in TRIO if getattr(args, name) is not None]
    if given and len(given) < len(TRIO):
        missing = [name for name in TRIO if name not in given]
        return (f"{', '.join(_flag(n) for n in given)} needs "
                f"{' and '.join(_flag(n) for n in missing)}: give all of --coordinator, "
                "--num-processes and --process-id, or none of them (then --distributed "
                "reads them from the cluster's environment)")
    if given:
        if not re.fullmatch(r"\S+:\d+", args.coordinator):
            return f"--coordinator {args.coordinator!r}: expected HOST:PORT, e.g. 10.0.0.1:1234"
        if args.num_processes < 1:
            return f"--num-processes {args.num_processes}: expected 1 or more"
        if not 0 <= args.process_id < args.num_processes:
            return (f"--process-id {args.process_id}: expected 0 to "
                    f"{args.num_processes - 1} (--num-processes {args.num_processes})")
    if not args.distributed_timeout > 0:
        return f"--distributed-timeout {args.distributed_timeout:g}: expected seconds above 0"
    return None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Unusable(Exception):
    """Options that cannot be used, or a distributed run that cannot start (exit 2)."""


def begin(args) -> tuple[bool, bool]:
    """Starts `jax.distributed` if the options ask for it: whether they did, and whether
    this process is the one that writes and prints. Raises Unusable for options that do
    not go together or a start that fails; exits (status 2) when the processes do not all
    meet within --distributed-timeout."""
    problem = usage_error(args)
    if problem:
        raise Unusable(f"mlspec run: error: {problem}")
    if not (args.distributed or args.coordinator is not None):
        return False, True
    from mlspec.runtime.distributed import DistributedError, initialize, is_main

    try:
        initialize(args.coordinator, args.num_processes, args.process_id,
                   timeout=args.distributed_timeout)
    except DistributedError as exc:
        raise Unusable(f"error: {exc}") from None
    _native_stdout_off()
    return True, is_main()


def _native_stdout_off() -> None:
    """gloo (jax's CPU collectives) writes a notice of every connection it makes on file
    descriptor 1: what Python prints goes on to the real stdout, through a copy of that
    descriptor, and descriptor 1 itself to the null device."""
    sys.stdout.flush()
    try:
        kept = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no stdout to keep clean
        return
    os.dup2(null, 1)
    os.close(null)
    sys.stdout = os.fdopen(kept, "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors,
                           buffering=1 if os.isatty(kept) else -1)


@contextlib.contextmanager
def starting(on: bool):
    """Around a run's preparation: on leaving it, every process says whether its own
    went well, so that they all go on to train or none does (a process left to train
    alone would wait for the others forever). A process whose preparation failed goes on
    with its own error; the others raise `Unstarted`."""
    if not on:
        yield
        return
    from mlspec.runtime.distributed import agree

    try:
        yield
    except BaseException:
        agree(False)
        raise
    if not agree(True):
        raise Unstarted("another process of this distributed run could not start it "
                        "(its own error says why); nothing was trained")


class Unstarted(Exception):
    """Another process's preparation failed."""


def stopping(should_stop, on: bool):
    """`should_stop` agreed by every process (a collective between chunks): true on all
    of them once it is on any."""
    if not on:
        return should_stop
    from mlspec.runtime.distributed import agree

    return lambda: not agree(not should_stop())
