"""The datasets that ship inside scikit-learn (no download): iris, wine, breast cancer,
digits and diabetes, each one `_bundled` call with its facts."""

from __future__ import annotations

from typing import ClassVar, Literal

from mlspec.catalog.sources.base import SOURCES, DataInfo, Source, class_ids, real_targets


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
        y = class_ids(bunch.target) if self.shape.target == "class" else real_targets(bunch.target)
        return x, y


def _bundled(name: str, info: DataInfo, doc: str) -> type[Source]:
    cls = type(name.title().replace("_", ""), (_Bundled,), {
        "__annotations__": {"kind": Literal[name]}, "kind": name, "__doc__": doc,
        "__module__": __name__, "loader": f"load_{name}", "shape": info,
    })
    return SOURCES.register(cls)



Iris = _bundled("iris", DataInfo(features=(4,), target="class", classes=3, rows=150,
                                 class_names=("setosa", "versicolor", "virginica")),
                "scikit-learn's iris: 150 flowers, 4 measurements, 3 species.")
Wine = _bundled("wine", DataInfo(features=(13,), target="class", classes=3, rows=178,
                                 class_names=("class_0", "class_1", "class_2")),
                "scikit-learn's wine: 178 wines, 13 chemical measurements, 3 cultivars.")
BreastCancer = _bundled(
    "breast_cancer", DataInfo(features=(30,), target="class", classes=2, rows=569,
                              class_names=("malignant", "benign")),
    "scikit-learn's breast cancer: 569 tumours, 30 features, malignant or benign.")
Digits = _bundled("digits", DataInfo(features=(64,), target="class", classes=10, rows=1797),
                  "scikit-learn's digits: 1,797 8x8 images of handwritten digits, 10 classes.")
Diabetes = _bundled(
    "diabetes", DataInfo(features=(10,), target="real", rows=442),
    "scikit-learn's diabetes: 442 patients, 10 features, a real disease progression.")
