"""Layers over the positions of a sequence [time, features]: self-attention and learned
position embeddings.

The time axis may hold padding: the built `attention` takes `mask=`, the [batch, time]
booleans of the positions that hold values, and attends to those only; without it to
every position (or every earlier one, when causal). Both keep the mask.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt

from mlspec.catalog.layers.base import Layer, ShapeError, needs_sequence


class Attention(Layer):
    """Multi-head self-attention over the time axis
    (`flax.linen.MultiHeadDotProductAttention`); `causal=true` lets each step see only
    itself and earlier ones. The output has the input's width; `dropout` drops attention
    weights in training."""

    kind: Literal["attention"] = "attention"
    keeps_mask: ClassVar[bool] = True
    uses_mask: ClassVar[bool] = True
    heads: PositiveInt
    qkv_features: PositiveInt | None = None
    """The width of the queries, keys and values, all heads together (the input's width
    unless given)."""
    causal: bool = False
    dropout: NonNegativeFloat = Field(default=0.0, lt=1)

    @property
    def train_dependent(self) -> bool:  # type: ignore[override]
        return self.dropout > 0

    def _width(self, shape) -> int:
        _, features = needs_sequence(shape, "attention")
        width = self.qkv_features or features
        if width % self.heads:
            raise ShapeError(f"attention's qkv_features ({width}) must be divisible by its "
                             f"heads ({self.heads})")
        return width

    def output_shape(self, shape):
        self._width(shape)
        return shape

    def param_count(self, shape):
        width, features = self._width(shape), shape[-1]
        # query, key and value: a kernel and a bias each; out: back to the input's width
        return 3 * (features * width + width) + width * features + features

    def build(self, ctx):
        nn = ctx.nn
        attend = nn.MultiHeadDotProductAttention(
            num_heads=self.heads, qkv_features=self.qkv_features, dropout_rate=self.dropout,
            deterministic=not ctx.train)

        def apply(x, mask=None):
            causal = nn.make_causal_mask(x[..., 0]) if self.causal else None
            padding = None if mask is None else nn.make_attention_mask(mask, mask)
            return attend(x, mask=nn.combine_masks(causal, padding))

        return apply


class PositionEmbedding(Layer):
    """A learned vector per position added to [time, features]; `max_len` positions, the
    input's time unless given. The vectors are a `flax.linen.Embed` of the positions."""

    kind: Literal["position_embedding"] = "position_embedding"
    keeps_mask: ClassVar[bool] = True
    max_len: PositiveInt | None = None

    def _positions(self, shape) -> int:
        time, _ = needs_sequence(shape, "position_embedding")
        if self.max_len is not None and time > self.max_len:
            raise ShapeError(f"position_embedding holds {self.max_len} positions "
                             f"(max_len) but this input has {time}: {list(shape)}")
        return self.max_len or time

    def output_shape(self, shape):
        self._positions(shape)
        return shape

    def param_count(self, shape):
        return self._positions(shape) * shape[-1]

    def build(self, ctx):
        def apply(x):
            import jax.numpy as jnp

            time, features = x.shape[1:]
            embed = ctx.nn.Embed(self.max_len or time, features)
            return x + embed(jnp.arange(time))[None]

        return apply
