"""Typed model -> flax.linen module."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlspec.catalog.layers import BuildContext, Layer, dropout_layers
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


class Dropout(nn.Module):
    """`nn.Dropout` (the same key, mask and scaling, so the same results) with the keep
    probability given as `keep`, which may be a traced value: the members of a sweep
    over dropout rates then share one compiled program. Named Dropout so that flax names
    its instances, and derives their keys, as it does nn.Dropout's."""

    rate: float
    keep: Any = None
    deterministic: bool = False

    @nn.compact
    def __call__(self, x):
        if self.deterministic:
            return x
        keep = 1.0 - self.rate if self.keep is None else self.keep
        mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep, shape=x.shape)
        return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


def keep_probabilities(layers) -> list[float]:
    """1 - rate of each dropout layer, in the order that `dropout_keep` follows."""
    return [1.0 - layer.rate for layer in dropout_layers(layers)]


class Stack(nn.Module):
    """Applies layers in order; composites build their bodies as nested stacks.

    The first `features_first` layers run on activations laid out (features, rows): the
    top stack transposes its input (rows, features) before them (unless the caller passes
    it transposed already, `transposed=True`: the trainer transposes constant data once
    per run, not once per step) and their output back after them."""

    layers: tuple[Layer, ...]
    features_first: int = 0
    top: bool = True
    dropout_offset: int = 0
    """Where this stack's first dropout layer's keep probability sits in `dropout_keep`."""

    @nn.compact
    def __call__(self, x, train: bool = False, transposed: bool = False,
                 dropout_keep=None):
        """`dropout_keep`: the keep probabilities of the dropout layers (see
        `keep_probabilities`), or None for the layers' own rates."""
        if transposed and not (self.top and self.features_first):
            raise ValueError("transposed input is for a model whose first layers run "
                             "features-first")
        uses: dict[str, int] = {}

        def stack(layers, name=None, features_first=False, offset=0):
            if name is not None:  # a block's params live under its name: mlp_0, mlp_1
                uses[name] = uses.get(name, -1) + 1
                name = f"{name}_{uses[name]}"
            return functools.partial(Stack(tuple(layers), len(layers) * features_first,
                                           top=False, dropout_offset=offset, name=name),
                                     train=train, dropout_keep=dropout_keep)

        offset = self.dropout_offset
        for i, layer in enumerate(self.layers):
            features_first = i < self.features_first
            if self.top and features_first and i == 0 and not transposed:
                x = x.T
            ctx = BuildContext(
                nn=nn, train=train, features_first=features_first, dense_features_first=Dense,
                dropout=Dropout, dropout_keep=dropout_keep, dropout_index=offset,
                stack=functools.partial(stack, features_first=features_first, offset=offset))
            x = layer.build(ctx)(x)
            offset += len(dropout_layers([layer]))
            if self.top and i + 1 == self.features_first:
                x = x.T
        return x


def features_first_layers(model: ModelProgram) -> int:
    """How many leading layers run features-first: those that can, while each one's output
    is at most FEATURES_FIRST_MAX_WIDTH wide (narrow nets, and a narrow first dense layer
    over many input features); none for inputs that are not vectors."""
    if len(model.input_shape) != 1:
        return 0
    count, shape = 0, model.input_shape
    for layer in model.layers:
        if not layer.features_first or max(layer.widths(shape), default=0) \
                > FEATURES_FIRST_MAX_WIDTH:
            break
        count, shape = count + 1, layer.output_shape(shape)
    return count


def build_module(model: ModelProgram) -> Stack:
    # The layout was measured on CPUs; GPUs and TPUs keep flax's rows-first layout.
    cpu = jax.default_backend() == "cpu"
    return Stack(tuple(model.layers), features_first_layers(model) if cpu else 0)


def uses_train_mode(layers) -> bool:
    """Whether any layer behaves differently in training (dropout, batch_norm)."""
    return any(layer.train_dependent or (layer.composite and uses_train_mode(layer.body))
               for layer in layers)
