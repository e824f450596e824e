"""The data-source catalogue: `hill(n=10000, seed=0)` and friends.

Each source states what it yields (`info`: feature shape, target kind, number of classes)
without generating anything, so `check` can infer shapes cheaply, and makes its arrays in
`load` with NumPy. Features are float32 of shape (n, *features); class targets are int32
ids of shape (n,); real targets are float32 of shape (n, k).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt

from mlspec.catalog.registry import Entry, Registry
from mlspec.syntax.errors import did_you_mean


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
        return x, _targets(y, fit.target, what, fit)[0]


SOURCES: Registry[type[Source]] = Registry("data source")


def _classes(y: np.ndarray) -> np.ndarray:
    import numpy as np

    return y.astype(np.int32)


def _real(y: np.ndarray) -> np.ndarray:
    import numpy as np

    y = y.astype(np.float32)
    return y[:, None] if y.ndim == 1 else y


@SOURCES.register
class Linear(Source):
    """1-D `x ~ N(0, 1)` and `y = intercept + slope*x + noise*N(0, 1)`."""

    kind: Literal["linear"] = "linear"
    n: PositiveInt
    intercept: float = 3.0
    slope: float = 2.0
    noise: float = 0.5
    seed: NonNegativeInt = 0

    def info(self, base):
        return DataInfo(features=(1,), target="real", rows=self.n)

    def load(self, base):
        import numpy as np

        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal(self.n)
        y = self.intercept + self.slope * x + self.noise * rng.standard_normal(self.n)
        return x[:, None].astype(np.float32), _real(y)


@SOURCES.register
class Hyperplane(Source):
    """`x ~ N(0, I)`, `y = x @ beta + logistic noise > 0` with `beta = 1 + N(0, I)` drawn
    from the seed `truth`, so that splits with other seeds share the same plane."""

    kind: Literal["hyperplane"] = "hyperplane"
    n: PositiveInt
    dim: PositiveInt = 100
    seed: NonNegativeInt = 0
    truth: NonNegativeInt = 0

    def info(self, base):
        return DataInfo(features=(self.dim,), target="class", classes=2, rows=self.n)

    def load(self, base):
        import numpy as np

        beta = 1.0 + np.random.default_rng(self.truth).standard_normal(self.dim)
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.n, self.dim))
        y = x @ beta + rng.logistic(size=self.n) > 0
        return x.astype(np.float32), _classes(y)


@SOURCES.register
class Radial(Source):
    """`x ~ N(0, I)` and `y = rms(x) < 1`: a sphere that no hyperplane can separate."""

    kind: Literal["radial"] = "radial"
    n: PositiveInt
    dim: PositiveInt = 100
    seed: NonNegativeInt = 0

    def info(self, base):
        return DataInfo(features=(self.dim,), target="class", classes=2, rows=self.n)

    def load(self, base):
        import numpy as np

        x = np.random.default_rng(self.seed).standard_normal((self.n, self.dim))
        y = np.sqrt(np.mean(x**2, axis=1)) < 1
        return x.astype(np.float32), _classes(y)


@SOURCES.register
class Hill(Source):
    """`x ~ U[0, 1]^2` and `y = x1 >= 2.5 * x0 * (1 - x0)`: the tutorial's hill."""

    kind: Literal["hill"] = "hill"
    n: PositiveInt
    seed: NonNegativeInt = 0

    def info(self, base):
        return DataInfo(features=(2,), target="class", classes=2, rows=self.n)

    def load(self, base):
        import numpy as np

        x = np.random.default_rng(self.seed).random((self.n, 2))
        y = x[:, 1] >= 2.5 * x[:, 0] * (1 - x[:, 0])
        return x.astype(np.float32), _classes(y)


class _Bundled(Source):
    """A dataset that ships inside scikit-learn (no download). Its facts are stated here
    so that `check` need not import scikit-learn."""

    loader: ClassVar[str]
    shape: ClassVar[DataInfo]

    def info(self, base):
        return self.shape

    def load(self, base):
        import numpy as np
        from sklearn import datasets

        bunch = getattr(datasets, self.loader)()
        x = bunch.data.astype(np.float32)
        y = _classes(bunch.target) if self.shape.target == "class" else _real(bunch.target)
        return x, y


def _bundled(name: str, info: DataInfo, doc: str) -> None:
    cls = type(name.title().replace("_", ""), (_Bundled,), {
        "__annotations__": {"kind": Literal[name]}, "kind": name, "__doc__": doc,
        "__module__": __name__, "loader": f"load_{name}", "shape": info,
    })
    SOURCES.register(cls)


_bundled("iris", DataInfo(features=(4,), target="class", classes=3, rows=150,
                          class_names=("setosa", "versicolor", "virginica")),
         "scikit-learn's iris: 150 flowers, 4 measurements, 3 species.")
_bundled("wine", DataInfo(features=(13,), target="class", classes=3, rows=178,
                          class_names=("class_0", "class_1", "class_2")),
         "scikit-learn's wine: 178 wines, 13 chemical measurements, 3 cultivars.")
_bundled("breast_cancer", DataInfo(features=(30,), target="class", classes=2, rows=569,
                                   class_names=("malignant", "benign")),
         "scikit-learn's breast cancer: 569 tumours, 30 features, malignant or benign.")
_bundled("digits", DataInfo(features=(64,), target="class", classes=10, rows=1797),
         "scikit-learn's digits: 1,797 8x8 images of handwritten digits, 10 classes.")
_bundled("diabetes", DataInfo(features=(10,), target="real", rows=442),
         "scikit-learn's diabetes: 442 patients, 10 features, a real disease progression.")


class DataError(ValueError):
    """A data file that cannot be used; reported at the source's place in the spec."""


Task = Literal["auto", "class", "real"]

MAX_CLASS_ID = 2**31 - 2
"""Class ids are int32, and so is their count (the largest id + 1)."""
FEW_CLASSES = 1000
"""Up to this many classes are allowed however few the rows; beyond it, a class id may not
exceed the number of rows (ids that large do not number classes 0, 1, 2, ...)."""

_HOLDS = {"U": "text", "S": "bytes", "O": "Python objects", "V": "structured records",
          "c": "complex numbers", "M": "dates", "m": "time spans"}


def _short(value) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)  # 'a', not np.str_('a')
    return text if len(text) <= 40 else text[:37] + "..."


def _holds(a: np.ndarray) -> str:
    return _HOLDS.get(a.dtype.kind, str(a.dtype))


def _data_file(base: Path, name: str) -> Path:
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


def _finite_float32(a: np.ndarray, what: str) -> np.ndarray:
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


def _features(x: np.ndarray, what: str) -> np.ndarray:
    """float32 features of shape (n, *features); a 1-D array is one feature per row."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{what} holds {_holds(x)}; features must be numbers")
    if x.ndim == 1:
        x = x[:, None]
    if 0 in x.shape[1:]:
        raise DataError(f"{what} has shape {x.shape}: its rows hold no features")
    return _finite_float32(x, what)


def _targets(y: np.ndarray, task: str, what: str, fit: DataInfo | None = None):
    """Targets as training takes them, and class names: int32 class ids (n,) or float32
    real targets (n, k). With `fit` (a run's data), encoded as that run's targets."""
    if fit is not None:
        task = fit.target
    if y.dtype.kind not in "biufOUS":
        raise DataError(f"{what} holds {_holds(y)}; targets must be numbers or text labels")
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
    y = _finite_float32(y, what)
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
            raise DataError(f"{what} holds text labels such as {_short(labels[0])}, but the "
                            f"training data's classes are the ids 0 to {fit.classes - 1}")
        lookup = {name: i for i, name in enumerate(fit.class_names)}
        unknown = sorted(set(labels) - lookup.keys())
        if unknown:
            raise DataError(f"{what} has labels the training data does not have: "
                            f"{', '.join(map(_short, unknown[:5]))}")
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


def _rows(x: np.ndarray, y: np.ndarray | None, name: str, x_name: str, y_name: str) -> None:
    """Both arrays hold the same positive number of rows."""
    for array, label in ((x, x_name), (y, y_name)):
        if array is not None and array.ndim == 0:
            raise DataError(f"'{name}': {label} is a single value, not an array of rows")
    if len(x) == 0:
        raise DataError(f"'{name}' has no rows")
    if y is not None and len(x) != len(y):
        raise DataError(f"'{name}': {x_name} has {len(x)} rows and {y_name} has {len(y)}; "
                        "they must match")


def _classes_info(x: np.ndarray, y: np.ndarray, names, feature_names=None) -> DataInfo:
    import numpy as np

    if y.dtype == np.int32:
        classes = len(names) if names else int(y.max()) + 1
        return DataInfo(features=x.shape[1:], target="class", classes=max(classes, 2),
                        class_names=names, feature_names=feature_names, rows=len(x))
    return DataInfo(features=x.shape[1:], target="real", target_dim=y.shape[1],
                    feature_names=feature_names, rows=len(x))


_CSV_CACHE: dict[tuple[str, int, int], tuple[object, bool]] = {}


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
class Csv(Source):
    """Numeric feature columns (`features`, by default every column but the target) and a
    `target` column of a CSV file; a text target becomes
    class ids (in sorted order of the names), an integer one is taken as class ids and a
    real one as a regression target unless `task` says otherwise."""

    kind: Literal["csv"] = "csv"
    path: str
    target: str
    features: tuple[str, ...] | None = None
    task: Task = "auto"

    def _frame(self, base: Path):
        import pandas as pd

        path = _data_file(base, self.path)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _CSV_CACHE:
            try:
                frame = pd.read_csv(path)
                # pandas renames a repeated column ("a" becomes "a.1"): read the header as is
                header = [str(c) for c in pd.read_csv(path, header=None, nrows=1, dtype=str,
                                                      keep_default_na=False).iloc[0]]
            except pd.errors.EmptyDataError:
                raise DataError(f"'{self.path}' is empty") from None
            except (OSError, ValueError, MemoryError) as exc:  # ParserError, UnicodeError
                raise DataError(f"cannot read '{self.path}' as CSV: "
                                f"{str(exc).strip()[:200]}") from None
            named = _names_columns(header)
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                raise DataError(f"'{self.path}' has the column '{_short(repeated[0])[1:-1]}' "
                                "more than once") if named else _no_header(self.path)
            if len(_CSV_CACHE) >= 8:  # a long-lived process (the language server) stays small
                _CSV_CACHE.pop(next(iter(_CSV_CACHE)))
            _CSV_CACHE[key] = frame, named
        frame, named = _CSV_CACHE[key]
        if frame.empty:
            raise DataError(f"'{self.path}' has no rows")
        return frame, named

    def _arrays(self, base: Path, fit: DataInfo | None = None, targets: bool = True):
        """Features, targets (None unless asked for), class names and feature names."""
        import numpy as np

        frame, named = self._frame(base)
        columns = [str(c) for c in frame.columns]
        features = list(self.features or (fit and fit.feature_names)
                        or [c for c in columns if c != self.target])
        missing = [c for c in (*features, *([self.target] if targets else ())) if c not in columns]
        if missing and not named:  # its first line is no header: never repeat it
            raise _no_header(self.path)
        if len(missing) == 1:
            raise DataError(f"'{self.path}' has no column '{missing[0]}'"
                            f"{did_you_mean(missing[0], columns)}")
        if missing:
            raise DataError(f"'{self.path}' lacks the columns "
                            + ", ".join(f"'{c}'" for c in missing[:10])
                            + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""))
        if not features:
            raise DataError(f"'{self.path}' has no feature columns besides '{self.target}'")
        for name in features:
            column = frame[name]
            if column.dtype.kind not in "biuf":
                raise DataError(f"column '{name}' of '{self.path}' is not numeric "
                                f"(it holds values such as {_short(column.iloc[0])}); "
                                f"list the numeric columns in features=[...]")
            if column.isna().any():
                raise DataError(f"column '{name}' of '{self.path}' has missing values")
        x = _features(frame[features].to_numpy(np.float64), f"the feature columns of '{self.path}'")
        if not targets:
            return x, None, None, tuple(features)
        if frame[self.target].isna().any():
            raise DataError(f"target column '{self.target}' of '{self.path}' has missing "
                            "values")
        what = f"target column '{self.target}' of '{self.path}'"
        y, names = _targets(frame[self.target].to_numpy(), self.task, what, fit)
        return x, y, names, tuple(features)

    def info(self, base):
        x, y, names, features = self._arrays(base)
        return _classes_info(x, y, names, features)

    def load(self, base):
        x, y, _, _ = self._arrays(base)
        return x, y

    def rows(self, base, fit, targets=True):
        x, y, _, _ = self._arrays(base, fit, targets)
        return x, y


@SOURCES.register
class Npz(Source):
    """Arrays `x` and `y` (or other names) of a NumPy archive. Integer or boolean `y` are
    class ids, real `y` a regression target, unless `task` says otherwise; a text `y`
    holds class names (ids in their sorted order)."""

    kind: Literal["npz"] = "npz"
    path: str
    x: str = "x"
    y: str = "y"
    task: Task = "auto"

    def _read(self, base: Path, targets: bool):
        import zipfile
        import zlib

        import numpy as np

        path = _data_file(base, self.path)
        unreadable = (OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
                      MemoryError, zipfile.BadZipFile, zlib.error)
        try:
            archive = np.load(path, allow_pickle=False)
        except unreadable as exc:
            raise DataError(f"cannot read '{self.path}' as a NumPy archive: "
                            f"{str(exc)[:200]}") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"'{self.path}' holds one array (a .npy file), not an archive of "
                            f"named arrays; write it with np.savez(path, {self.x}=..., "
                            f"{self.y}=...)")
        with archive:
            names = (self.x, self.y) if targets else (self.x,)
            missing = [k for k in names if k not in archive.files]
            # only its arrays are named: the other members of a zip that is no NumPy
            # archive (a document renamed .npz) are never listed
            arrays = [n[:-4] for n in archive.zip.namelist() if n.endswith(".npy")]
            if missing and not arrays:
                raise DataError(f"'{self.path}' has no array '{missing[0]}': it holds no "
                                "NumPy arrays (is it a .npz archive?)")
            if missing:
                raise DataError(f"'{self.path}' has no array '{missing[0]}'"
                                f"{did_you_mean(missing[0], arrays)}")
            try:
                arrays = [archive[k] for k in names]
            except unreadable as exc:
                if "allow_pickle" in str(exc):  # numpy's hint would be to unpickle it
                    raise DataError(f"'{self.path}' holds Python objects (pickled), which "
                                    "mlspec never loads: save numbers or text "
                                    "arrays") from None
                raise DataError(f"cannot read '{self.path}' as a NumPy archive: "
                                f"{str(exc)[:200]}") from None
        for key, array in zip(names, arrays, strict=True):
            if not isinstance(array, np.ndarray):  # a member that is not a .npy file
                raise DataError(f"cannot read '{self.path}' as a NumPy archive: its member "
                                f"'{key}' is not a NumPy array")
        return arrays + [None] * (2 - len(arrays))

    def _arrays(self, base: Path, fit: DataInfo | None = None, targets: bool = True):
        x, y = self._read(base, targets)
        _rows(x, y, self.path, f"'{self.x}'", f"'{self.y}'")
        x = _features(x, f"array '{self.x}' of '{self.path}'")
        if y is None:
            return x, None, None
        return (x, *_targets(y, self.task, f"array '{self.y}' of '{self.path}'", fit))

    def info(self, base):
        return _classes_info(*self._arrays(base))

    def load(self, base):
        x, y, _ = self._arrays(base)
        return x, y

    def rows(self, base, fit, targets=True):
        x, y, _ = self._arrays(base, fit, targets)
        return x, y
