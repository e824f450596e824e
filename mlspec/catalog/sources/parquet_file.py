"""`parquet(path, target)`: the columns of a Parquet file, read with pyarrow, taken as
`csv` takes a CSV file's."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mlspec.catalog.sources.base import SOURCES, DataError, data_file, short
from mlspec.catalog.sources.tabular import Tabular


@SOURCES.register
class Parquet(Tabular):
    """The numeric feature columns, `categorical` and `text` columns and a `target` column
    of a Parquet file (read with pyarrow), with the arguments and rules of `csv`; a null
    cell, an empty text or one of `na_values` is missing."""

    kind: Literal["parquet"] = "parquet"

    def _frame(self, base: Path):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError("reading Parquet needs pyarrow, which is not installed "
                            "(pip install pyarrow)") from None
        import numpy as np
        import pandas as pd
        import pyarrow

        path = data_file(base, self.path)
        try:
            frame = pq.read_table(path).to_pandas()
        except (OSError, ValueError, MemoryError, pyarrow.ArrowException) as exc:
            raise DataError(f"cannot read '{self.path}' as Parquet: "
                            f"{str(exc).strip()[:200]}") from None
        header = [str(c) for c in frame.columns]
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise DataError(f"'{self.path}' has the column '{short(repeated[0])[1:-1]}' "
                            "more than once")
        frame.columns = header
        if frame.empty:
            raise DataError(f"'{self.path}' has no rows")
        missing = {"", *self.na_values}
        cells = {}
        for column in self.typed_columns:
            if column in frame.columns:
                cells[column] = np.array(
                    [None if pd.isna(v) or str(v) in missing else str(v)
                     for v in frame[column].astype(object)], dtype=object)
        if self.na_values:  # a text cell among them in a numeric or target column
            for column in frame.columns:
                if frame[column].dtype.kind in "OSU" and column not in cells:
                    masked = frame[column].mask(frame[column].astype(str)
                                                .isin(self.na_values))
                    try:
                        frame[column] = pd.to_numeric(masked)
                    except (TypeError, ValueError):  # text, as a CSV's would stay
                        frame[column] = masked
        return frame, cells, True
