"""Regularising layers: dropout."""

from __future__ import annotations

import functools
from typing import Annotated, ClassVar, Literal

from pydantic import Field, NonNegativeFloat

from mlspec.catalog.layers.base import Layer
from mlspec.catalog.traced import Traced


class Dropout(Layer):
    """Zeroes a share `rate` of activations in training only (`flax.linen.Dropout`)."""

    kind: Literal["dropout"] = "dropout"
    train_dependent: ClassVar[bool] = True
    keeps_mask: ClassVar[bool] = True
    rate: Annotated[NonNegativeFloat, Traced(fed="keep")] = Field(lt=1)

    def keep(self) -> float:
        """The keep probability `1 - rate`, what a program is fed for `rate`: worked out
        here in double precision, so that a program's mask and scaling are those of
        flax's constant `1 - rate` (a float32 `1 - rate` on the device differs in the
        last bit for many rates)."""
        return 1.0 - self.rate

    def build(self, ctx):
        return dropout_module()(self.keep(), deterministic=not ctx.train)


@functools.cache
def dropout_module():
    """`nn.Dropout` with its keep probability given (a constant or a traced value): the
    same key, mask and scaling, so the same results. Named Dropout so that flax names its
    instances, and derives their keys, as it does nn.Dropout's. Made on first use, as
    the catalogue imports no jax until a spec is compiled."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class Dropout(nn.Module):
        keep: float | jax.Array
        deterministic: bool = False

        @nn.compact
        def __call__(self, x):
            if self.deterministic:
                return x
            mask = jax.random.bernoulli(self.make_rng("dropout"), p=self.keep, shape=x.shape)
            return jax.lax.select(mask, x / self.keep, jnp.zeros_like(x))

    return Dropout
