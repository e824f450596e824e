"""Rows of `mlspec summary`: each layer with its output shape and parameter count, from
the layers' own shape functions (no jax)."""

from __future__ import annotations

from .catalog.layers import Layer
from .dsl.canonical import entry_call
from .dsl.printer import format_expr
from .dsl.program import BlockUse


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


def optimizer_state_bytes(program) -> int:
    """Bytes of the optax state for the model's parameters, from abstract shapes (optax
    decides what it keeps, so this asks it, through jax.eval_shape)."""
    import jax
    import jax.numpy as jnp

    from .compiler.model import build_module
    from .compiler.trainer import build_optimizer

    module = build_module(program.model)
    x = jax.ShapeDtypeStruct((1, *program.model.input_shape), jnp.float32)
    params = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x), x)["params"]
    state = jax.eval_shape(build_optimizer(program).init, params)
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(state))
