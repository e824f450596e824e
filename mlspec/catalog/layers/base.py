"""What every layer is: a typed catalogue entry with its shape functions and its build.

An entry declares its arguments as fields, states its output shape and parameter count as
pure functions of the input shape (per example, without the batch axis), and builds its
flax module in `build`, which receives `flax.linen` from the compiler so that the catalogue
never imports jax. A field that may differ between the members of one compiled program is
marked `Traced()` (see mlspec.catalog.traced); `build` then reads it as always.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    keeps_mask: ClassVar[bool] = False
    """Acts on each step of a sequence on its own and keeps the time axis (embedding,
    dense, relu, attention), so the padded positions of its output are its input's: the
    mask of a text input's padding (LANGUAGE.md, "More layers (v2)") holds after it. Any
    other layer ends the mask."""
    over_last_axis: ClassVar[bool] = False
    """Acts over the last axis (dense, softmax, layer_norm): per step only where the time
    axis is not the last one, so on the token ids themselves ([time]) it ends the mask."""
    uses_mask: ClassVar[bool] = False
    """Its built function takes `mask=` (see `build`): it ignores padded positions
    (attention, the recurrent layers, the global pools), or passes the mask on to its
    body (composites)."""

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def param_count(self, shape: Shape) -> int:
        return 0

    def mask_after(self, shape: Shape) -> bool:
        """Whether the mask of the positions of an input of this shape (per example, the
        time axis first) holds for this layer's output (see `keeps_mask`)."""
        return self.keeps_mask and not (self.over_last_axis and len(shape) < 2)

    def build(self, ctx: BuildContext) -> Callable[[Any], Any]:
        """The layer as a function of the activations, built in the compiler's module.

        The function of a layer that `uses_mask` also takes `mask=`: the [batch, time]
        booleans of the positions that hold values (padding at the end), where the
        compiler follows a text input's mask to it; without it every position counts."""
        raise NotImplementedError


def mask_through(layers: Sequence[Layer], shape: Shape) -> bool:
    """Whether the mask of an input of this shape holds after all of `layers` in a row."""
    for layer in layers:
        if not layer.mask_after(shape):
            return False
        shape = layer.output_shape(shape)
    return True


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
