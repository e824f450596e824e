"""The layout pass: a narrow model's first layers run on activations laid out (features,
rows) instead of flax's (rows, features), with the same parameters and results.

The pass rewrites the layer list before the module is built: the leading layers that can
run features-first are put between two `Transpose` layers, each `dense` among them
replaced by `FeaturesFirstDense`, composites' bodies rewritten alike. Layers that are
`elementwise` (see `Layer.elementwise`) run on either layout as they are. No catalogue
entry knows about layouts.
"""

from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from pydantic import PositiveInt

from mlspec.catalog.layers import Layer, Shape
from mlspec.catalog.layers.core import Dense as CatalogueDense
from mlspec.semantics.program import ModelProgram

FEATURES_FIRST_MAX_WIDTH = 32
"""The widest output of a layer that runs features-first. Measured on a 2-core CPU with
10,000 rows (rows-first time / features-first time of a training step): a whole 2-2-2
net 3.1x; 2-8-1 and 4-16-3 nets 1.5x; 8-32-2 1.06x; 10-64-1 1.0x; 100-256-1 0.8x. For one
dense layer from 100 features to 1 or 2 (logistic regression), the kernel's gradient
(x^T g, a matrix-vector product) is 4-10x quicker from the transposed data."""


class Dense(nn.Module):
    """`nn.Dense` on activations laid out (features, rows): the same parameters under the
    same names (so the same initial values from the same key), `kernel.T @ x + bias`.
    Named Dense so that flax names its instances Dense_0, Dense_1 as it does nn.Dense's."""

    features: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (x.shape[0], self.features), jnp.float32)
        # The barrier keeps XLA from fusing the bias into the product: on a CPU that fusion
        # computes the product with its own loop, about half as fast as the library's.
        y = jax.lax.optimization_barrier(
            jax.lax.dot_general(kernel, x, (((0,), (0,)), ((), ()))))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,),
                               jnp.float32)[:, None]
        return y


class Transpose(Layer):
    """The compiler's own layer: swaps the two axes of (rows, features) activations."""

    kind: Literal["transpose"] = "transpose"

    def build(self, ctx):
        return lambda x: x.T


class FeaturesFirstDense(Layer):
    """The compiler's own layer: `dense` on activations laid out (features, rows)."""

    kind: Literal["features_first_dense"] = "features_first_dense"
    features: PositiveInt
    use_bias: bool = True

    def build(self, ctx):
        return Dense(self.features, use_bias=self.use_bias)


def features_first_form(layer: Layer) -> Layer | None:
    """The layer as it runs features-first, or None if it cannot. A rewrite keeps every
    traced field of the layer where it was (the state's values are read in walk order)."""
    if isinstance(layer, CatalogueDense):
        return FeaturesFirstDense(features=layer.features, use_bias=layer.use_bias)
    if layer.elementwise:
        return layer
    if layer.composite:
        body = [features_first_form(inner) for inner in layer.body]
        if any(inner is None for inner in body):
            return None
        return layer.model_copy(update={"body": tuple(body)})
    return None


def _widths(layer: Layer, shape: Shape) -> list[int]:
    """The feature widths a layer produces (a composite's body's each)."""
    if layer.composite:
        out = []
        for inner in layer.body:
            out += _widths(inner, shape)
            shape = inner.output_shape(shape)
        return out
    return [layer.output_shape(shape)[-1]] if shape else []


def features_first_layers(model: ModelProgram) -> int:
    """How many leading layers run features-first: those that can, while each one's output
    is at most FEATURES_FIRST_MAX_WIDTH wide (narrow nets, and a narrow first dense layer
    over many input features); none for inputs that are not vectors."""
    if len(model.input_shape) != 1:
        return 0
    count, shape = 0, model.input_shape
    for layer in model.layers:
        if features_first_form(layer) is None \
                or max(_widths(layer, shape), default=0) > FEATURES_FIRST_MAX_WIDTH:
            break
        count, shape = count + 1, layer.output_shape(shape)
    return count


def features_first(layers: tuple[Layer, ...], count: int) -> tuple[Layer, ...]:
    """The layers with the first `count` of them run features-first."""
    if count == 0:
        return tuple(layers)
    leading = tuple(features_first_form(layer) for layer in layers[:count])
    if any(layer is None for layer in leading):
        raise ValueError("only layers that can run features-first may lead")
    return (Transpose(), *leading, Transpose(), *layers[count:])


def lay_out(model: ModelProgram) -> tuple[Layer, ...]:
    """The pass: the model's layers laid out for the backend. The layout was measured on
    CPUs; GPUs and TPUs keep flax's rows-first layout."""
    if jax.default_backend() != "cpu":
        return tuple(model.layers)
    return features_first(tuple(model.layers), features_first_layers(model))


def takes_transposed(layers: tuple[Layer, ...]) -> bool:
    """Whether the layers start features-first, so that a caller may pass the input
    transposed already (see `Stack`)."""
    return bool(layers) and isinstance(layers[0], Transpose)
