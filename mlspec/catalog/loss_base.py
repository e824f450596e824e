"""What every loss of the catalogue builds on: the `Loss` entry, its registry, and the
shared checks of a loss's fit with the targets and the model's output (real targets of a
width, one logit for 0/1 targets, one logit per class).

The entries themselves are in mlspec.catalog.losses (v1's and the regularisers) and
mlspec.catalog.optax_losses (the rest of optax.losses); importing mlspec.catalog.losses
registers them all. jax is imported inside the methods only, when a spec is compiled.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Literal

from mlspec.catalog.registry import Entry, Registry


class Problem(str):
    """Why a loss does not fit, placed at one of its arguments (`class_weight`) rather
    than at the whole call."""

    argument: str

    def __new__(cls, message: str, argument: str) -> Problem:
        problem = super().__new__(cls, message)
        problem.argument = argument
        return problem


class Loss(Entry):
    regulariser: ClassVar[bool] = False
    target: ClassVar[Literal["class", "binary", "real", "any"]] = "any"

    def check(self, out_shape: tuple[int, ...], info) -> str | None:
        """Why this loss does not fit the model's output and the data's targets, if so (a
        `Problem` to place it at an argument)."""
        return None

    def value(self, out, y, params):
        """The mean loss over the batch (a jax scalar)."""
        raise NotImplementedError

    def predict(self, out):
        """Point predictions from the model's outputs."""
        return out

    def probabilities(self, out):
        """Each class's probability from the model's outputs, one column per class; None
        for a loss of real targets and for one whose outputs are scores, not logits
        (`hinge_loss`)."""
        return None

    def score(self, out):
        """For 0/1 targets: one score per row that orders the rows by how likely class 1
        is (what `auc` ranks); None for other targets."""
        return None

    def class_scores(self, out):
        """One score per class and row, whose order is the order of the classes' odds
        (what `top_k_accuracy` ranks); None for real targets."""
        return None

    has_probabilities: ClassVar[bool] = False
    """Whether `probabilities` gives class probabilities (a loss of logits)."""

    def log_probabilities(self, out):
        """The log of `probabilities`, computed from the outputs without rounding a
        probability to 0 first."""
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


def kernels(params) -> list:
    """The weight matrices of a flax parameter tree (leaves named `kernel` or
    `embedding`), biases and normalisation scales excluded."""
    import jax

    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return [leaf for path, leaf in flat
            if getattr(path[-1], "key", None) in ("kernel", "embedding")]


class RealLoss(Loss):
    """A loss of real targets: the model outputs one value per target column."""

    target: ClassVar = "real"

    def check(self, out_shape, info):
        if info.target != "real":
            return (f"'{self.kind}' needs real targets, but the data has class ids; use "
                    f"softmax_cross_entropy or sigmoid_binary_cross_entropy")
        if out_shape[-1:] != (info.target_dim,):
            return (f"the model outputs {list(out_shape)} per example but the targets have "
                    f"width {info.target_dim}; end the model with dense({info.target_dim})")
        return None


class BinaryLoss(Loss):
    """A loss of 0/1 targets and one output per row: a logit (or a score, `output`) whose
    sign is the prediction."""

    target: ClassVar = "binary"
    output: ClassVar[str] = "logit"

    def check(self, out_shape, info):
        if not info.binary:
            what = "real targets" if info.target == "real" else f"{info.classes} classes"
            return (f"'{self.kind}' needs 0/1 targets, but the data has {what}; use "
                    + ("mse" if info.target == "real" else "softmax_cross_entropy"))
        if out_shape != (1,):
            return (f"'{self.kind}' needs one {self.output} per example, but the model "
                    f"outputs {list(out_shape)}; end the model with dense(1)")
        return None

    def predict(self, out):
        return (out[:, 0] >= 0).astype("int32")

    def score(self, out):
        return out[:, 0]

    def class_scores(self, out):
        import jax.numpy as jnp

        return jnp.concatenate([jnp.zeros_like(out[:, :1]), out[:, :1]], axis=-1)


class SigmoidProbabilities:
    """Class probabilities of one logit: sigmoid(-logit) and sigmoid(logit)."""

    has_probabilities: ClassVar[bool] = True

    def log_probabilities(self, out):
        import jax
        import jax.numpy as jnp

        return jax.nn.log_sigmoid(jnp.concatenate([-out[:, :1], out[:, :1]], axis=-1))

    def probabilities(self, out):
        import jax
        import jax.numpy as jnp

        # class 0 as sigmoid(-logit), not 1 - sigmoid(logit): no rounding to 0 for a
        # confident class 1
        return jax.nn.sigmoid(jnp.concatenate([-out[:, :1], out[:, :1]], axis=-1))


class ClassLoss(Loss):
    """A loss of class ids and one output per class (a logit, or a score), whose argmax
    is the prediction."""

    target: ClassVar = "class"
    output: ClassVar[str] = "logit"

    def check(self, out_shape, info):
        if info.target != "class":
            return f"'{self.kind}' needs class targets, but the data has real targets; use mse"
        if out_shape != (info.classes,):
            return (f"'{self.kind}' needs one {self.output} per class ({info.classes}), but "
                    f"the model outputs {list(out_shape)}; end the model with dense(classes)")
        return None

    def predict(self, out):
        if out.shape[-1] == 2:  # argmax of two, as one comparison (ties pick class 0)
            return (out[:, 1] > out[:, 0]).astype("int32")
        return out.argmax(axis=-1).astype("int32")

    def score(self, out):
        return out[:, 1] - out[:, 0] if out.shape[-1] == 2 else None

    def class_scores(self, out):
        return out


class SoftmaxProbabilities:
    """Class probabilities of one logit per class: their softmax."""

    has_probabilities: ClassVar[bool] = True

    def log_probabilities(self, out):
        import jax

        return jax.nn.log_softmax(out, axis=-1)

    def probabilities(self, out):
        import jax

        return jax.nn.softmax(out, axis=-1)


def one_hot(y, classes: int):
    import jax

    return jax.nn.one_hot(y, classes, dtype="float32")
