"""Writing a file never leaves it half-written, and never replaces what is not a file."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from mlspec.files import atomic_write


def test_a_file_is_replaced_whole(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    atomic_write(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary left


def test_a_symlink_stays_and_its_target_is_written(tmp_path):
    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to("real.csv")
    atomic_write(tmp_path / "link.csv", "new")
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real.csv").read_text() == "new"


def test_a_pipe_is_written_as_a_stream_not_replaced(tmp_path):
    """As `--out /dev/stdout` is: a device or a FIFO in the file's place is never swapped
    for a regular file (as root that would replace a device node)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    atomic_write(fifo, "rows\n")
    reader.join(timeout=10)
    assert received == ["rows\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_in_the_files_place_is_an_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, "x")
