"""Data sources, splits, standardization, and the errors of bad data files."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

import mlspec
from mlspec.catalog.sources import SOURCES
from mlspec.runtime.loading import load_data
from mlspec.syntax.errors import SpecError

# source call -> (feature shape, target kind, classes)
SOURCE_TABLE = {
    "linear(n=50)": ((1,), "real", None),
    "hyperplane(n=50, dim=7)": ((7,), "class", 2),
    "radial(n=50, dim=5)": ((5,), "class", 2),
    "hill(n=50)": ((2,), "class", 2),
    "iris": ((4,), "class", 3),
    "wine": ((13,), "class", 3),
    "breast_cancer": ((30,), "class", 2),
    "digits": ((64,), "class", 10),
    "diabetes": ((10,), "real", None),
    'csv("data/iris.csv", target="species")': ((4,), "class", 3),
    'csv("data/diabetes.csv", target="progression", features=["bmi", "bp"])':
        ((2,), "real", None),
    'npz("arrays.npz")': ((3,), "class", 2),
    'parquet("data/iris.parquet", target="species")': ((4,), "class", 3),
}


def program_for(source: str, folder=ROOT / "specs", extra: str = ""):
    text = f"model m {{ dense(1) }}\ndata {{\n    train = {source}\n{extra}}}\n"
    spec = mlspec.parse(text, str(folder / "t.mlspec"))
    return mlspec.resolve(spec.model_copy(update={"path": str(folder / "t.mlspec")}))


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    """A folder with the table's files: specs/data's and an npz file (never the
    checkout's specs/, which tests leave as they find it)."""
    return write_table_files(tmp_path_factory.mktemp("sources"))


def write_table_files(folder):
    """specs/data's files, an npz file and a parquet file: what the table reads."""
    shutil.copytree(ROOT / "specs" / "data", folder / "data")
    rng = np.random.default_rng(0)
    np.savez(folder / "arrays.npz", x=rng.normal(size=(20, 3)), y=rng.random(20) > 0.5)
    pd.read_csv(folder / "data" / "iris.csv").to_parquet(folder / "data" / "iris.parquet")
    return folder


@pytest.mark.parametrize("source", SOURCE_TABLE)
def test_source_info_matches_its_arrays(source, data_folder):
    features, target, classes = SOURCE_TABLE[source]
    program = program_for(source, folder=data_folder)
    info = program.data.info
    assert (info.features, info.target, info.classes) == (features, target, classes)
    x, y = load_data(program.data)["train"]
    assert x.shape[1:] == features and x.dtype == np.float32 and len(x) == len(y)
    assert info.rows == len(x) and program.data.split_rows == {"train": len(x)}
    if target == "class":
        assert y.dtype == np.int32 and y.ndim == 1 and 0 <= y.min() and y.max() < classes
    else:
        assert y.dtype == np.float32 and y.ndim == 2


def test_every_source_is_in_the_table():
    tabled = {s.split("(")[0] for s in SOURCE_TABLE}
    assert tabled == set(SOURCES)


def test_synthetic_sources_follow_their_definitions():
    x, y = load_data(program_for("hill(n=500, seed=3)").data)["train"]
    assert ((x >= 0) & (x <= 1)).all()
    np.testing.assert_array_equal(y, x[:, 1] >= 2.5 * x[:, 0] * (1 - x[:, 0]))
    x, y = load_data(program_for("linear(n=4000, noise=0.0)").data)["train"]
    np.testing.assert_allclose(y[:, 0], 3.0 + 2.0 * x[:, 0], atol=1e-5)
    x, y = load_data(program_for("radial(n=300, dim=4)").data)["train"]
    np.testing.assert_array_equal(y, np.sqrt((x**2).mean(axis=1)) < 1)
    # splits with other seeds share the plane drawn from `truth`
    a = program_for("hyperplane(n=5000, dim=3, seed=0)").data
    b = program_for("hyperplane(n=5000, dim=3, seed=1)").data
    (xa, ya), (xb, yb) = load_data(a)["train"], load_data(b)["train"]
    beta = np.linalg.lstsq(xa, ya - 0.5, rcond=None)[0]
    beta_b = np.linalg.lstsq(xb, yb - 0.5, rcond=None)[0]
    assert np.corrcoef(beta, beta_b)[0, 1] > 0.9


def test_csv_text_target_keeps_class_names():
    info = program_for('csv("data/iris.csv", target="species")').data.info
    assert info.class_names == ("setosa", "versicolor", "virginica")


def test_split_in_place_and_standardize():
    text = "model m { dense(1) }\ndata {\n    source = digits\n    valid = 0.25\n" \
           "    standardize = true\n    split_seed = 7\n}\n"
    program = mlspec.resolve(mlspec.parse(text)).data
    data = load_data(program)
    x_train, _ = data["train"]
    x_valid, _ = data["valid"]
    assert len(x_valid) == round(0.25 * 1797) and len(x_train) == 1797 - len(x_valid)
    np.testing.assert_allclose(x_train.mean(axis=0), 0, atol=1e-4)
    stds = x_train.std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-3) | (stds == 0))
    again = load_data(program)
    np.testing.assert_array_equal(again["valid"][0], x_valid)


def test_split_by_row_count():
    text = "model m { dense(1) }\ndata {\n    source = iris\n    valid = 30\n    test = 0.1\n}\n"
    data = load_data(mlspec.resolve(mlspec.parse(text)).data)
    assert [len(data[s][0]) for s in ("train", "valid", "test")] == [105, 30, 15]


BAD_FILES = {
    "missing file": ('csv("nope.csv", target="y")', "no such file"),
    "missing target": ('csv("bad.csv", target="label")', "has no column 'label'; did you "
                                                          "mean 'lable'?"),
    "non-numeric feature": ('csv("bad.csv", target="lable")', "column 'name' of 'bad.csv' "
                                                              "is not numeric"),
    "empty file": ('csv("empty.csv", target="y")', "'empty.csv' is empty"),
    "header only": ('csv("header.csv", target="y")', "has no rows"),
    "missing npz array": ('npz("arrays.npz", x="features")', "has no array 'features'"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_data_files_are_spec_errors_naming_file_and_column(case, tmp_path):
    (tmp_path / "bad.csv").write_text("a,name,lable\n1,x,0\n2,y,1\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,y\n")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "arrays.npz", x=rng.normal(size=(4, 2)), y=np.arange(4))
    source, message = BAD_FILES[case]
    text = f"model m {{\n    dense(1)\n}}\ndata {{\n    train = {source}\n}}\n"
    path = tmp_path / "s.mlspec"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.load(path))
    assert message in str(info.value)
    assert info.value.diagnostics[0].span.line == 5


def test_csv_regression_matches_least_squares():
    """A linear model on a CSV regression set reaches the OLS R^2 of the same split."""
    result = mlspec.run(ROOT / "specs" / "diabetes_csv.mlspec")
    data = load_data(result.program.data)
    (x, y), (xv, yv) = data["train"], data["valid"]
    design = np.c_[x, np.ones(len(x))]
    beta = np.linalg.lstsq(design.astype(np.float64), y.astype(np.float64), rcond=None)[0]

    def r2(xs, ys):
        pred = np.c_[xs, np.ones(len(xs))] @ beta
        return 1 - ((ys - pred) ** 2).sum() / ((ys - ys.mean()) ** 2).sum()

    assert result.metrics["train.r2"] == pytest.approx(r2(x, y), abs=0.01)
    assert result.metrics["valid.r2"] == pytest.approx(r2(xv, yv), abs=0.01)


def test_the_data_section_takes_one_of_its_two_forms():
    from mlspec.semantics.data import NamedSplits, SplitInPlace

    named = program_for("hill(n=50)", extra="    valid = hill(n=20, seed=1)\n").data
    assert isinstance(named, NamedSplits) and named.splits == ("train", "valid")
    assert list(named.sources) == ["train", "valid"]
    text = "model m { dense(1) }\ndata {\n    source = iris\n    test = 30\n}\n"
    in_place = mlspec.resolve(mlspec.parse(text)).data
    assert isinstance(in_place, SplitInPlace) and in_place.splits == ("train", "test")
    assert list(in_place.sources) == ["source"] and in_place.test == 30
    assert in_place.split_rows == {"train": 120, "test": 30}


# the data section's lines -> (line, column, the message)
DATA_MISTAKES = {
    "a size past 1": ("source = iris\n    valid = 1.5", 4, 13, "setting 'valid' of data should "
                      "be a fraction between 0 and 1 or a positive row count (got a number "
                      "1.5)"),
    "a size that is no number": ("source = iris\n    test = true", 4, 12,
                                 "setting 'test' of data should be a fraction"),
    "a split that is no source": ("train = 0.3", 3, 13, "setting 'train' of data should be "
                                  "a data source call such as hill(n=1000) (got a number 0.3)"),
    "neither form": ("valid = hill(n=10)", 2, 1, "data needs 'train' (and 'valid') sources, "
                     "or one 'source' with a 'valid' size"),
    "a typo": ("source = iris\n    vaild = 0.2", 4, 5,
               "unknown data setting 'vaild'; did you mean 'valid'?"),
    "a train source beside the source": ("source = iris\n    train = iris", 4, 5,
                                         "with 'source', the splits are sizes"),
    "a size that takes no row": ("source = iris\n    valid = 0.001", 4, 13,
                                 "'valid' = 0.001 takes none of the source's 150 rows"),
}


@pytest.mark.parametrize("case", DATA_MISTAKES)
def test_a_data_section_mistake_is_at_its_setting(case):
    lines, line, column, message = DATA_MISTAKES[case]
    text = f"model m {{ dense(1) }}\ndata {{\n    {lines}\n}}\n"
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(text, "d.mlspec"))
    (error,) = info.value.diagnostics
    assert message in error.message
    assert (error.span.line, error.span.column) == (line, column), error.render()
