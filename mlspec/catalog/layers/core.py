"""Dense layers, lookups and activations: functions of the last axis or of each value."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import NonNegativeFloat, PositiveInt

from mlspec.catalog.layers.base import Layer, ShapeError, within_rank
from mlspec.catalog.traced import Traced


class Dense(Layer):
    """A fully connected layer (`flax.linen.Dense`) over the last axis."""

    kind: Literal["dense"] = "dense"
    keeps_mask: ClassVar[bool] = True
    over_last_axis: ClassVar[bool] = True
    features: PositiveInt
    use_bias: bool = True

    def output_shape(self, shape):
        if not shape:
            raise ShapeError("dense needs an input with at least one axis")
        return (*shape[:-1], self.features)

    def param_count(self, shape):
        return shape[-1] * self.features + (self.features if self.use_bias else 0)

    def build(self, ctx):
        return ctx.nn.Dense(self.features, use_bias=self.use_bias)


class Embedding(Layer):
    """A lookup table from integer ids (0 to `vocab` - 1) to vectors (`flax.linen.Embed`);
    on a categorical or text input (of the data, or an `input` line), `vocab` is that
    input's vocabulary unless given, and `embedding(8)` is `embedding(features=8)`.

    One argument is `features`, two are `vocab` and `features` (as in v1)."""

    kind: Literal["embedding"] = "embedding"
    keeps_mask: ClassVar[bool] = True
    vocab: PositiveInt | None = None
    features: PositiveInt
    positional_forms: ClassVar[tuple] = ((1, ("features",)),)

    def output_shape(self, shape):
        if self.vocab is None:
            raise ShapeError("embedding needs vocab=... here, as in embedding(vocab, "
                             "features): only on a categorical or text input does it take "
                             "that input's vocabulary")
        return within_rank((*shape, self.features), "embedding")

    def param_count(self, shape):
        return (self.vocab or 0) * self.features

    def build(self, ctx):
        embed = ctx.nn.Embed(self.vocab, self.features)
        return lambda x: embed(x.astype("int32"))


class OneHot(Layer):
    """Integer ids to one-hot vectors of `n` values (`jax.nn.one_hot`); an id outside
    0..n-1 gives zeros. On a categorical or text input, `n` is that input's vocabulary
    unless given."""

    kind: Literal["one_hot"] = "one_hot"
    n: PositiveInt | None = None

    def output_shape(self, shape):
        if self.n is None:
            raise ShapeError("one_hot needs n=... here: only on a categorical or text "
                             "input does it take that input's vocabulary")
        return within_rank((*shape, self.n), "one_hot")

    def build(self, ctx):
        import jax

        return lambda x: jax.nn.one_hot(x.astype("int32"), self.n)


class Activation(Layer):
    """An elementwise (or last-axis) function of flax.linen under the same name."""

    keeps_mask: ClassVar[bool] = True

    def build(self, ctx):
        return getattr(ctx.nn, self.kind)


_ACTIVATIONS = {
    "relu": "`max(x, 0)`",
    "sigmoid": "`1 / (1 + exp(-x))`",
    "tanh": "The hyperbolic tangent",
    "gelu": "The Gaussian error linear unit, tanh approximation",
    "silu": "`x * sigmoid(x)` (swish)",
    "softplus": "`log(1 + exp(x))`",
    "elu": "`x` above 0, `exp(x) - 1` below",
    "softmax": "Softmax over the last axis",
    "log_softmax": "Log of the softmax over the last axis",
}
_OVER_AN_AXIS = ("softmax", "log_softmax")

# One class per plain activation, made from its name: each is a module attribute (Relu,
# Sigmoid, ...) as a written class would be, so the registry finds it with the others.
for _name, _doc in _ACTIVATIONS.items():
    _cls = type(_name.title().replace("_", ""), (Activation,), {
        "__annotations__": {"kind": Literal[_name]}, "kind": _name,
        "__doc__": f"{_doc} (`flax.linen.{_name}`).", "__module__": __name__,
        "elementwise": _name not in _OVER_AN_AXIS, "over_last_axis": _name in _OVER_AN_AXIS,
    })
    globals()[_cls.__name__] = _cls
del _name, _doc, _cls


class LeakyRelu(Activation):
    """`flax.linen.leaky_relu` with its negative `slope`."""

    kind: Literal["leaky_relu"] = "leaky_relu"
    elementwise: ClassVar[bool] = True
    slope: Annotated[NonNegativeFloat, Traced()] = 0.01

    def build(self, ctx):
        return lambda x: ctx.nn.leaky_relu(x, negative_slope=self.slope)
