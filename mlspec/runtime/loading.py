"""Typed data section -> NumPy arrays for each split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlspec.catalog.sources.tabular import Tabular
from mlspec.catalog.sources.typed import Encoding
from mlspec.semantics.data import DataSection, SplitInPlace, split_cuts


@dataclass(frozen=True)
class Dataset:
    """Arrays per split (`train`, `valid`, `test`), each a pair (x, y); x is the single
    input's array, or a dict of arrays by input name. `encoding`: the vocabularies (and
    fill values) of a tabular source's typed columns, fitted on the train split."""

    splits: dict[str, tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    encoding: Encoding | None = None

    def __getitem__(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return self.splits[split]

    def __contains__(self, split: str) -> bool:
        return split in self.splits


def load_data(data: DataSection, encoding: Encoding | None = None) -> Dataset:
    """Makes or reads every split; splits one source in place when asked; encodes typed
    columns with the train split's vocabularies (or the given `encoding`, a run's);
    standardizes the numeric features `x` with the train split's statistics."""
    folder = Path(data.folder)
    if isinstance(data, SplitInPlace):
        source = data.source
        if isinstance(source, Tabular):
            table = source.table(folder)
            cuts = split_cuts(data, table.rows)
            encoding = encoding or source.fit(table, cuts["train"])
            splits = {name: source.encode(table.take(idx), encoding)
                      for name, idx in cuts.items()}
        else:
            x, y = source.load(folder)
            splits = {name: (take(x, idx), take(y, idx))
                      for name, idx in split_cuts(data, rows(x)).items()}
    else:
        # Every split is encoded as the train source (`data.info`): its class ids, its
        # feature columns in its order, its vocabularies.
        if isinstance(data.train, Tabular) and encoding is None:
            encoding = data.train.fit(data.train.table(Path(data.folder)))
        splits = {name: _rows(getattr(data, name), folder, data, encoding)
                  for name in data.splits}
    if not data.standardize or not _has_x(data):
        return Dataset(splits, encoding=encoding)
    x_train = _x(splits["train"][0])
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    splits = {name: (_with_x(x, ((_x(x) - mean) / std).astype(np.float32)), y)
              for name, (x, y) in splits.items()}
    return Dataset(splits, mean, std, encoding)


def rows(x) -> int:
    """The rows of one array, or of a dict of arrays by name (all alike)."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def take(x, index):
    """The rows `index` of one array, or of each array of a dict by name."""
    return {k: v[index] for k, v in x.items()} if isinstance(x, dict) else x[index]


def _rows(source, folder: Path, data: DataSection, encoding: Encoding | None):
    if isinstance(source, Tabular):
        return source.rows(folder, data.info, encoding=encoding or Encoding())
    return source.rows(folder, data.info)


def _has_x(data: DataSection) -> bool:
    return any(i.name == "x" and i.kind == "float" for i in data.info.inputs)


def _x(x):
    return x["x"] if isinstance(x, dict) else x


def _with_x(x, value):
    return {**x, "x": value} if isinstance(x, dict) else value
