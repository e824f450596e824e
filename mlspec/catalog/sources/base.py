"""What every data source is: the facts it states before loading (`DataInfo`), the
`Source` entry with its `info`, `load` and `rows`, the `SOURCES` registry, and how arrays
read from a file are checked and encoded as training takes them (float32 features, int32
class ids, float32 real targets), each mistake a `DataError` that says which."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from mlspec.catalog.registry import Entry, Registry


class DataError(ValueError):
    """A data file that cannot be used; reported at the source's place in the spec, or at
    its `argument` (`categorical=[...]`; `item`: the place in that list) where one is to
    blame."""

    def __init__(self, message: str, argument: str | None = None, item: int | None = None):
        super().__init__(message)
        self.argument, self.item = argument, item


class InputInfo(BaseModel):
    """One input that a source yields: `x` (the numeric features), or one per categorical
    or text column, named after it."""

    model_config = ConfigDict(frozen=True)

    name: str
    shape: tuple[int, ...]
    kind: Literal["float", "category", "tokens"] = "float"
    vocab: int | None = None
    """Ids a category or tokens input takes (0 to vocab - 1)."""
    column: str | None = None
    """The column it is read from (categorical and text inputs)."""


class TargetInfo(BaseModel):
    """One of several targets (`target=["price", "sold"]`): what the output of its name
    is trained against."""

    model_config = ConfigDict(frozen=True)

    name: str
    """The output it is for: its column's name as an input's is (see `input_name`)."""
    column: str
    target: Literal["class", "real"]
    classes: int | None = None
    target_dim: int = 1
    class_names: tuple[str, ...] | None = None


class DataInfo(BaseModel):
    """What a source yields, known before any data is made."""

    model_config = ConfigDict(frozen=True)

    features: tuple[int, ...]
    target: Literal["class", "real"]
    classes: int | None = None
    """Number of classes for class targets."""
    target_dim: int = 1
    """Width of real targets."""
    class_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    """The feature columns of a CSV source, in order."""
    rows: int | None = None
    """How many rows it yields, for `check` to split and size them; None where unknown."""
    inputs: tuple[InputInfo, ...] = ()
    """Its inputs, in order; `x` of shape `features` unless said otherwise. `features` is
    the single input's shape (with several: that of `x`, or else of the first)."""

    outputs: tuple[TargetInfo, ...] = ()
    """With several targets, each one by its output's name, in order (the fields above
    are then the first's); empty for a single target."""

    @model_validator(mode="after")
    def _plain_x(self):
        if not self.inputs:  # frozen: set once, as it is made
            object.__setattr__(self, "inputs", (InputInfo(name="x", shape=self.features),))
        return self

    def target_info(self, name: str) -> DataInfo:
        """The data as the output `name` sees it: its target's task, classes and names."""
        target = next(t for t in self.outputs if t.name == name)
        return self.model_copy(update={
            "target": target.target, "classes": target.classes,
            "target_dim": target.target_dim, "class_names": target.class_names,
            "outputs": ()})

    @property
    def target_names(self) -> tuple[str, ...]:
        """The targets' names where there are several, else ()."""
        return tuple(t.name for t in self.outputs)

    @property
    def typed(self) -> bool:
        """Whether any input is not the numeric features `x`."""
        return any(i.kind != "float" for i in self.inputs)

    @property
    def binary(self) -> bool:
        return self.target == "class" and self.classes == 2


if TYPE_CHECKING:
    import numpy as np

    Arrays = tuple[np.ndarray, np.ndarray]


class Source(Entry):
    def info(self, base: Path) -> DataInfo:
        raise NotImplementedError

    def load(self, base: Path) -> Arrays:
        raise NotImplementedError

    def rows(self, base: Path, fit: DataInfo, targets: bool = True):
        """(x, y) encoded as the training data `fit` (a run's, or the train split's for
        the other splits): its task, class names, number of classes and target width; y
        is None when not asked for."""
        x, y = self.load(base)
        if not targets:
            return x, None
        what = f"the targets of {self.kind}(...)"
        own = self.info(base)
        if own.target != fit.target:
            kinds = {"class": "class ids", "real": "real values"}
            raise DataError(f"{what} are {kinds[own.target]}, but the training "
                            f"data's are {kinds[fit.target]}")
        if own.class_names is not None:  # its ids stand for its names: matched by name
            import numpy as np

            y = np.asarray(own.class_names, dtype=object)[y]
        return x, encode_targets(y, fit.target, what, fit)[0]


SOURCES: Registry[type[Source]] = Registry("data source")


def class_ids(y: np.ndarray) -> np.ndarray:
    import numpy as np

    return y.astype(np.int32)


def real_targets(y: np.ndarray) -> np.ndarray:
    import numpy as np

    y = y.astype(np.float32)
    return y[:, None] if y.ndim == 1 else y


Task = Literal["auto", "class", "real"]

MAX_CLASS_ID = 2**31 - 2
"""Class ids are int32, and so is their count (the largest id + 1)."""
FEW_CLASSES = 1000
"""Up to this many classes are allowed however few the rows; beyond it, a class id may not
exceed the number of rows (ids that large do not number classes 0, 1, 2, ...)."""

_HOLDS = {"U": "text", "S": "bytes", "O": "Python objects", "V": "structured records",
          "c": "complex numbers", "M": "dates", "m": "time spans"}


def short(value) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)  # 'a', not np.str_('a')
    return text if len(text) <= 40 else text[:37] + "..."


def holds(a: np.ndarray) -> str:
    return _HOLDS.get(a.dtype.kind, str(a.dtype))


def data_file(base: Path, name: str) -> Path:
    """The regular file `name` (relative to `base`), or a DataError saying why not."""
    try:
        path = (base / name).resolve()
        exists, regular = path.exists(), path.is_file()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte, ...
        raise DataError(f"cannot read '{name}': {exc}") from None
    if not exists:
        raise DataError(f"cannot read '{name}': no such file {path}")
    if not regular:
        what = "a directory" if path.is_dir() else "not a regular file"
        raise DataError(f"cannot read '{name}': {path} is {what}")
    return path


def finite_float32(a: np.ndarray, what: str) -> np.ndarray:
    """float32 values of a numeric array; NaN, infinities and values beyond float32 are
    data errors (training on them would only look like a diverging learning rate)."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        out = a.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = a[where].item()
        problem = f"the value {value!r}" if not np.isfinite(value) \
            else f"{value!r}, too large for float32"
        raise DataError(f"{what} holds {problem} (at row {where[0]}"
                        + (f", column {where[1]}" if len(where) > 1 else "") + "); "
                        "values must be finite numbers")
    return out


def feature_array(x: np.ndarray, what: str) -> np.ndarray:
    """float32 features of shape (n, *features); a 1-D array is one feature per row."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{what} holds {holds(x)}; features must be numbers")
    if x.ndim == 1:
        x = x[:, None]
    if 0 in x.shape[1:]:
        raise DataError(f"{what} has shape {x.shape}: its rows hold no features")
    return finite_float32(x, what)


def encode_targets(y: np.ndarray, task: str, what: str, fit: DataInfo | None = None):
    """Targets as training takes them, and class names: int32 class ids (n,) or float32
    real targets (n, k). With `fit` (a run's data), encoded as that run's targets."""
    if fit is not None:
        task = fit.target
    if y.dtype.kind not in "biufOUS":
        raise DataError(f"{what} holds {holds(y)}; targets must be numbers or text labels")
    if y.ndim > 2:
        raise DataError(f"{what} has shape {y.shape}; targets must be one value per row or "
                        "a table of real values (rows, k)")
    if task == "auto":
        task = "class" if y.dtype.kind in "buiOUS" else "real"
        if task == "class" and y.ndim == 2 and y.shape[1] != 1:
            raise DataError(f"{what} is a table of {y.shape[1]} integer columns; a class "
                            f"target is one id per row (give task=real for {y.shape[1]} "
                            "real targets)")
    if task == "class":
        if y.ndim == 2:
            if y.shape[1] != 1:
                raise DataError(f"{what} has {y.shape[1]} columns; a class target is one "
                                "id per row")
            y = y[:, 0]
        return _encode_classes(y, what, fit)
    if y.dtype.kind not in "biuf":
        raise DataError(f"{what} is not numeric, so it cannot be a real target")
    y = finite_float32(y, what)
    y = y[:, None] if y.ndim == 1 else y
    if fit is not None and y.shape[1] != fit.target_dim:
        raise DataError(f"{what} has {y.shape[1]} target columns but the training data has "
                        f"{fit.target_dim}")
    return y, None


def _encode_classes(y: np.ndarray, what: str, fit: DataInfo | None = None):
    """Class ids for a target column: text labels in sorted order (or as the training
    data `fit` named them), integers as they are."""
    import numpy as np

    if fit is not None and fit.class_names is not None and y.dtype.kind in "biuf":
        # the training data's classes are names: numbers here are labels to look up by
        # name (a column of "1", "2" reads as integers), never ids taken as they are
        y = np.array([str(v.item() if hasattr(v, "item") else v) for v in y], dtype=object)
    if y.dtype.kind in "OUS":
        labels = np.char.decode(y, "utf-8", "backslashreplace") if y.dtype.kind == "S" \
            else y.astype(str)
        if fit is None:
            names, ids = np.unique(labels, return_inverse=True)
            return ids.astype(np.int32), tuple(str(n) for n in names)
        if fit.class_names is None:
            raise DataError(f"{what} holds text labels such as {short(labels[0])}, but the "
                            f"training data's classes are the ids 0 to {fit.classes - 1}")
        lookup = {name: i for i, name in enumerate(fit.class_names)}
        unknown = sorted(set(labels) - lookup.keys())
        if unknown:
            raise DataError(f"{what} has labels the training data does not have: "
                            f"{', '.join(map(short, unknown[:5]))}")
        return np.array([lookup[label] for label in labels], np.int32), fit.class_names
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise DataError(f"{what} has non-integer values; class targets must be ids "
                        "0, 1, 2, ... (or give task=real)")
    if y.size:
        low, high = int(y.min()), int(y.max())
        if low < 0:
            raise DataError(f"{what} has negative values; class ids start at 0")
        if high > MAX_CLASS_ID:
            raise DataError(f"{what} has the class id {high}, which does not fit a 32-bit "
                            "integer; class ids must be 0, 1, 2, ...")
        if fit is None and high >= max(len(y), FEW_CLASSES):
            raise DataError(f"{what} has the class id {high} in only {len(y)} rows; class "
                            f"ids must be 0, 1, 2, ... (more than {FEW_CLASSES} classes, and "
                            "more classes than rows, mean they are not)")
        if fit is not None and high >= fit.classes:
            raise DataError(f"{what} has the class id {high}, but the training data has "
                            f"{fit.classes} classes (ids 0 to {fit.classes - 1})")
    return y.astype(np.int32), fit.class_names if fit is not None else None


def check_rows(x: np.ndarray, y: np.ndarray | None, name: str, x_name: str, y_name: str) -> None:
    """Both arrays hold the same positive number of rows."""
    for array, label in ((x, x_name), (y, y_name)):
        if array is not None and array.ndim == 0:
            raise DataError(f"'{name}': {label} is a single value, not an array of rows")
    if len(x) == 0:
        raise DataError(f"'{name}' has no rows")
    if y is not None and len(x) != len(y):
        raise DataError(f"'{name}': {x_name} has {len(x)} rows and {y_name} has {len(y)}; "
                        "they must match")


def target_fields(y: np.ndarray, names) -> dict:
    """The DataInfo fields of one encoded target: its task, classes or width."""
    import numpy as np

    if y.dtype == np.int32:
        classes = len(names) if names else int(y.max()) + 1
        return {"target": "class", "classes": max(classes, 2), "class_names": names}
    return {"target": "real", "target_dim": y.shape[1]}


def several_targets(ys: dict, names: dict, columns: dict, **common) -> DataInfo:
    """The DataInfo of several targets (by output name): the first's fields on top."""
    outputs = tuple(TargetInfo(name=name, column=columns[name], **target_fields(y, names[name]))
                    for name, y in ys.items())
    first = outputs[0].model_dump(include={"target", "classes", "target_dim", "class_names"})
    return DataInfo(**first, outputs=outputs, **common)


def arrays_info(x: np.ndarray, y: np.ndarray, names, feature_names=None) -> DataInfo:
    import numpy as np

    if y.dtype == np.int32:
        classes = len(names) if names else int(y.max()) + 1
        return DataInfo(features=x.shape[1:], target="class", classes=max(classes, 2),
                        class_names=names, feature_names=feature_names, rows=len(x))
    return DataInfo(features=x.shape[1:], target="real", target_dim=y.shape[1],
                    feature_names=feature_names, rows=len(x))
