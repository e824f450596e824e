"""The typed program: a spec after resolution, with every name bound to its catalogue
entry, every default filled in and every shape known. It is what the compiler reads and
what `mlspec export --json` prints. Its sections are their own modules' models
(`mlspec.semantics.data`, `mlspec.semantics.train`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SerializeAsAny

from mlspec.catalog.layers import Composite, Layer
from mlspec.semantics.data import DataSection
from mlspec.semantics.train import TrainSection
from mlspec.syntax import ir


class BlockUse(Composite):
    """A use of a user-defined block: its layers, kept together under the block's name."""

    kind: Literal["block"] = "block"
    name: str

    def build(self, ctx):
        return ctx.stack(self.body, name=self.name)


class ModelProgram(ir.Node):
    name: str
    input_shape: tuple[int, ...]
    layers: tuple[SerializeAsAny[Layer], ...]
    output_shape: tuple[int, ...]


class Program(ir.Node):
    """A validated spec, ready to compile."""

    model: ModelProgram
    data: DataSection | None = None
    train: TrainSection | None = None
    spec: ir.Spec = Field(exclude=True, repr=False)
    """The spec as written, with overrides applied."""

    @property
    def name(self) -> str:
        return self.model.name
