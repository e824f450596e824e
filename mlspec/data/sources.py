"""The data-source catalogue: `hill(n=10000, seed=0)` and friends.

Each source states what it yields (`info`: feature shape, target kind, number of classes)
without generating anything, so `check` can infer shapes cheaply, and makes its arrays in
`load` with NumPy. Features are float32 of shape (n, *features); class targets are int32
ids of shape (n,); real targets are float32 of shape (n, k).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

from ..catalog.registry import Entry, Registry
from ..dsl.errors import did_you_mean


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
    seed: int = 0

    def info(self, base):
        return DataInfo(features=(1,), target="real")

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
    seed: int = 0
    truth: int = 0

    def info(self, base):
        return DataInfo(features=(self.dim,), target="class", classes=2)

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
    seed: int = 0

    def info(self, base):
        return DataInfo(features=(self.dim,), target="class", classes=2)

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
    seed: int = 0

    def info(self, base):
        return DataInfo(features=(2,), target="class", classes=2)

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


_bundled("iris", DataInfo(features=(4,), target="class", classes=3,
                          class_names=("setosa", "versicolor", "virginica")),
         "scikit-learn's iris: 150 flowers, 4 measurements, 3 species.")
_bundled("wine", DataInfo(features=(13,), target="class", classes=3,
                          class_names=("class_0", "class_1", "class_2")),
         "scikit-learn's wine: 178 wines, 13 chemical measurements, 3 cultivars.")
_bundled("breast_cancer", DataInfo(features=(30,), target="class", classes=2,
                                   class_names=("malignant", "benign")),
         "scikit-learn's breast cancer: 569 tumours, 30 features, malignant or benign.")
_bundled("digits", DataInfo(features=(64,), target="class", classes=10),
         "scikit-learn's digits: 1,797 8x8 images of handwritten digits, 10 classes.")
_bundled("diabetes", DataInfo(features=(10,), target="real"),
         "scikit-learn's diabetes: 442 patients, 10 features, a real disease progression.")


class DataError(ValueError):
    """A data file that cannot be used; reported at the source's place in the spec."""


Task = Literal["auto", "class", "real"]


def _target_kind(y: np.ndarray, task: str, what: str) -> Literal["class", "real"]:
    if task != "auto":
        return task  # type: ignore[return-value]
    if y.dtype.kind in "biuOUS":
        return "class"
    return "real"


def _encode_classes(y: np.ndarray, what: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Class ids for a target column: text labels in sorted order, integers as they are."""
    import numpy as np

    if y.dtype.kind in "OUS":
        names, ids = np.unique(y.astype(str), return_inverse=True)
        return ids.astype(np.int32), tuple(str(n) for n in names)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{what} has non-integer values; class targets must be ids "
                            "0, 1, 2, ... (or give task=real)")
    if y.size and y.min() < 0:
        raise DataError(f"{what} has negative values; class ids start at 0")
    return y.astype(np.int32), None


_CSV_CACHE: dict[tuple[str, float], object] = {}


@SOURCES.register
class Csv(Source):
    """Numeric feature columns and a `target` column of a CSV file; a text target becomes
    class ids (in sorted order of the names), an integer one is taken as class ids and a
    real one as a regression target unless `task` says otherwise."""

    kind: Literal["csv"] = "csv"
    path: str
    target: str
    features: tuple[str, ...] | None = None
    task: Task = "auto"

    def _frame(self, base: Path):
        import pandas as pd

        path = (base / self.path).resolve()
        try:
            key = (str(path), path.stat().st_mtime)
        except OSError:
            raise DataError(f"cannot read '{self.path}': no such file {path}") from None
        if key not in _CSV_CACHE:
            try:
                frame = pd.read_csv(path)
            except pd.errors.EmptyDataError:
                raise DataError(f"'{self.path}' is empty") from None
            except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read '{self.path}' as CSV: {exc}") from None
            if len(_CSV_CACHE) >= 8:  # a long-lived process (the language server) stays small
                _CSV_CACHE.pop(next(iter(_CSV_CACHE)))
            _CSV_CACHE[key] = frame
        frame = _CSV_CACHE[key]
        if frame.empty:
            raise DataError(f"'{self.path}' has no rows")
        columns = [str(c) for c in frame.columns]
        for name in (self.target, *(self.features or ())):
            if name not in columns:
                raise DataError(f"'{self.path}' has no column '{name}'"
                                f"{did_you_mean(name, columns)}")
        features = list(self.features or [c for c in columns if c != self.target])
        if not features:
            raise DataError(f"'{self.path}' has no feature columns besides '{self.target}'")
        for name in features:
            if frame[name].dtype.kind not in "biuf":
                raise DataError(f"column '{name}' of '{self.path}' is not numeric "
                                f"(it holds values such as {frame[name].iloc[0]!r}); "
                                f"list the numeric columns in features=[...]")
            if frame[name].isna().any():
                raise DataError(f"column '{name}' of '{self.path}' has missing values")
        if frame[self.target].isna().any():
            raise DataError(f"target column '{self.target}' of '{self.path}' has missing "
                            "values")
        return frame, features

    def _arrays(self, base: Path):
        import numpy as np

        frame, features = self._frame(base)
        x = frame[features].to_numpy(np.float32)
        y = frame[self.target].to_numpy()
        what = f"target column '{self.target}' of '{self.path}'"
        if _target_kind(y, self.task, what) == "class":
            ids, names = _encode_classes(y, what)
            return x, ids, names
        if y.dtype.kind not in "biuf":
            raise DataError(f"{what} is not numeric, so it cannot be a real target")
        return x, _real(y), None

    def info(self, base):
        import numpy as np

        x, y, names = self._arrays(base)
        if y.dtype == np.int32:
            classes = len(names) if names else int(y.max()) + 1
            return DataInfo(features=x.shape[1:], target="class", classes=max(classes, 2),
                            class_names=names)
        return DataInfo(features=x.shape[1:], target="real", target_dim=y.shape[1])

    def load(self, base):
        x, y, _ = self._arrays(base)
        return x, y


@SOURCES.register
class Npz(Source):
    """Arrays `x` and `y` (or other names) of a NumPy archive. Integer or boolean `y` are
    class ids, real `y` a regression target, unless `task` says otherwise."""

    kind: Literal["npz"] = "npz"
    path: str
    x: str = "x"
    y: str = "y"
    task: Task = "auto"

    def _arrays(self, base: Path):
        import numpy as np

        path = (base / self.path).resolve()
        if not path.exists():
            raise DataError(f"cannot read '{self.path}': no such file {path}")
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [k for k in (self.x, self.y) if k not in archive.files]
                if missing:
                    raise DataError(f"'{self.path}' has no array '{missing[0]}'"
                                    f"{did_you_mean(missing[0], archive.files)}")
                x, y = archive[self.x], archive[self.y]
        except (OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"cannot read '{self.path}' as a NumPy archive: {exc}") from None
        if len(x) != len(y) or len(x) == 0:
            raise DataError(f"'{self.path}': x has {len(x)} rows and y has {len(y)}; they "
                            "must match and not be empty")
        what = f"array '{self.y}' of '{self.path}'"
        if _target_kind(y, self.task, what) == "class":
            return x.astype(np.float32), _encode_classes(y, what)[0]
        return x.astype(np.float32), _real(y)

    def info(self, base):
        import numpy as np

        x, y = self._arrays(base)
        if y.dtype == np.int32:
            return DataInfo(features=x.shape[1:], target="class",
                            classes=max(int(y.max()) + 1, 2))
        return DataInfo(features=x.shape[1:], target="real", target_dim=y.shape[1])

    def load(self, base):
        return self._arrays(base)
