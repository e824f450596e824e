"""Data files of every odd shape: each one either loads as documented or is a clear
DataError, reported by `check` at the data source's place in the spec."""

from __future__ import annotations

import os
import re
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mlspec
from mlspec.catalog.sources import DataError
from mlspec.cli import main
from mlspec.runtime.loading import load_data
from mlspec.syntax.errors import SpecError

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
                 "holds Python objects (pickled), which mlspec never loads"),
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


SECRET = "TOPSECRET-91c2"

# case -> the content of a file given to csv(...) that is no CSV with a header; its
# first line holds SECRET (or 98765.4321), which no error may repeat
NOT_CSV = {
    "a password file": f"{SECRET}:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob\n",
    "a shadow file": f"root:$6${SECRET}$abc:19000:0:99999:7:::\nbob:!:19000::::::\n",
    "notes": f"remember {SECRET}\nand more notes\n",
    "a CSV without a header": "1.5,98765.4321,3\n3.5,4.5,1\n",
    "numbers, nan and inf": "nan,inf,98765.4321\n1,2,3\n",
    "a header with a control character": f"a\x01{SECRET},b\n1,2\n",
    "an odd name twice": f"{SECRET}\x7f,{SECRET}\x7f\n1,2\n",
}


@pytest.mark.parametrize("case", NOT_CSV)
def test_a_file_that_is_no_csv_is_named_not_quoted(case, tmp_path, capsys):
    (tmp_path / "data.txt").write_text(NOT_CSV[case])
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='csv("data.txt", target="label")'))
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"s.mlspec:{SOURCE_LINE}:" in err and "'data.txt' has no CSV header" in err, err
    assert SECRET not in err and "98765" not in err


@pytest.mark.parametrize("members, words", [
    ({f"{SECRET}.txt": b"notes", "word/document.xml": b"<w/>"},
     "has no array 'x': it holds no NumPy arrays"),
    ({"xs.npy": None, f"{SECRET}.txt": b"notes"}, "has no array 'x'; did you mean 'xs'?"),
], ids=["a zip of no arrays", "an archive with a note in it"])
def test_only_the_arrays_of_an_npz_are_named(members, words, tmp_path, capsys):
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            if content is None:  # a real array member
                with archive.open(name, "w") as member:
                    np.lib.format.write_array(member, np.zeros((4, 2)))
            else:
                archive.writestr(name, content)
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='npz("d.npz")'))
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert words in err and SECRET not in err and "document" not in err, err


def test_the_names_of_a_real_csv_header_are_still_suggested(tmp_path, capsys):
    (tmp_path / "data.csv").write_text("width,height,label\n1,2,a\n3,4,b\n")
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='csv("data.csv", target="lable")'))
    assert main(["check", str(spec)]) == 2
    assert "has no column 'lable'; did you mean 'label'?" in capsys.readouterr().err


# case -> (file name, what writes it, source arguments, (features, target, classes, width))
GOOD = {
    "(n, 1) integer targets are class ids": (
        "d.npz", _npz(x=X4, y=np.array([[0], [2], [1], [2]])), "", ((2,), "class", 3, 1)),
    "an integer table is real targets with task=real": (
        "d.npz", _npz(x=X4, y=np.ones((4, 3), int)), ', task="real"', ((2,), "real", None, 3)),
    "unsigned integer targets are class ids": (
        "d.npz", _npz(x=X4, y=np.array([0, 2, 1, 2], np.uint64)), "", ((2,), "class", 3, 1)),
    "a 1-D x is one feature per row": (
        "d.npz", _npz(x=np.arange(4.0), y=Y4), "", ((1,), "class", 2, 1)),
    "text y holds class names": (
        "d.npz", _npz(x=X4, y=np.array(["b", "a", "c", "a"])), "", ((2,), "class", 3, 1)),
    "bytes labels need not be UTF-8": (
        "d.npz", _npz(x=X4, y=np.array([b"\x80", b"a", b"\x80", b"b"])), "",
        ((2,), "class", 3, 1)),
    "boolean columns are 0/1": (
        "d.csv", _bytes(b"a,b,y\nTrue,1.5,True\nFalse,2.5,False\n"), ', target="y"',
        ((2,), "class", 2, 1)),
    "sparse but sane class ids": (
        "d.npz", _npz(x=X4, y=np.array([0, 999, 1, 2])), "", ((2,), "class", 1000, 1)),
}


@pytest.mark.parametrize("name", ["a\x00b.csv", "", ".", "x" * 5000 + ".csv"])
def test_unusable_data_path_names_are_data_errors(name, tmp_path):
    from mlspec.catalog.sources import Csv

    with pytest.raises(DataError, match="cannot read"):
        Csv(path=name, target="y").info(tmp_path)


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


# ------------------------------------------------------------------------------ fuzzing

DTYPES = st.sampled_from(["f8", "f4", "f2", "i8", "u8", "i1", "?", "c8", "U2", "S2", "M8[D]",
                          np.dtype([("a", "f4")])])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
ARRAYS = st.builds(lambda dtype, shape: (dtype, shape), DTYPES, SHAPES).flatmap(
    lambda spec: hnp.arrays(spec[0], spec[1]))
CELLS = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e400", "4294967297", "1000000000",
                                   "True", "false", "", '"', "a,b", "x", "\u00e9"]),
                  st.text(max_size=5))
# capsys is read (and so emptied) by every example
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


NUMBERS = st.one_of(st.integers(-3, 3), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True, allow_infinity=True)).map(str)


@st.composite
def csv_bytes(draw) -> bytes:
    """A CSV file, mostly well formed (a target column y and rows of the header's width),
    sometimes ragged, re-encoded or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    header = draw(st.sampled_from([["a"], ["a", "b"], ["b", "a", "c"]]))
    if draw(st.integers(0, 4)) == 0:
        header += draw(st.lists(st.sampled_from(["a", "a.1", "y", ""]), max_size=2))
    if draw(st.integers(0, 4)):
        header.append("y")
    width = len(header)
    ragged = draw(st.integers(0, 4)) == 0
    small = st.one_of(st.integers(0, 3), st.floats(-10, 10)).map(str)
    kinds = [small] if draw(st.booleans()) else [small, NUMBERS, CELLS]
    cells = st.sampled_from(kinds).flatmap(
        lambda pick: st.lists(pick, min_size=width - ragged, max_size=width + ragged))
    rows = draw(st.lists(cells, max_size=8))
    text = "\n".join(",".join(row) for row in [header, *rows])
    return text.encode("utf-8" if draw(st.integers(0, 4)) else "latin-1", errors="replace")


@st.composite
def npz_writers(draw):
    """Something that writes a .npz file: arrays x and y, or damaged bytes."""
    if draw(st.booleans()):  # rows that match, so that the values and dtypes get tested
        n = draw(st.integers(1, 5))
        x = draw(hnp.arrays(DTYPES, st.sampled_from([(n,), (n, 1), (n, 3), (n, 2, 2)])))
        y = draw(hnp.arrays(DTYPES, st.sampled_from([(n,), (n, 1), (n, 2)])))
    else:
        x, y = draw(ARRAYS), draw(ARRAYS)
    damage = draw(st.sampled_from(["none", "none", "truncate", "bytes", "npy"]))
    cut = draw(st.integers(0, 400))
    noise = draw(st.binary(max_size=100))

    def write(path):
        if damage == "bytes":
            path.write_bytes(noise)
            return
        if damage == "npy":
            with open(path, "wb") as f:
                np.save(f, x)
            return
        np.savez(path, x=x, y=y)
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:cut])
    return write


_count = iter(range(10**9))


def _fresh(folder, suffix: str):
    """A new file name each example (the CSV cache keys on name, time and size)."""
    return folder / f"f{next(_count)}{suffix}"


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _check_exit(folder, path, source: str, capsys) -> int:
    spec = folder / "s.mlspec"
    spec.write_text(SPEC.format(source=source.format(name=path.name)))
    code = main(["check", str(spec)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert "Traceback" not in err and "error:" in err
    return code


@FUZZ
@given(content=csv_bytes(), task=st.sampled_from(["auto", "class", "real"]))
def test_fuzzed_csv_files_only_give_data_errors(content, task, fuzz_folder, capsys):
    path = _fresh(fuzz_folder, ".csv")
    path.write_bytes(content)
    source = 'csv("{name}", target="y", task="' + task + '")'
    code = _check_exit(fuzz_folder, path, source, capsys)
    event(f"exit {code}")
    if code == 0:
        program = mlspec.resolve(mlspec.load(fuzz_folder / "s.mlspec"))
        x, y = load_data(program.data)["train"]
        assert x.dtype == np.float32 and np.isfinite(x).all()
        assert program.data.info.rows == len(x)
        assert y.dtype in (np.int32, np.float32) and np.isfinite(y).all()


@FUZZ
@given(write=npz_writers(), task=st.sampled_from(["auto", "class", "real"]))
def test_fuzzed_npz_files_only_give_data_errors(write, task, fuzz_folder, capsys):
    path = _fresh(fuzz_folder, ".npz")
    write(path)
    code = _check_exit(fuzz_folder, path, 'npz("{name}", task="' + task + '")', capsys)
    event(f"exit {code}")
    if code == 0:
        program = mlspec.resolve(mlspec.load(fuzz_folder / "s.mlspec"))
        x, y = load_data(program.data)["train"]
        info = program.data.info
        assert x.dtype == np.float32 and x.shape[1:] == info.features and len(x) == len(y)
        assert info.rows == len(x)
        if info.target == "class":
            assert y.dtype == np.int32 and y.ndim == 1 and 0 <= y.min() <= y.max() \
                < info.classes <= max(len(y), 1000)
        else:
            assert y.dtype == np.float32 and y.shape == (len(x), info.target_dim)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Runs trained on a CSV (columns a, b and target y) and on an NPZ (x of width 2)."""
    folder = tmp_path_factory.mktemp("runs")
    (folder / "t.csv").write_text("a,b,y\n0,1,0\n1,0,1\n2,2,0\n3,1,1\n")
    np.savez(folder / "t.npz", x=np.eye(4)[:, :2], y=np.array([0, 1, 0, 1]))
    runs = {}
    for kind, source in (("csv", 'csv("t.csv", target="y")'), ("npz", 'npz("t.npz")')):
        spec = folder / f"{kind}.mlspec"
        spec.write_text(SPEC.format(source=source).replace("dense(1)", "dense(2)")
                        + "train {\n    loss = softmax_cross_entropy\n"
                        "    optimizer = sgd(learning_rate=0.1)\n    steps = 2\n}\n")
        runs[kind] = mlspec.run(spec)
    return runs


def _rows_or_data_error(result, path, need_targets: bool):
    from mlspec.runtime.predict import evaluate, rows_for

    try:
        x, y = rows_for(result, str(path), need_targets=need_targets)
        assert result.predict(x).shape == (len(x),)
        if need_targets:
            evaluate(result, x, y)
    except (DataError, SpecError):
        pass


@FUZZ
@given(content=csv_bytes(), need_targets=st.booleans())
def test_fuzzed_csv_rows_for_a_run_only_give_data_errors(content, need_targets, tiny_runs,
                                                          fuzz_folder):
    path = _fresh(fuzz_folder, ".csv")
    path.write_bytes(content)
    for result in tiny_runs.values():
        _rows_or_data_error(result, path, need_targets)


@FUZZ
@given(write=npz_writers(), need_targets=st.booleans())
def test_fuzzed_npz_rows_for_a_run_only_give_data_errors(write, need_targets, tiny_runs,
                                                          fuzz_folder):
    path = _fresh(fuzz_folder, ".npz")
    write(path)
    for result in tiny_runs.values():
        _rows_or_data_error(result, path, need_targets)


def test_valid_and_test_files_are_encoded_as_the_train_file(tmp_path):
    """Their text labels get the train file's ids even where a class is missing, and their
    feature columns are read in the train file's order."""
    (tmp_path / "train.csv").write_text("a,b,y\n1,10,ant\n2,20,bee\n3,30,cat\n")
    (tmp_path / "valid.csv").write_text("b,y,a\n40,cat,4\n50,ant,5\n")
    (tmp_path / "test.csv").write_text("a,b,y\n6,60,cat\n")
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='csv("train.csv", target="y")\n'
                                '    valid = csv("valid.csv", target="y")\n'
                                '    test = csv("test.csv", target="y")'))
    data = load_data(mlspec.resolve(mlspec.load(spec)).data)
    np.testing.assert_array_equal(data["valid"][0], [[4, 40], [5, 50]])
    np.testing.assert_array_equal(data["valid"][1], [2, 0])
    np.testing.assert_array_equal(data["test"][1], [2])


@pytest.mark.parametrize("train, valid, message", [
    ("a,y\n1,ant\n2,bee\n", "a,y\n1,dog\n", "has classes that 'train' does not have: 'dog'"),
    ("a,y\n1,ant\n2,bee\n", "a,y\n1,5\n", "'train' has class names, it has class ids"),
    ("a,y\n1,0\n2,1\n", "a,y\n1,5\n", "has 6 classes (ids up to 5) but 'train' has 2"),
    ("a,y\n1,0\n2,1\n", "a,y\n1,bee\n", "it has class names, 'train' has class ids"),
])
def test_a_valid_file_with_other_classes_is_a_check_error_at_its_place(train, valid, message,
                                                                        tmp_path):
    """Found by check, from what the sources say of themselves, at the valid source."""
    (tmp_path / "train.csv").write_text(train)
    (tmp_path / "valid.csv").write_text(valid)
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='csv("train.csv", target="y")\n'
                                '    valid = csv("valid.csv", target="y")'))
    with pytest.raises(SpecError, match=re.escape(message)) as raised:
        mlspec.resolve(mlspec.load(spec))
    assert raised.value.diagnostics[0].span.line == SOURCE_LINE + 1


def test_a_valid_file_with_other_target_columns_is_a_check_error(tmp_path):
    _npz(x=np.ones((4, 2)), y=np.ones((4, 2)))(tmp_path / "train.npz")
    _npz(x=np.ones((4, 2)), y=np.ones((4, 3)))(tmp_path / "valid.npz")
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source='npz("train.npz")\n    valid = npz("valid.npz")'))
    with pytest.raises(SpecError, match="has 3 target columns but 'train' has 2"):
        mlspec.resolve(mlspec.load(spec))


@pytest.mark.parametrize("source", ["hill(n=10, seed=-1)", "hyperplane(n=10, truth=-1)"])
def test_a_negative_seed_is_a_check_error_not_a_crash_in_run(source, tmp_path):
    spec = tmp_path / "s.mlspec"
    spec.write_text(SPEC.format(source=source))
    with pytest.raises(SpecError, match="greater than or equal to 0") as raised:
        mlspec.resolve(mlspec.load(spec))
    assert raised.value.diagnostics[0].span.line == SOURCE_LINE


def test_numbers_against_named_classes_are_looked_up_by_name_not_taken_as_ids(tmp_path):
    """A run trained on text labels never reads 0, 1, 2 in a new file as its class ids."""
    (tmp_path / "train.csv").write_text("a,y\n1,ant\n2,bee\n3,7\n")
    (tmp_path / "new.csv").write_text("a,y\n1,7\n2,0\n")
    info = mlspec.resolve(mlspec.load(_spec_file(tmp_path))).data.info
    assert info.class_names == ("7", "ant", "bee")
    from mlspec.catalog.sources import Csv

    new = Csv(path="new.csv", target="y")
    with pytest.raises(DataError, match="labels the training data does not have: '0'"):
        new.rows(tmp_path, info)
    (tmp_path / "new.csv").write_text("a,y\n1,7\n")
    np.testing.assert_array_equal(new.rows(tmp_path, info)[1], [0])


def _spec_file(folder):
    spec = folder / "s.mlspec"
    spec.write_text(SPEC.format(source='csv("train.csv", target="y")'))
    return spec
