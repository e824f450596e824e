"""Typed data section -> NumPy arrays for each split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlspec.catalog.sources import DataError
from mlspec.semantics.data import DataSection, SplitInPlace, size_rows


@dataclass(frozen=True)
class Dataset:
    """Arrays per split (`train`, `valid`, `test`), each a pair (x, y)."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __getitem__(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return self.splits[split]

    def __contains__(self, split: str) -> bool:
        return split in self.splits


def load_data(data: DataSection) -> Dataset:
    """Makes or reads every split; splits one source in place when asked; standardizes
    features with the train split's statistics."""
    folder = Path(data.folder)
    if isinstance(data, SplitInPlace):
        x, y = data.source.load(folder)
        order = np.random.default_rng(data.split_seed).permutation(len(x))
        n_valid = size_rows(data.valid, len(x))
        n_test = size_rows(data.test, len(x))
        # `check` refuses these with the rows it knows; the file may have changed since
        if n_valid + n_test >= len(x):
            raise DataError(f"the valid and test sizes ({n_valid} + {n_test} rows) leave no "
                             f"train rows out of {len(x)}")
        for split, size, rows in (("valid", data.valid, n_valid), ("test", data.test, n_test)):
            if size and not rows:
                raise DataError(f"'{split}' = {size} takes no rows of {len(x)}")
        cuts = {"train": order[n_valid + n_test:], "valid": order[:n_valid],
                "test": order[n_valid:n_valid + n_test]}
        splits = {name: (x[idx], y[idx]) for name, idx in cuts.items() if len(idx)}
    else:
        # Every split is encoded as the train source (`data.info`): its class ids, its
        # feature columns in its order.
        splits = {name: getattr(data, name).rows(folder, data.info) for name in data.splits}
    if not data.standardize:
        return Dataset(splits)
    x_train = splits["train"][0]
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    splits = {name: (((x - mean) / std).astype(np.float32), y)
              for name, (x, y) in splits.items()}
    return Dataset(splits, mean, std)
