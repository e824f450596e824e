"""The losses of optax.losses beyond the first version's, under optax's names and argument
names, each fitted to the targets mlspec's data has: 0/1 targets with one output per row
(`hinge_loss` reads them as -1/+1), class ids with one output per class (one-hot where
optax takes probabilities), real targets of the model's width. Each is optax's function
averaged over the rows.

Left out, as they fit no target a data section gives: `ctc_loss` (sequences with
paddings), `dice_loss`, `binary_dice_loss` and `multiclass_generalized_dice_loss`
(overlap of segmentation masks), `ntxent` and `triplet_margin_loss` (embeddings of pairs
and triplets), `ranking_softmax_loss` (ranked lists), `kl_divergence_with_log_targets`
(the log of one-hot targets is -inf), `convex_kl_divergence` and
`generalized_kl_divergence` (for softmax outputs and one-hot targets, `kl_divergence`'s
value), `cosine_similarity` (a similarity: `cosine_distance` is its loss),
`make_fenchel_young_loss` (builds a loss from a function) and `smooth_labels` (no loss:
`softmax_cross_entropy(label_smoothing=...)`). Three are here under mlspec's first names:
`softmax_cross_entropy_with_integer_labels` is `softmax_cross_entropy`, `huber_loss` is
`huber`, and `squared_error`'s mean is `mse`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat

from mlspec.catalog.loss_base import (
    LOSSES,
    BinaryLoss,
    ClassLoss,
    RealLoss,
    SigmoidProbabilities,
    SoftmaxProbabilities,
    one_hot,
)


def _mean(rows):
    import jax.numpy as jnp

    return jnp.mean(rows)


def _signs(y):
    """0/1 targets as -1/+1, as optax's binary margin losses take them."""
    return 2.0 * y.astype("float32") - 1.0


# ---- 0/1 targets, one output per row


@LOSSES.register
class SigmoidFocalLoss(SigmoidProbabilities, BinaryLoss):
    """`optax.sigmoid_focal_loss`: the sigmoid cross-entropy weighted by `(1 - p_t)**gamma`
    (p_t the probability of the true class), and by `alpha` for class 1 and `1 - alpha`
    for class 0 when `alpha` is given."""

    kind: Literal["sigmoid_focal_loss"] = "sigmoid_focal_loss"
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    gamma: NonNegativeFloat = 2.0

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.sigmoid_focal_loss(out[:, 0], y.astype(out.dtype),
                                              alpha=self.alpha, gamma=self.gamma))


@LOSSES.register
class HingeLoss(BinaryLoss):
    """`optax.hinge_loss` of one score per row: `max(0, 1 - s * t)` with t = -1 or +1."""

    kind: Literal["hinge_loss"] = "hinge_loss"
    output = "score"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.hinge_loss(out[:, 0], _signs(y)))


@LOSSES.register
class PerceptronLoss(BinaryLoss):
    """`optax.perceptron_loss` of one score per row: `max(0, -s * t)` with t = -1 or +1."""

    kind: Literal["perceptron_loss"] = "perceptron_loss"
    output = "score"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.perceptron_loss(out[:, 0], _signs(y)))


@LOSSES.register
class SparsemaxLoss(BinaryLoss):
    """`optax.sparsemax_loss`, the binary sparsemax loss of one logit per row:
    `sparse_plus(-z)` for class 1, `sparse_plus(z)` for class 0."""

    kind: Literal["sparsemax_loss"] = "sparsemax_loss"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.sparsemax_loss(out[:, 0], y))


# ---- class ids, one output per class


@LOSSES.register
class MulticlassHingeLoss(ClassLoss):
    """`optax.multiclass_hinge_loss` of one score per class: `max_j(s_j + [j != y]) - s_y`."""

    kind: Literal["multiclass_hinge_loss"] = "multiclass_hinge_loss"
    output = "score"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.multiclass_hinge_loss(out, y))


@LOSSES.register
class MulticlassPerceptronLoss(ClassLoss):
    """`optax.multiclass_perceptron_loss` of one score per class: `max_j s_j - s_y`."""

    kind: Literal["multiclass_perceptron_loss"] = "multiclass_perceptron_loss"
    output = "score"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.multiclass_perceptron_loss(out, y))


@LOSSES.register
class MulticlassSparsemaxLoss(ClassLoss):
    """`optax.multiclass_sparsemax_loss` of one logit per class (the Fenchel-Young loss
    of sparsemax)."""

    kind: Literal["multiclass_sparsemax_loss"] = "multiclass_sparsemax_loss"

    def value(self, out, y, params):
        import jax
        import optax

        # optax's projection onto the simplex mixes int and float under jax's standard
        # promotion, which it is written for
        with jax.numpy_dtype_promotion("standard"):
            return _mean(optax.losses.multiclass_sparsemax_loss(out, y))


@LOSSES.register
class PolyLossCrossEntropy(SoftmaxProbabilities, ClassLoss):
    """`optax.poly_loss_cross_entropy`: the softmax cross-entropy plus `epsilon * (1 -
    p_y)`."""

    kind: Literal["poly_loss_cross_entropy"] = "poly_loss_cross_entropy"
    epsilon: float = 2.0

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.poly_loss_cross_entropy(out, one_hot(y, out.shape[-1]),
                                                   epsilon=self.epsilon))


@LOSSES.register
class SafeSoftmaxCrossEntropy(SoftmaxProbabilities, ClassLoss):
    """`optax.safe_softmax_cross_entropy`: the softmax cross-entropy, finite where a logit
    is -inf."""

    kind: Literal["safe_softmax_cross_entropy"] = "safe_softmax_cross_entropy"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.safe_softmax_cross_entropy(out, one_hot(y, out.shape[-1])))


@LOSSES.register
class KlDivergence(SoftmaxProbabilities, ClassLoss):
    """`optax.kl_divergence` of the one-hot targets from the softmax of the logits (for
    one-hot targets, the softmax cross-entropy)."""

    kind: Literal["kl_divergence"] = "kl_divergence"

    def value(self, out, y, params):
        import jax
        import optax

        return _mean(optax.losses.kl_divergence(jax.nn.log_softmax(out, axis=-1),
                                         one_hot(y, out.shape[-1])))


# ---- real targets


@LOSSES.register
class LogCosh(RealLoss):
    """`optax.log_cosh`: `log(cosh(out - y))`, about quadratic near the target and linear
    far from it."""

    kind: Literal["log_cosh"] = "log_cosh"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.log_cosh(out, y))


@LOSSES.register
class CosineDistance(RealLoss):
    """`optax.cosine_distance` of each row's outputs and targets: `1 - cos(out, y)`
    (`epsilon` bounds the squared norms from below)."""

    kind: Literal["cosine_distance"] = "cosine_distance"
    epsilon: NonNegativeFloat = 0.0

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.cosine_distance(out, y, epsilon=self.epsilon))


@LOSSES.register
class L2Loss(RealLoss):
    """`optax.l2_loss`: `0.5 * (out - y)**2`."""

    kind: Literal["l2_loss"] = "l2_loss"

    def value(self, out, y, params):
        import optax

        return _mean(optax.losses.l2_loss(out, y))

