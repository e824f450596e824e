"""Data files of every odd shape: each one either loads as documented or is a clear
DataError, reported by `check` at the data source's place in the spec."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

import mlspec
from mlspec.cli import main
from mlspec.data.loading import load_data
from mlspec.dsl.errors import SpecError

SPEC = "model m {{\n    dense(1)\n}}\ndata {{\n    train = {source}\n}}\n"
SOURCE_LINE = 5


def _npz(**arrays):
    return lambda path: np.savez(path, **arrays)


def _bytes(content: bytes):
    return lambda path: path.write_bytes(content)


def _zip(members: dict[str, bytes]):
    def write(path):
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in members.items():
                archive.writestr(name, content)
    return write


def _truncated(path):
    np.savez(path, x=np.zeros((50, 3)), y=np.zeros(50))
    path.write_bytes(path.read_bytes()[:300])


def _npy_named_npz(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros((4, 2)))


def _symlink_loop(path):
    os.symlink(path.name, path)


def _directory(path):
    path.mkdir()


X4 = np.arange(8.0).reshape(4, 2)
Y4 = np.array([0, 1, 0, 1])
Structured = np.zeros(4, dtype=[("a", "f4"), ("b", "i4")])

# case -> (file name, what writes it, source arguments, words of the error)
BAD = {
    "0-d x": ("d.npz", _npz(x=np.float64(1.0), y=Y4), "", "x' is a single value"),
    "0-d y": ("d.npz", _npz(x=X4, y=np.int64(1)), "", "y' is a single value"),
    "text x": ("d.npz", _npz(x=np.array(["a", "b"]), y=Y4[:2]), "", "holds text; features"),
    "structured x": ("d.npz", _npz(x=Structured, y=Y4), "", "holds structured records"),
    "structured y": ("d.npz", _npz(x=X4, y=Structured), "", "holds structured records"),
    "complex x": ("d.npz", _npz(x=X4 * 1j, y=Y4), "", "holds complex numbers"),
    "dates y": ("d.npz", _npz(x=X4, y=np.array(["2020-01-01"] * 4, "M8[D]")), "",
                "holds dates"),
    "object x": ("d.npz", _npz(x=np.array([1, "a"], object), y=Y4[:2]), "",
                 "Object arrays cannot be loaded"),
    "zip of no arrays": ("d.npz", _zip({"readme.txt": b"hello"}), "", "has no array 'x'"),
    "garbage member": ("d.npz", _zip({"x.npy": b"garbage", "y.npy": b"more"}), "",
                       "cannot read 'd.npz' as a NumPy archive"),
    "truncated zip": ("d.npz", _truncated, "", "cannot read 'd.npz' as a NumPy archive"),
    "npy named npz": ("d.npz", _npy_named_npz, "", "holds one array (a .npy file)"),
    "random bytes npz": ("d.npz", _bytes(bytes(range(256)) * 4), "", "cannot read 'd.npz'"),
    "empty npz file": ("d.npz", _bytes(b""), "", "cannot read 'd.npz'"),
    "int table y": ("d.npz", _npz(x=X4, y=np.ones((4, 3), int)), "",
                    "table of 3 integer columns; a class target is one id per row (give "
                    "task=real for 3 real targets)"),
    "class table y": ("d.npz", _npz(x=X4, y=np.ones((4, 3))), ', task="class"',
                      "has 3 columns; a class target is one id per row"),
    "3-d y": ("d.npz", _npz(x=X4, y=np.ones((4, 2, 2))), "", "has shape (4, 2, 2)"),
    "zero-width x": ("d.npz", _npz(x=np.zeros((4, 0)), y=Y4), "", "rows hold no features"),
    "row counts differ": ("d.npz", _npz(x=X4, y=Y4[:3]), "",
                          "'x' has 4 rows and 'y' has 3; they must match"),
    "empty arrays": ("d.npz", _npz(x=np.zeros((0, 2)), y=np.zeros(0)), "", "has no rows"),
    "nan in x": ("d.npz", _npz(x=np.array([[0.0, 1], [np.nan, 2]]), y=Y4[:2]), "",
                 "holds the value nan (at row 1, column 0); values must be finite"),
    "inf in real y": ("d.npz", _npz(x=X4, y=np.array([0.5, np.inf, 1, 2])), "",
                      "holds the value inf (at row 1)"),
    "beyond float32": ("d.npz", _npz(x=X4 * 1e300, y=Y4), "", "too large for float32"),
    "id beyond int32": ("d.npz", _npz(x=X4, y=np.array([0, 1, 4294967297, 2])), "",
                        "class id 4294967297, which does not fit a 32-bit integer"),
    "absurd class count": ("d.npz", _npz(x=X4, y=np.array([0, 1, 10**9, 2])), "",
                           "class id 1000000000 in only 4 rows"),
    "negative id": ("d.npz", _npz(x=X4, y=np.array([0, -1, 1, 1])), "", "negative values"),
    "npz symlink loop": ("d.npz", _symlink_loop, "", "cannot read 'd.npz'"),
    "npz directory": ("d.npz", _directory, "", "is a directory"),
    "csv symlink loop": ("d.csv", _symlink_loop, ', target="y"', "cannot read 'd.csv'"),
    "csv directory": ("d.csv", _directory, ', target="y"', "is a directory"),
    "binary garbage": ("d.csv", _bytes(bytes(range(256)) * 4), ', target="y"',
                       "cannot read 'd.csv' as CSV"),
    "not utf-8": ("d.csv", _bytes("a,y\n\xe9t\xe9,1\n".encode("latin-1")), ', target="y"',
                  "cannot read 'd.csv' as CSV: 'utf-8' codec can't decode"),
    "header only": ("d.csv", _bytes(b"a,y\n"), ', target="y"', "has no rows"),
    "blank lines only": ("d.csv", _bytes(b"\n\n\n"), ', target="y"', "is empty"),
    "too many fields": ("d.csv", _bytes(b"a,y\n1,0\n2,1,5\n"), ', target="y"',
                        "Expected 2 fields in line 3, saw 3"),
    "too few fields": ("d.csv", _bytes(b"a,b,y\n1,2,0\n2,1\n"), ', target="y"',
                       "has missing values"),
    "huge field": ("d.csv", _bytes(b"a,y\n" + b"9" * 1_000_000 + b",1\n2,0\n"),
                   ', target="y"', "is not numeric (it holds values such as '999"),
    "inf feature": ("d.csv", _bytes(b"a,y\n1,0\ninf,1\n"), ', target="y"',
                    "holds the value inf (at row 1, column 0)"),
    "overflowing feature": ("d.csv", _bytes(b"a,y\n1e300,0\n2,1\n"), ', target="y"',
                            "too large for float32"),
    "nan feature": ("d.csv", _bytes(b"a,y\n1,0\nnan,1\n"), ', target="y"',
                    "column 'a' of 'd.csv' has missing values"),
    "inf real target": ("d.csv", _bytes(b"a,y\n1,0.5\n2,-inf\n"), ', target="y"',
                        "holds the value -inf (at row 1)"),
    "duplicate columns": ("d.csv", _bytes(b"a,a,y\n1,2,0\n3,4,1\n"), ', target="y"',
                          "has the column 'a' more than once"),
    "csv id beyond int32": ("d.csv", _bytes(b"a,y\n1,0\n2,4294967297\n"), ', target="y"',
                            "does not fit a 32-bit integer"),
    "csv absurd class count": ("d.csv", _bytes(b"a,y\n1,0\n2,1000000000\n"), ', target="y"',
                               "class id 1000000000 in only 2 rows"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_data_file_is_a_check_error_at_the_source(case, tmp_path, capsys):
    name, write, arguments, message = BAD[case]
    write(tmp_path / name)
    kind = name.rsplit(".", 1)[1]
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source=f'{kind}("{name}"{arguments})'))
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.load(spec))
    assert message in str(info.value)
    assert info.value.diagnostics[0].span.line == SOURCE_LINE
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"s.mlspec:{SOURCE_LINE}:" in err and message in err
    assert len(err) < 2000  # a huge field is not copied into the message


# case -> (file name, what writes it, source arguments, (features, target, classes, width))
GOOD = {
    "(n, 1) integer targets are class ids": (
        "d.npz", _npz(x=X4, y=np.array([[0], [2], [1], [2]])), "", ((2,), "class", 3, 1)),
    "an integer table is real targets with task=real": (
        "d.npz", _npz(x=X4, y=np.ones((4, 3), int)), ', task="real"', ((2,), "real", None, 3)),
    "a 1-D x is one feature per row": (
        "d.npz", _npz(x=np.arange(4.0), y=Y4), "", ((1,), "class", 2, 1)),
    "text y holds class names": (
        "d.npz", _npz(x=X4, y=np.array(["b", "a", "c", "a"])), "", ((2,), "class", 3, 1)),
    "boolean columns are 0/1": (
        "d.csv", _bytes(b"a,b,y\nTrue,1.5,True\nFalse,2.5,False\n"), ', target="y"',
        ((2,), "class", 2, 1)),
    "sparse but sane class ids": (
        "d.npz", _npz(x=X4, y=np.array([0, 999, 1, 2])), "", ((2,), "class", 1000, 1)),
}


@pytest.mark.parametrize("case", GOOD)
def test_odd_but_meaningful_files_load_as_documented(case, tmp_path):
    name, write, arguments, (features, target, classes, width) = GOOD[case]
    write(tmp_path / name)
    kind = name.rsplit(".", 1)[1]
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source=f'{kind}("{name}"{arguments})'))
    data = mlspec.resolve(mlspec.load(spec)).data
    info = data.info
    assert (info.features, info.target, info.classes) == (features, target, classes)
    x, y = load_data(data)["train"]
    assert x.dtype == np.float32 and x.shape[1:] == features
    if target == "class":
        assert y.dtype == np.int32 and y.shape == (len(x),) and y.max() < classes
    else:
        assert y.dtype == np.float32 and y.shape == (len(x), width)


def test_text_class_names_of_an_npz_are_kept_in_sorted_order(tmp_path):
    np.savez(tmp_path / "d.npz", x=X4, y=np.array(["b", "a", "c", "a"]))
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='npz("d.npz")'))
    data = mlspec.resolve(mlspec.load(spec)).data
    assert data.info.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(load_data(data)["train"][1], [1, 0, 2, 0])


def test_a_feature_with_inf_is_refused_before_training(tmp_path):
    """Training on it would only show up later as a diverging loss."""
    (tmp_path / "d.csv").write_text("a,y\n1,0\ninf,1\n2,0\n")
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='csv("d.csv", target="y")').replace(
        "dense(1)", "dense(2)") + "train {\n    loss = softmax_cross_entropy\n"
        "    optimizer = adam(learning_rate=0.01)\n    steps = 5\n}\n")
    with pytest.raises(SpecError, match="holds the value inf"):
        mlspec.run(spec)
