"""Synthetic data, generated with NumPy from a seed: a line, a hyperplane, a sphere, the
tutorial's hill."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from mlspec.catalog.sources.base import SOURCES, DataInfo, Source, class_ids, real_targets


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
        return x[:, None].astype(np.float32), real_targets(y)


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
        return x.astype(np.float32), class_ids(y)


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
        return x.astype(np.float32), class_ids(y)


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
        return x.astype(np.float32), class_ids(y)
