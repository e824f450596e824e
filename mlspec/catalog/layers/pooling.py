"""Pooling over the spatial axes: a window's maximum or average."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from mlspec.catalog.layers.base import IntOrList, Layer
from mlspec.catalog.layers.conv import needs_spatial, spatial, window_out


class _Pool(Layer):
    window: IntOrList
    stride: IntOrList | None = None
    padding: Literal["SAME", "VALID"] = "VALID"

    def _geometry(self, rank: int):
        window = spatial(self.window, rank, "window")
        stride = window if self.stride is None else spatial(self.stride, rank, "stride")
        return window, stride

    def output_shape(self, shape):
        rank = needs_spatial(shape, self.kind)
        window, stride = self._geometry(rank)
        return (*window_out(shape[:-1], window, stride, self.padding), shape[-1])

    def build(self, ctx):
        def apply(x):
            window, stride = self._geometry(x.ndim - 2)
            return self.pool(ctx.nn, x, window, stride)

        return apply

    def pool(self, nn, x, window, stride):
        raise NotImplementedError


class MaxPool(_Pool):
    """Max pooling over the spatial axes (`flax.linen.max_pool`); `stride` is the
    window unless given."""

    kind: Literal["max_pool"] = "max_pool"

    def pool(self, nn, x, window, stride):
        return nn.max_pool(x, window, strides=stride, padding=self.padding)


class AvgPool(_Pool):
    """Average pooling over the spatial axes (`flax.linen.avg_pool`); `stride` is the
    window unless given."""

    kind: Literal["avg_pool"] = "avg_pool"

    def pool(self, nn, x, window, stride):
        import jax

        # flax's avg_pool: the window's sum over its size (padding counted). Its size is
        # divided here as a Python int (flax's np.prod, a NumPy integer, fails jax's
        # strict promotion); the same float32 values.
        total = nn.pool(x, 0.0, jax.lax.add, window, stride, self.padding)
        return total / math.prod(window)


class Upsample(Layer):
    """Nearest-neighbour upsampling: each spatial axis `factor` times as long (one
    factor, or one per axis). Each value is repeated `factor` times along the axis."""

    kind: Literal["upsample"] = "upsample"
    factor: IntOrList

    def output_shape(self, shape):
        factor = spatial(self.factor, needs_spatial(shape, "upsample"), "factor")
        return (*(n * f for n, f in zip(shape[:-1], factor)), shape[-1])

    def build(self, ctx):
        def apply(x):
            for axis, f in enumerate(spatial(self.factor, x.ndim - 2, "factor"), start=1):
                x = x.repeat(f, axis=axis)
            return x

        return apply


class _GlobalPool(Layer):
    """Over every axis but the batch and the last. The built layer takes `mask=`, the
    [batch, time] booleans of the positions of the first axis that hold values (a text
    input's), and pools those only; a row with none pools to zeros."""

    uses_mask: ClassVar[bool] = True

    def output_shape(self, shape):
        needs_spatial(shape, self.kind)
        return shape[-1:]

    def build(self, ctx):
        def apply(x, mask=None):
            axes = tuple(range(1, x.ndim - 1))
            if mask is None:
                return self.pool(x, axes)
            import jax.numpy as jnp

            # the mask over every pooled axis: [batch, time, 1, ..., 1] to x's shape
            mask = mask.reshape(mask.shape + (1,) * (x.ndim - 2))
            mask = jnp.broadcast_to(mask, x.shape[:-1] + (1,))
            return self.masked(jnp, x, mask, axes)

        return apply

    def pool(self, x, axes):
        raise NotImplementedError

    def masked(self, jnp, x, mask, axes):
        raise NotImplementedError


class GlobalAvgPool(_GlobalPool):
    """The mean over every axis but the batch and the last: [h, w, c] to [c]."""

    kind: Literal["global_avg_pool"] = "global_avg_pool"

    def pool(self, x, axes):
        return x.mean(axis=axes)

    def masked(self, jnp, x, mask, axes):
        weights = mask.astype(x.dtype)
        return (x * weights).sum(axis=axes) / jnp.maximum(weights.sum(axis=axes), 1)


class GlobalMaxPool(_GlobalPool):
    """The maximum over every axis but the batch and the last: [h, w, c] to [c]."""

    kind: Literal["global_max_pool"] = "global_max_pool"

    def pool(self, x, axes):
        return x.max(axis=axes)

    def masked(self, jnp, x, mask, axes):
        top = jnp.where(mask, x, -jnp.inf).max(axis=axes)
        return jnp.where(mask.any(axis=axes), top, 0)
