"""Rows of `mlspec summary`: each layer with its output shape and parameter count, from
the layers' own shape functions (no jax)."""

from __future__ import annotations

from mlspec.catalog.layers import BlockUse, Layer
from mlspec.semantics.canonical import entry_call
from mlspec.syntax.printer import format_expr


def layer_text(layer: Layer) -> str:
    if isinstance(layer, BlockUse):
        return f"{layer.name} (block)"
    return format_expr(entry_call(layer))


def layer_rows(layers: tuple[Layer, ...], shape: tuple[int, ...], depth: int = 0):
    """(depth, text, output shape, parameter count) per layer; bodies follow, indented."""
    rows = []
    for layer in layers:
        out = layer.output_shape(shape)
        rows.append((depth, layer_text(layer), out, layer.param_count(shape)))
        if layer.composite:
            rows.extend(layer_rows(layer.body, shape, depth + 1))
        shape = out
    return rows
