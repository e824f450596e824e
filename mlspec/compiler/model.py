"""Typed model -> flax.linen module: the layout pass, then a stack of the layers' builds."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from typing import Any

import flax.linen as nn

from mlspec.catalog.layers import BuildContext, Layer
from mlspec.catalog.traced import bind, count, own_count
from mlspec.compiler.layout import lay_out, takes_transposed
from mlspec.semantics.program import ModelProgram


class Stack(nn.Module):
    """Applies layers in order; composites build their bodies as nested stacks.

    `traced` (the state's traced values, see mlspec.catalog.traced) replaces the traced
    fields of the layers inside the program; without it they are constants. A stack whose
    layers start features-first (see mlspec.compiler.layout) may be given its input
    transposed already (`transposed=True`): the trainer transposes constant data once per
    run, not once per step."""

    layers: tuple[Layer, ...]
    start: tuple[tuple[str, int], ...] = ()
    """Where this stack's first traced values sit in the state's lists, by name (for a
    body: after those of the layers before it)."""

    @nn.compact
    def __call__(self, x, train: bool = False, transposed: bool = False,
                 traced: Mapping[str, Any] | None = None):
        layers = self.layers
        if transposed:
            if not takes_transposed(layers):
                raise ValueError("transposed input is for a model whose first layers run "
                                 "features-first")
            layers = layers[1:]
        uses: dict[str, int] = {}

        def stack(body, name=None, *, start: Counter[str]):
            if name is not None:  # a block's params live under its name: mlp_0, mlp_1
                uses[name] = uses.get(name, -1) + 1
                name = f"{name}_{uses[name]}"
            return functools.partial(Stack(tuple(body), tuple(sorted(start.items())),
                                           name=name), train=train, traced=traced)

        at = Counter(dict(self.start))
        for layer in layers:
            ctx = BuildContext(nn=nn, train=train, stack=functools.partial(
                stack, start=at + own_count(layer)))
            x = bind(layer, traced, at).build(ctx)(x)
            at += count(layer)
        return x


def build_module(model: ModelProgram) -> Stack:
    return Stack(lay_out(model))


def uses_train_mode(layers) -> bool:
    """Whether any layer behaves differently in training (dropout, batch_norm)."""
    return any(layer.train_dependent or (layer.composite and uses_train_mode(layer.body))
               for layer in layers)
