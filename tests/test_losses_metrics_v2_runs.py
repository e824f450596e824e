"""The losses and metrics of v2 through training: the numbers a run records (its history's
last row, and `evaluate` of the same rows) equal test_losses_metrics_v2's NumPy and
scikit-learn references of the trained model's outputs, so that what training computes is
what the table tests check; the confusion matrix files; early stopping's direction; and
the spec errors of the new losses and metrics.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from test_losses_metrics import _f64
from test_losses_metrics_v2 import LOSS_TABLE_V2, _log_softmax, ref_smoothed_ce

import mlspec
from mlspec.cli import main
from mlspec.runtime.predict import evaluate, rows_for

MODEL = "model m {{\n    dense(8) -> tanh\n    dense({width})\n}}\n"
DATA_OF = {
    "binary": ("1", "    train = hill(n=120, seed=0)\n    valid = hill(n=60, seed=1)\n"),
    "class2": ("2", "    train = hill(n=120, seed=0)\n    valid = hill(n=60, seed=1)\n"),
    "class": ("classes", "    source = iris\n    valid = 0.3\n    standardize = true\n"),
    "real": ("2", '    train = npz("{folder}/train.npz")\n'
                  '    valid = npz("{folder}/valid.npz")\n'),
}


def _real_data(folder) -> None:
    rng = np.random.default_rng(11)
    for name, n in (("train", 80), ("valid", 40)):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        y = np.c_[x @ [1.0, -2.0, 0.5], 2.0 * x[:, 2] + 1.0].astype(np.float32)
        np.savez(folder / f"{name}.npz", x=x, y=y)


def _argument(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def spec_text(task: str, loss: str, folder, metrics: str = "", extra: str = "") -> str:
    width, data = DATA_OF[task]
    return (MODEL.format(width=width) + "data {\n" + data.format(folder=folder) + "}\n"
            f"train {{\n    loss = {loss}\n    optimizer = adam(learning_rate=0.05)\n"
            f"    steps = 4\n    metrics = [{metrics}]\n{extra}}}\n")


def _loss_call(name: str, kwargs: dict, classes: int) -> str:
    if "class_weight" in kwargs:
        kwargs = {**kwargs, "class_weight": kwargs["class_weight"][:classes]}
    arguments = ", ".join(f"{k}={_argument(v)}" for k, v in kwargs.items())
    return f"{name}({arguments})" if arguments else name


QUICK_RUNS = {"focal-alpha", "multiclass_hinge", "softmax_ce-both", "cosine_distance"}


@pytest.mark.parametrize("name, kwargs, task, reference", [
    pytest.param(*row[1:5], id=row[0],
                 marks=() if row[0] in QUICK_RUNS else pytest.mark.slow)
    for row in LOSS_TABLE_V2])
def test_a_runs_loss_is_the_reference_of_its_outputs(name, kwargs, task, reference,
                                                     tmp_path):
    """The history's last row (the returned model) and `evaluate` of the same rows both
    equal the NumPy reference of the model's outputs, on the train and valid splits."""
    _real_data(tmp_path)
    classes = 3 if task == "class" else 2
    result = mlspec.run(mlspec.parse(spec_text(task, _loss_call(name, kwargs, classes),
                                               tmp_path)))
    if "class_weight" in kwargs:
        reference = ref_smoothed_ce(kwargs.get("label_smoothing", 0.0),
                                    kwargs["class_weight"][:classes])
    last = result.history.iloc[-1]
    for split in ("train", "valid"):
        x, y = rows_for(result, split, need_targets=True)
        want = reference(result.outputs(x), y, None)
        np.testing.assert_allclose(last[f"{split}.loss"], want, rtol=1e-4, err_msg=split)
        np.testing.assert_allclose(evaluate(result, x, y)["loss"], want, rtol=1e-4,
                                   err_msg=split)


CLASS_METRICS = "accuracy, top_k_accuracy(k=2), macro_f1, balanced_accuracy, log_loss, " \
                "confusion_matrix"


def _sklearn_class_metrics(result, split):
    x, y = rows_for(result, split, need_targets=True)
    out = _f64(result.outputs(x))
    pred = out.argmax(axis=1)
    labels = list(range(out.shape[1]))
    return {"accuracy": np.mean(pred == y),
            "top_k_accuracy": skm.top_k_accuracy_score(y, out, k=2, labels=labels),
            "macro_f1": skm.f1_score(y, pred, average="macro"),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "log_loss": skm.log_loss(y, np.exp(_log_softmax(out)), labels=labels)}, \
        skm.confusion_matrix(y, pred, labels=labels)


def test_a_runs_class_metrics_and_confusion_matrix_are_sklearns(tmp_path, capsys):
    spec = tmp_path / "iris.mlspec"
    spec.write_text(spec_text("class", "softmax_cross_entropy", tmp_path, CLASS_METRICS))
    out = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    history = pd.read_csv(out / "history.csv")
    assert not any("confusion" in c for c in history.columns)
    assert "valid.top_k_accuracy" in history.columns
    result = mlspec.load_run(out)
    last = history.iloc[-1]
    for split in ("train", "valid"):
        want, _ = _sklearn_class_metrics(result, split)
        for name, value in want.items():
            np.testing.assert_allclose(last[f"{split}.{name}"], value, rtol=1e-4,
                                       err_msg=f"{split}.{name}")
    _, matrix = _sklearn_class_metrics(result, "valid")
    written = pd.read_csv(out / "confusion_matrix.csv", index_col=0)
    names = ["setosa", "versicolor", "virginica"]
    assert list(written.columns) == names and list(written.index) == names
    np.testing.assert_array_equal(written.to_numpy(), matrix)
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((out / "manifest.json").read_text())
    assert "confusion_matrix.csv" in manifest["file_sha256"]
    assert "confusion_matrix.png" not in manifest["plots_missing"]
    capsys.readouterr()
    assert main(["evaluate", str(out), "valid", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["confusion_matrix"] == {"classes": names, "counts": matrix.tolist()}
    assert main(["evaluate", str(out), "valid"]) == 0
    printed = capsys.readouterr().out
    assert "confusion matrix (valid)" in printed
    row = next(line for line in printed.splitlines() if "versicolor" in line
               and "│" in line and line.split("│")[1].strip() == "versicolor")
    assert [int(v) for v in row.split("│")[2:-1]] == matrix[1].tolist()


def test_the_confusion_matrix_is_of_train_without_a_valid_split(tmp_path):
    spec = tmp_path / "hill.mlspec"
    spec.write_text(spec_text("binary", "sigmoid_binary_cross_entropy", tmp_path,
                              "confusion_matrix").replace(
        "    valid = hill(n=60, seed=1)\n", ""))
    out = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    result = mlspec.load_run(out)
    x, y = rows_for(result, "train", need_targets=True)
    pred = (result.outputs(x)[:, 0] >= 0).astype(int)
    written = pd.read_csv(out / "confusion_matrix.csv", index_col=0)
    np.testing.assert_array_equal(written.to_numpy(), skm.confusion_matrix(y, pred))


@pytest.mark.parametrize("loss", ["sigmoid_binary_cross_entropy", "hinge_loss"])
def test_a_runs_auc_is_roc_auc_score(loss, tmp_path):
    result = mlspec.run(mlspec.parse(spec_text("binary", loss, tmp_path,
                                               "auc, macro_f1, balanced_accuracy")))
    last = result.history.iloc[-1]
    for split in ("train", "valid"):
        x, y = rows_for(result, split, need_targets=True)
        score = _f64(result.outputs(x))[:, 0]
        pred = (score >= 0).astype(int)
        np.testing.assert_allclose(last[f"{split}.auc"], skm.roc_auc_score(y, score),
                                   rtol=1e-5)
        np.testing.assert_allclose(last[f"{split}.macro_f1"],
                                   skm.f1_score(y, pred, average="macro"), rtol=1e-5)
        np.testing.assert_allclose(last[f"{split}.balanced_accuracy"],
                                   skm.balanced_accuracy_score(y, pred), rtol=1e-5)


# ---- early stopping takes each new metric's direction ---------------------------------

DIRECTIONS = {"auc": "max", "top_k_accuracy": "max", "macro_f1": "max",
              "balanced_accuracy": "max", "log_loss": "min"}


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_early_stop_mode_follows_the_metric(name, tmp_path):
    task = "binary" if name == "auc" else "class"
    metric = "top_k_accuracy(k=2)" if name == "top_k_accuracy" else name
    text = spec_text(task, "softmax_cross_entropy" if task == "class"
                     else "sigmoid_binary_cross_entropy", tmp_path, metric,
                     f"    early_stop = early_stop(metric=valid.{name}, patience=50)\n")
    program = mlspec.resolve(mlspec.parse(text))
    assert program.train.early_stop.mode == DIRECTIONS[name]


@pytest.mark.parametrize("name", ["auc", "log_loss"])
def test_early_stop_restores_the_best_evaluation_by_direction(name, tmp_path):
    """The returned model is the evaluation with the highest valid.auc (the lowest
    valid.log_loss); patience is never reached, so every evaluation is in the history."""
    text = spec_text("binary", "sigmoid_binary_cross_entropy", tmp_path, name,
                     f"    early_stop = early_stop(metric=valid.{name}, patience=1000)\n"
                     ).replace("steps = 4", "steps = 30").replace("0.05", "0.2")
    result = mlspec.run(mlspec.parse(text))
    column = result.history[f"valid.{name}"].to_numpy()
    best = column.argmax() if name == "auc" else column.argmin()
    assert column.max() > column.min()
    assert result.best_step == int(result.history["step"].iloc[best])
    assert result.metrics[f"valid.{name}"] == pytest.approx(column[best])


# ---- spec errors ------------------------------------------------------------------------

ERRORS = [
    ("class-weight-length", "class", "softmax_cross_entropy(class_weight=[1.0, 2.0])", "",
     "class_weight has 2 weights, but the data has 3 classes: give one weight per class",
     "[1.0, 2.0]"),
    ("class-weight-negative", "class", "softmax_cross_entropy(class_weight=[1.0, -2.0, 1.0])",
     "", "class_weight", "[1.0, -2.0, 1.0]"),
    ("label-smoothing-1", "class", "softmax_cross_entropy(label_smoothing=1.0)", "",
     "label_smoothing", "1.0"),
    ("focal-alpha", "binary", "sigmoid_focal_loss(alpha=1.5)", "", "alpha", "1.5"),
    ("focal-on-3-classes", "class", "sigmoid_focal_loss", "",
     "'sigmoid_focal_loss' needs 0/1 targets, but the data has 3 classes",
     "sigmoid_focal_loss"),
    ("hinge-width", "class2", "hinge_loss", "",
     "'hinge_loss' needs one score per example, but the model outputs [2]", "hinge_loss"),
    ("multiclass-hinge-real", "real", "multiclass_hinge_loss", "",
     "'multiclass_hinge_loss' needs class targets, but the data has real targets",
     "multiclass_hinge_loss"),
    ("log-cosh-classes", "class", "log_cosh", "",
     "'log_cosh' needs real targets, but the data has class ids", "log_cosh"),
    ("auc-3-classes", "class", "softmax_cross_entropy", "auc",
     "metric 'auc' needs 0/1 (two-class) targets, which this data does not have", "auc"),
    ("top-k-past-classes", "class", "softmax_cross_entropy", "top_k_accuracy(k=4)",
     "top_k_accuracy needs k at most the number of classes (3), but k is 4", "4"),
    ("top-k-positional", "class", "softmax_cross_entropy", "accuracy, top_k_accuracy(7)",
     "but k is 7", "7"),
    ("top-k-zero", "class", "softmax_cross_entropy", "top_k_accuracy(k=0)", "k", "0"),
    ("top-k-unknown-argument", "class", "softmax_cross_entropy", "top_k_accuracy(n=2)",
     "has no argument 'n'; did you mean 'k'?", "n=2"),
    ("log-loss-of-scores", "binary", "hinge_loss", "log_loss",
     "metric 'log_loss' needs class probabilities, but the loss 'hinge_loss' gives scores",
     "log_loss"),
    ("metric-takes-no-arguments", "class", "softmax_cross_entropy", "macro_f1(2)",
     "metric 'macro_f1' takes no arguments", "macro_f1(2)"),
    ("metric-twice", "class", "softmax_cross_entropy", "log_loss, log_loss",
     "metric 'log_loss' is listed twice", "log_loss"),
    ("confusion-of-real", "real", "mse", "confusion_matrix",
     "metric 'confusion_matrix' needs class targets", "confusion_matrix"),
    ("early-stop-on-confusion", "class", "softmax_cross_entropy", "confusion_matrix",
     "early_stop cannot watch 'valid.confusion_matrix': confusion_matrix is a table of the "
     "returned model, not a history column",
     "early_stop(metric=valid.confusion_matrix)"),
]


@pytest.mark.parametrize("task, loss, metrics, message, token",
                         [pytest.param(*row[1:], id=row[0]) for row in ERRORS])
def test_spec_errors(task, loss, metrics, message, token, write_spec, tmp_path, capsys):
    """`check` exits 2 with the message at the token's place (line, column and caret)."""
    extra = "    early_stop = early_stop(metric=valid.confusion_matrix)\n" \
        if "early_stop" in token else ""
    _real_data(tmp_path)
    path = write_spec(spec_text(task, loss, tmp_path, metrics, extra))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines) if token in text and text.strip()
                .startswith(("loss ", "metrics ", "early_stop ")))
    col = lines[line].rindex(token)
    assert f"{path}:{line + 1}:{col + 1}: error:" in err
    assert "Traceback" not in err


def test_predict_proba_of_a_loss_of_scores_is_refused(tmp_path, capsys):
    """`hinge_loss` gives scores, not logits: `predict --proba` says so (exit 2), and plain
    predictions are the scores' signs."""
    spec = tmp_path / "hinge.mlspec"
    spec.write_text(spec_text("binary", "hinge_loss", tmp_path))
    out = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), "valid", "--proba"]) == 2
    err = capsys.readouterr().err
    assert "--proba needs class probabilities; this run's loss (hinge_loss) gives scores" in err
    assert "Traceback" not in err
    result = mlspec.load_run(out)
    x, _ = rows_for(result, "valid", need_targets=False)
    with pytest.raises(ValueError, match="gives scores, not logits"):
        result.probabilities(x)
    predictions = tmp_path / "pred.csv"
    assert main(["predict", str(out), "valid", "--out", str(predictions)]) == 0
    np.testing.assert_array_equal(pd.read_csv(predictions)["prediction"],
                                  (result.outputs(x)[:, 0] >= 0).astype(int))


def test_members_trained_together_each_get_their_own_auc(tmp_path):
    """Seeds are vmapped in one program: each member's auc and macro_f1 are those of its
    own outputs."""
    text = spec_text("binary", "sigmoid_focal_loss(gamma=1.0)", tmp_path,
                     "auc, macro_f1").replace("steps = 4", "steps = 4\n    seeds = 3")
    result = mlspec.run(mlspec.parse(text))
    assert len(result.members) == 3
    for member in result.members:
        x, y = rows_for(member, "valid", need_targets=True)
        score = _f64(member.outputs(x))[:, 0]
        np.testing.assert_allclose(member.metrics["valid.auc"], skm.roc_auc_score(y, score),
                                   rtol=1e-5)
        np.testing.assert_allclose(member.metrics["valid.macro_f1"],
                                   skm.f1_score(y, (score >= 0).astype(int),
                                                average="macro"), rtol=1e-5)
