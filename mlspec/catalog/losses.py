"""The loss catalogue: data losses over (outputs, targets) and regularisers over weights.

A `loss` setting is a weighted sum of these terms (`softmax_cross_entropy + 1e-4 * l2`).
Each data loss says which targets and output widths it fits (checked before training) and
how its outputs become point predictions. jax is imported inside the methods only, when a
spec is compiled.
"""

from __future__ import annotations

import functools
from typing import Annotated, ClassVar, Literal

from pydantic import PositiveFloat

from mlspec.catalog.registry import Entry, Registry
from mlspec.catalog.traced import Traced


class Loss(Entry):
    regulariser: ClassVar[bool] = False
    target: ClassVar[Literal["class", "binary", "real", "any"]] = "any"

    def check(self, out_shape: tuple[int, ...], info) -> str | None:
        """Why this loss does not fit the model's output and the data's targets, if so."""
        return None

    def value(self, out, y, params):
        """The mean loss over the batch (a jax scalar)."""
        raise NotImplementedError

    def predict(self, out):
        """Point predictions from the model's outputs."""
        return out

    def probabilities(self, out):
        """Each class's probability from the model's outputs, one column per class; None
        for a loss of real targets."""
        return None


LOSSES: Registry[type[Loss]] = Registry("loss")


@functools.cache
def _softplus():
    """`log(1 + exp(s))` as `max(s, 0) + log1p(exp(-|s|))` (exact and stable), with its
    derivative given as `sigmoid(s)`. The two-class cross-entropies are the mean softplus
    of a signed margin; on a CPU this form and its gradient take about a third of the time
    of `logaddexp`'s (whose derivative XLA builds from several selects), with the same
    values."""
    import jax
    import jax.numpy as jnp

    @jax.custom_jvp
    def softplus(s):
        return jnp.maximum(s, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(s)))

    @softplus.defjvp
    def softplus_jvp(primals, tangents):
        (s,), (ds,) = primals, tangents
        return softplus(s), jax.nn.sigmoid(s) * ds

    return softplus


def signed_margin_loss(margin, y):
    """The mean of `softplus(-margin)` where y is 1 and `softplus(margin)` where y is 0: the
    cross-entropy of a logit `margin` for class 1 against 0/1 targets."""
    import jax.numpy as jnp

    return jnp.mean(_softplus()(jnp.where(y == 1, -margin, margin)))


class _RealLoss(Loss):
    target: ClassVar = "real"

    def check(self, out_shape, info):
        if info.target != "real":
            return (f"'{self.kind}' needs real targets, but the data has class ids; use "
                    f"softmax_cross_entropy or sigmoid_binary_cross_entropy")
        if out_shape[-1:] != (info.target_dim,):
            return (f"the model outputs {list(out_shape)} per example but the targets have "
                    f"width {info.target_dim}; end the model with dense({info.target_dim})")
        return None


@LOSSES.register
class Mse(_RealLoss):
    """Mean squared error: `mean((out - y)**2)`."""

    kind: Literal["mse"] = "mse"

    def value(self, out, y, params):
        import jax.numpy as jnp

        return jnp.mean((out - y) ** 2)


@LOSSES.register
class Mae(_RealLoss):
    """Mean absolute error: `mean(|out - y|)`."""

    kind: Literal["mae"] = "mae"

    def value(self, out, y, params):
        import jax.numpy as jnp

        return jnp.mean(jnp.abs(out - y))


@LOSSES.register
class Huber(_RealLoss):
    """`optax.huber_loss`: quadratic within `delta` of the target, linear beyond."""

    kind: Literal["huber"] = "huber"
    delta: Annotated[PositiveFloat, Traced()] = 1.0

    def value(self, out, y, params):
        import jax.numpy as jnp
        import optax

        return jnp.mean(optax.huber_loss(out, y, delta=self.delta))


@LOSSES.register
class SigmoidBinaryCrossEntropy(Loss):
    """`optax.sigmoid_binary_cross_entropy` of one logit per example and 0/1 targets, in
    closed form: `softplus(-logit)` for 1, `softplus(logit)` for 0."""

    kind: Literal["sigmoid_binary_cross_entropy"] = "sigmoid_binary_cross_entropy"
    target: ClassVar = "binary"

    def check(self, out_shape, info):
        if not info.binary:
            what = "real targets" if info.target == "real" else f"{info.classes} classes"
            return (f"'{self.kind}' needs 0/1 targets, but the data has {what}; use "
                    + ("mse" if info.target == "real" else "softmax_cross_entropy"))
        if out_shape != (1,):
            return (f"'{self.kind}' needs one logit per example, but the model outputs "
                    f"{list(out_shape)}; end the model with dense(1)")
        return None

    def value(self, out, y, params):
        return signed_margin_loss(out[:, 0], y)

    def predict(self, out):
        return (out[:, 0] >= 0).astype("int32")

    def probabilities(self, out):
        import jax
        import jax.numpy as jnp

        # class 0 as sigmoid(-logit), not 1 - sigmoid(logit): no rounding to 0 for a
        # confident class 1
        return jax.nn.sigmoid(jnp.concatenate([-out[:, :1], out[:, :1]], axis=-1))


@LOSSES.register
class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy of one logit per class and integer class ids
    (`optax.softmax_cross_entropy_with_integer_labels`)."""

    kind: Literal["softmax_cross_entropy"] = "softmax_cross_entropy"
    target: ClassVar = "class"

    def check(self, out_shape, info):
        if info.target != "class":
            return f"'{self.kind}' needs class targets, but the data has real targets; use mse"
        if out_shape != (info.classes,):
            return (f"'{self.kind}' needs one logit per class ({info.classes}), but the "
                    f"model outputs {list(out_shape)}; end the model with dense(classes)")
        return None

    def value(self, out, y, params):
        import jax.numpy as jnp
        import optax

        if out.shape[-1] == 2:
            # The same value in closed form: softplus of the other logit minus the picked
            # one. On small arrays XLA pays per operation, and this form has far fewer.
            return signed_margin_loss(out[:, 1] - out[:, 0], y)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))

    def predict(self, out):
        if out.shape[-1] == 2:  # argmax of two, as one comparison (ties pick class 0)
            return (out[:, 1] > out[:, 0]).astype("int32")
        return out.argmax(axis=-1).astype("int32")

    def probabilities(self, out):
        import jax

        return jax.nn.softmax(out, axis=-1)


def kernels(params) -> list:
    """The weight matrices of a flax parameter tree (leaves named `kernel` or
    `embedding`), biases and normalisation scales excluded."""
    import jax

    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return [leaf for path, leaf in flat
            if getattr(path[-1], "key", None) in ("kernel", "embedding")]


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
