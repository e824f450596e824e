"""Typed data: categorical and text columns of a CSV or Parquet file become inputs of
integer ids by vocabularies fitted on the train split (LANGUAGE.md, "Typed data"), missing
cells are refused, dropped or filled, and a run saves its vocabularies so that `predict`
and `evaluate` encode new rows as the training rows were."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mlspec
from mlspec.catalog.sources.typed import input_name, words
from mlspec.cli import main
from mlspec.runtime.loading import load_data
from mlspec.semantics.data import resolve_data, split_cuts
from mlspec.semantics.scope import Scope
from mlspec.syntax.errors import SpecError

MODEL = "model m {\n    dense(classes)\n}\n"


def _write(folder, name, frame: pd.DataFrame):
    frame.to_csv(folder / name, index=False)


def _data(folder, data: str, model: str | None = None):
    """The resolved data section of a spec in `folder` whose data section is `data`; with
    a `model`, of the whole spec resolved (else of the data section alone, which a model
    of several inputs needs until graph models resolve)."""
    path = folder / "t.mlspec"
    path.write_text(f"{model or MODEL}data {{\n{data}\n}}\n")
    spec = mlspec.load(path)
    if model is None:
        return resolve_data(spec.data, Scope({}), folder)
    return mlspec.resolve(spec).data


def _error(folder, data: str, model: str | None = None) -> SpecError:
    with pytest.raises(SpecError) as raised:
        _data(folder, data, model)
    return raised.value


EMBED = "model m {\n    embedding(features=3)\n    flatten\n    dense(classes)\n}\n"


# ---------------------------------------------------------------- words and ids


def test_words_are_lower_cased_runs_of_letters_digits_and_apostrophes():
    assert words("Don't STOP_me now, 2x!  Café--ok") == \
        ["don't", "stop", "me", "now", "2x", "café", "ok"]
    assert words("") == [] and words("... !!") == []
    assert input_name("native-country") == "native_country"
    assert input_name("a b.c") == "a_b_c" and input_name("2020") == "_2020"


def test_token_ids_follow_frequency_then_first_appearance(tmp_path):
    # counts: a 3, b 3, c 1, d 1; b appears first, then a; c before d
    _write(tmp_path, "train.csv", pd.DataFrame({
        "note": ["B a", "a C b", "b a d"], "y": [0, 1, 0]}))
    _write(tmp_path, "valid.csv", pd.DataFrame({
        "note": ["zebra a", "b b b b b"], "y": [1, 0]}))
    data = _data(tmp_path, '    train = csv("train.csv", target="y", text=["note"], seq_len=4)\n'
                           '    valid = csv("valid.csv", target="y", text=["note"], seq_len=4)',
                 EMBED)
    (inp,) = data.info.inputs
    assert (inp.name, inp.kind, inp.shape, inp.vocab, inp.column) == \
        ("note", "tokens", (4,), 6, "note")
    dataset = load_data(data)
    x, _ = dataset["train"]
    assert x.dtype == np.int32
    # b=2, a=3, c=4, d=5; padded at the end with 0
    np.testing.assert_array_equal(x, [[2, 3, 0, 0], [3, 4, 2, 0], [2, 3, 5, 0]])
    x, _ = dataset["valid"]
    # a word the train split lacks is 1 (unknown); a long row is cut at the end
    assert dataset.encoding.vocabularies["note"].entries == ("b", "a", "c", "d")
    np.testing.assert_array_equal(x, [[1, 3, 0, 0], [2, 2, 2, 2]])


def test_max_tokens_keeps_the_most_frequent_words(tmp_path):
    _write(tmp_path, "d.csv", pd.DataFrame({"t": ["x y y z z z", "w"], "y": [0, 1]}))
    data = _data(tmp_path, '    train = csv("d.csv", target="y", text=["t"], max_tokens=2, '
                           'seq_len=6)', EMBED)
    assert data.info.inputs[0].vocab == 4  # z, y, padding, unknown
    x, _ = load_data(data)["train"]
    np.testing.assert_array_equal(x, [[1, 3, 3, 2, 2, 2], [1, 0, 0, 0, 0, 0]])


def test_vocabularies_are_the_train_splits_only(tmp_path):
    """Split in place: a word or value that only valid rows hold is unknown (1, or 0)."""
    n = 40
    texts = [f"common w{i}" for i in range(n)]
    cities = [f"c{i}" for i in range(n)]
    _write(tmp_path, "d.csv", pd.DataFrame({"t": texts, "city": cities, "v": np.arange(n),
                                            "y": np.arange(n) % 2}))
    data = _data(tmp_path, '    source = csv("d.csv", target="y", text=["t"], '
                           'categorical=["city"], seq_len=2)\n    valid = 0.25')
    train = split_cuts(data, n)["train"]
    assert len(train) == 30
    info = {i.name: i for i in data.info.inputs}
    assert info["t"].vocab == 2 + 1 + 30 and info["city"].vocab == 30 + 1
    dataset = load_data(data)
    x, _ = dataset["valid"]
    assert set(x) == {"x", "city", "t"}
    assert (x["t"][:, 0] == 2).all() and (x["t"][:, 1] == 1).all()
    assert (x["city"] == 0).all()
    x, _ = dataset["train"]
    assert sorted(x["city"]) == list(range(1, 31)) and (x["t"][:, 1] >= 3).all()
    # the train rows are those of the split: the numeric column says which rows they are
    np.testing.assert_array_equal(x["x"][:, 0], train)


def test_categorical_ids_are_sorted_values_and_0_for_unseen(tmp_path):
    _write(tmp_path, "train.csv", pd.DataFrame({
        "city": ["NY", "LA", "SF", "LA"], "zip": [10, 9, 100, 9], "y": [0, 1, 0, 1]}))
    _write(tmp_path, "valid.csv", pd.DataFrame({
        "city": ["TX", "SF"], "zip": [9, 11], "y": [0, 1]}))
    data = _data(tmp_path, '    train = csv("train.csv", target="y", categorical=["city", "zip"])\n'
                           '    valid = csv("valid.csv", target="y", categorical=["city", "zip"])')
    assert [(i.name, i.kind, i.shape, i.vocab) for i in data.info.inputs] == \
        [("city", "category", (), 4), ("zip", "category", (), 4)]
    dataset = load_data(data)
    x, _ = dataset["train"]
    np.testing.assert_array_equal(x["city"], [2, 1, 3, 1])  # LA, NY, SF
    np.testing.assert_array_equal(x["zip"], [2, 1, 3, 1])  # 9, 10, 100: as numbers
    x, _ = dataset["valid"]
    np.testing.assert_array_equal(x["city"], [0, 3])
    np.testing.assert_array_equal(x["zip"], [1, 0])


def test_standardize_applies_to_x_only(tmp_path):
    _write(tmp_path, "d.csv", pd.DataFrame({"a": [1.0, 2.0, 3.0, 6.0], "c": list("pqpq"),
                                            "y": [0, 1, 0, 1]}))
    data = _data(tmp_path, '    train = csv("d.csv", target="y", categorical=["c"])\n'
                           '    standardize = true')
    dataset = load_data(data)
    x, _ = dataset["train"]
    np.testing.assert_allclose(x["x"][:, 0], (np.array([1, 2, 3, 6]) - 3) / np.sqrt(3.5),
                               rtol=1e-6)
    np.testing.assert_array_equal(x["c"], [1, 2, 1, 2])
    np.testing.assert_allclose(dataset.mean, [3.0])


# ---------------------------------------------------------------- missing values

MISSING = "a,c,t,y\n1,NY,hello there,0\n?,LA,,1\n3,,fine day,0\n5,NA,NA,1\n"


def test_missing_error_names_the_column_and_row(tmp_path):
    (tmp_path / "d.csv").write_text(MISSING)
    source = '    train = csv("d.csv", target="y", categorical=["c"], text=["t"]'
    err = _error(tmp_path, source + ")", EMBED)
    # '?' is no missing value unless na_values says so: the column is not numeric then
    assert "column 'a' of 'd.csv' is not numeric" in str(err)
    err = _error(tmp_path, source + ', na_values=["?"])', EMBED)
    assert "column 'a' of 'd.csv' has missing values (the first at row 1)" in str(err)
    assert err.diagnostics[0].span.line == 7


def test_missing_drop_and_fill(tmp_path):
    (tmp_path / "d.csv").write_text(MISSING)
    source = '    train = csv("d.csv", target="y", categorical=["c"], text=["t"], ' \
             'na_values=["?"], missing='
    data = _data(tmp_path, source + '"drop")')
    assert data.info.rows == 2  # rows 1 and 2 have an empty or "?" cell; "NA" is text
    x, y = load_data(data)["train"]
    np.testing.assert_array_equal(x["x"][:, 0], [1, 5])
    np.testing.assert_array_equal(x["c"], [2, 1])  # NA, NY
    np.testing.assert_array_equal(y, [0, 1])
    data = _data(tmp_path, source + '"fill")')
    dataset = load_data(data)
    x, _ = dataset["train"]
    np.testing.assert_allclose(x["x"][:, 0], [1, 3, 3, 5])  # the train mean of 1, 3, 5
    np.testing.assert_array_equal(x["c"], [3, 1, 0, 2])  # LA, NA, NY; missing is 0
    assert (x["t"][1] == 0).all() and (x["t"][3, :1] > 1).all()
    assert dataset.encoding.fill == {"a": 3.0}


def test_a_missing_target_is_refused_unless_dropped(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,\n3,1\n")
    err = _error(tmp_path, '    train = csv("d.csv", target="y", missing="fill")')
    assert "target column 'y' of 'd.csv' has missing values (the first at row 1)" in str(err)
    data = _data(tmp_path, '    train = csv("d.csv", target="y", missing="drop")')
    assert data.info.rows == 2


# ---------------------------------------------------------------- errors at their place

ERRORS = {
    # case -> (arguments of csv("d.csv", target="y", ...), message, the caret's text)
    "missing categorical": ('categorical=["city", "jb"]', "has no column 'jb'", '"jb"'),
    "missing text": ('text=["nope"]', "has no column 'nope'", '"nope"'),
    "text of numbers": ('text=["m"]', "column 'm' of 'd.csv' holds numbers, not text", '"m"'),
    "in both lists": ('categorical=["city"], text=["city"]',
                      "is in both categorical=[...] and text=[...]", '"city"'),
    "twice in one list": ('categorical=["city", "city"]', "is twice in categorical=[...]",
                          '"city"'),
    "the target": ('categorical=["y"]', "is the target column", '"y"'),
    "a name clash": ('categorical=["job-title", "job_title"]',
                     "gives the input name 'job_title', which the column 'job-title' gives "
                     "already", '"job_title"'),
    "x beside features": ('categorical=["x"]', "gives the input name 'x', which the numeric "
                                               "features have already", '"x"'),
    "in features too": ('features=["n"], categorical=["n"]',
                        "is in both features=[...] and categorical=[...]", '"n"'),
}


@pytest.mark.parametrize("case", ERRORS)
def test_a_bad_typed_argument_is_an_error_at_it(case, tmp_path, capsys):
    _write(tmp_path, "d.csv", pd.DataFrame({
        "n": [1, 2], "m": [3, 4], "city": ["a", "b"], "job-title": ["p", "q"],
        "job_title": ["r", "s"], "x": ["u", "v"], "y": [0, 1]}))
    arguments, message, caret = ERRORS[case]
    if "features" not in arguments:
        arguments = 'features=["n"], ' + arguments
    line = f'    train = csv("d.csv", target="y", {arguments})'
    err = _error(tmp_path, line)
    assert message in str(err)
    span = err.diagnostics[0].span
    assert span.line == 5
    assert line[span.column - 1:span.end_column - 1] == caret
    assert main(["check", str(tmp_path / "t.mlspec")]) == 2
    out = capsys.readouterr().err
    assert f"t.mlspec:5:{span.column}: error:" in out and message in out


def test_several_inputs_need_a_graph_model(tmp_path, capsys):
    _write(tmp_path, "d.csv", pd.DataFrame({"a": [1, 2], "city": ["p", "q"],
                                            "job": ["r", "s"], "y": [0, 1]}))
    err = _error(tmp_path, '    train = csv("d.csv", target="y", categorical=["city", "job"])',
                 MODEL)
    assert "this data has the inputs x, city, job; a chain takes one input, so write a " \
           "graph model" in str(err)
    assert err.diagnostics[0].span.line == 1
    # an input line does not make a chain take several inputs
    err = _error(tmp_path, '    train = csv("d.csv", target="y", categorical=["city", "job"])',
                 "model m {\n    input [1]\n    dense(classes)\n}\n")
    assert "this data has the inputs x, city, job" in str(err)


def test_embedding_takes_the_inputs_vocabulary_only_on_a_typed_input(tmp_path):
    _write(tmp_path, "d.csv", pd.DataFrame({"c": ["p", "q", "r"], "a": [1, 2, 3],
                                            "y": [0, 1, 0]}))
    data = '    train = csv("d.csv", target="y", categorical=["c"], features=[])'
    path = tmp_path / "t.mlspec"
    path.write_text(f"{EMBED}data {{\n{data}\n}}\n")
    program = mlspec.resolve(mlspec.load(path))
    assert program.model.layers[0].vocab == 4 and program.model.input_shape == ()
    # the program, its data's inputs and the filled-in vocab read back from JSON
    from mlspec.semantics.program import Program

    assert Program.model_validate_json(program.model_dump_json()) == program
    assert program.model.output_shape == (2,)
    small = EMBED.replace("features=3", "vocab=3, features=3")
    err = _error(tmp_path, data, small)
    assert "embedding has vocab=3, but the input 'c' takes 4 ids" in str(err)
    assert err.diagnostics[0].span.line == 2
    err = _error(tmp_path, '    train = csv("d.csv", target="y", features=["a"])', EMBED)
    assert "embedding needs vocab=..." in str(err) and err.diagnostics[0].span.line == 2


# ---------------------------------------------------------------- parquet


def test_parquet_reads_as_csv_does(tmp_path):
    frame = pd.DataFrame({"a": [1.5, None, 3.0, 4.0], "city": ["NY", "LA", None, "NY"],
                          "note": ["good day", "bad day", "ok", ""], "y": ["p", "q", "p", "q"]})
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_csv(tmp_path / "d.csv", index=False)
    arguments = 'target="y", categorical=["city"], text=["note"], seq_len=3, missing="fill"'
    from_csv = _data(tmp_path, f'    train = csv("d.csv", {arguments})')
    from_parquet = _data(tmp_path, f'    train = parquet("d.parquet", {arguments})')
    assert from_csv.info == from_parquet.info
    a, b = load_data(from_csv), load_data(from_parquet)
    assert a.encoding == b.encoding
    for key in ("x", "city", "note"):
        np.testing.assert_array_equal(a["train"][0][key], b["train"][0][key])
    np.testing.assert_array_equal(a["train"][1], b["train"][1])


# ---------------------------------------------------------------- a run, end to end

TEXT_SPEC = """
model m {
    embedding(features=8)
    flatten
    dense(classes)
}
data {
    source = csv("reviews.csv", target="label", text=["review"], seq_len=4)
    valid  = 0.25
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.05)
    steps     = 150
    metrics   = [accuracy]
}
"""


def _reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = rng.random(n) < 0.5
    nouns = rng.choice(["movie", "film", "plot", "cast", "story"], n)
    review = [f"{'Great' if g else 'awful'} {noun}!" for g, noun in zip(good, nouns)]
    return pd.DataFrame({"review": review, "label": np.where(good, "pos", "neg")})


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    _reviews(80, 0).to_csv(folder / "reviews.csv", index=False)
    (folder / "t.mlspec").write_text(TEXT_SPEC)
    assert main(["run", str(folder / "t.mlspec"), "--out", str(folder / "run"), "--quiet"]) == 0
    return folder


def test_a_text_classifier_trains_and_predicts_new_text(text_run, capsys):
    run = text_run / "run"
    vocab = json.loads((run / "vocab.json").read_text())
    review = vocab["vocabularies"]["review"]
    assert review["kind"] == "tokens" and review["seq_len"] == 4
    assert set(review["entries"]) == {"great", "awful", "movie", "film", "plot", "cast",
                                      "story"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["valid"]["accuracy"] == 1.0
    pd.DataFrame({"review": ["GREAT show", "awful, awful", "what a great cast"]}).to_csv(
        text_run / "new.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(run), str(text_run / "new.csv")]) == 0
    out = capsys.readouterr().out.split()
    # "what a great cast": its first word is unknown, and the classifier saw "great" first
    assert out[:3] == ["prediction", "pos", "neg"]
    result = mlspec.load_run(run)
    assert result.encoding.vocabularies["review"].entries == tuple(review["entries"])
    # evaluate on a split and on a file of the same rows: the same metrics
    assert main(["evaluate", str(run), "valid", "--json"]) == 0
    valid = json.loads(capsys.readouterr().out)
    data = result.program.data
    index = split_cuts(data, 80)["valid"]
    pd.read_csv(text_run / "reviews.csv").iloc[index].to_csv(text_run / "v.csv", index=False)
    assert main(["evaluate", str(run), str(text_run / "v.csv"), "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert list(from_file.values())[0] == list(valid.values())[0]


@pytest.mark.parametrize("rows, message", [
    ("note\nhello\n", "has no column 'review'"),
    ("review\n1\n2\n", "bad.csv' holds numbers, not text"),
])
def test_new_rows_that_do_not_fit_are_errors(text_run, rows, message, capsys):
    (text_run / "bad.csv").write_text(rows)
    capsys.readouterr()
    assert main(["predict", str(text_run / "run"), str(text_run / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_folder_without_its_vocab_file_is_refused(text_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(text_run / "run", copy)
    (copy / "vocab.json").unlink()
    assert main(["predict", str(copy), "valid"]) == 2
    assert "vocab.json is missing" in capsys.readouterr().err


def test_rows_to_predict_are_never_dropped(tmp_path):
    """Dropping a row to predict would shift every prediction after it to the wrong row."""
    from mlspec.catalog.sources import Csv, DataError

    (tmp_path / "d.csv").write_text("a,c,y\n1,p,0\n,q,1\n2,p,1\n")
    source = Csv(path="d.csv", target="y", categorical=("c",), missing="drop")
    info = source.info(tmp_path)
    assert info.rows == 2
    encoding = source.fit(source.table(tmp_path))
    x, y = source.rows(tmp_path, info, True, encoding)
    np.testing.assert_array_equal(x["x"][:, 0], [1, 2])
    np.testing.assert_array_equal(y, [0, 1])
    with pytest.raises(DataError, match="'a' of 'd.csv' has a missing value at row 1; the "
                                        "run drops such rows"):
        source.rows(tmp_path, info, False, encoding)


def test_a_run_folder_from_before_vocabularies_loads(text_run, tmp_path, capsys):
    """A folder without vocab.json (as every run's was before typed data) loads; rows
    that would need its vocabularies are then a clear error."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(text_run / "run", copy)
    (copy / "vocab.json").unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["file_sha256"]["vocab.json"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert mlspec.load_run(copy).encoding is None
    capsys.readouterr()
    assert main(["predict", str(copy), str(text_run / "reviews.csv")]) == 2
    assert "the run saved no vocabularies" in capsys.readouterr().err


def test_ties_of_a_split_in_place_follow_the_files_order(tmp_path):
    """Each word once: the ids are the order of the file's train rows, however the split
    permutes them."""
    n = 12
    _write(tmp_path, "d.csv", pd.DataFrame({"t": [f"w{i}" for i in range(n)],
                                            "y": np.arange(n) % 2}))
    data = _data(tmp_path, '    source = csv("d.csv", target="y", text=["t"], seq_len=1)\n'
                           '    valid = 4\n    split_seed = 3', EMBED)
    dataset = load_data(data)
    train = np.sort(split_cuts(data, n)["train"])
    assert dataset.encoding.vocabularies["t"].entries == tuple(f"w{i}" for i in train)


def test_a_damaged_vocab_file_is_refused(text_run, tmp_path, capsys):
    import hashlib
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(text_run / "run", copy)
    vocab = copy / "vocab.json"
    vocab.write_text(vocab.read_text().replace('"great"', '"grate"'))
    assert main(["predict", str(copy), "valid"]) == 2
    assert "vocab.json was changed or damaged after the run" in capsys.readouterr().err
    vocab.write_text('{"vocabularies": {"review": {"kind": "words"}}}')
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["file_sha256"]["vocab.json"] = hashlib.sha256(vocab.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["predict", str(copy), "valid"]) == 2
    err = capsys.readouterr().err
    assert "vocab.json is not the run's vocabularies" in err and "Traceback" not in err
