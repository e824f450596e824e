"""Using a trained run on rows: `mlspec predict` and `mlspec evaluate`.

DATA may be a split of the run's own data (`train`, `valid`, `test`), a CSV or NPZ file,
or a data-source call in spec syntax (`hill(n=100, seed=5)`). Its rows are read by the
same source code as the run's training data, and encoded as the run's targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlspec.catalog.sources import SOURCES, Csv, DataError, Npz
from mlspec.syntax.errors import SpecError


def _run_sources(result):
    data = result.program.data
    return list(data.sources.values())


def _file_source(result, path: str, kind: type[Csv] | type[Npz]):
    """The run's own source of that kind (its target column, feature columns, array names
    and task) reading `path` instead; without one, a source that reads every CSV column as
    a feature (no target) or the arrays `x` and `y`."""
    own = next((s for s in _run_sources(result) if isinstance(s, kind)), None)
    if own is not None:
        return own.model_copy(update={"path": path})
    return Csv(path=path, target="") if kind is Csv else Npz(path=path)


SPLITS = ("train", "valid", "test")


def rows_for(result, data: str, *, need_targets: bool):
    """(x, y) for DATA; y is None unless `need_targets`."""
    if data in SPLITS:
        from mlspec.runtime.loading import load_data

        # The same rows as in training, in their own units (the run's normalizer applies).
        dataset = load_data(result.program.data.model_copy(update={"standardize": False}))
        if data not in dataset:
            raise DataError(f"the run's data has no '{data}' split")
        return dataset[data]
    info = result.program.data.info
    suffix = Path(data).suffix.lower()
    if suffix in (".csv", ".npz"):
        source = _file_source(result, data, Csv if suffix == ".csv" else Npz)
        if need_targets and isinstance(source, Csv) and not source.target:
            raise DataError(f"the run was not trained on a CSV file, so which column of "
                            f"'{data}' holds the targets is unknown; evaluate a split, an "
                            "NPZ file or a data source call")
        return source.rows(Path.cwd(), info, need_targets)
    from mlspec.catalog.registry import instantiate, name_span, unknown
    from mlspec.syntax.ir import Call, Name
    from mlspec.syntax.parser import parse_expr

    call = parse_expr(data, file="DATA")
    if not isinstance(call, (Call, Name)):
        raise SpecError.at(call.span, "DATA should be a split name, a .csv or .npz file, "
                                      "or a data source call such as hill(n=100)")
    if isinstance(call, Name) and call.name not in SOURCES:  # `vaild`: a split's name too
        raise unknown("split or data source", call.name, name_span(call),
                      [*SPLITS, *SOURCES])
    source = instantiate(SOURCES, call)
    return source.rows(Path(result.program.data.folder), info, need_targets)


def _width(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"{shape[0]} feature" + ("s" if shape[0] != 1 else "")
    return f"features of shape {list(shape)}"


def model_input(result, x) -> np.ndarray:
    """Rows `x` as the run's model takes them (normalized where the run was); rows of
    another width are a DataError naming both."""
    x = np.asarray(x, np.float32)
    expected = tuple(result.program.model.input_shape)
    if x.ndim == 0 or x.shape[1:] != expected:
        given = "a single value" if x.ndim == 0 else (
            f"a 1-D array of {len(x)} values" if x.ndim == 1 else _width(x.shape[1:]))
        raise DataError(f"the run's model takes rows of {_width(expected)}, but was given "
                        f"{given}" + (f" (for one row, give shape (1, {expected[0]}))"
                                      if x.ndim == 1 and len(expected) == 1 else ""))
    if result.normalizer is not None:
        mean, std = result.normalizer
        x = (x - mean) / std
    return x


def _check_targets(result, n: int, y: np.ndarray) -> None:
    """Targets as the run's own: class ids (n,) below its number of classes, or real
    values (n, k) of its width. Anything else would broadcast into wrong metrics."""
    info = result.program.data.info
    if info.target == "class":
        expected, ok = (n,), y.dtype.kind in "iub"
    else:
        expected, ok = (n, info.target_dim), y.dtype.kind in "iubf"
    if y.shape != expected or not ok:
        what = "class ids" if info.target == "class" else "real targets"
        raise DataError(f"the run takes {what} of shape {expected} for these {n} rows, but "
                        f"was given {y.dtype.name} targets of shape {y.shape}")
    if info.target == "class" and n and not 0 <= y.min() <= y.max() < info.classes:
        raise DataError(f"the targets hold class ids {int(y.min())} to {int(y.max())}, but "
                        f"the run has {info.classes} classes (ids 0 to {info.classes - 1})")


def targets_of(result, n: int, y) -> np.ndarray:
    """The targets of n rows checked as the run's own, in the dtype the run takes."""
    y = np.asarray(y)
    _check_targets(result, n, y)
    return y.astype(np.int32 if result.program.data.info.target == "class" else np.float32)


def predictions_frame(result, x, proba: bool = False) -> pd.DataFrame:
    """Predictions as a table: class names where the run's targets had them; with `proba`,
    then a column of each class's probability (`proba_NAME`, or `proba_ID` without names).
    """
    pred = result.predict(x)
    names = result.program.data.info.class_names
    if pred.ndim > 1:
        return pd.DataFrame({f"prediction_{i}": pred[:, i] for i in range(pred.shape[1])})
    frame = pd.DataFrame({"prediction": [names[i] for i in pred] if names else pred})
    if proba:
        probabilities = result.probabilities(x)
        labels = names or [str(i) for i in range(probabilities.shape[1])]
        for i, label in enumerate(labels):
            frame[f"proba_{label}"] = probabilities[:, i]
    return frame


def evaluate(result, x, y) -> dict[str, float]:
    """The run's split metrics (loss included) on rows (x, y)."""
    import jax
    import jax.numpy as jnp

    x = model_input(result, x)
    y = targets_of(result, len(x), y)
    values = jax.jit(result.trainer.evaluate)(result.state, jnp.asarray(x), jnp.asarray(y))
    return {k: float(values[k]) for k in result.trainer.split_metrics}
