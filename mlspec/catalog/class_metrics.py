"""The classification metrics beyond the first version's: `auc`, `top_k_accuracy(k)`,
`macro_f1`, `balanced_accuracy`, `log_loss` and `confusion_matrix`.

Each is computed from the whole split at once, inside the compiled program, from counts
that are exact integers (int32); only the last division is in float32. None is a mean of
per-batch values: `auc` ranks every row of the split against every other (see `auc`).
The class-averaged metrics follow scikit-learn: `macro_f1` averages over the classes that
occur in the targets or the predictions, `balanced_accuracy` over those in the targets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from mlspec.catalog.loss_base import Problem
from mlspec.catalog.metric_base import SplitInputs, metric
from mlspec.catalog.registry import Entry


def _class_counts(m: SplitInputs):
    """Per class: rows with it as the target, rows predicted as it, and rows both."""
    import jax.numpy as jnp

    classes = m.classes
    y, pred = m.y.astype("int32"), m.pred.astype("int32")
    support = jnp.zeros(classes, jnp.int32).at[y].add(1)
    predicted = jnp.zeros(classes, jnp.int32).at[pred].add(1)
    hits = jnp.zeros(classes, jnp.int32).at[y].add((y == pred).astype(jnp.int32))
    return support, predicted, hits


def _mean_where(values, where):
    import jax.numpy as jnp

    return jnp.where(where, values, 0.0).sum() / where.sum().astype(jnp.float32)


@metric("binary", higher_is_better=True)
def auc(m: SplitInputs):
    """Area under the ROC curve of the score of class 1 (the logit), exact over the whole
    split: the share of (positive, negative) pairs that the score orders right, ties
    counting one half (the Mann-Whitney statistic, as scikit-learn's roc_auc_score); NaN
    when the split lacks one of the classes."""
    import jax.numpy as jnp

    score = m.data_loss.score(m.out).astype(jnp.float32)
    positive = m.y == 1
    negatives = jnp.sum(~positive).astype(jnp.int32)
    # The negatives' scores sorted, the positives' pushed past them to the end: for each
    # row, how many negatives score below it (`left`) and at most it (`right`).
    ordered = jnp.sort(jnp.where(positive, jnp.inf, score))
    below = jnp.searchsorted(ordered, score, side="left").astype(jnp.int32)
    at_most = jnp.minimum(jnp.searchsorted(ordered, score, side="right"), negatives)
    # each positive's share of negatives it beats (one half for a tie), in [0, 1]
    share = (below + at_most.astype(jnp.int32)).astype(jnp.float32) / (
        2.0 * jnp.maximum(negatives, 1).astype(jnp.float32))
    positives = jnp.sum(positive).astype(jnp.float32)
    value = jnp.sum(jnp.where(positive, share, 0.0)) / jnp.maximum(positives, 1.0)
    return jnp.where((negatives > 0) & (positives > 0), value, jnp.nan)


class TopK(Entry):
    """The arguments of `top_k_accuracy`."""

    kind: Literal["top_k_accuracy"] = "top_k_accuracy"
    k: PositiveInt = 5

    def check(self, info) -> Problem | None:
        if info.classes is not None and self.k > info.classes:
            return Problem(f"top_k_accuracy needs k at most the number of classes "
                           f"({info.classes}), but k is {self.k}", "k")
        return None


@metric("class", higher_is_better=True, arguments=TopK)
def top_k_accuracy(m: SplitInputs, k: int = 5):
    """Share of rows whose target is among the `k` classes of the highest outputs (a
    class tied with the target's output counts below it)."""
    import jax.numpy as jnp

    scores = m.data_loss.class_scores(m.out)
    own = jnp.take_along_axis(scores, m.y.astype(jnp.int32)[:, None], axis=1)
    above = jnp.sum(scores > own, axis=1)
    return (above < k).astype(jnp.float32).mean()


@metric("class", higher_is_better=True)
def macro_f1(m: SplitInputs):
    """Mean over classes of each class's F1 (2 tp / (2 tp + fp + fn)), over the classes
    that occur in the targets or the predictions."""
    import jax.numpy as jnp

    support, predicted, hits = _class_counts(m)
    both = (support + predicted).astype("float32")
    return _mean_where(2.0 * hits.astype("float32") / jnp.maximum(both, 1.0), both > 0)


@metric("class", higher_is_better=True)
def balanced_accuracy(m: SplitInputs):
    """Mean over classes of each class's recall (tp / rows of the class), over the
    classes that occur in the targets."""
    import jax.numpy as jnp

    support, _, hits = _class_counts(m)
    rows = support.astype("float32")
    return _mean_where(hits.astype("float32") / jnp.maximum(rows, 1.0), support > 0)


@metric("class", higher_is_better=False, needs_probabilities=True)
def log_loss(m: SplitInputs):
    """Mean negative log-probability of the target class, from the loss's
    probabilities (softmax of the logits, or sigmoid of the one logit), unclipped."""
    import jax.numpy as jnp

    log_p = m.data_loss.log_probabilities(m.out)
    return -jnp.take_along_axis(log_p, m.y.astype(jnp.int32)[:, None], axis=1).mean()


@metric("class", scope="report", higher_is_better=None)
def confusion_matrix(m: SplitInputs):
    """Rows by target class, columns by predicted class, counts of rows; no history
    column: `run` writes the valid split's (else train's) as confusion_matrix.csv and
    .png, and `evaluate` prints it."""
    import jax.numpy as jnp

    classes = m.classes
    cells = m.y.astype(jnp.int32) * classes + m.pred.astype(jnp.int32)
    return jnp.zeros(classes * classes, jnp.int32).at[cells].add(1).reshape(classes, classes)
