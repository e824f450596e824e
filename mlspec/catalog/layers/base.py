"""What every layer is: a typed catalogue entry with its shape functions and its build.

An entry declares its arguments as fields, states its output shape and parameter count as
pure functions of the input shape (per example, without the batch axis), and builds its
flax module in `build`, which receives `flax.linen` from the compiler so that the catalogue
never imports jax. A field that may differ between the members of one compiled program is
marked `Traced()` (see mlspec.catalog.traced); `build` then reads it as always.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import PositiveInt

from mlspec.catalog.registry import Entry, Registry

Shape = tuple[int, ...]
IntOrList = PositiveInt | tuple[PositiveInt, ...]

# Axes an array may have (NumPy's limit, which the run's arrays pass through), the batch
# axis included.
MAX_RANK = 64


class ShapeError(ValueError):
    """A layer cannot take its input shape; the resolver reports it at the layer."""


@dataclass(frozen=True)
class BuildContext:
    """What a layer needs to build itself: `flax.linen`, the mode, and how to build a body
    (`stack(layers, name=None)`, a callable of the activations)."""

    nn: Any
    train: bool
    stack: Callable[..., Any]


class Layer(Entry):
    """A layer of the catalogue (the registry is assembled in mlspec.catalog.layers)."""

    composite: ClassVar[bool] = False
    """Has a body of layers (`repeat(3) { ... }`), in its field `body`."""
    train_dependent: ClassVar[bool] = False
    """Behaves differently in training and evaluation (dropout, batch_norm)."""
    elementwise: ClassVar[bool] = False
    """A function of each value on its own, so the same on any layout of the activations
    (relu; not softmax, over an axis, nor dropout, whose mask is drawn by shape). The
    compiler's layout pass may run such layers on transposed activations."""

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def param_count(self, shape: Shape) -> int:
        return 0

    def build(self, ctx: BuildContext) -> Callable[[Any], Any]:
        """The layer as a function of the activations, built in the compiler's module.

        The function of a layer that ignores padded positions (attention, lstm, gru,
        bidirectional, the global pools) also takes `mask=`: the [batch, time] booleans
        of the positions that hold values, for typed text's padding; until the compiler
        follows a mask through the model (LANGUAGE.md, "More layers (v2)"), it is given
        none, and every position counts."""
        raise NotImplementedError


def within_rank(shape: Shape, layer: str) -> Shape:
    if len(shape) + 1 > MAX_RANK:
        raise ShapeError(f"{layer} would give arrays of {len(shape) + 1} axes (with the "
                         f"batch axis); an array has at most {MAX_RANK}")
    return shape


def needs_sequence(shape: Shape, layer: str) -> tuple[int, int]:
    """The (time, features) of a [time, features] input."""
    if len(shape) != 2:
        raise ShapeError(f"{layer} needs [time, features] input; this input is {list(shape)}")
    return shape[0], shape[1]


LAYERS: Registry[type[Layer]] = Registry("layer")
"""Every layer by name; filled from the family modules by the package (`FAMILIES`)."""
AnyLayer = Annotated[Layer, LAYERS.any_kind()]
"""A layer of any registered kind, read back from JSON by its `kind`."""
