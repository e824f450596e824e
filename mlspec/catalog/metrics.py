"""The metric catalogue.

Split metrics are recorded per split as `train.NAME` and `valid.NAME` from the model's point
predictions; training metrics (`weight_mean`, `grad_norm`, ...) describe the weights and the
step and are recorded once under their bare name. Each metric states the task it needs
(`check` refuses a metric that does not fit the data) and whether higher values are better,
which ranks members and sets early stopping's default mode; a metric with no better
direction (`pred_mean`, the weight statistics) says None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mlspec.catalog.registry import Registry

Needs = Literal["any", "class", "binary", "real"]


@dataclass(frozen=True)
class SplitInputs:
    """What split metrics are computed from (jax arrays)."""

    out: Any
    y: Any
    pred: Any
    loss: Any


@dataclass(frozen=True)
class TrainingInputs:
    params: Any
    grads: Any


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Any], Any]
    higher_is_better: bool | None
    """True when a higher value is better (accuracy), False when a lower one is (loss),
    None when neither is (pred_mean)."""
    needs: Needs = "any"
    scope: Literal["split", "training"] = "split"
    doc: str = ""


METRICS: Registry[Metric] = Registry("metric")


def metric(needs: Needs = "any", scope: Literal["split", "training"] = "split", *,
           higher_is_better: bool | None):
    """Registers a metric function under its name; every metric states its direction."""
    def register(fn):
        METRICS.add(fn.__name__, Metric(fn.__name__, fn, higher_is_better, needs, scope,
                                        fn.__doc__ or ""))
        return fn

    return register


def higher_is_better(column: str) -> bool | None:
    """The direction of a history column (`valid.accuracy`, `train.loss`, `grad_norm`):
    its metric's; None for a metric without one and for a column that names no metric."""
    found = METRICS.get(column.rpartition(".")[2])
    return None if found is None else found.higher_is_better


def _mean(x):
    return x.astype("float32").mean()


def _counts(m: SplitInputs):
    pred, y = m.pred.astype(bool), m.y.astype(bool)
    return pred, y


@metric(higher_is_better=False)
def loss(m: SplitInputs):
    """The training objective (regularisers included)."""
    return m.loss


@metric("class", higher_is_better=True)
def accuracy(m: SplitInputs):
    """Share of rows whose predicted class is the target."""
    return _mean(m.pred == m.y)


@metric("binary", higher_is_better=False)
def false_pos(m: SplitInputs):
    """Share of all rows predicted 1 with target 0."""
    pred, y = _counts(m)
    return _mean(pred & ~y)


@metric("binary", higher_is_better=False)
def false_neg(m: SplitInputs):
    """Share of all rows predicted 0 with target 1."""
    pred, y = _counts(m)
    return _mean(~pred & y)


@metric("binary", higher_is_better=True)
def true_pos(m: SplitInputs):
    """Share of all rows predicted 1 with target 1."""
    pred, y = _counts(m)
    return _mean(pred & y)


@metric("binary", higher_is_better=True)
def true_neg(m: SplitInputs):
    """Share of all rows predicted 0 with target 0."""
    pred, y = _counts(m)
    return _mean(~pred & ~y)


def _ratio(num, den):
    import jax.numpy as jnp

    return jnp.where(den > 0, num / jnp.maximum(den, 1e-12), 0.0)


@metric("binary", higher_is_better=True)
def precision(m: SplitInputs):
    """true_pos / (true_pos + false_pos); 0 when nothing is predicted positive."""
    pred, y = _counts(m)
    return _ratio(_mean(pred & y), _mean(pred))


@metric("binary", higher_is_better=True)
def recall(m: SplitInputs):
    """true_pos / (true_pos + false_neg); 0 when there are no positives."""
    pred, y = _counts(m)
    return _ratio(_mean(pred & y), _mean(y))


@metric("binary", higher_is_better=True)
def f1(m: SplitInputs):
    """Harmonic mean of precision and recall: 2 tp / (2 tp + fp + fn)."""
    pred, y = _counts(m)
    tp = _mean(pred & y)
    return _ratio(2 * tp, _mean(pred) + _mean(y))


@metric("binary", higher_is_better=None)
def pred_mean(m: SplitInputs):
    """Share of rows predicted positive."""
    return _mean(m.pred)


@metric("real", higher_is_better=False)
def mse(m: SplitInputs):
    """Mean squared error of the outputs."""
    return ((m.out - m.y) ** 2).mean()


@metric("real", higher_is_better=False)
def mae(m: SplitInputs):
    """Mean absolute error of the outputs."""
    import jax.numpy as jnp

    return jnp.abs(m.out - m.y).mean()


@metric("real", higher_is_better=False)
def rmse(m: SplitInputs):
    """Root mean squared error of the outputs."""
    import jax.numpy as jnp

    return jnp.sqrt(((m.out - m.y) ** 2).mean())


@metric("real", higher_is_better=True)
def r2(m: SplitInputs):
    """Coefficient of determination, averaged over target columns (as scikit-learn)."""
    residual = ((m.y - m.out) ** 2).sum(axis=0)
    total = ((m.y - m.y.mean(axis=0, keepdims=True)) ** 2).sum(axis=0)
    return (1 - residual / total).mean()


def _kernel_entries(params):
    import jax.numpy as jnp

    from mlspec.catalog.losses import kernels

    return jnp.concatenate([w.ravel() for w in kernels(params)])


@metric(scope="training", higher_is_better=None)
def weight_mean(m: TrainingInputs):
    """Mean of all kernel entries."""
    return _kernel_entries(m.params).mean()


@metric(scope="training", higher_is_better=None)
def weight_std(m: TrainingInputs):
    """Standard deviation of all kernel entries."""
    return _kernel_entries(m.params).std()


@metric(scope="training", higher_is_better=None)
def grad_norm(m: TrainingInputs):
    """Global L2 norm of the step's gradient."""
    from optax import tree_utils

    return tree_utils.tree_norm(m.grads)


def fits(needs: Needs, info) -> bool:
    return (needs == "any" or (needs == "class" and info.target == "class")
            or (needs == "binary" and info.binary) or (needs == "real" and info.target == "real"))
