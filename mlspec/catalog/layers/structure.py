"""Layers that arrange others or the axes: flatten, reshape, and the composites with a
body of layers (repeat, residual)."""

from __future__ import annotations

import functools
import math
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from mlspec.catalog.layers.base import (
    AnyLayer,
    Layer,
    Shape,
    ShapeError,
    mask_through,
    within_rank,
)


class Flatten(Layer):
    """All axes but the batch axis into one."""

    kind: Literal["flatten"] = "flatten"

    def output_shape(self, shape):
        return (math.prod(shape),)

    def build(self, ctx):
        return lambda x: x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """Each example to `shape`, e.g. `reshape([8, 8, 1])`."""

    kind: Literal["reshape"] = "reshape"
    shape: tuple[PositiveInt, ...]

    def output_shape(self, shape):
        within_rank(self.shape, "reshape")
        if math.prod(shape) != math.prod(self.shape):
            raise ShapeError(f"cannot reshape {list(shape)} ({math.prod(shape)} values) to "
                             f"{list(self.shape)} ({math.prod(self.shape)} values)")
        return tuple(self.shape)

    def build(self, ctx):
        return lambda x: x.reshape(x.shape[0], *self.shape)


class Composite(Layer):
    """A layer with a body of layers: `repeat(3) { ... }`, `residual { ... }`. Its built
    function passes a mask on to its body (`ctx.stack`'s function takes `mask=`); the
    mask holds after it where it holds through its body."""

    composite: ClassVar[bool] = True
    uses_mask: ClassVar[bool] = True
    body: tuple[AnyLayer, ...] = ()

    @classmethod
    def argument_names(cls) -> list[str]:
        return [n for n in super().argument_names() if n != "body"]

    def output_shape(self, shape):
        return _body_output(self.body, shape)

    def param_count(self, shape):
        return _body_params(self.body, shape)

    def mask_after(self, shape):
        return mask_through(self.body, shape)


# A body's shape and count are pure functions of its layers and input shape: they are
# kept, as nested composites ask for them again at every level (repeat asks its body
# once per copy's input), which without this grows as 2^depth.
@functools.lru_cache(maxsize=4096)
def _body_output(body: tuple[Layer, ...], shape: Shape) -> Shape:
    for layer in body:
        shape = layer.output_shape(shape)
    return shape


@functools.lru_cache(maxsize=4096)
def _body_params(body: tuple[Layer, ...], shape: Shape) -> int:
    total = 0
    for layer in body:
        total += layer.param_count(shape)
        shape = layer.output_shape(shape)
    return total


class Repeat(Composite):
    """The body `times` times in a row, each copy with its own weights."""

    kind: Literal["repeat"] = "repeat"
    times: PositiveInt = Field(le=10_000)

    def copy_inputs(self, shape: Shape) -> list[tuple[Shape, int]]:
        """The input shape of each copy, with how many copies in a row see it: once a copy
        keeps its input's shape, so do all the later ones (shape functions are pure), so
        nested repeats cost a few passes over the body rather than `times` each."""
        out = []
        for done in range(self.times):
            after = super().output_shape(shape)
            if after == shape:
                return out + [(shape, self.times - done)]
            out.append((shape, 1))
            shape = after
        return out

    def output_shape(self, shape):
        last, _ = self.copy_inputs(shape)[-1]
        return super().output_shape(last)

    def param_count(self, shape):
        return sum(count * super(Repeat, self).param_count(seen)
                   for seen, count in self.copy_inputs(shape))

    def mask_after(self, shape):
        return all(mask_through(self.body, seen) for seen, _ in self.copy_inputs(shape))

    def build(self, ctx):
        copies = [ctx.stack(self.body) for _ in range(self.times)]

        def apply(x, mask=None):
            for copy in copies:
                if mask is None:
                    x = copy(x)
                else:  # each copy sees the mask while the copies before it keep it
                    kept = mask_through(self.body, x.shape[1:])
                    x = copy(x, mask=mask)
                    mask = mask if kept else None
            return x

        return apply


class Residual(Composite):
    """`x + body(x)`; the body must keep the shape."""

    kind: Literal["residual"] = "residual"

    def output_shape(self, shape):
        out = super().output_shape(shape)
        if out != shape:
            raise ShapeError(f"the residual body changes the shape from {list(shape)} to "
                             f"{list(out)}; it must keep it")
        return shape

    def build(self, ctx):
        body = ctx.stack(self.body)
        return lambda x, mask=None: x + (body(x) if mask is None else body(x, mask=mask))
