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

from typing import Literal

from pydantic import Field, PositiveInt

from mlspec.catalog.layers import AnyLayer
from mlspec.catalog.layers.graph import Graph
from mlspec.semantics.data import DataSection
from mlspec.semantics.train import TrainSection
from mlspec.syntax import ir


class ModelInput(ir.Node):
    """A named input of a graph model: its shape per example, and for integer ids
    (`tokens`, `category`) their vocabulary."""

    name: str
    shape: tuple[int, ...]
    dtype: Literal["float32", "int32"] = "float32"
    vocab: PositiveInt | None = None


class ModelProgram(ir.Node):
    """The model: a v1 chain (`layers`, from `input_shape` to `output_shape`), or a graph
    (`graph`, over `inputs`, with `layers` empty). A graph with one input and one output
    has their shapes in `input_shape` and `output_shape` too, as a chain has (what the
    trainer and the run's tools read); with several, those are None."""

    name: str
    input_shape: tuple[int, ...] | None
    layers: tuple[AnyLayer, ...] = ()
    output_shape: tuple[int, ...] | None
    inputs: tuple[ModelInput, ...] = ()
    """A graph's inputs, in its order; empty for a chain."""
    graph: Graph | None = None
    output_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """A graph's outputs with their shapes, in its order; empty for a chain."""

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {i.name: i.shape for i in self.inputs}


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
