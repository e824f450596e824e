"""The metric catalogue.

Split metrics are recorded per split as `train.NAME` and `valid.NAME` from the model's point
predictions; training metrics (`weight_mean`, `grad_norm`, ...) describe the weights and the
step and are recorded once under their bare name. Each metric states the task it needs
(`check` refuses a metric that does not fit the data) and whether higher values are better,
which ranks members and sets early stopping's default mode; a metric with no better
direction (`pred_mean`, the weight statistics) says None. A metric of the `report` scope
(`confusion_matrix`) is no history column: it is computed once, of the returned model
(see mlspec.runtime.confusion). The metrics that go beyond the first version's are in
mlspec.catalog.class_metrics, registered on import of this module.

Every split metric is computed inside the compiled program from the whole split at once
(`Trainer.evaluate` takes all its rows), so none is combined from per-batch values.
"""

from __future__ import annotations

from mlspec.catalog.metric_base import (
    METRICS,
    Metric,
    MetricUse,
    SplitInputs,
    TrainingInputs,
    fits,
    higher_is_better,
    metric,
)

__all__ = ["METRICS", "Metric", "MetricUse", "SplitInputs", "TrainingInputs", "fits",
           "higher_is_better"]


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


from mlspec.catalog import class_metrics  # noqa: E402,F401  (registers the v2 metrics)
