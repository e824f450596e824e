"""`npz(path)`: arrays `x` and `y` (or other names) of a NumPy archive; with
`inputs=["image", "meta"]`, several input arrays, each an input named after it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mlspec.catalog.sources.base import (
    SOURCES,
    DataError,
    DataInfo,
    InputInfo,
    Source,
    Task,
    arrays_info,
    check_rows,
    data_file,
    encode_targets,
    feature_array,
    several_targets,
)
from mlspec.catalog.sources.typed import input_name
from mlspec.syntax.errors import did_you_mean


@SOURCES.register
class Npz(Source):
    """Arrays `x` and `y` (or other names) of a NumPy archive. Integer or boolean `y` are
    class ids, real `y` a regression target, unless `task` says otherwise; a text `y`
    holds class names (ids in their sorted order). With `inputs`, those arrays are the
    model's inputs (each named after its array) and `x` is not read."""

    kind: Literal["npz"] = "npz"
    path: str
    x: str = "x"
    y: str | tuple[str, ...] = "y"
    """The target array, or several (`y=["digit", "parity"]`), each the target of the
    output of its name."""
    task: Task = "auto"
    inputs: tuple[str, ...] = ()

    @property
    def target_arrays(self) -> tuple[str, ...]:
        return (self.y,) if isinstance(self.y, str) else self.y

    @property
    def input_arrays(self) -> tuple[str, ...]:
        return self.inputs or (self.x,)

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
                            f"named arrays; write it with np.savez(path, "
                            f"{self.input_arrays[0]}=..., {self.target_arrays[0]}=...)")
        with archive:
            names = (*self.input_arrays, *(self.target_arrays if targets else ()))
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
        return dict(zip(names, arrays, strict=True))

    def _check_inputs(self) -> None:
        given: dict[str, str] = {}
        for i, array in enumerate(self.inputs):
            name = input_name(array)
            if array in self.target_arrays:
                raise DataError(f"'{array}' is the target array; it cannot also be an input",
                                "inputs", i)
            if name in given:
                raise DataError(f"the arrays '{given[name]}' and '{array}' both give the "
                                f"input name '{name}'", "inputs", i)
            given[name] = array

    def _arrays(self, base: Path, fit: DataInfo | None = None, targets: bool = True):
        """(x, y, class names): x the one input's features, or with `inputs` a dict of
        them by input name."""
        self._check_inputs()
        if not self.target_arrays:
            raise DataError("y=[] names no target array", "y")
        read = self._read(base, targets)
        ys = {a: read[a] for a in self.target_arrays} if targets else {}
        xs = {}
        for array in self.input_arrays:
            for target, y in ys.items() or [(self.target_arrays[0], None)]:
                check_rows(read[array], y, self.path, f"'{array}'", f"'{target}'")
            if len(read[array]) != len(read[self.input_arrays[0]]):
                raise DataError(f"'{self.path}': '{self.input_arrays[0]}' has "
                                f"{len(read[self.input_arrays[0]])} rows and '{array}' has "
                                f"{len(read[array])}; they must match")
            xs[input_name(array) if self.inputs else "x"] = feature_array(
                read[array], f"array '{array}' of '{self.path}'")
        x = xs if len(xs) > 1 else next(iter(xs.values()))
        if not ys:
            return x, None, None
        y, names = {}, {}
        for array, values in ys.items():
            name = input_name(array)
            own = fit.target_info(name) if fit is not None and fit.outputs else fit
            y[name], names[name] = encode_targets(values, self.task,
                                                  f"array '{array}' of '{self.path}'", own)
        if len(y) == 1:
            return x, next(iter(y.values())), next(iter(names.values()))
        return x, y, names

    def info(self, base):
        x, y, names = self._arrays(base)
        xs = x if isinstance(x, dict) else {input_name(self.input_arrays[0])
                                            if self.inputs else "x": x}
        first = next(iter(xs.values()))
        inputs = tuple(InputInfo(name=name, shape=a.shape[1:]) for name, a in xs.items())
        if isinstance(y, dict):
            return several_targets(y, names, {input_name(a): a for a in self.target_arrays},
                                   features=first.shape[1:], rows=len(first), inputs=inputs)
        info = arrays_info(first, y, names)
        return info.model_copy(update={"inputs": inputs}) if self.inputs else info

    def load(self, base):
        x, y, _ = self._arrays(base)
        return x, y

    def rows(self, base, fit, targets=True):
        x, y, _ = self._arrays(base, fit, targets)
        return x, y
