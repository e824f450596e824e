"""The typed program: a spec after resolution, with every name bound to its catalogue
entry, every default filled in and every shape known. It is what the compiler reads and
what `mlspec export --program` prints. Its sections are their own modules' models
(`mlspec.semantics.data`, `mlspec.semantics.train`).

It is plain data and reads back from its JSON: layers, losses and sources are
discriminated unions on `kind` over what the catalogue registers (`Registry.any_kind`),
and the data section is one on its form, so
`Program.model_validate_json(program.model_dump_json()) == program`.
"""

from __future__ import annotations

from pydantic import Field

from mlspec.catalog.layers import AnyLayer
from mlspec.semantics.data import DataSection
from mlspec.semantics.train import TrainSection
from mlspec.syntax import ir


class ModelProgram(ir.Node):
    name: str
    input_shape: tuple[int, ...]
    layers: tuple[AnyLayer, ...]
    output_shape: tuple[int, ...]


class Program(ir.Node):
    """A validated spec, ready to compile."""

    model: ModelProgram
    data: DataSection | None = None
    train: TrainSection | None = None
    spec: ir.Spec = Field(repr=False)
    """The spec as written, with overrides applied (in JSON too, so that a program read
    back can be trained into a run folder; structure keys leave it out)."""

    @property
    def name(self) -> str:
        return self.model.name
