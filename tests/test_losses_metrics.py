"""Every loss and metric of the catalogue against an independent NumPy reference.

The references are written here from the definitions (optax's and scikit-learn's
documented formulas), in float64, and never call mlspec's own code. The tables at the top
must name every registered loss and metric (with those of test_losses_metrics_v2): adding
a catalogue entry without a reference fails `test_every_loss_has_a_reference` /
`test_every_metric_has_a_reference`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS, SplitInputs, TrainingInputs

RTOL = 1e-5
ATOL = 1e-6
N, K, C = 24, 3, 4  # rows, real target width, classes


# ---- inputs: small random arrays from a fixed seed ------------------------------------


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    real_y = rng.standard_normal((N, K)).astype(np.float32)
    binary_y = rng.integers(0, 2, N).astype(np.int32)
    binary_y[:2] = [0, 1]  # both classes present
    class_y = rng.integers(0, C, N).astype(np.int32)
    class_y[:C] = np.arange(C)  # every class present
    real_out = real_y + rng.standard_normal((N, K)) * 0.8
    real_out[:2, 0] += [3.0, -4.0]  # some far off, so every huber delta sees both branches
    return {
        "real_out": real_out.astype(np.float32),
        "real_y": real_y,
        "binary_out": (rng.standard_normal((N, 1)) * 2.0).astype(np.float32),
        "binary_y": binary_y,
        "class_out": (rng.standard_normal((N, C)) * 2.0).astype(np.float32),
        "class_y": class_y,
        # two classes: the loss takes a closed form there, checked against the same reference
        "class2_out": (rng.standard_normal((N, 2)) * 2.0).astype(np.float32),
        "class2_y": binary_y,
    }


DATA = _inputs()


def _params() -> dict:
    """A small nested flax-style tree: kernels and an embedding count as weights; biases,
    norm scales and other leaves do not."""
    rng = np.random.default_rng(99)

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return {
        "Dense_0": {"kernel": arr(3, 5), "bias": arr(5)},
        "block": {
            "Dense_0": {"kernel": arr(5, 4), "bias": arr(4)},
            "LayerNorm_0": {"scale": arr(4), "bias": arr(4)},
        },
        "Embed_0": {"embedding": arr(6, 2)},
        "Dense_1": {"kernel": arr(4, 1), "bias": arr(1)},
    }


PARAMS = _params()


def _leaves(tree, keep=lambda name: True) -> list[np.ndarray]:
    """Leaves of a nested dict whose own key passes `keep`, in float64."""
    found = []
    for key, value in tree.items():
        if isinstance(value, dict):
            found += _leaves(value, keep)
        elif keep(key):
            found.append(np.asarray(value, np.float64))
    return found


def _weights(tree) -> list[np.ndarray]:
    return _leaves(tree, lambda name: name in ("kernel", "embedding"))


def _jax_tree(tree):
    return {k: _jax_tree(v) if isinstance(v, dict) else jnp.asarray(v) for k, v in tree.items()}


def _f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


# ---- NumPy references ----------------------------------------------------------------


def ref_mse(out, y, params):
    return np.mean((_f64(out) - _f64(y)) ** 2)


def ref_mae(out, y, params):
    return np.mean(np.abs(_f64(out) - _f64(y)))


def ref_huber(delta):
    def ref(out, y, params):
        err = np.abs(_f64(out) - _f64(y))
        return np.mean(np.where(err <= delta, 0.5 * err**2, delta * (err - 0.5 * delta)))

    return ref


def ref_sigmoid_bce(out, y, params):
    z, t = _f64(out)[:, 0], _f64(y)
    # -(t log s(z) + (1 - t) log(1 - s(z))), written stably
    return np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))


def ref_softmax_ce(out, y, params):
    z = _f64(out)
    top = z.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return np.mean(log_norm - z[np.arange(len(y)), y])


def ref_l2(out, y, params):
    return sum(float((w**2).sum()) for w in _weights(params))


def ref_l1(out, y, params):
    return sum(float(np.abs(w).sum()) for w in _weights(params))


def pred_identity(out):
    return _f64(out)


def pred_sigmoid(out):
    return (_f64(out)[:, 0] >= 0).astype(np.int32)


def pred_softmax(out):
    return np.argmax(_f64(out), axis=1).astype(np.int32)


# (id, registry name, constructor kwargs, task, reference value, reference predict)
LOSS_TABLE = [
    ("mse", "mse", {}, "real", ref_mse, pred_identity),
    ("mae", "mae", {}, "real", ref_mae, pred_identity),
    ("huber-default", "huber", {}, "real", ref_huber(1.0), pred_identity),
    ("huber-0.5", "huber", {"delta": 0.5}, "real", ref_huber(0.5), pred_identity),
    ("huber-2", "huber", {"delta": 2.0}, "real", ref_huber(2.0), pred_identity),
    ("sigmoid_bce", "sigmoid_binary_cross_entropy", {}, "binary", ref_sigmoid_bce,
     pred_sigmoid),
    ("softmax_ce", "softmax_cross_entropy", {}, "class", ref_softmax_ce, pred_softmax),
    ("softmax_ce-2", "softmax_cross_entropy", {}, "class2", ref_softmax_ce, pred_softmax),
    ("l2", "l2", {}, "real", ref_l2, None),
    ("l1", "l1", {}, "real", ref_l1, None),
]
REGULARISERS = {"l1", "l2"}


def _task_arrays(task: str):
    return DATA[f"{task}_out"], DATA[f"{task}_y"]


def test_every_loss_has_a_reference():
    """Here or in test_losses_metrics_v2's table (the losses of v2)."""
    from test_losses_metrics_v2 import LOSS_TABLE_V2

    assert set(LOSSES) == {row[1] for row in LOSS_TABLE + LOSS_TABLE_V2}


def test_huber_inputs_cover_both_branches():
    err = np.abs(_f64(DATA["real_out"]) - _f64(DATA["real_y"]))
    for delta in (0.5, 1.0, 2.0):
        assert (err <= delta).any() and (err > delta).any(), delta


@pytest.mark.parametrize("name, kwargs, task, reference, _",
                         [pytest.param(*row[1:], id=row[0]) for row in LOSS_TABLE])
def test_loss_value(name, kwargs, task, reference, _):
    loss = LOSSES.get(name)(**kwargs)
    out, y = _task_arrays(task)
    got = loss.value(jnp.asarray(out), jnp.asarray(y), _jax_tree(PARAMS))
    assert np.shape(got) == ()
    np.testing.assert_allclose(float(got), reference(out, y, PARAMS), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name, kwargs, task, _, predict",
                         [pytest.param(*row[1:], id=row[0]) for row in LOSS_TABLE
                          if row[1] not in REGULARISERS])
def test_loss_predict(name, kwargs, task, _, predict):
    loss = LOSSES.get(name)(**kwargs)
    out, _y = _task_arrays(task)
    got = np.asarray(loss.predict(jnp.asarray(out)))
    want = predict(out)
    assert got.shape == want.shape
    if task == "real":
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    else:
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(REGULARISERS))
def test_regulariser_ignores_outputs_and_non_weights(name):
    """Changing outputs, targets, biases or norm scales leaves l1/l2 unchanged; the value
    is exactly the sum over kernels and embeddings."""
    loss = LOSSES.get(name)()
    assert loss.regulariser
    moved = {k: dict(v) for k, v in PARAMS.items()}
    moved["Dense_0"]["bias"] = PARAMS["Dense_0"]["bias"] + 10.0
    moved["block"] = {"Dense_0": PARAMS["block"]["Dense_0"],
                      "LayerNorm_0": {"scale": np.full(4, 7.0, np.float32),
                                      "bias": np.full(4, -3.0, np.float32)}}
    a = loss.value(jnp.zeros((2, 1)), jnp.ones((2, 1)), _jax_tree(PARAMS))
    b = loss.value(jnp.ones((2, 1)) * 5, jnp.zeros((2, 1)), _jax_tree(moved))
    np.testing.assert_allclose(float(a), float(b), rtol=RTOL)


def test_zero_loss_at_the_targets():
    y = jnp.asarray(DATA["real_y"])
    for name in ("mse", "mae", "huber"):
        assert float(LOSSES.get(name)().value(y, y, {})) == 0.0


# ---- metrics ---------------------------------------------------------------------------


def _binary_counts(pred, y):
    pred, y = np.asarray(pred).astype(bool), np.asarray(y).astype(bool)
    n = len(y)
    return {"tp": np.sum(pred & y) / n, "fp": np.sum(pred & ~y) / n,
            "fn": np.sum(~pred & y) / n, "tn": np.sum(~pred & ~y) / n}


def _safe_div(a, b):
    return a / b if b > 0 else 0.0


def ref_precision(m):
    c = _binary_counts(m["pred"], m["y"])
    return _safe_div(c["tp"], c["tp"] + c["fp"])


def ref_recall(m):
    c = _binary_counts(m["pred"], m["y"])
    return _safe_div(c["tp"], c["tp"] + c["fn"])


def ref_f1(m):
    p, r = ref_precision(m), ref_recall(m)
    return _safe_div(2 * p * r, p + r)


def ref_r2(m):
    out, y = _f64(m["out"]), _f64(m["y"])
    residual = ((y - out) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return np.mean(1 - residual / total)


def ref_weight_mean(m):
    return np.concatenate([w.ravel() for w in _weights(m["params"])]).mean()


def ref_weight_std(m):
    return np.concatenate([w.ravel() for w in _weights(m["params"])]).std()


def ref_grad_norm(m):
    return np.sqrt(sum(float((g**2).sum()) for g in _leaves(m["grads"])))


# (name, task the inputs come from, declared needs, declared scope, reference)
METRIC_TABLE = [
    ("loss", "real", "any", "split", lambda m: m["loss"]),
    ("accuracy", "class", "class", "split", lambda m: np.mean(m["pred"] == m["y"])),
    ("false_pos", "binary", "binary", "split",
     lambda m: _binary_counts(m["pred"], m["y"])["fp"]),
    ("false_neg", "binary", "binary", "split",
     lambda m: _binary_counts(m["pred"], m["y"])["fn"]),
    ("true_pos", "binary", "binary", "split",
     lambda m: _binary_counts(m["pred"], m["y"])["tp"]),
    ("true_neg", "binary", "binary", "split",
     lambda m: _binary_counts(m["pred"], m["y"])["tn"]),
    ("precision", "binary", "binary", "split", ref_precision),
    ("recall", "binary", "binary", "split", ref_recall),
    ("f1", "binary", "binary", "split", ref_f1),
    ("pred_mean", "binary", "binary", "split", lambda m: np.mean(m["pred"])),
    ("mse", "real", "real", "split", lambda m: np.mean((_f64(m["out"]) - m["y"]) ** 2)),
    ("mae", "real", "real", "split", lambda m: np.mean(np.abs(_f64(m["out"]) - m["y"]))),
    ("rmse", "real", "real", "split",
     lambda m: np.sqrt(np.mean((_f64(m["out"]) - m["y"]) ** 2))),
    ("r2", "real", "real", "split", ref_r2),
    ("weight_mean", "training", "any", "training", ref_weight_mean),
    ("weight_std", "training", "any", "training", ref_weight_std),
    ("grad_norm", "training", "any", "training", ref_grad_norm),
]

PREDICT = {"real": pred_identity, "binary": pred_sigmoid, "class": pred_softmax}


def _split_inputs(task: str, out=None, y=None, pred=None) -> dict:
    out = DATA[f"{task}_out"] if out is None else out
    y = DATA[f"{task}_y"] if y is None else y
    pred = PREDICT[task](out) if pred is None else pred
    return {"out": out, "y": y, "pred": np.asarray(pred), "loss": np.float32(0.731)}


def _call(name: str, m: dict):
    metric = METRICS.get(name)
    if metric.scope == "training":
        inputs = TrainingInputs(params=_jax_tree(m["params"]), grads=_jax_tree(m["grads"]))
    else:
        inputs = SplitInputs(**{k: jnp.asarray(v) for k, v in m.items()})
    return metric.fn(inputs)


def _inputs_for(task: str) -> dict:
    if task == "training":
        rng = np.random.default_rng(7)
        grads = {k: {n: rng.standard_normal(np.shape(v)).astype(np.float32)
                     for n, v in layer.items()}
                 for k, layer in PARAMS.items() if "Dense" in k}
        return {"params": PARAMS, "grads": grads}
    return _split_inputs(task)


def test_every_metric_has_a_reference():
    """Here or in test_losses_metrics_v2 (the metrics of v2, against scikit-learn)."""
    from test_losses_metrics_v2 import NEW_METRICS

    assert set(METRICS) == {row[0] for row in METRIC_TABLE} | NEW_METRICS


@pytest.mark.parametrize("name, task, needs, scope, reference", METRIC_TABLE,
                         ids=[row[0] for row in METRIC_TABLE])
def test_metric(name, task, needs, scope, reference):
    metric = METRICS.get(name)
    assert (metric.needs, metric.scope) == (needs, scope)
    m = _inputs_for(task)
    got = _call(name, m)
    assert np.shape(got) == ()
    np.testing.assert_allclose(float(got), float(reference(m)), rtol=RTOL, atol=ATOL)


def _binary_case(pred, y):
    pred, y = np.asarray(pred, np.int32), np.asarray(y, np.int32)
    return _split_inputs("binary", out=np.where(pred[:, None] > 0, 1.0, -1.0)
                         .astype(np.float32), y=y, pred=pred)


# Edge cases of the ratio metrics: nothing predicted positive, no positive targets,
# everything right, everything wrong.
BINARY_EDGES = {
    "no-predicted-positives": ([0, 0, 0, 0], [0, 1, 1, 0]),
    "no-positive-targets": ([1, 0, 1, 0], [0, 0, 0, 0]),
    "all-negative": ([0, 0, 0, 0], [0, 0, 0, 0]),
    "perfect": ([1, 0, 1, 1], [1, 0, 1, 1]),
    "all-wrong": ([0, 1, 0, 1], [1, 0, 1, 0]),
}
RATIO_METRICS = {"precision": ref_precision, "recall": ref_recall, "f1": ref_f1}


@pytest.mark.parametrize("metric", sorted(RATIO_METRICS))
@pytest.mark.parametrize("case", sorted(BINARY_EDGES))
def test_ratio_metric_edges(metric, case):
    m = _binary_case(*BINARY_EDGES[case])
    got = float(_call(metric, m))
    assert np.isfinite(got)
    np.testing.assert_allclose(got, RATIO_METRICS[metric](m), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", sorted(BINARY_EDGES))
def test_binary_metrics_match_sklearn(case):
    metrics = pytest.importorskip("sklearn.metrics")
    m = _binary_case(*BINARY_EDGES[case])
    pred, y = m["pred"], m["y"]
    want = {
        "precision": metrics.precision_score(y, pred, zero_division=0),
        "recall": metrics.recall_score(y, pred, zero_division=0),
        "f1": metrics.f1_score(y, pred, zero_division=0),
        "accuracy": metrics.accuracy_score(y, pred),
    }
    for name, value in want.items():
        np.testing.assert_allclose(float(_call(name, m)), value, rtol=RTOL, atol=ATOL,
                                   err_msg=name)


def test_binary_counts_partition_the_rows():
    m = _inputs_for("binary")
    total = sum(float(_call(n, m)) for n in ("true_pos", "true_neg", "false_pos",
                                              "false_neg"))
    np.testing.assert_allclose(total, 1.0, rtol=RTOL)


@pytest.mark.parametrize("columns", [1, K])
def test_r2_matches_sklearn(columns):
    metrics = pytest.importorskip("sklearn.metrics")
    out, y = DATA["real_out"][:, :columns], DATA["real_y"][:, :columns]
    m = _split_inputs("real", out=out, y=y)
    want = metrics.r2_score(y, out, multioutput="uniform_average")
    np.testing.assert_allclose(float(_call("r2", m)), want, rtol=RTOL, atol=ATOL)


def test_r2_is_uniform_not_variance_weighted():
    """Columns of very different variance: the uniform average differs from sklearn's
    variance-weighted one, and r2 must be the uniform one."""
    rng = np.random.default_rng(3)
    y = (rng.standard_normal((N, 2)) * np.array([1.0, 20.0])).astype(np.float32)
    out = (y + rng.standard_normal((N, 2)) * np.array([0.9, 1.0])).astype(np.float32)
    m = _split_inputs("real", out=out, y=y)
    got = float(_call("r2", m))
    np.testing.assert_allclose(got, ref_r2(m), rtol=RTOL, atol=ATOL)
    per_column = 1 - ((y - out) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    weighted = np.average(per_column, weights=((y - y.mean(0)) ** 2).sum(0))
    assert abs(got - weighted) > 1e-3


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_two_class_losses_and_gradients_match_optax(scale):
    """The closed forms (a softplus of a signed margin, with sigmoid as its derivative)
    against optax's general ones: values and gradients, also for huge logits."""
    import jax
    import optax

    rng = np.random.default_rng(7)
    out = jnp.asarray(rng.standard_normal((40, 2)) * scale, jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, 40), jnp.int32)
    pairs = [
        (lambda o: LOSSES.get("softmax_cross_entropy")().value(o, y, {}),
         lambda o: optax.softmax_cross_entropy_with_integer_labels(o, y).mean()),
        (lambda o: LOSSES.get("sigmoid_binary_cross_entropy")().value(o[:, :1], y, {}),
         lambda o: optax.sigmoid_binary_cross_entropy(o[:, 0], y.astype(o.dtype)).mean()),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(out), theirs(out), rtol=1e-5, atol=1e-6)
        got, want = jax.grad(ours)(out), jax.grad(theirs)(out)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
