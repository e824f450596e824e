"""The typed program: a spec after resolution, with every name bound to its catalogue
entry, every default filled in and every shape known. It is what the compiler reads and
what `mlspec export --program` prints.

It is plain data and reads back from its JSON: layers, losses and sources are
discriminated unions on `kind` over what the catalogue registers (`Registry.any_kind`),
so `Program.model_validate_json(program.model_dump_json()) == program`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from mlspec.catalog.layers import AnyLayer
from mlspec.catalog.losses import LOSSES, Loss
from mlspec.catalog.optimizers import OptaxCall
from mlspec.catalog.registry import Entry
from mlspec.catalog.signature import MetricPath, Symbol
from mlspec.catalog.sources import SOURCES, DataInfo, Source
from mlspec.catalog.traced import Traced
from mlspec.syntax import ir

AnySource = Annotated[Source, SOURCES.any_kind()]
AnyLoss = Annotated[Loss, LOSSES.any_kind()]


class ModelProgram(ir.Node):
    name: str
    input_shape: tuple[int, ...]
    layers: tuple[AnyLayer, ...]
    output_shape: tuple[int, ...]


class DataProgram(ir.Node):
    """Named splits (`train`, `valid`, `test`) or one `source` split in place."""

    train: AnySource | None = None
    valid: AnySource | None = None
    test: AnySource | None = None
    source: AnySource | None = None
    valid_size: float | int | None = None
    test_size: float | int | None = None
    split_seed: NonNegativeInt = 0
    standardize: bool = False
    info: DataInfo
    split_rows: dict[str, int] = {}
    """Rows of each split, where its source knows them (all the catalogue's do)."""
    folder: str = "."
    """Where relative paths resolve: the spec file's folder."""

    @property
    def splits(self) -> tuple[str, ...]:
        if self.source is not None:
            return ("train",) + (("valid",) if self.valid_size else ()) \
                + (("test",) if self.test_size else ())
        return tuple(s for s in ("train", "valid", "test") if getattr(self, s) is not None)


def size_rows(size: float | int | None, rows: int) -> int:
    """Rows that a `valid` or `test` size takes of a source's `rows`: a fraction rounded,
    a count as it is; `check` and `run` split by this one rule."""
    if not size:
        return 0
    return int(round(size * rows)) if isinstance(size, float) else int(size)


class LossTerm(ir.Node):
    weight: Annotated[float, Traced(saved_as="loss_weights")] = 1.0
    loss: AnyLoss


class EarlyStop(Entry):
    """Stop when `metric` has not improved for `patience` evaluations; with
    `restore_best`, the run ends with the parameters of its best evaluation."""

    kind: Literal["early_stop"] = "early_stop"
    metric: MetricPath = "valid.loss"
    patience: PositiveInt = 100
    mode: Symbol[Literal["min", "max"]] = "min"
    restore_best: bool = True


class TrainProgram(Entry):
    """The `train` section with its defaults; field names are the setting names."""

    kind: Literal["train"] = "train"
    loss: tuple[LossTerm, ...]
    optimizer: OptaxCall
    steps: PositiveInt | None = None
    epochs: PositiveInt | None = None
    batch: PositiveInt | None = None
    seed: NonNegativeInt = 0
    seeds: PositiveInt = 1
    eval_every: PositiveInt = 1
    metrics: tuple[str, ...] = ()
    clip_by_global_norm: PositiveFloat | None = None
    early_stop: EarlyStop | None = None
    devices: PositiveInt | Symbol[Literal["all"]] = 1

    @property
    def data_loss(self) -> Loss:
        """The first term that is not a regulariser: it defines the point predictions."""
        return next(t.loss for t in self.loss if not t.loss.regulariser)


class Program(ir.Node):
    """A validated spec, ready to compile."""

    model: ModelProgram
    data: DataProgram | None = None
    train: TrainProgram | None = None
    spec: ir.Spec = Field(repr=False)
    """The spec as written, with overrides applied (in JSON too, so that a program read
    back can be trained into a run folder; structure keys leave it out)."""

    @property
    def name(self) -> str:
        return self.model.name
