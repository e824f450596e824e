"""The loss catalogue: data losses over (outputs, targets) and regularisers over weights.

A `loss` setting is a weighted sum of these terms (`softmax_cross_entropy + 1e-4 * l2`).
Each data loss says which targets and output widths it fits (checked before training) and
how its outputs become point predictions (see mlspec.catalog.loss_base). This module holds
the first version's losses and the regularisers; mlspec.catalog.optax_losses the rest of
optax.losses, registered on import of this one. jax is imported inside the methods only,
when a spec is compiled.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, PositiveFloat

from mlspec.catalog.loss_base import (
    LOSSES,
    BinaryLoss,
    ClassLoss,
    Loss,
    Problem,
    RealLoss,
    SigmoidProbabilities,
    SoftmaxProbabilities,
    kernels,
    one_hot,
    signed_margin_loss,
)
from mlspec.catalog.traced import Traced

__all__ = ["LOSSES", "Loss", "kernels", "signed_margin_loss"]


@LOSSES.register
class Mse(RealLoss):
    """Mean squared error: `mean((out - y)**2)`."""

    kind: Literal["mse"] = "mse"

    def value(self, out, y, params):
        import jax.numpy as jnp

        return jnp.mean((out - y) ** 2)


@LOSSES.register
class Mae(RealLoss):
    """Mean absolute error: `mean(|out - y|)`."""

    kind: Literal["mae"] = "mae"

    def value(self, out, y, params):
        import jax.numpy as jnp

        return jnp.mean(jnp.abs(out - y))


@LOSSES.register
class Huber(RealLoss):
    """`optax.huber_loss`: quadratic within `delta` of the target, linear beyond."""

    kind: Literal["huber"] = "huber"
    delta: Annotated[PositiveFloat, Traced()] = 1.0

    def value(self, out, y, params):
        import jax.numpy as jnp
        import optax

        return jnp.mean(optax.huber_loss(out, y, delta=self.delta))


@LOSSES.register
class SigmoidBinaryCrossEntropy(SigmoidProbabilities, BinaryLoss):
    """`optax.sigmoid_binary_cross_entropy` of one logit per example and 0/1 targets, in
    closed form: `softplus(-logit)` for 1, `softplus(logit)` for 0."""

    kind: Literal["sigmoid_binary_cross_entropy"] = "sigmoid_binary_cross_entropy"

    def value(self, out, y, params):
        return signed_margin_loss(out[:, 0], y)


@LOSSES.register
class SoftmaxCrossEntropy(SoftmaxProbabilities, ClassLoss):
    """Softmax cross-entropy of one logit per class and integer class ids
    (`optax.softmax_cross_entropy_with_integer_labels`). `label_smoothing` a mixes the
    one-hot targets with the uniform distribution (`optax.smooth_labels`: `(1 - a) *
    one_hot + a / classes`); `class_weight` (one weight per class) multiplies each row's
    loss by its target class's weight before the mean over rows."""

    kind: Literal["softmax_cross_entropy"] = "softmax_cross_entropy"
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    class_weight: tuple[Annotated[float, Field(ge=0.0, allow_inf_nan=False)], ...] | None = None

    def check(self, out_shape, info):
        problem = super().check(out_shape, info)
        if problem is None and self.class_weight is not None \
                and len(self.class_weight) != info.classes:
            return Problem(f"class_weight has {len(self.class_weight)} weights, but the data "
                           f"has {info.classes} classes: give one weight per class",
                           "class_weight")
        return problem

    def value(self, out, y, params):
        import jax.numpy as jnp
        import optax

        if self.label_smoothing == 0.0 and self.class_weight is None:
            if out.shape[-1] == 2:
                # The same value in closed form: softplus of the other logit minus the
                # picked one. On small arrays XLA pays per operation, and this form has
                # far fewer.
                return signed_margin_loss(out[:, 1] - out[:, 0], y)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))
        if self.label_smoothing == 0.0:
            rows = optax.softmax_cross_entropy_with_integer_labels(out, y)
        else:
            targets = optax.smooth_labels(one_hot(y, out.shape[-1]), self.label_smoothing)
            rows = optax.softmax_cross_entropy(out, targets)
        if self.class_weight is not None:
            rows = rows * jnp.asarray(self.class_weight, rows.dtype)[y]
        return jnp.mean(rows)


@LOSSES.register
class L2(Loss):
    """Sum of squared weights, biases excluded."""

    kind: Literal["l2"] = "l2"
    regulariser: ClassVar = True

    def value(self, out, y, params):
        return sum((w**2).sum() for w in kernels(params))


@LOSSES.register
class L1(Loss):
    """Sum of absolute weights, biases excluded."""

    kind: Literal["l1"] = "l1"
    regulariser: ClassVar = True

    def value(self, out, y, params):
        import jax.numpy as jnp

        return sum(jnp.abs(w).sum() for w in kernels(params))


from mlspec.catalog import optax_losses  # noqa: E402,F401  (registers the rest of optax's)
