"""Typed model -> flax.linen module: the layout pass, then a stack of the layers' builds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import flax.linen as nn

from mlspec.catalog.layers import Layer
from mlspec.catalog.layers.graph import inner_layers
from mlspec.compiler.graph import GraphModule, run_layers
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
        return run_layers(layers, x, train=train, traced=traced, at=Counter(dict(self.start)),
                          uses={}, body_module=Stack)


def build_module(model: ModelProgram) -> nn.Module:
    """A chain's `Stack` (laid out for the backend), or a graph's `GraphModule`."""
    if model.graph is not None:
        return GraphModule(model.graph, body_module=Stack)
    return Stack(lay_out(model))


def takes_transposed_input(module: nn.Module) -> bool:
    """Whether the module may be given its input transposed (see `Stack`)."""
    return isinstance(module, Stack) and takes_transposed(module.layers)


def model_layers(model: ModelProgram) -> tuple[Layer, ...]:
    """A chain's layers, or a graph's every layer (a shared one once)."""
    return tuple(model.graph.layers()) if model.graph is not None else tuple(model.layers)


def uses_train_mode(layers) -> bool:
    """Whether any layer behaves differently in training (dropout, batch_norm)."""
    return any(layer.train_dependent or uses_train_mode(inner_layers(layer))
               for layer in layers)
