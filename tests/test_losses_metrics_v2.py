"""The losses and metrics of v2 (LANGUAGE.md, "More losses and metrics") against NumPy and
scikit-learn on fixed arrays: every catalogue entry in a table. test_losses_metrics_v2_runs
checks the same references against the numbers runs record.

The NumPy references are written here from optax's documented formulas, in float64, and
never call mlspec's or optax's code.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm
from test_losses_metrics import DATA, PARAMS, _f64, _jax_tree

from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS, SplitInputs

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
