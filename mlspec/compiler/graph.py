"""Typed graph -> flax.linen module: one module for a graph model or a graph block.

Every node's layers are built in the graph's own scope, in order, so flax names them as it
names a chain's (`Dense_0`, `Dense_1`, blocks `mlp_0`): a graph that is a chain has the
parameters of that chain, under the same names, with the same initial values. A shared
layer is built once, at its first use, under `shared_<name>`, and called at each use, so
all its uses have one set of weights. The input is one array (a graph with one input) or
a dict by input name; the output one array (one output) or a dict by output name.

The padding mask of each input of token ids (`masked`; a graph block's input: the mask it
is given) follows the values as `Graph.masks` says: through a node's layers while they
keep it, and through a merge whose values all carry that one mask and that acts per step
(elementwise, or `concat` on an axis but time); a merge of values with different masks,
or of a masked one and an unmasked one, ends it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlspec.catalog.layers import BuildContext, Layer
from mlspec.catalog.layers.graph import Graph, SharedUse, merged_mask
from mlspec.catalog.traced import bind, count, own_count


def run_layers(layers: tuple[Layer, ...], x, *, train: bool, traced, at: Counter[str],
               uses: dict[str, int], body_module: Any, mask=None):
    """Applies `layers` to `x` inside the calling module's compact scope; returns the
    output and the mask it carries. `at` (where the layers' traced values start, advanced
    past them) and `uses` (how often each block has been used, for its params' names) are
    the caller's, updated in place. Bodies are built as `body_module`s, graph bodies as
    `GraphModule`s. `mask` (or None): the [batch, time] booleans of `x`'s positions that
    hold values; a layer that `uses_mask` is given it, and it holds while the layers keep
    it (`Layer.mask_after`). Without a mask the layers are applied as they always are."""

    def stack(body, name=None, *, start: Counter[str]):
        if name is not None:  # a block's params live under its name: mlp_0, mlp_1
            uses[name] = uses.get(name, -1) + 1
            name = f"{name}_{uses[name]}"
        begin = tuple(sorted(start.items()))
        module = GraphModule(body, begin, body_module=body_module, name=name) \
            if isinstance(body, Graph) else body_module(tuple(body), begin, name=name)
        return functools.partial(module, train=train, traced=traced)

    for layer in layers:
        ctx = BuildContext(nn=nn, train=train, stack=functools.partial(
            stack, start=at + own_count(layer)))
        apply = bind(layer, traced, at).build(ctx)
        if mask is None:
            x = apply(x)
        else:
            shape = x.shape[1:]
            x = apply(x, mask=mask) if layer.uses_mask else apply(x)
            mask = mask if layer.mask_after(shape) else None
        at.update(count(layer))
    return x, mask


class GraphModule(nn.Module):
    """Runs a graph's nodes in order (see the module's docstring)."""

    graph: Graph
    start: tuple[tuple[str, int], ...] = ()
    """Where the graph's first traced values sit in the state's lists, by name."""
    body_module: Any = None
    """The module that runs a body of layers (mlspec.compiler.model.Stack)."""
    masked: tuple[str, ...] = ()
    """The inputs of token ids (text): each one's mask is its ids that are not padding."""

    @nn.compact
    def __call__(self, x, train: bool = False, transposed: bool = False,
                 traced: Mapping[str, Any] | None = None, mask=None):
        if transposed:
            raise ValueError("a graph model takes its input rows-first")
        graph = self.graph
        if isinstance(x, Mapping):
            values = {name: x[name] for name in graph.inputs}
        elif len(graph.inputs) == 1:
            values = {graph.inputs[0]: x}
        else:
            raise ValueError(f"this graph takes a dict of its inputs {list(graph.inputs)}")
        # each value's mask, with the input it is of (see Graph.masks); `mask`: a block's
        masks = {name: (name, values[name] != 0) for name in self.masked}
        if mask is not None:
            masks[graph.inputs[0]] = (graph.inputs[0], mask)
        # traced values in walk order: the shared layers, then each node's merge and layers
        at = Counter(dict(self.start))
        share_start = {}
        for share in graph.shares:
            share_start[share.name] = tuple(sorted(at.items()))
            at.update(count(share))
        shared: dict[str, Any] = {}
        uses: dict[str, int] = {}
        for node in graph.nodes:
            if node.merge is not None:
                value = bind(node.merge, traced, at).apply(jnp, [values[n] for n in node.inputs])
                at.update(count(node.merge))
                carried = [masks.get(n) for n in node.inputs]
                source = merged_mask(node.merge, [c and c[0] for c in carried],
                                     values[node.inputs[0]].shape[1:])
                held = carried[0] if source is not None else None
            else:
                value, held = values[node.inputs[0]], masks.get(node.inputs[0])
            run: list[Layer] = []
            for layer in (*node.layers, None):
                if layer is not None and not isinstance(layer, SharedUse):
                    run.append(layer)
                    continue
                value, kept = run_layers(tuple(run), value, train=train, traced=traced, at=at,
                                         uses=uses, body_module=self.body_module,
                                         mask=held and held[1])
                held = held if kept is not None else None
                run = []
                if layer is not None:
                    one = graph.shared(layer.name)
                    if layer.name not in shared:
                        shared[layer.name] = self.body_module(
                            (one,), share_start[layer.name], name=f"shared_{layer.name}")
                    if held is None:
                        value = shared[layer.name](value, train=train, traced=traced)
                    else:
                        shape = value.shape[1:]
                        value = shared[layer.name](value, train=train, traced=traced,
                                                   mask=held[1])
                        held = held if one.mask_after(shape) else None
            values[node.name] = value
            if held is not None:
                masks[node.name] = held
        if len(graph.outputs) == 1:
            return values[graph.outputs[0]]
        return {name: values[name] for name in graph.outputs}


def example_input(model, rows: int = 1, make=None):
    """An input of `rows` rows for the model, as `make(shape, dtype)` builds arrays
    (`jax.ShapeDtypeStruct` by default): one array, or a graph's dict by input name."""
    make = make or jax.ShapeDtypeStruct
    if model.graph is None:
        return make((rows, *model.input_shape), jnp.float32)
    arrays = {i.name: make((rows, *i.shape), jnp.dtype(i.dtype)) for i in model.inputs}
    return next(iter(arrays.values())) if len(arrays) == 1 else arrays
