"""Using a trained run on rows: `mlspec predict` and `mlspec evaluate`.

DATA may be a split of the run's own data (`train`, `valid`, `test`), a CSV, Parquet or
NPZ file, or a data-source call in spec syntax (`hill(n=100, seed=5)`). Its rows are read
by the same source code as the run's training data, and encoded as the run's targets (and
its categorical and text columns with the run's vocabularies).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlspec.catalog.sources import SOURCES, Csv, DataError, Npz, Parquet
from mlspec.catalog.sources.tabular import Tabular
from mlspec.syntax.errors import SpecError


def _run_sources(result):
    data = result.program.data
    return list(data.sources.values())


FILE_KINDS = {".csv": Csv, ".parquet": Parquet, ".npz": Npz}


def _file_source(result, path: str, kind: type[Csv] | type[Parquet] | type[Npz]):
    """The run's own source of that kind (its target column, feature columns, typed
    columns, array names and task) reading `path` instead (a CSV or Parquet file read as
    the run's tabular source of either kind); without one, a source that reads every
    column as a feature (no target) or the arrays `x` and `y`."""
    sources = _run_sources(result)
    own = next((s for s in sources if isinstance(s, kind)), None)
    if own is None and issubclass(kind, Tabular):
        own = next((s for s in sources if isinstance(s, Tabular)), None)
        if own is not None:
            own = kind(**own.model_dump(exclude={"kind", "span"}))
    if own is not None:
        return own.model_copy(update={"path": path})
    return kind(path=path, target="") if kind is not Npz else Npz(path=path)


SPLITS = ("train", "valid", "test")


def rows_for(result, data: str, *, need_targets: bool):
    """(x, y) for DATA; y is None unless `need_targets`."""
    if data in SPLITS:
        from mlspec.runtime.loading import load_data

        # The same rows as in training, in their own units (the run's normalizer applies).
        dataset = load_data(result.program.data.model_copy(update={"standardize": False}),
                            result.encoding)
        if data not in dataset:
            raise DataError(f"the run's data has no '{data}' split")
        return dataset[data]
    suffix = Path(data).suffix.lower()
    if suffix in FILE_KINDS:
        source = _file_source(result, data, FILE_KINDS[suffix])
        if need_targets and isinstance(source, Tabular) and not source.target:
            raise DataError(f"the run was not trained on a table (CSV or Parquet), so which "
                            f"column of '{data}' holds the targets is unknown; evaluate a "
                            "split, an NPZ file or a data source call")
        return _source_rows(result, source, Path.cwd(), need_targets)
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
    return _source_rows(result, source, Path(result.program.data.folder), need_targets)


def _source_rows(result, source, folder: Path, need_targets: bool):
    info = result.program.data.info
    if isinstance(source, Tabular):
        return source.rows(folder, info, need_targets, result.encoding)
    if info.typed:
        names = ", ".join(i.name for i in info.inputs)
        raise DataError(f"the run's model takes the inputs {names} of a table's columns, "
                        f"which a {source.kind}(...) source does not have; give rows as a "
                        "CSV or Parquet file")
    return source.rows(folder, info, need_targets)


def _width(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"{shape[0]} feature" + ("s" if shape[0] != 1 else "")
    return f"features of shape {list(shape)}"


def model_input(result, x):
    """Rows `x` as the run's model takes them (normalized where the run was): one array,
    or for a model of several inputs a dict of them by input name. Rows of another width,
    or a dict that lacks an input, are a DataError naming both."""
    inputs = result.program.data.info.inputs if result.program.data is not None else ()
    if len(inputs) > 1:
        if not isinstance(x, dict):
            raise DataError(f"the run's model takes the inputs "
                            f"{', '.join(i.name for i in inputs)}: give a dict of their rows")
        lacking = [i.name for i in inputs if i.name not in x]
        if lacking:
            raise DataError(f"the run's model takes the inputs "
                            f"{', '.join(i.name for i in inputs)}; the rows lack "
                            f"{', '.join(lacking)}")
        arrays = {i.name: _one_input(result, i, x[i.name]) for i in inputs}
        rows = {len(a) for a in arrays.values()}
        if len(rows) > 1:
            raise DataError("the inputs' rows differ in number: " + ", ".join(
                f"{name} has {len(a)}" for name, a in arrays.items()))
        return arrays
    if len(inputs) == 1:
        return _one_input(result, inputs[0], x)
    return _floats(result, tuple(result.program.model.input_shape), x)


def _one_input(result, info, x) -> np.ndarray:
    if info.kind != "float":
        return _ids(info, x)
    return _floats(result, tuple(info.shape), x, info.name if info.name != "x" else None)


def _floats(result, expected: tuple[int, ...], x, name: str | None = None) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim == 0 or x.shape[1:] != expected:
        given = "a single value" if x.ndim == 0 else (
            f"a 1-D array of {len(x)} values" if x.ndim == 1 else _width(x.shape[1:]))
        raise DataError(f"the run's model takes rows of {_width(expected)}"
                        + (f" (its input '{name}')" if name else "")
                        + f", but was given {given}"
                        + (f" (for one row, give shape (1, {expected[0]}))"
                           if x.ndim == 1 and len(expected) == 1 else ""))
    if result.normalizer is not None and name is None:  # standardize applies to x only
        mean, std = result.normalizer
        x = (x - mean) / std
    return x


def _ids(info, x) -> np.ndarray:
    """Rows of a category or tokens input: integer ids below its vocabulary."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.shape[1:] != info.shape or x.ndim == 0:
        raise DataError(f"the run's model takes rows of {info.kind} ids of shape "
                        f"{list(info.shape)} (its input '{info.name}'), but was given "
                        f"{x.dtype.name} values of shape {list(x.shape[1:])}")
    if x.size and not 0 <= int(x.min()) <= int(x.max()) < info.vocab:
        raise DataError(f"the input '{info.name}' takes ids 0 to {info.vocab - 1}, but was "
                        f"given ids {int(x.min())} to {int(x.max())}")
    return x.astype(np.int32)


def _check_targets(info, n: int, y: np.ndarray) -> None:
    """Targets as the run's own: class ids (n,) below its number of classes, or real
    values (n, k) of its width. Anything else would broadcast into wrong metrics."""
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


def targets_of(result, n: int, y):
    """The targets of n rows checked as the run's own, in the dtype the run takes; with
    several outputs, a dict of them by output name."""
    info = result.program.data.info
    if info.outputs:
        if not isinstance(y, dict) or set(y) != set(info.target_names):
            raise DataError(f"the run takes the targets {', '.join(info.target_names)}: give "
                            "a dict of them by output name")
        return {name: _targets(info.target_info(name), n, y[name])
                for name in info.target_names}
    return _targets(info, n, y)


def _targets(info, n: int, y) -> np.ndarray:
    y = np.asarray(y)
    _check_targets(info, n, y)
    return y.astype(np.int32 if info.target == "class" else np.float32)


def predictions_frame(result, x, proba: bool = False) -> pd.DataFrame:
    """Predictions as a table: class names where the run's targets had them; with `proba`,
    then a column of each class's probability (`proba_NAME`, or `proba_ID` without names).
    """
    pred = result.predict(x)
    info = result.program.data.info
    if isinstance(pred, dict):  # a column (or one per width) for each output
        frame = pd.DataFrame(index=range(len(next(iter(pred.values())))))
        probabilities = result.probabilities(x) if proba else {}
        for head, values in pred.items():
            names = info.target_info(head).class_names
            if values.ndim > 1:
                for i in range(values.shape[1]):
                    frame[f"{head}_{i}"] = values[:, i]
            else:
                frame[head] = [names[i] for i in values] if names else values
        for head, values in probabilities.items():  # after every prediction
            names = info.target_info(head).class_names
            labels = names or [str(i) for i in range(values.shape[1])]
            for i, label in enumerate(labels):
                frame[f"proba_{head}_{label}"] = values[:, i]
        return frame
    names = info.class_names
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

    from mlspec.compiler.trainer import n_rows

    x = model_input(result, x)
    y = targets_of(result, n_rows(x), y)
    values = jax.jit(result.trainer.evaluate)(result.state, jax.tree.map(jnp.asarray, x),
                                              jax.tree.map(jnp.asarray, y))
    return {k: float(values[k]) for k in result.trainer.split_metrics}
