"""Sizes of a compiled program's pieces, from abstract shapes (nothing is allocated)."""

from __future__ import annotations

import jax

from mlspec.compiler.graph import example_input
from mlspec.compiler.model import build_module
from mlspec.compiler.trainer import build_optimizer


def optimizer_state_bytes(program) -> int:
    """Bytes of the optax state for the model's parameters, from abstract shapes (optax
    decides what it keeps, so this asks it, through jax.eval_shape)."""
    module = build_module(program.model)
    x = example_input(program.model)
    params = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x), x)["params"]
    state = jax.eval_shape(build_optimizer(program).init, params)
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(state))
