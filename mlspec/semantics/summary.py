"""Rows of `mlspec summary`: each layer with its output shape and parameter count, from
the layers' own shape functions (no jax). A graph lists its inputs, then its nodes in
order (each with what it reads) and their layers under them; a shared layer's parameters
count at its first use."""

from __future__ import annotations

from collections.abc import Mapping

from mlspec.catalog.layers import BlockUse, Layer
from mlspec.catalog.layers.graph import Graph, GraphBlockUse, SharedUse
from mlspec.semantics.canonical import entry_call
from mlspec.semantics.program import ModelProgram
from mlspec.syntax import ir
from mlspec.syntax.printer import format_expr

Row = tuple[int, str, tuple[int, ...], int]
"""(depth, text, output shape, parameter count); the model's total is the sum of the
rows at depth 0."""


def layer_text(layer: Layer) -> str:
    if isinstance(layer, (BlockUse, GraphBlockUse)):
        return f"{layer.name} (block)"
    return format_expr(entry_call(layer))


def layer_rows(layers: tuple[Layer, ...], shape: tuple[int, ...], depth: int = 0) -> list[Row]:
    """A row per layer; bodies (a graph block's nodes too) follow, indented."""
    rows = []
    for layer in layers:
        out = layer.output_shape(shape)
        rows.append((depth, layer_text(layer), out, layer.param_count(shape)))
        if isinstance(layer, GraphBlockUse):
            rows.extend(graph_rows(layer.graph, {"in": shape}, depth + 1, show_inputs=False))
        elif layer.composite:
            rows.extend(layer_rows(layer.body, shape, depth + 1))
        shape = out
    return rows


def graph_rows(graph: Graph, inputs: Mapping[str, tuple[int, ...]], depth: int = 0,
               show_inputs: bool = True) -> list[Row]:
    """A row per input, then per node (`h = concat(a, b, axis=-1)`, its parameters those
    of its layers), each node's layers under it."""
    rows: list[Row] = [(depth, f"input {name}", shape, 0)
                       for name, shape in inputs.items()] if show_inputs else []
    shapes, counted = dict(inputs), set()
    for node in graph.nodes:
        if node.merge is not None:
            call = entry_call(node.merge)
            start = format_expr(call.model_copy(update={"args": tuple(
                ir.Name(name=n) for n in node.inputs) + call.args}))
            shape = node.merge.output_shape([shapes[n] for n in node.inputs])
        else:
            start, shape = node.inputs[0], shapes[node.inputs[0]]
        inner: list[Row] = []
        for layer in node.layers:
            if isinstance(layer, SharedUse):
                shared = graph.shared(layer.name)
                out = shared.output_shape(shape)
                first = layer.name not in counted
                counted.add(layer.name)
                inner.append((depth + 1, f"{layer.name} (shared: {layer_text(shared)})", out,
                              shared.param_count(shape) if first else 0))
                if first and (shared.composite or isinstance(shared, GraphBlockUse)):
                    inner.extend((d + 1, *rest) for d, *rest in layer_rows((shared,), shape,
                                                                           depth + 1)[1:])
            else:
                inner.extend(layer_rows((layer,), shape, depth + 1))
                out = layer.output_shape(shape)
            shape = out
        output = "output " if node.name in graph.outputs and show_inputs else ""
        rows.append((depth, f"{output}{node.name} = {start}", shape,
                     sum(count for d, _, _, count in inner if d == depth + 1)))
        rows.extend(inner)
        shapes[node.name] = shape
    return rows


def model_rows(model: ModelProgram) -> list[Row]:
    """The rows of a chain's layers or of a graph."""
    if model.graph is not None:
        return graph_rows(model.graph, model.input_shapes())
    return layer_rows(model.layers, model.input_shape)


def input_text(model: ModelProgram) -> str:
    """`input [4]`, or a graph's `inputs x [4], c []`."""
    if model.graph is None:
        return f"input {list(model.input_shape)}"
    return "inputs " + ", ".join(f"{i.name} {list(i.shape)}" for i in model.inputs)
