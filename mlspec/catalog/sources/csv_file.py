"""`csv(path, target)`: the numeric feature columns and a target column of a CSV file."""

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
    data_file,
    encode_targets,
    feature_array,
    short,
)
from mlspec.syntax.errors import did_you_mean

_CSV_CACHE: dict[tuple[str, int, int], tuple[object, bool]] = {}


def _names_columns(header: list[str]) -> bool:
    """Whether a file's first line is a CSV header, whose names an error may repeat: two
    or more names that are no numbers. Any other first line (of a password file, of notes,
    of a CSV without a header, whose first row is data) is never quoted."""
    return len(header) >= 2 and all(_column_name(cell) for cell in header)


def _column_name(cell: str) -> bool:
    if not 0 < len(cell) <= 100 or not cell.isprintable() or \
            not any(ch.isalpha() for ch in cell):
        return False
    try:
        float(cell)  # "nan", "inf" and "1e5" hold letters and are numbers
    except ValueError:
        return True
    return False


def _no_header(path: str) -> DataError:
    return DataError(f"'{path}' has no CSV header: its first line does not name two or more "
                     "columns (a CSV source needs one, such as x1,x2,label); is it a CSV "
                     "file?")


@SOURCES.register
class Csv(Source):
    """Numeric feature columns (`features`, by default every column but the target) and a
    `target` column of a CSV file; a text target becomes
    class ids (in sorted order of the names), an integer one is taken as class ids and a
    real one as a regression target unless `task` says otherwise."""

    kind: Literal["csv"] = "csv"
    path: str
    target: str
    features: tuple[str, ...] | None = None
    task: Task = "auto"

    def _frame(self, base: Path):
        import pandas as pd

        path = data_file(base, self.path)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _CSV_CACHE:
            try:
                frame = pd.read_csv(path)
                # pandas renames a repeated column ("a" becomes "a.1"): read the header as is
                header = [str(c) for c in pd.read_csv(path, header=None, nrows=1, dtype=str,
                                                      keep_default_na=False).iloc[0]]
            except pd.errors.EmptyDataError:
                raise DataError(f"'{self.path}' is empty") from None
            except (OSError, ValueError, MemoryError) as exc:  # ParserError, UnicodeError
                raise DataError(f"cannot read '{self.path}' as CSV: "
                                f"{str(exc).strip()[:200]}") from None
            named = _names_columns(header)
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                raise DataError(f"'{self.path}' has the column '{short(repeated[0])[1:-1]}' "
                                "more than once") if named else _no_header(self.path)
            if len(_CSV_CACHE) >= 8:  # a long-lived process (the language server) stays small
                _CSV_CACHE.pop(next(iter(_CSV_CACHE)))
            _CSV_CACHE[key] = frame, named
        frame, named = _CSV_CACHE[key]
        if frame.empty:
            raise DataError(f"'{self.path}' has no rows")
        return frame, named

    def _arrays(self, base: Path, fit: DataInfo | None = None, targets: bool = True):
        """Features, targets (None unless asked for), class names and feature names."""
        import numpy as np

        frame, named = self._frame(base)
        columns = [str(c) for c in frame.columns]
        features = list(self.features or (fit and fit.feature_names)
                        or [c for c in columns if c != self.target])
        missing = [c for c in (*features, *([self.target] if targets else ())) if c not in columns]
        if missing and not named:  # its first line is no header: never repeat it
            raise _no_header(self.path)
        if len(missing) == 1:
            raise DataError(f"'{self.path}' has no column '{missing[0]}'"
                            f"{did_you_mean(missing[0], columns)}")
        if missing:
            raise DataError(f"'{self.path}' lacks the columns "
                            + ", ".join(f"'{c}'" for c in missing[:10])
                            + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""))
        if not features:
            raise DataError(f"'{self.path}' has no feature columns besides '{self.target}'")
        for name in features:
            column = frame[name]
            if column.dtype.kind not in "biuf":
                raise DataError(f"column '{name}' of '{self.path}' is not numeric "
                                f"(it holds values such as {short(column.iloc[0])}); "
                                f"list the numeric columns in features=[...]")
            if column.isna().any():
                raise DataError(f"column '{name}' of '{self.path}' has missing values")
        x = feature_array(frame[features].to_numpy(np.float64),
                          f"the feature columns of '{self.path}'")
        if not targets:
            return x, None, None, tuple(features)
        if frame[self.target].isna().any():
            raise DataError(f"target column '{self.target}' of '{self.path}' has missing "
                            "values")
        what = f"target column '{self.target}' of '{self.path}'"
        y, names = encode_targets(frame[self.target].to_numpy(), self.task, what, fit)
        return x, y, names, tuple(features)

    def info(self, base):
        x, y, names, features = self._arrays(base)
        return arrays_info(x, y, names, features)

    def load(self, base):
        x, y, _, _ = self._arrays(base)
        return x, y

    def rows(self, base, fit, targets=True):
        x, y, _, _ = self._arrays(base, fit, targets)
        return x, y
