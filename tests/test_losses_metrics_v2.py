"""The losses and metrics of v2 (LANGUAGE.md, "More losses and metrics") against NumPy and
scikit-learn, each checked two ways: the catalogue entry on fixed arrays (the table
tests), and the numbers a run records (its history's last row, and `evaluate` of the same
rows) against the same reference on the trained model's outputs, so that what training
computes is what the reference computes.

The NumPy references are written here from optax's documented formulas, in float64, and
never call mlspec's or optax's code.
"""

from __future__ import annotations

import json
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from test_losses_metrics import DATA, PARAMS, _f64, _jax_tree

import mlspec
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS, SplitInputs
from mlspec.cli import main
from mlspec.runtime.predict import evaluate, rows_for

RTOL = 1e-5
ATOL = 1e-6
C = 4  # classes of DATA["class_y"]


# ---- NumPy references of the losses --------------------------------------------------


def _log_softmax(z):
    z = _f64(z)
    top = z.max(axis=1, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))


def _one_hot(y, classes):
    return np.eye(classes)[np.asarray(y)]


def _softplus(s):
    return np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s)))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def ref_focal(alpha, gamma):
    def ref(out, y, params):
        z, t = _f64(out)[:, 0], _f64(y)
        ce = _softplus(z) - z * t
        p = _sigmoid(z)
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * (1 - p_t) ** gamma
        if alpha is not None:
            loss = loss * (alpha * t + (1 - alpha) * (1 - t))
        return loss.mean()

    return ref


def _signs(y):
    return 2 * _f64(y) - 1


def ref_hinge(out, y, params):
    return np.maximum(0, 1 - _f64(out)[:, 0] * _signs(y)).mean()


def ref_perceptron(out, y, params):
    return np.maximum(0, -_f64(out)[:, 0] * _signs(y)).mean()


def _sparse_plus(x):
    return np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4))


def ref_sparsemax(out, y, params):
    z = _f64(out)[:, 0]
    return _sparse_plus(np.where(np.asarray(y) == 1, -z, z)).mean()


def ref_multiclass_hinge(out, y, params):
    z = _f64(out)
    rows = np.arange(len(y))
    return ((z + 1 - _one_hot(y, z.shape[1])).max(axis=1) - z[rows, y]).mean()


def ref_multiclass_perceptron(out, y, params):
    z = _f64(out)
    return (z.max(axis=1) - z[np.arange(len(y)), y]).mean()


def _sparsemax(z):
    """The Euclidean projection of each row onto the simplex (Martins & Astudillo)."""
    s = -np.sort(-z, axis=1)
    k = np.arange(1, z.shape[1] + 1)
    cumulative = np.cumsum(s, axis=1)
    support = (1 + k * s) > cumulative
    size = support.sum(axis=1)
    tau = (cumulative[np.arange(len(z)), size - 1] - 1) / size
    return np.maximum(z - tau[:, None], 0)


def ref_multiclass_sparsemax(out, y, params):
    """The Fenchel-Young loss of sparsemax: z.p - |p|^2/2 - z_y + 1/2."""
    z = _f64(out)
    p = _sparsemax(z)
    return ((z * p).sum(1) - 0.5 * (p**2).sum(1) - z[np.arange(len(y)), y] + 0.5).mean()


def ref_softmax_ce(out, y, params):
    return -_log_softmax(out)[np.arange(len(y)), y].mean()


def ref_poly(epsilon):
    def ref(out, y, params):
        log_p = _log_softmax(out)[np.arange(len(y)), y]
        return (-log_p + epsilon * (1 - np.exp(log_p))).mean()

    return ref


def ref_smoothed_ce(smoothing, class_weight=None):
    def ref(out, y, params):
        classes = np.shape(out)[1]
        targets = (1 - smoothing) * _one_hot(y, classes) + smoothing / classes
        rows = -(targets * _log_softmax(out)).sum(axis=1)
        if class_weight is not None:
            rows = rows * np.asarray(class_weight)[y]
        return rows.mean()

    return ref


def ref_log_cosh(out, y, params):
    d = np.abs(_f64(out) - _f64(y))
    return (d + np.log1p(np.exp(-2 * d)) - np.log(2)).mean()


def ref_cosine_distance(epsilon):
    def ref(out, y, params):
        o, t = _f64(out), _f64(y)
        # optax bounds the squared norms by epsilon
        norms = np.sqrt(np.maximum((o**2).sum(axis=1), epsilon)
                        * np.maximum((t**2).sum(axis=1), epsilon))
        return (1 - (o * t).sum(axis=1) / norms).mean()

    return ref


def ref_l2_loss(out, y, params):
    return (0.5 * (_f64(out) - _f64(y)) ** 2).mean()


def pred_sign(out):
    return (_f64(out)[:, 0] >= 0).astype(np.int32)


def pred_argmax(out):
    return np.argmax(_f64(out), axis=1).astype(np.int32)


def pred_identity(out):
    return _f64(out)


WEIGHTS = (0.5, 2.0, 1.0, 3.0)
# (id, registry name, constructor kwargs, task of DATA, reference, reference predict)
LOSS_TABLE_V2 = [
    ("focal-default", "sigmoid_focal_loss", {}, "binary", ref_focal(None, 2.0), pred_sign),
    ("focal-alpha", "sigmoid_focal_loss", {"alpha": 0.25, "gamma": 1.5}, "binary",
     ref_focal(0.25, 1.5), pred_sign),
    ("focal-gamma0", "sigmoid_focal_loss", {"gamma": 0.0}, "binary", ref_focal(None, 0.0),
     pred_sign),
    ("hinge", "hinge_loss", {}, "binary", ref_hinge, pred_sign),
    ("perceptron", "perceptron_loss", {}, "binary", ref_perceptron, pred_sign),
    ("sparsemax", "sparsemax_loss", {}, "binary", ref_sparsemax, pred_sign),
    ("multiclass_hinge", "multiclass_hinge_loss", {}, "class", ref_multiclass_hinge,
     pred_argmax),
    ("multiclass_perceptron", "multiclass_perceptron_loss", {}, "class",
     ref_multiclass_perceptron, pred_argmax),
    ("multiclass_sparsemax", "multiclass_sparsemax_loss", {}, "class",
     ref_multiclass_sparsemax, pred_argmax),
    ("poly-default", "poly_loss_cross_entropy", {}, "class", ref_poly(2.0), pred_argmax),
    ("poly-0.5", "poly_loss_cross_entropy", {"epsilon": 0.5}, "class", ref_poly(0.5),
     pred_argmax),
    ("safe_softmax_ce", "safe_softmax_cross_entropy", {}, "class", ref_softmax_ce,
     pred_argmax),
    ("kl_divergence", "kl_divergence", {}, "class", ref_softmax_ce, pred_argmax),
    ("softmax_ce-smoothing", "softmax_cross_entropy", {"label_smoothing": 0.1}, "class",
     ref_smoothed_ce(0.1), pred_argmax),
    ("softmax_ce-weights", "softmax_cross_entropy", {"class_weight": WEIGHTS}, "class",
     ref_smoothed_ce(0.0, WEIGHTS), pred_argmax),
    ("softmax_ce-both", "softmax_cross_entropy",
     {"label_smoothing": 0.2, "class_weight": WEIGHTS}, "class",
     ref_smoothed_ce(0.2, WEIGHTS), pred_argmax),
    ("softmax_ce-2-smoothing", "softmax_cross_entropy", {"label_smoothing": 0.3}, "class2",
     ref_smoothed_ce(0.3), pred_argmax),
    ("log_cosh", "log_cosh", {}, "real", ref_log_cosh, pred_identity),
    ("cosine_distance", "cosine_distance", {}, "real", ref_cosine_distance(0.0),
     pred_identity),
    ("cosine_distance-eps", "cosine_distance", {"epsilon": 5.0}, "real",
     ref_cosine_distance(5.0), pred_identity),
    ("l2_loss", "l2_loss", {}, "real", ref_l2_loss, pred_identity),
]


@pytest.mark.parametrize("name, kwargs, task, reference, predict",
                         [pytest.param(*row[1:], id=row[0]) for row in LOSS_TABLE_V2])
def test_loss_value_and_predictions(name, kwargs, task, reference, predict):
    loss = LOSSES.get(name)(**kwargs)
    out, y = DATA[f"{task}_out"], DATA[f"{task}_y"]
    got = loss.value(jnp.asarray(out), jnp.asarray(y), _jax_tree(PARAMS))
    assert np.shape(got) == ()
    np.testing.assert_allclose(float(got), reference(out, y, PARAMS), rtol=RTOL, atol=ATOL)
    pred = np.asarray(loss.predict(jnp.asarray(out)))
    np.testing.assert_allclose(pred, predict(out), rtol=RTOL, atol=ATOL)


EXTENDED = {"softmax_cross_entropy"}
"""Losses named after optax's function with arguments of mlspec's own (label_smoothing,
class_weight); optax's takes probabilities, mlspec's class ids."""


@pytest.mark.parametrize("name", sorted(set(LOSSES) - EXTENDED))
def test_an_optax_named_loss_takes_optaxs_arguments_and_defaults(name):
    """Each loss named after an optax.losses function has that function's arguments
    (besides the outputs and targets, and the `axis` and `where` that a row-wise loss
    has no use for), with optax's defaults."""
    import inspect

    import optax

    fn = getattr(optax.losses, name, None)
    if fn is None:
        assert name in {"mse", "mae", "huber", "l1", "l2"}  # mlspec's own names
        return
    optax_args = {p.name: p.default for p in list(inspect.signature(fn).parameters.values())[2:]
                  if p.name not in ("axis", "where")}
    entry = LOSSES.get(name)
    ours = {n: entry.model_fields[n].default for n in entry.argument_names()}
    assert ours == optax_args


def test_the_focal_inputs_and_the_hinge_inputs_see_every_branch():
    """Margins on both sides of 0 and 1 (hinge, perceptron) and of -1 and 1 (sparsemax),
    so that no branch of a reference goes untested."""
    z, t = _f64(DATA["binary_out"])[:, 0], _signs(DATA["binary_y"])
    margin = z * t
    assert (margin < 0).any() and ((margin > 0) & (margin < 1)).any() and (margin > 1).any()
    signed = np.where(DATA["binary_y"] == 1, -z, z)
    assert (signed < -1).any() and (np.abs(signed) < 1).any() and (signed > 1).any()
    p = _sparsemax(_f64(DATA["class_out"]))
    assert ((p > 0).sum(axis=1) > 1).any() and ((p > 0).sum(axis=1) == 1).any()


def test_default_softmax_cross_entropy_is_the_first_versions():
    """`label_smoothing=0.0` and no `class_weight` keep v1's value and its closed form for
    two classes, bit for bit; a smoothing of 0 given explicitly is the same entry."""
    loss = LOSSES.get("softmax_cross_entropy")
    assert loss() == loss(label_smoothing=0.0)
    for task in ("class", "class2"):
        out, y = jnp.asarray(DATA[f"{task}_out"]), jnp.asarray(DATA[f"{task}_y"])
        np.testing.assert_allclose(float(loss().value(out, y, {})),
                                   ref_softmax_ce(out, y, {}), rtol=RTOL)
        ones = loss(class_weight=(1.0,) * out.shape[1]).value(out, y, {})
        np.testing.assert_allclose(float(ones), float(loss().value(out, y, {})), rtol=1e-6)


# ---- metrics against scikit-learn ------------------------------------------------------

CLASS_LOSS = LOSSES.get("softmax_cross_entropy")()
BINARY_LOSS = LOSSES.get("sigmoid_binary_cross_entropy")()


def _inputs(out, y, loss, classes) -> SplitInputs:
    out, y = jnp.asarray(out), jnp.asarray(y)
    return SplitInputs(out=out, y=y, pred=loss.predict(out), loss=jnp.float32(0.0),
                       data_loss=loss, classes=classes)


def _metric(name, inputs, **arguments):
    return np.asarray(METRICS.get(name).compute(inputs, tuple(arguments.items())))


def _class_case(case: str):
    """(outputs, targets) of the class metrics' cases: random, a class never predicted,
    a class in neither targets nor predictions (sklearn averages over those present)."""
    out, y = DATA["class_out"].copy(), DATA["class_y"].copy()
    if case == "never-predicted":
        out[:, 3] = -50.0
    if case == "absent-class":
        out[:, 3] = -50.0
        y = np.where(y == 3, 0, y).astype(np.int32)
    return out, y


NEW_METRICS = {"auc", "top_k_accuracy", "macro_f1", "balanced_accuracy", "log_loss",
               "confusion_matrix"}
"""The metrics checked here (test_losses_metrics's test_every_metric_has_a_reference)."""


@pytest.mark.parametrize("case", ["random", "never-predicted", "absent-class"])
def test_class_metrics_match_sklearn(case):
    out, y = _class_case(case)
    m = _inputs(out, y, CLASS_LOSS, C)
    pred = pred_argmax(out)
    labels = list(range(C))
    np.testing.assert_allclose(_metric("macro_f1", m), skm.f1_score(y, pred, average="macro"),
                               rtol=RTOL, atol=ATOL)
    with warnings.catch_warnings():  # sklearn warns of a class never predicted
        warnings.simplefilter("ignore")
        want = skm.balanced_accuracy_score(y, pred)
    np.testing.assert_allclose(_metric("balanced_accuracy", m), want, rtol=RTOL, atol=ATOL)
    # log_loss is unclipped (from the log-softmax); sklearn clips probabilities at the
    # float64 epsilon, which the cases of a logit of -50 reach
    want = skm.log_loss(y, np.exp(_log_softmax(out)), labels=labels) if case == "random" \
        else ref_softmax_ce(out, y, {})
    np.testing.assert_allclose(_metric("log_loss", m), want, rtol=RTOL, atol=ATOL)
    for k in range(1, C + 1):
        with warnings.catch_warnings():  # sklearn warns that k = classes is always right
            warnings.simplefilter("ignore")
            want = skm.top_k_accuracy_score(y, _f64(out), k=k, labels=labels)
        np.testing.assert_allclose(_metric("top_k_accuracy", m, k=k), want, rtol=RTOL,
                                   err_msg=f"k={k}")
    np.testing.assert_array_equal(_metric("confusion_matrix", m),
                                  skm.confusion_matrix(y, pred, labels=labels))


def test_top_k_default_is_5_and_ties_count_below_the_target():
    out = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]], np.float32)
    m = _inputs(out, np.array([0, 2], np.int32), CLASS_LOSS, 3)
    # row 0: its target ties with class 1 (a hit at k=1); row 1: one class above
    assert float(_metric("top_k_accuracy", m, k=1)) == 0.5
    assert float(_metric("top_k_accuracy", m, k=2)) == 1.0
    assert METRICS.get("top_k_accuracy").arguments().k == 5


def _scores(loss, out):
    return np.asarray(loss.score(jnp.asarray(out)), np.float64)


AUC_LOSSES = {
    "sigmoid": (BINARY_LOSS, "binary_out"),
    "hinge": (LOSSES.get("hinge_loss")(), "binary_out"),
    "softmax-2": (CLASS_LOSS, "class2_out"),
}


@pytest.mark.parametrize("loss", sorted(AUC_LOSSES))
@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_roc_auc_score(loss, ties):
    entry, key = AUC_LOSSES[loss]
    out, y = DATA[key].copy(), DATA["binary_y"]
    if ties:  # a coarse grid of outputs: many tied scores, across the classes
        out = np.round(out * 2) / 2
    m = _inputs(out, y, entry, 2)
    want = skm.roc_auc_score(y, _scores(entry, out))
    np.testing.assert_allclose(_metric("auc", m), want, rtol=RTOL, atol=ATOL)


def test_auc_is_exact_over_many_rows():
    """100 000 rows, far past where a float32 sum of ranks would round."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 100_000).astype(np.int32)
    out = (rng.standard_normal((100_000, 1)) + 0.7 * y[:, None]).astype(np.float32)
    out = np.round(out, 2)  # ties too
    want = skm.roc_auc_score(y, _f64(out)[:, 0])
    np.testing.assert_allclose(_metric("auc", _inputs(out, y, BINARY_LOSS, 2)), want,
                               rtol=1e-5)


@pytest.mark.parametrize("y", [[0, 0, 0, 0], [1, 1, 1, 1]], ids=["no-positives",
                                                                 "no-negatives"])
def test_auc_of_one_class_is_nan(y):
    out = np.array([[0.1], [-2.0], [3.0], [0.5]], np.float32)
    assert np.isnan(_metric("auc", _inputs(out, np.array(y, np.int32), BINARY_LOSS, 2)))


def test_binary_class_metrics_match_sklearn():
    """The class metrics of a one-logit loss: two classes from the sign of the logit."""
    out, y = DATA["binary_out"], DATA["binary_y"]
    m = _inputs(out, y, BINARY_LOSS, 2)
    pred = pred_sign(out)
    np.testing.assert_allclose(_metric("macro_f1", m), skm.f1_score(y, pred, average="macro"),
                               rtol=RTOL)
    np.testing.assert_allclose(_metric("balanced_accuracy", m),
                               skm.balanced_accuracy_score(y, pred), rtol=RTOL)
    p1 = _sigmoid(_f64(out)[:, 0])
    np.testing.assert_allclose(_metric("log_loss", m), skm.log_loss(y, p1), rtol=RTOL)
    np.testing.assert_allclose(_metric("top_k_accuracy", m, k=1), np.mean(pred == y))
    np.testing.assert_allclose(_metric("top_k_accuracy", m, k=2), 1.0)
    np.testing.assert_array_equal(_metric("confusion_matrix", m),
                                  skm.confusion_matrix(y, pred, labels=[0, 1]))


@pytest.mark.parametrize("name, higher", [("auc", True), ("top_k_accuracy", True),
                                          ("macro_f1", True), ("balanced_accuracy", True),
                                          ("log_loss", False), ("confusion_matrix", None)])
def test_declared_directions(name, higher):
    assert METRICS.get(name).higher_is_better is higher


# ---- the same numbers through training: a run's history and `evaluate` -----------------

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
