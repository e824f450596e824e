"""`csv(path, target)`: the numeric feature columns, the categorical and text columns and
a target column of a CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mlspec.catalog.sources.base import SOURCES, DataError, data_file, short
from mlspec.catalog.sources.tabular import Tabular

_CSV_CACHE: dict[tuple, tuple[object, bool]] = {}


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
class Csv(Tabular):
    """Numeric feature columns (`features`, by default every column but the target and the
    `categorical` and `text` ones) and a `target` column of a CSV file; a text target
    becomes class ids (in sorted order of the names), an integer one is taken as class ids
    and a real one as a regression target unless `task` says otherwise. Each `categorical`
    column is an input of ids, each `text` column one of `seq_len` token ids (the
    `max_tokens` most frequent words of the train split); `missing` says what a missing
    cell (an empty one, or one of `na_values`) does: `"error"`, `"drop"` its row or
    `"fill"` it."""

    kind: Literal["csv"] = "csv"

    def _read(self, path: Path):
        import pandas as pd

        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, self.na_values, self.typed_columns)
        if key in _CSV_CACHE:
            return _CSV_CACHE[key]
        try:
            frame = pd.read_csv(path, na_values=list(self.na_values))
            # pandas renames a repeated column ("a" becomes "a.1"): read the header as is
            header = [str(c) for c in pd.read_csv(path, header=None, nrows=1, dtype=str,
                                                  keep_default_na=False).iloc[0]]
            typed = [c for c in self.typed_columns if c in header]
            # a typed column's cells as written: missing only where empty or in na_values
            cells = pd.read_csv(path, usecols=typed, dtype=str, keep_default_na=False,
                                na_values=["", *self.na_values]) if typed else None
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
        cells = {} if cells is None else {
            str(c): cells[c].astype(object).where(cells[c].notna(), None).to_numpy()
            for c in cells.columns}
        if len(_CSV_CACHE) >= 8:  # a long-lived process (the language server) stays small
            _CSV_CACHE.pop(next(iter(_CSV_CACHE)))
        _CSV_CACHE[key] = frame, cells, named
        return _CSV_CACHE[key]

    def _frame(self, base: Path):
        frame, cells, named = self._read(data_file(base, self.path))
        if frame.empty:
            raise DataError(f"'{self.path}' has no rows")
        return frame, cells, named

    def _no_header(self) -> DataError:
        return _no_header(self.path)
