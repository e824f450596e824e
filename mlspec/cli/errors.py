"""Exit codes and how the commands report what went wrong.

Exit codes: 0 success; 2 bad input: a mistake in a spec (reported with its location), a
data file or a run folder that cannot be used (a file missing, corrupt, or edited since
the run); 1 a failure while running, a folder that cannot be written (a full disk,
another run holding it); 130 a training interrupted by a signal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlspec.syntax.errors import SpecError, located

EXIT_SPEC_ERROR = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def err(message: str) -> None:
    print(message, file=sys.stderr)


def subject(args, exc: Exception) -> str:
    """The file or folder that an error without a place in a source is about: the rows of
    DATA for a data error in a file of rows, else the run folder, else the spec."""
    from mlspec.catalog.sources import DataError

    data = getattr(args, "data", None)
    if isinstance(exc, DataError) and data and Path(data).suffix.lower() in (".csv", ".parquet",
                                                                         ".npz"):
        return data
    for name in ("run_dir", "resume", "file"):
        if getattr(args, name, None):
            return str(getattr(args, name))
    return f"mlspec {args.command}"


def run_command(args) -> int:
    """Runs the command that `args` name; what it raises is said in a line or a caret, as
    its exit code says: never a traceback for bad input."""
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a full disk behind stdout is reported here, not at exit
        return code
    except SpecError as exc:
        err(exc.render(subject(args, exc)))
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`mlspec predict ... | head`)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - let Python's exit flush nowhere
        return 0
    except Exception as exc:  # a run folder or data file that cannot be used
        from mlspec.catalog.sources import DataError
        from mlspec.runtime.runs import RunFolderError, RunFolderWriteError

        if isinstance(exc, (DataError, RunFolderError)):
            err(located(subject(args, exc), str(exc)))
            return EXIT_FAILURE if isinstance(exc, RunFolderWriteError) else EXIT_SPEC_ERROR
        if isinstance(exc, OSError):  # most often stdout on a full disk (`> /dev/full`)
            what = "it" if exc.filename else "the output"
            err(located(exc.filename or "<stdout>",
                        f"cannot write {what}: {exc.strerror or exc}"))
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more to flush there
            return EXIT_FAILURE
        raise
