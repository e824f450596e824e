"""The data-source catalogue: `hill(n=10000, seed=0)` and friends.

Each source states what it yields (`info`: feature shape, target kind, number of classes)
without generating anything, so `check` can infer shapes cheaply, and makes its arrays in
`load` with NumPy. Features are float32 of shape (n, *features); class targets are int32
ids of shape (n,); real targets are float32 of shape (n, k).

One file per family: `synthetic` (generated from a seed), `bundled` (scikit-learn's
datasets), `csv_file`, `parquet_file` (both `tabular`, whose typed columns `typed` encodes)
and `npz_file`; `base` holds what they share. Adding a source is one
registered class in its family's file (a new family: a file imported below) and a row of
`SOURCE_TABLE` in tests/test_data.py.
"""

from __future__ import annotations

from mlspec.catalog.sources.base import (
    FEW_CLASSES,
    MAX_CLASS_ID,
    SOURCES,
    DataError,
    DataInfo,
    InputInfo,
    Source,
    Task,
)

# isort: off
# The families register their sources in this order, the order `mlspec list` shows them.
from mlspec.catalog.sources.synthetic import Hill, Hyperplane, Linear, Radial
from mlspec.catalog.sources.bundled import BreastCancer, Diabetes, Digits, Iris, Wine
from mlspec.catalog.sources.csv_file import Csv
from mlspec.catalog.sources.parquet_file import Parquet
from mlspec.catalog.sources.npz_file import Npz
# isort: on

__all__ = [
    "FEW_CLASSES", "MAX_CLASS_ID", "SOURCES", "BreastCancer", "Csv", "DataError", "DataInfo",
    "Diabetes", "Digits", "Hill", "Hyperplane", "InputInfo", "Iris", "Linear", "Npz", "Parquet",
    "Radial", "Source", "Task", "Wine",
]
