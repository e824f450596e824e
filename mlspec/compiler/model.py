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
from mlspec.semantics.program import ModelProgram, Program


class Stack(nn.Module):
    """Applies layers in order; composites build their bodies as nested stacks.

    `traced` (the state's traced values, see mlspec.catalog.traced) replaces the traced
    fields of the layers inside the program; without it they are constants. A stack whose
    layers start features-first (see mlspec.compiler.layout) may be given its input
    transposed already (`transposed=True`): the trainer transposes constant data once per
    run, not once per step.

    A stack on token ids (`masked`) masks their padding (id 0) through its layers; a body
    is given its input's mask (`mask=`, see `run_layers`)."""

    layers: tuple[Layer, ...]
    start: tuple[tuple[str, int], ...] = ()
    """Where this stack's first traced values sit in the state's lists, by name (for a
    body: after those of the layers before it)."""
    masked: bool = False
    """The input is token ids (a text input), whose positions that are not 0 hold values."""

    @nn.compact
    def __call__(self, x, train: bool = False, transposed: bool = False,
                 traced: Mapping[str, Any] | None = None, mask=None):
        layers = self.layers
        if transposed:
            if not takes_transposed(layers):
                raise ValueError("transposed input is for a model whose first layers run "
                                 "features-first")
            layers = layers[1:]
        elif self.masked:
            mask = x != 0
        out, _ = run_layers(layers, x, train=train, traced=traced,
                            at=Counter(dict(self.start)), uses={}, body_module=Stack,
                            mask=mask)
        return out


def token_inputs(program: Program) -> tuple[str, ...]:
    """The model's inputs of token ids (text), whose padding the model masks: a graph's
    inputs of int32 ids with one axis (`tokens`), or a chain's single input where the data
    gives it from a text column."""
    model = program.model
    if model.graph is not None:
        return tuple(i.name for i in model.inputs if i.dtype == "int32" and len(i.shape) == 1)
    if program.data is None:
        return ()
    inputs = program.data.info.inputs
    return (inputs[0].name,) if len(inputs) == 1 and inputs[0].kind == "tokens" else ()


def build_module(model: ModelProgram, tokens: tuple[str, ...] = ()) -> nn.Module:
    """A chain's `Stack` (laid out for the backend), or a graph's `GraphModule`; `tokens`:
    the inputs of token ids whose padding it masks (`token_inputs`). A chain on token ids
    keeps flax's rows-first layout."""
    if model.graph is not None:
        return GraphModule(model.graph, body_module=Stack, masked=tuple(tokens))
    if tokens:
        return Stack(tuple(model.layers), masked=True)
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
