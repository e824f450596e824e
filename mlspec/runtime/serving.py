"""A trained run answering requests (`mlspec serve`): rows or named columns become the
model's inputs as `predict` makes them (the run's vocabularies, fill values and
standardization), and one jitted program per bucket of batch sizes answers them.

A request's rows are padded to the next bucket (1, 16, 128, 1024 rows), and a larger
batch runs in slices of the largest, so no request compiles: every bucket is compiled
once, at start (`warm_up`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlspec.catalog.sources import DataError
from mlspec.syntax.errors import did_you_mean

BUCKETS = (1, 16, 128, 1024)


class RequestError(ValueError):
    """A request that does not fit the run: its message is the answer's `error`, with the
    HTTP `status` (422, or 400 for a body that is not JSON)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class Predictor:
    """The run's predictions (and probabilities) for rows as its model takes them."""

    def __init__(self, result, buckets: tuple[int, ...] = BUCKETS):
        import jax

        self.result = result
        self.buckets = buckets
        trainer = result.trainer
        info = result.program.data.info
        if trainer.heads:
            self.losses = {h: trainer.outputs.losses[h] for h in trainer.heads}
            self.infos = {h: info.target_info(h) for h in trainer.heads}
        else:
            self.losses, self.infos = {None: trainer.data_loss}, {None: info}
        self.has_probabilities = any(loss.has_probabilities for loss in self.losses.values())
        """Whether an output has class probabilities (`proba` gives those that have)."""

        def forward(params, model_state, x):
            out, _ = trainer.apply(params, model_state, x)
            outs = out if trainer.heads else {None: out}
            return ({h: loss.predict(outs[h]) for h, loss in self.losses.items()},
                    {h: loss.probabilities(outs[h]) for h, loss in self.losses.items()
                     if loss.has_probabilities})

        self._forward = jax.jit(forward)
        self._params = result.params
        self._model_state = result.state["model_state"]

    def warm_up(self) -> None:
        """Compiles the program of every bucket (rows of zeros: valid ids too)."""
        from mlspec.compiler.graph import example_input

        model = self.result.program.model
        for rows in self.buckets:
            example = example_input(model, rows, make=np.zeros)
            if model.graph is None:  # a chain's input may be ids (a text column)
                example = np.zeros(example.shape, self._dtype())
            self._run(example)

    def _dtype(self):
        info = self.result.program.data.info.inputs[0]
        return np.float32 if info.kind == "float" else np.int32

    def _run(self, x):
        import jax

        pred, proba = self._forward(self._params, self._model_state, x)
        return jax.tree.map(np.asarray, (pred, proba))

    def __call__(self, x) -> tuple[dict, dict]:
        """(predictions, probabilities) by output (None for a single one) for model input
        `x` (an array, or a dict by input name), each of len(x) rows."""
        n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        largest = self.buckets[-1]
        pieces = []
        for start in range(0, max(n, 1), largest):
            count = min(largest, n - start)
            bucket = next(b for b in self.buckets if b >= count)
            piece = _pad(_slice(x, start, count), bucket)
            pred, proba = self._run(piece)
            pieces.append(_cut((pred, proba), count))
        if len(pieces) == 1:
            return pieces[0]
        import jax

        return jax.tree.map(lambda *parts: np.concatenate(parts), *pieces)

    def answer(self, x, proba: bool) -> dict[str, Any]:
        """The JSON answer for model input `x`: `predictions` (class names where the data
        had them), and with `proba` `probabilities` (one list per row, in the order of
        `classes`) of each output that has them."""
        if proba and not self.has_probabilities:
            raise RequestError(_no_probabilities(self.losses, self.infos))
        pred, probabilities = self(x)
        answer: dict[str, Any] = {"predictions": {}}
        for head, values in pred.items():
            names = self.infos[head].class_names
            if names and values.ndim == 1:
                answer["predictions"][head] = np.asarray(names, object)[values].tolist()
            else:
                if values.ndim == 2 and values.shape[1] == 1:
                    values = values[:, 0]
                answer["predictions"][head] = _json_numbers(values)
        if proba:
            answer["probabilities"] = {h: _json_numbers(p) for h, p in probabilities.items()}
            answer["classes"] = {h: list(self.infos[h].class_names or
                                         range(p.shape[1]))
                                 for h, p in probabilities.items()}
        if None in pred:  # a single output: its lists themselves
            answer = {k: v[None] for k, v in answer.items()}
        return answer


def _no_probabilities(losses, infos) -> str:
    if len(losses) > 1:
        return ("\"proba\" needs class probabilities; none of the outputs "
                + ", ".join(f"'{h}'" for h in losses) + " has them")
    loss = losses[None]
    if infos[None].target == "real":
        return "\"proba\" needs class probabilities; this run predicts real values"
    return f"\"proba\" needs class probabilities; this run's loss ({loss.kind}) gives scores"


def _slice(x, start: int, count: int):
    if isinstance(x, dict):
        return {k: v[start:start + count] for k, v in x.items()}
    return x[start:start + count]


def _pad(x, rows: int):
    def pad(a):
        return np.concatenate([a, np.zeros((rows - len(a), *a.shape[1:]), a.dtype)]) \
            if len(a) < rows else a

    return {k: pad(v) for k, v in x.items()} if isinstance(x, dict) else pad(x)


def _cut(tree, count: int):
    import jax

    return jax.tree.map(lambda a: a[:count], tree)


def _json_numbers(values: np.ndarray) -> list:
    """Numbers for JSON: a NaN or an infinity (a diverged model's) is null."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        return np.where(np.isfinite(values), values, None).tolist()
    return values.tolist()


# ---------------------------------------------------------------- requests to inputs


def from_rows(result, rows: list) -> Any:
    """`{"rows": [[...], ...]}`: the numeric features in the data's column order, for a
    model whose only input they are."""
    from mlspec.runtime.predict import model_input

    inputs = result.program.data.info.inputs
    if len(inputs) != 1 or inputs[0].kind != "float":
        raise RequestError("this run's model takes the inputs "
                           + ", ".join(f"'{i.name}'" for i in inputs)
                           + "; give them as named columns: {\"columns\": {"
                           + ", ".join(f'"{c}": [...]' for c in columns_of(result))
                           + "}}")
    if not rows:
        raise RequestError("\"rows\" holds no rows")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        row = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise RequestError(f"the rows differ in width: row 0 has {len(rows[0])} values, "
                           f"row {row} has {len(rows[row])}")
    try:  # beyond float32's range is inf, beyond float64's an OverflowError: not finite
        with np.errstate(over="ignore", invalid="ignore"):
            x = np.asarray(rows, np.float64).astype(np.float32)
    except OverflowError:
        x = np.array([[v if abs(v) < 1e39 else np.inf for v in r] for r in rows], np.float32)
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise RequestError(f"row {row} holds {str(rows[row][col])[:40]} at place {col}; the "
                           "model takes finite numbers (of float32's range)")
    try:
        return model_input(result, x)
    except DataError as exc:
        raise RequestError(str(exc)) from None


def columns_of(result) -> list[str]:
    """The names a request's `columns` take: the data's numeric feature columns (or, for
    data without column names, a numeric input's name), then each categorical or text
    column."""
    info = result.program.data.info
    names = []
    for i in info.inputs:
        if i.kind != "float":
            names.append(i.column or i.name)
        elif i.name == "x" and info.feature_names:
            names.extend(info.feature_names)
        else:
            names.append(i.name)
    return names


def from_columns(result, columns: dict[str, list]) -> Any:
    """`{"columns": {"name": [...], ...}}`: numbers for the numeric columns (null for a
    missing cell where the run fills them), raw text or categorical values (or null) for
    the typed ones, rows of numbers for an input of data without column names."""
    from mlspec.runtime.predict import model_input

    info = result.program.data.info
    wanted = columns_of(result)
    for name in columns:
        if name not in wanted:
            hint = did_you_mean(name, wanted)
            shown = ", ".join(f"'{c}'" for c in wanted[:20]) + (", ..." if len(wanted) > 20
                                                                 else "")
            raise RequestError(f"unknown column '{name}'"
                               + (hint if "did you mean" in hint else "")
                               + f" (the run's model takes the columns {shown})")
    lacking = [c for c in wanted if c not in columns]
    if lacking:
        raise RequestError("the columns lack " + ", ".join(f"'{c}'" for c in lacking))
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise RequestError("the columns differ in length: " + ", ".join(
            f"'{k}' has {len(v)}" for k, v in columns.items()))
    if not lengths or lengths == {0}:
        raise RequestError("the columns hold no rows")
    fills = result.encoding.fill if result.encoding is not None else {}
    filled = fills_missing(result)
    vocabularies = result.encoding.vocabularies if result.encoding is not None else {}
    inputs: dict[str, np.ndarray] = {}
    for i in info.inputs:
        if i.kind != "float":
            vocabulary = vocabularies.get(i.name)
            if vocabulary is None:
                raise RequestError(f"the run saved no vocabulary for the column '{i.column}'")
            inputs[i.name] = vocabulary.encode(_cells(columns[i.column or i.name],
                                                      i.column or i.name, filled))
        elif i.name == "x" and info.feature_names:
            inputs["x"] = np.stack([_numbers(columns[c], c, fills.get(c))
                                    for c in info.feature_names], axis=1)
        else:
            inputs[i.name] = _nested(columns[i.name], i.name)
    x = inputs if len(inputs) > 1 else next(iter(inputs.values()))
    try:
        return model_input(result, x)
    except DataError as exc:
        raise RequestError(str(exc)) from None


def fills_missing(result) -> bool:
    """Whether the run's table fills missing cells (`missing = "fill"`), so that a null
    cell of a request is one too."""
    from mlspec.catalog.sources.tabular import Tabular

    return any(isinstance(s, Tabular) and s.missing == "fill"
               for s in result.program.data.sources.values())


def _cells(values: list, column: str, missing_allowed: bool) -> np.ndarray:
    """A categorical or text column's cells as text (an object array; None where
    missing): strings, or whole numbers written as text (a category of numbers)."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return np.array(values, object)
    for row, value in enumerate(values):
        if value is None and not missing_allowed:
            raise RequestError(f"column '{column}' has a missing value at row {row}, which "
                               "the run does not fill (missing = \"fill\")")
        if value is not None and type(value) not in (str, int):
            raise RequestError(f"column '{column}' holds {type(value).__name__} "
                               f"{str(value)[:40]!r} at row {row}; its cells are text (or "
                               "whole numbers)")
    return np.array([v if v is None or isinstance(v, str) else str(v) for v in values],
                    object)


def _numbers(values: list, column: str, fill: float | None) -> np.ndarray:
    """A numeric column's cells as float32; null is a missing cell, filled with `fill`
    (None: the run fills none). Anything but a number or null, and a number beyond
    float32's range, is a RequestError naming its row."""
    kinds = set(map(type, values))
    if not kinds <= {int, float, type(None)}:
        row, value = next((r, v) for r, v in enumerate(values)
                          if type(v) not in (int, float, type(None)))
        raise RequestError(f"column '{column}' holds {type(value).__name__} "
                           f"{str(value)[:40]!r} at row {row}; it is a numeric column")
    if type(None) in kinds:
        if fill is None:
            row = next(r for r, v in enumerate(values) if v is None)
            raise RequestError(f"column '{column}' has a missing value at row {row}, "
                               "which the run does not fill (missing = \"fill\")")
        values = [fill if v is None else v for v in values]
    try:  # beyond float32's range is inf, beyond float64's an OverflowError
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(values, np.float64).astype(np.float32)
    except OverflowError:
        out = np.array([v if abs(v) < 1e39 else np.inf for v in values], np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.argmax(bad))
        raise RequestError(f"column '{column}' holds {str(values[row])[:40]} at row {row}; "
                           "the model takes finite numbers (of float32's range)")
    return out


def _nested(values: list, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, np.float32)
    except (ValueError, TypeError):
        raise RequestError(f"the input '{name}' takes rows of numbers, all of one "
                           "shape") from None
    if not np.isfinite(array).all():
        raise RequestError(f"the input '{name}' holds a number that is not finite")
    return array
