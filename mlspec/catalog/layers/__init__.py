"""The layer catalogue: one small class per layer, a thin adapter over flax.linen, in one
file per family. The registry is assembled from the families' entries, in this order:

    core            dense, embedding, one_hot, the activations
    conv            conv, conv_transpose
    pooling         max_pool, avg_pool, upsample, global_avg_pool, global_max_pool
    normalization   batch_norm, layer_norm, group_norm, rms_norm
    regularization  dropout
    recurrent       lstm, gru, bidirectional
    attention       attention, position_embedding
    structure       flatten, reshape, repeat, residual

Adding a layer is one class in its family's file (a subclass of `Layer` with a `kind`),
and a row in tests/test_layers.py (tests/test_layers_v2.py for the v2 layers); a new
family is a module here and an entry in `FAMILIES`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal

from mlspec.catalog.layers import (
    attention,
    conv,
    core,
    normalization,
    pooling,
    recurrent,
    regularization,
    structure,
)
from mlspec.catalog.layers.base import LAYERS as LAYERS
from mlspec.catalog.layers.base import MAX_RANK as MAX_RANK
from mlspec.catalog.layers.base import AnyLayer as AnyLayer
from mlspec.catalog.layers.base import BuildContext as BuildContext
from mlspec.catalog.layers.base import Layer as Layer
from mlspec.catalog.layers.base import Shape as Shape
from mlspec.catalog.layers.base import ShapeError as ShapeError
from mlspec.catalog.layers.graph import GraphBlockUse, SharedUse
from mlspec.catalog.layers.structure import Composite as Composite
from mlspec.catalog.layers.structure import Repeat as Repeat

FAMILIES: tuple[ModuleType, ...] = (core, conv, pooling, normalization, regularization,
                                    recurrent, attention, structure)


def entries(family: ModuleType) -> list[type[Layer]]:
    """The layers a family's module defines, in their order there: its subclasses of
    Layer that have a `kind` of their own (not bases such as `Activation`)."""
    return [cls for cls in vars(family).values()
            if isinstance(cls, type) and issubclass(cls, Layer)
            and cls.__module__ == family.__name__
            and isinstance(getattr(cls.model_fields.get("kind"), "default", None), str)]


for _family in FAMILIES:
    for _entry in entries(_family):
        LAYERS.register(_entry)
del _family, _entry


@LAYERS.add_kind
class BlockUse(Composite):
    """A use of a user-defined block: its layers, kept together under the block's name
    (a kind of the typed program that no spec names)."""

    kind: Literal["block"] = "block"
    name: str

    def build(self, ctx):
        return ctx.stack(self.body, name=self.name)


# A graph's kinds (mlspec.catalog.layers.graph): no spec names them either.
LAYERS.add_kind(SharedUse)
LAYERS.add_kind(GraphBlockUse)
