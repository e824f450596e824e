"""What every metric of the catalogue builds on: the `Metric` record, its registry and the
inputs metrics are computed from. The metrics themselves are in mlspec.catalog.metrics
(the first version's and the training's) and mlspec.catalog.class_metrics (the rest);
importing mlspec.catalog.metrics registers them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mlspec.catalog.registry import Entry, Registry
from mlspec.syntax import ir

Needs = Literal["any", "class", "binary", "real"]
Scope = Literal["split", "training", "report"]


@dataclass(frozen=True)
class SplitInputs:
    """What split metrics are computed from (jax arrays)."""

    out: Any
    y: Any
    pred: Any
    loss: Any
    data_loss: Any = None
    """The run's data loss, which turns outputs into scores and probabilities."""
    classes: int | None = None
    """The data's number of classes (None for real targets)."""


@dataclass(frozen=True)
class TrainingInputs:
    params: Any
    grads: Any


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Any], Any]
    higher_is_better: bool | None
    """True when a higher value is better (accuracy), False when a lower one is (loss),
    None when neither is (pred_mean)."""
    needs: Needs = "any"
    scope: Scope = "split"
    doc: str = ""
    arguments: type[Entry] | None = None
    """The metric's arguments as an entry (`top_k_accuracy(k=5)`), whose `check(info)`
    says why they do not fit the data; None for a metric that takes none."""
    needs_probabilities: bool = False
    """Whether the loss must give class probabilities (`log_loss`), not only scores."""


    def compute(self, inputs, arguments: tuple[tuple[str, Any], ...] = ()):
        """The metric's value: its function of `inputs`, given its arguments (those of the
        spec, the others their defaults)."""
        if self.arguments is None:
            return self.fn(inputs)
        entry = self.arguments(**dict(arguments))
        return self.fn(inputs, **{n: getattr(entry, n) for n in entry.argument_names()})


class MetricUse(ir.Node):
    """A metric as a spec lists it: `accuracy`, or a call `top_k_accuracy(k=3)`, with the
    arguments that differ from their defaults."""

    kind: Literal["metric_use"] = "metric_use"
    name: str
    arguments: tuple[tuple[str, int | float], ...] = ()
    output: str | None = None
    """The output it measures (`price.rmse`), in a model of several outputs."""

    def as_expr(self) -> ir.Expr:
        """The metric in spec syntax, as `check --resolved` prints it."""
        name = self.name if self.output is None else f"{self.output}.{self.name}"
        if not self.arguments:
            return ir.Name(name=name)
        return ir.Call.of(name, **dict(self.arguments))


METRICS: Registry[Metric] = Registry("metric")


def metric(needs: Needs = "any", scope: Scope = "split", *, higher_is_better: bool | None,
           **options: Any):
    """Registers a metric function under its name; every metric states its direction.
    `options` are Metric's other fields (`arguments`, `needs_probabilities`)."""
    def register(fn):
        METRICS.add(fn.__name__, Metric(fn.__name__, fn, higher_is_better, needs, scope,
                                        fn.__doc__ or "", **options))
        return fn

    return register


def higher_is_better(column: str) -> bool | None:
    """The direction of a history column (`valid.accuracy`, `train.loss`, `grad_norm`):
    its metric's; None for a metric without one and for a column that names no metric."""
    found = METRICS.get(column.rpartition(".")[2])
    return None if found is None else found.higher_is_better


def fits(needs: Needs, info) -> bool:
    """Whether data of `info` has the targets that `needs` asks for."""
    return (needs == "any" or (needs == "class" and info.target == "class")
            or (needs == "binary" and info.binary) or (needs == "real" and info.target == "real"))

