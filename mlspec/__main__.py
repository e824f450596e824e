"""`python -m mlspec` and the `mlspec` command (pyproject's console script).

A signal that arrives while the command starts (its imports take a good part of a
second) ends it with one line and exit code 130, not Python's KeyboardInterrupt
traceback (nor a silent death by SIGTERM): the handler goes in first, and the command's
own (`mlspec.cli`) take over once they are installed."""

import os
import signal


def _stop_at_once(signum, frame) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)  # cli.EXIT_INTERRUPTED, without importing it


def entry() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_at_once)
    if os.environ.get("MLSPEC_TEST_PAUSE_AT") == "import":  # for tests: where this is
        os.write(2, b"importing\n")
    from mlspec.cli import entry as command

    command()


if __name__ == "__main__":
    entry()
