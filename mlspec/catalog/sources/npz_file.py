"""`npz(path)`: arrays `x` and `y` (or other names) of a NumPy archive."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mlspec.catalog.sources.base import (
    SOURCES,
    DataError,
    DataInfo,
    Source,
    Task,
    arrays_info,
    check_rows,
    data_file,
    encode_targets,
    feature_array,
)
from mlspec.syntax.errors import did_you_mean


@SOURCES.register
class Npz(Source):
    """Arrays `x` and `y` (or other names) of a NumPy archive. Integer or boolean `y` are
    class ids, real `y` a regression target, unless `task` says otherwise; a text `y`
    holds class names (ids in their sorted order)."""

    kind: Literal["npz"] = "npz"
    path: str
    x: str = "x"
    y: str = "y"
    task: Task = "auto"

    def _read(self, base: Path, targets: bool):
        import zipfile
        import zlib

        import numpy as np

        path = data_file(base, self.path)
        unreadable = (OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
                      MemoryError, zipfile.BadZipFile, zlib.error)
        try:
            archive = np.load(path, allow_pickle=False)
        except unreadable as exc:
            raise DataError(f"cannot read '{self.path}' as a NumPy archive: "
                            f"{str(exc)[:200]}") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"'{self.path}' holds one array (a .npy file), not an archive of "
                            f"named arrays; write it with np.savez(path, {self.x}=..., "
                            f"{self.y}=...)")
        with archive:
            names = (self.x, self.y) if targets else (self.x,)
            missing = [k for k in names if k not in archive.files]
            # only its arrays are named: the other members of a zip that is no NumPy
            # archive (a document renamed .npz) are never listed
            arrays = [n[:-4] for n in archive.zip.namelist() if n.endswith(".npy")]
            if missing and not arrays:
                raise DataError(f"'{self.path}' has no array '{missing[0]}': it holds no "
                                "NumPy arrays (is it a .npz archive?)")
            if missing:
                raise DataError(f"'{self.path}' has no array '{missing[0]}'"
                                f"{did_you_mean(missing[0], arrays)}")
            try:
                arrays = [archive[k] for k in names]
            except unreadable as exc:
                if "allow_pickle" in str(exc):  # numpy's hint would be to unpickle it
                    raise DataError(f"'{self.path}' holds Python objects (pickled), which "
                                    "mlspec never loads: save numbers or text "
                                    "arrays") from None
                raise DataError(f"cannot read '{self.path}' as a NumPy archive: "
                                f"{str(exc)[:200]}") from None
        for key, array in zip(names, arrays, strict=True):
            if not isinstance(array, np.ndarray):  # a member that is not a .npy file
                raise DataError(f"cannot read '{self.path}' as a NumPy archive: its member "
                                f"'{key}' is not a NumPy array")
        return arrays + [None] * (2 - len(arrays))

    def _arrays(self, base: Path, fit: DataInfo | None = None, targets: bool = True):
        x, y = self._read(base, targets)
        check_rows(x, y, self.path, f"'{self.x}'", f"'{self.y}'")
        x = feature_array(x, f"array '{self.x}' of '{self.path}'")
        if y is None:
            return x, None, None
        return (x, *encode_targets(y, self.task, f"array '{self.y}' of '{self.path}'", fit))

    def info(self, base):
        return arrays_info(*self._arrays(base))

    def load(self, base):
        x, y, _ = self._arrays(base)
        return x, y

    def rows(self, base, fit, targets=True):
        x, y, _ = self._arrays(base, fit, targets)
        return x, y
