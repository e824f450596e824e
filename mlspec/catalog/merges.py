"""The merge catalogue: calls on values of a graph model (`concat(a, b, axis=-1)`,
`add(a, b)`), each a thin adapter over the jax.numpy function of its name.

An entry declares its arguments (those after the values) as fields, its output shape as
a pure function of its inputs' shapes (per example, without the batch axis), and applies
itself in `apply`, which receives `jax.numpy` from the compiler so that the catalogue
never imports jax. Adding a merge is one class here and a row in tests/test_graph.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from mlspec.catalog.registry import Entry, Registry

Shape = tuple[int, ...]


def _shape_error(message: str) -> ValueError:
    """The layers' ShapeError, which the resolver reports at the merge. (Read when raised:
    the layers' package reads this module as it loads, through its graphs.)"""
    from mlspec.catalog.layers.base import ShapeError as LayerShapeError

    return LayerShapeError(message)


def shape_text(shape: Shape) -> str:
    return str(list(shape))


class Merge(Entry):
    """A merge of several values of equal shapes into one of that shape."""

    def output_shape(self, shapes: Sequence[Shape], names: Sequence[str] = ()) -> Shape:
        """The merged shape; `names` (the values', for messages) default to their order."""
        _at_least_two(self, shapes)
        first = shapes[0]
        for i, shape in enumerate(shapes[1:], 1):
            if shape != first:
                raise _shape_error(f"{self.kind} needs values of equal shapes: "
                                 f"{_named(names, 0)} is {shape_text(first)} but "
                                 f"{_named(names, i)} is {shape_text(shape)}")
        return first

    def apply(self, jnp: Any, values: Sequence[Any]) -> Any:
        raise NotImplementedError


def _named(names: Sequence[str], i: int) -> str:
    return f"'{names[i]}'" if i < len(names) else f"value {i + 1}"


def _at_least_two(merge: Merge, shapes: Sequence[Shape]) -> None:
    if len(shapes) < 2:
        raise _shape_error(f"{merge.kind} merges two or more values; it is given "
                         f"{len(shapes)}")


class Concat(Merge):
    """The values side by side along `axis` (`jax.numpy.concatenate`); their shapes must
    be equal on every other axis. `axis` counts the axes of an example (the batch axis is
    not one): -1 is the last."""

    kind: Literal["concat"] = "concat"
    axis: int = -1

    def output_shape(self, shapes, names=()):
        _at_least_two(self, shapes)
        first = shapes[0]
        rank = len(first)
        if not -rank <= self.axis < rank:
            raise _shape_error(f"concat axis {self.axis} is not an axis of {shape_text(first)}"
                             + (" (a value with no axes cannot be concatenated)" if not rank
                                else f" (axes -{rank} to {rank - 1})"))
        axis = self.axis % rank
        total = first[axis]
        for i, shape in enumerate(shapes[1:], 1):
            if len(shape) != rank or shape[:axis] + shape[axis + 1:] != \
                    first[:axis] + first[axis + 1:]:
                raise _shape_error(f"concat along axis {self.axis} needs shapes equal but on "
                                 f"that axis: {_named(names, 0)} is {shape_text(first)} but "
                                 f"{_named(names, i)} is {shape_text(shape)}")
            total += shape[axis]
        return (*first[:axis], total, *first[axis + 1:])

    def apply(self, jnp, values):
        axis = self.axis if self.axis < 0 else self.axis + 1  # past the batch axis
        return jnp.concatenate(list(values), axis=axis)


class Add(Merge):
    """The sum of the values, elementwise."""

    kind: Literal["add"] = "add"

    def apply(self, jnp, values):
        out = values[0]
        for value in values[1:]:
            out = out + value
        return out


class Multiply(Merge):
    """The product of the values, elementwise."""

    kind: Literal["multiply"] = "multiply"

    def apply(self, jnp, values):
        out = values[0]
        for value in values[1:]:
            out = out * value
        return out


class Average(Merge):
    """The mean of the values, elementwise."""

    kind: Literal["average"] = "average"

    def apply(self, jnp, values):
        return Add().apply(jnp, values) / len(values)


class Maximum(Merge):
    """The largest of the values, elementwise (`jax.numpy.maximum`)."""

    kind: Literal["maximum"] = "maximum"

    def apply(self, jnp, values):
        out = values[0]
        for value in values[1:]:
            out = jnp.maximum(out, value)
        return out


MERGES: Registry[type[Merge]] = Registry("merge")
"""Every merge by name."""
for _cls in (Concat, Add, Multiply, Average, Maximum):
    MERGES.register(_cls)
del _cls

AnyMerge = Annotated[Merge, MERGES.any_kind()]
"""A merge of any registered kind, read back from JSON by its `kind`."""
