"""`predict` and `evaluate` on rows: a split, a CSV file, an NPZ file and a source call
holding the same rows give the same metrics as the run's own history, for every kind of
task, and a NumPy/scikit-learn reference agrees; rows that do not fit the run are clear
errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from sklearn.metrics import r2_score

import mlspec
from mlspec.catalog.sources import DataError
from mlspec.cli import main
from mlspec.runtime.predict import evaluate, rows_for

TRAIN = """
model m {{
    dense(8) -> relu
    dense({width})
}}
data {{
    train = {kind}("train.{kind}"{target})
    valid = {kind}("valid.{kind}"{target})
}}
train {{
    loss       = {loss}
    optimizer  = adam(learning_rate=0.02)
    steps      = 20
    eval_every = 10
    metrics    = [{metrics}]
}}
"""


def _binary(rng, n):
    x = rng.normal(size=(n, 3))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def _iris(rng, n):
    frame = pd.read_csv(ROOT / "specs" / "data" / "iris.csv").sample(n, random_state=rng)
    return frame.drop(columns="species").to_numpy(), frame["species"].to_numpy(str)


def _diabetes(rng, n):
    frame = pd.read_csv(ROOT / "specs" / "data" / "diabetes.csv").sample(n, random_state=rng)
    return frame.drop(columns="progression").to_numpy(), frame["progression"].to_numpy()


def _two_targets(rng, n):
    x = rng.normal(size=(n, 4))
    return x, np.c_[x @ [1.0, 2.0, 0.0, -1.0], 3.0 * x[:, 2] + 1.0]


# case -> (rows, model width, loss, metrics); a CSV holds one target column, so the run on
# two targets reads NPZ files.
CASES = {
    "binary-softmax": (_binary, 2, "softmax_cross_entropy", "accuracy"),
    "binary-sigmoid": (_binary, 1, "sigmoid_binary_cross_entropy", "accuracy, f1"),
    "multiclass-names": (_iris, 3, "softmax_cross_entropy", "accuracy"),
    "regression": (_diabetes, 1, "mse", "r2, rmse, mae"),
    "two-targets": (_two_targets, 2, "mse", "r2, mae"),
}


def _write(folder, name, x, y):
    np.savez(folder / f"{name}.npz", x=x, y=y)
    if y.ndim == 1:
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
        frame["t"] = y
        frame.to_csv(folder / f"{name}.csv", index=False)


_RUNS: dict = {}


def _run_case(case, tmp_path_factory):
    """The case's run on its train.* and valid.* files (trained once per module)."""
    if case not in _RUNS:
        rows, width, loss, metrics = CASES[case]
        folder = tmp_path_factory.mktemp(case)
        rng = np.random.default_rng(0)
        for name, n in (("train", 120), ("valid", 60)):
            _write(folder, name, *rows(rng, n))
        kind = "csv" if case != "two-targets" else "npz"
        target = ', target="t"' if kind == "csv" else ""
        spec = folder / "spec.mlspec"
        spec.write_text(TRAIN.format(width=width, kind=kind, target=target, loss=loss,
                                     metrics=metrics))
        _RUNS[case] = case, folder, mlspec.run(spec)
    return _RUNS[case]


@pytest.fixture(scope="module", params=CASES)
def trained(request, tmp_path_factory):
    return _run_case(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return _run_case("regression", tmp_path_factory)


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    return _run_case("multiclass-names", tmp_path_factory)


def _same_rows(folder, kind: str) -> list[str]:
    """DATA arguments that all hold the valid rows."""
    ways = [str(folder / "valid.npz"), 'npz("valid.npz")']
    if kind != "two-targets":
        ways += [str(folder / "valid.csv"), 'csv("valid.csv", target="t")']
    return ways


def test_metrics_of_the_same_rows_agree_every_way(trained):
    kind, folder, result = trained
    last = result.history.iloc[-1]
    for split in ("train", "valid"):
        metrics = evaluate(result, *rows_for(result, split, need_targets=True))
        expected = {name: last[f"{split}.{name}"] for name in metrics}
        assert metrics == pytest.approx(expected, rel=1e-5, abs=1e-6)
    valid = evaluate(result, *rows_for(result, "valid", need_targets=True))
    for data in _same_rows(folder, kind):
        assert evaluate(result, *rows_for(result, data, need_targets=True)) == \
            pytest.approx(valid, rel=1e-5, abs=1e-6), data


def test_metrics_match_a_reference_from_the_predictions(trained):
    kind, folder, result = trained
    x, y = rows_for(result, "valid", need_targets=True)
    metrics = evaluate(result, x, y)
    pred = result.predict(x)
    if result.program.data.info.target == "class":
        assert metrics["accuracy"] == pytest.approx(np.mean(pred == y), abs=1e-6)
    else:
        assert metrics["r2"] == pytest.approx(r2_score(y, pred), rel=1e-4, abs=1e-5)
        assert metrics["mae"] == pytest.approx(np.abs(pred - y).mean(), rel=1e-5)


def test_text_labels_of_a_file_keep_the_run_s_class_ids(iris, tmp_path):
    """A file holding only some of the classes still maps each name to the run's id."""
    _, folder, result = iris
    frame = pd.read_csv(folder / "valid.csv")
    only = frame[frame["t"] != "setosa"]
    only.to_csv(tmp_path / "two.csv", index=False)
    x, y = rows_for(result, str(tmp_path / "two.csv"), need_targets=True)
    names = result.program.data.info.class_names
    assert [names[i] for i in y] == list(only["t"])


def test_cli_evaluate_of_a_csv_equals_the_split(regression, tmp_path, capsys):
    _, folder, result = regression
    run = result.save(tmp_path / "run")

    def cli_metrics(data):
        assert main(["evaluate", str(run), data, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    assert cli_metrics(str(folder / "valid.csv")) == pytest.approx(cli_metrics("valid"),
                                                                   rel=1e-5)


@pytest.mark.parametrize("width", [1, 2, 7])
def test_rows_of_another_width_are_a_data_error(trained, width):
    kind, folder, result = trained
    expected = result.program.model.input_shape[0]
    if width == expected:
        width += 1
    x = np.zeros((5, width), np.float32)
    for call in (result.predict, result.outputs):
        with pytest.raises(DataError, match=f"rows of {expected} features, but was given "
                                            f"{width} feature"):
            call(x)
    with pytest.raises(DataError, match=f"{expected} features"):
        evaluate(result, x, np.zeros(5, np.int32))


def test_targets_of_the_wrong_shape_are_refused(trained):
    kind, folder, result = trained
    x, y = rows_for(result, "valid", need_targets=True)
    wrong = y.reshape(len(y), -1)[:, :1] if y.ndim == 1 else y[:, 0]
    with pytest.raises(DataError, match="of shape"):
        evaluate(result, x, wrong)
    with pytest.raises(DataError, match="of shape"):
        evaluate(result, x, y[:-1])


@pytest.fixture(scope="module")
def hill_run():
    text = ("model m {\n    dense(2)\n}\ndata {\n    train = hill(n=100)\n"
            "    valid = hill(n=50, seed=1)\n}\ntrain {\n    loss = softmax_cross_entropy\n"
            "    optimizer = adam(learning_rate=0.05)\n    steps = 10\n"
            "    eval_every = 10\n    metrics = [accuracy]\n}\n")
    return mlspec.run(mlspec.parse(text))


def test_a_source_call_and_an_npz_of_its_rows_match_the_split(hill_run, tmp_path):
    valid = evaluate(hill_run, *rows_for(hill_run, "valid", need_targets=True))
    assert valid == pytest.approx({"loss": hill_run.metrics["valid.loss"],
                                   "accuracy": hill_run.metrics["valid.accuracy"]}, rel=1e-5)
    x, y = rows_for(hill_run, "hill(n=50, seed=1)", need_targets=True)
    assert evaluate(hill_run, x, y) == pytest.approx(valid, rel=1e-6)
    np.savez(tmp_path / "rows.npz", x=x, y=y)
    assert evaluate(hill_run, *rows_for(hill_run, str(tmp_path / "rows.npz"),
                                        need_targets=True)) == pytest.approx(valid, rel=1e-6)


# rows given to a run on 2 hill features -> the error's words
MISFITS = {
    "one column csv": ("a\n1\n2\n", "csv", "rows of 2 features, but was given 1 feature"),
    "three column csv": ("a,b,c\n1,2,3\n", "csv", "rows of 2 features, but was given 3"),
    "npz of width 5": ((np.zeros((4, 5)), np.zeros(4, int)), "npz",
                       "rows of 2 features, but was given 5"),
    "source of width 3": ("hyperplane(n=10, dim=3)", "call", "but was given 3 features"),
    "real targets": ("linear(n=10)", "call", "linear(...) are real values, but the "
                     "training data's are class ids"),
    "class id too large": ((np.zeros((4, 2)), np.arange(4)), "npz",
                           "class id 3, but the training data has 2 classes"),
    "text labels": ((np.zeros((2, 2)), np.array(["a", "b"])), "npz",
                    "text labels such as 'a', but the training data's classes are the ids 0 to 1"),
    "real targets for classes": ((np.zeros((2, 2)), np.array([0.5, 1.0])), "npz",
                                 "non-integer values"),
    "misspelt split": ("vaild", "call", "unknown split or data source 'vaild'; did you mean "
                       "'valid'?"),
    "misspelt source": ("hil(n=5)", "call", "unknown data source 'hil'; did you mean 'hill'?"),
}


@pytest.mark.parametrize("case", MISFITS)
def test_rows_that_do_not_fit_are_clear_errors_with_exit_2(case, hill_run, tmp_path, capsys):
    content, kind, message = MISFITS[case]
    if kind == "csv":
        data = tmp_path / "rows.csv"
        data.write_text(content)
    elif kind == "npz":
        data = tmp_path / "rows.npz"
        np.savez(data, x=content[0], y=content[1])
    else:
        data = content
    run = hill_run.save(tmp_path / "run")
    command = "predict" if kind == "csv" else "evaluate"
    assert main([command, str(run), str(data)]) == 2
    assert message in capsys.readouterr().err


def test_a_csv_lacking_the_feature_columns_names_them(regression, tmp_path):
    _, folder, result = regression
    frame = pd.read_csv(folder / "valid.csv").drop(columns=["f1", "f4"])
    frame.to_csv(tmp_path / "less.csv", index=False)
    with pytest.raises(DataError, match="lacks the columns 'f1', 'f4'"):
        rows_for(result, str(tmp_path / "less.csv"), need_targets=False)
    # predicting needs no target column, and extra columns are not features
    frame = pd.read_csv(folder / "valid.csv").drop(columns="t").assign(extra=1.0)
    frame.to_csv(tmp_path / "more.csv", index=False)
    x, y = rows_for(result, str(tmp_path / "more.csv"), need_targets=False)
    assert y is None
    np.testing.assert_array_equal(x, rows_for(result, "valid", need_targets=True)[0])


def _forward(result, x):
    """The model's logits computed by hand in NumPy: dense(8) -> relu -> dense(width)."""
    p = {name: {k: np.asarray(v, np.float64) for k, v in layer.items()}
         for name, layer in result.params.items()}
    hidden = np.maximum(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0)
    return hidden @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]


def test_predict_proba_writes_each_class_s_probability(trained, tmp_path, capsys):
    kind, folder, result = trained
    run = result.save(tmp_path / "run")
    out = tmp_path / "proba.csv"
    code = main(["predict", str(run), "valid", "--proba", "--out", str(out)])
    if result.program.data.info.target != "class":
        assert code == 2
        err = capsys.readouterr().err
        assert "--proba needs a run of class targets" in err and "Traceback" not in err
        assert not out.exists()
        # without --proba: a column per target, as predict --help says
        assert main(["predict", str(run), "valid", "--out", str(out)]) == 0
        width = result.program.data.info.target_dim
        assert list(pd.read_csv(out).columns) == [f"prediction_{i}" for i in range(width)]
        return
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(out, keep_default_na=False)
    names = result.program.data.info.class_names or ["0", "1"]
    columns = [f"proba_{name}" for name in names]
    assert list(frame.columns) == ["prediction", *columns]
    proba = frame[columns].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    # argmax names the predicted class, as predict's own column does
    assert [names[i] for i in proba.argmax(axis=1)] == list(frame["prediction"].astype(str))
    # and the numbers are the softmax (or sigmoid) of the logits computed by hand
    x, _ = rows_for(result, "valid", need_targets=False)
    logits = _forward(result, np.asarray(x, np.float64))
    if logits.shape[1] == 1:
        expected = np.c_[1 / (1 + np.exp(logits)), 1 / (1 + np.exp(-logits))]
    else:
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected = shifted / shifted.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, atol=2e-6)
    np.testing.assert_allclose(result.probabilities(x), expected, atol=2e-6)
