"""Pooling over the spatial axes: a window's maximum or average."""

from __future__ import annotations

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
        pool = getattr(ctx.nn, self.kind)

        def apply(x):
            window, stride = self._geometry(x.ndim - 2)
            return pool(x, window, strides=stride, padding=self.padding)

        return apply


class MaxPool(_Pool):
    """Max pooling over the spatial axes (`flax.linen.max_pool`); `stride` is the
    window unless given."""

    kind: Literal["max_pool"] = "max_pool"


class AvgPool(_Pool):
    """Average pooling over the spatial axes (`flax.linen.avg_pool`); `stride` is the
    window unless given."""

    kind: Literal["avg_pool"] = "avg_pool"
