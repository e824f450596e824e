"""Typed model -> flax.linen module."""

from __future__ import annotations

import functools

import flax.linen as nn

from ..catalog.layers import BuildContext, Layer
from ..dsl.program import ModelProgram


class Stack(nn.Module):
    """Applies layers in order; composites build their bodies as nested stacks."""

    layers: tuple[Layer, ...]

    @nn.compact
    def __call__(self, x, train: bool = False):
        uses: dict[str, int] = {}

        def stack(layers, name=None):
            if name is not None:  # a block's params live under its name: mlp_0, mlp_1
                uses[name] = uses.get(name, -1) + 1
                name = f"{name}_{uses[name]}"
            return functools.partial(Stack(tuple(layers), name=name), train=train)

        ctx = BuildContext(nn=nn, train=train, stack=stack)
        for layer in self.layers:
            x = layer.build(ctx)(x)
        return x


def build_module(model: ModelProgram) -> Stack:
    return Stack(tuple(model.layers))


def uses_train_mode(layers) -> bool:
    """Whether any layer behaves differently in training (dropout, batch_norm)."""
    return any(layer.train_dependent or (layer.composite and uses_train_mode(layer.body))
               for layer in layers)
