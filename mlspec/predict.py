"""Using a trained run on rows: `mlspec predict` and `mlspec evaluate`.

DATA may be a split of the run's own data (`train`, `valid`, `test`), a CSV or NPZ file,
or a data-source call in spec syntax (`hill(n=100, seed=5)`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .data.sources import SOURCES, Csv, DataError, Npz
from .dsl.errors import SpecError


def _run_sources(result):
    data = result.program.data
    return [s for s in (data.source, data.train, data.valid, data.test) if s is not None]


def _from_csv(result, path: Path, need_targets: bool):
    """Feature columns as in training (a csv source's own), the target if present."""
    csv_source = next((s for s in _run_sources(result) if isinstance(s, Csv)), None)
    if csv_source is not None:
        source = Csv(path=str(path.resolve()), target=csv_source.target,
                     features=csv_source.features, task=csv_source.task)
        try:
            frame, features = source._frame(Path("/"))
        except DataError as exc:
            if need_targets or f"no column '{csv_source.target}'" not in str(exc):
                raise
            frame = pd.read_csv(path)
            features = list(csv_source.features or frame.columns)
        x = frame[features].to_numpy(np.float32)
        y = None
        if csv_source.target in frame.columns:
            y = frame[csv_source.target].to_numpy()
            names = result.program.data.info.class_names
            if names is not None:
                lookup = {n: i for i, n in enumerate(names)}
                unknown = sorted({str(v) for v in y} - set(lookup))
                if unknown:
                    raise DataError(f"'{path}' has target values the run never saw: "
                                    f"{unknown[:5]}")
                y = np.array([lookup[str(v)] for v in y], np.int32)
        return x, y
    frame = pd.read_csv(path)
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
    return frame[numeric].to_numpy(np.float32), None


def rows_for(result, data: str, *, need_targets: bool):
    """(x, y) for DATA; y is None where the rows carry no targets."""
    if data in ("train", "valid", "test"):
        from .data.loading import load_data

        # The same rows as in training, in their own units (the run's normalizer applies).
        dataset = load_data(result.program.data.model_copy(update={"standardize": False}))
        if data not in dataset:
            raise DataError(f"the run's data has no '{data}' split")
        return dataset[data]
    path = Path(data)
    if path.suffix.lower() == ".csv":
        if not path.exists():
            raise DataError(f"cannot read '{data}': no such file")
        x, y = _from_csv(result, path, need_targets)
    elif path.suffix.lower() == ".npz":
        npz = next((s for s in _run_sources(result) if isinstance(s, Npz)), Npz(path=data))
        source = npz.model_copy(update={"path": str(path.resolve())})
        x, y = source.load(Path("/"))
    else:
        from .catalog.registry import instantiate
        from .dsl.ir import Call
        from .dsl.parser import parse_expr

        call = parse_expr(data, file="DATA")
        if not isinstance(call, Call):
            raise SpecError.at(call.span, "DATA should be a split name, a .csv or .npz file, "
                                          "or a data source call such as hill(n=100)")
        source = instantiate(SOURCES, call)
        x, y = source.load(Path(result.program.data.folder))
    if need_targets and y is None:
        raise DataError(f"'{data}' has no target column, so it cannot be evaluated")
    return x, y


def predictions_frame(result, x) -> pd.DataFrame:
    """Predictions as a table: class names where the run's targets had them."""
    pred = result.predict(x)
    names = result.program.data.info.class_names
    if pred.ndim == 1:
        values = [names[i] for i in pred] if names else pred
        return pd.DataFrame({"prediction": values})
    return pd.DataFrame({f"prediction_{i}": pred[:, i] for i in range(pred.shape[1])})


def evaluate(result, x, y) -> dict[str, float]:
    """The run's split metrics (loss included) on rows (x, y)."""
    import jax
    import jax.numpy as jnp

    x = np.asarray(x, np.float32)
    if result.normalizer is not None:
        x = (x - result.normalizer[0]) / result.normalizer[1]
    values = jax.jit(result.trainer.evaluate)(result.state, jnp.asarray(x), jnp.asarray(y))
    return {k: float(values[k]) for k in result.trainer.split_metrics}
