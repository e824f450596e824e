"""Convolutions, and the window geometry that convolutions and pooling share."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import PositiveInt

from mlspec.catalog.layers.base import IntOrList, Layer, Shape, ShapeError


def spatial(value: int | tuple[int, ...], rank: int, what: str) -> tuple[int, ...]:
    """A window argument (`kernel`, `stride`) for `rank` spatial axes: one size for all,
    or one per axis."""
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise ShapeError(f"{what} has {len(value)} entries but the input has {rank} "
                         f"spatial axes")
    return tuple(value)


def needs_spatial(shape: Shape, layer: str) -> int:
    """The number of spatial axes of an input (spatial axes, then channels)."""
    if len(shape) < 2:
        raise ShapeError(f"{layer} needs an input with spatial axes and channels, "
                         f"got shape {list(shape)}")
    return len(shape) - 1


def window_out(spatial_shape: Shape, window: Shape, stride: Shape, padding: str) -> Shape:
    """The spatial shape after sliding `window` by `stride` (flax's SAME or VALID)."""
    out = []
    for n, k, s in zip(spatial_shape, window, stride):
        size = -(-n // s) if padding == "SAME" else -(-(n - k + 1) // s)
        if size < 1:
            raise ShapeError(f"window {list(window)} is larger than the input's spatial "
                             f"shape {list(spatial_shape)}")
        out.append(size)
    return tuple(out)


class Conv(Layer):
    """A convolution (`flax.linen.Conv`); the spatial rank comes from the input."""

    kind: Literal["conv"] = "conv"
    features: PositiveInt
    kernel: IntOrList
    stride: IntOrList = 1
    padding: Literal["SAME", "VALID"] = "SAME"

    def output_shape(self, shape):
        rank = needs_spatial(shape, "conv")
        kernel = spatial(self.kernel, rank, "kernel")
        stride = spatial(self.stride, rank, "stride")
        return (*window_out(shape[:-1], kernel, stride, self.padding), self.features)

    def param_count(self, shape):
        rank = len(shape) - 1
        return math.prod(spatial(self.kernel, rank, "kernel")) * shape[-1] * self.features \
            + self.features

    def build(self, ctx):
        def apply(x):  # the spatial rank is the input's, known when it arrives
            rank = x.ndim - 2
            return ctx.nn.Conv(
                self.features, kernel_size=spatial(self.kernel, rank, "kernel"),
                strides=spatial(self.stride, rank, "stride"), padding=self.padding,
            )(x)

        return apply


class ConvTranspose(Conv):
    """A transposed convolution (`flax.linen.ConvTranspose`); with `padding="SAME"` each
    spatial size times `stride`. The spatial rank comes from the input."""

    kind: Literal["conv_transpose"] = "conv_transpose"

    def output_shape(self, shape):
        rank = needs_spatial(shape, "conv_transpose")
        kernel = spatial(self.kernel, rank, "kernel")
        stride = spatial(self.stride, rank, "stride")
        return (*(n * s if self.padding == "SAME" else n * s + max(k - s, 0)
                  for n, k, s in zip(shape[:-1], kernel, stride)), self.features)

    def build(self, ctx):
        def apply(x):
            rank = x.ndim - 2
            return ctx.nn.ConvTranspose(
                self.features, kernel_size=spatial(self.kernel, rank, "kernel"),
                strides=spatial(self.stride, rank, "stride"), padding=self.padding,
            )(x)

        return apply
