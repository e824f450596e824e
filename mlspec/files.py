"""Writing files so that a crash never leaves one half-written."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes | str) -> None:
    """Writes to a temporary name beside `path`, then renames it into place, so a crash
    never leaves a half-written file. A symlink's target is written (the link stays); a
    device or a pipe in its place (`/dev/stdout`, a FIFO) is written as a stream, never
    replaced; a folder in its place is an IsADirectoryError."""
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        kind = None
    if kind is not None and stat.S_ISDIR(kind):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if kind is not None and not stat.S_ISREG(kind):
        with open(path, mode) as f:
            f.write(data)
        return
    target = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; files are the user's to share
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
