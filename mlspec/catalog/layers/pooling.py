"""Pooling over the spatial axes: a window's maximum or average."""

from __future__ import annotations

import math
from typing import Literal

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
