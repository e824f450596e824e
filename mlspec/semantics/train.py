"""The train section (optimizer, loss, metrics, schedule, stopping) as a pydantic model,
and the task's fit with the data and the model's output."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlspec.catalog.losses import LOSSES, Loss
from mlspec.catalog.metrics import METRICS, MetricUse, fits, higher_is_better
from mlspec.catalog.optimizers import OptaxCall, optax_catalogue, resolve_optax
from mlspec.catalog.registry import Entry, build_entry, instantiate
from mlspec.catalog.signature import MetricPath, Names, Symbol, settle
from mlspec.catalog.sources import DataInfo
from mlspec.catalog.traced import Traced
from mlspec.semantics.scope import Scope
from mlspec.semantics.settings import (
    Catalogue,
    FromSpec,
    OneOf,
    SectionModel,
    validate_section,
)
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, SpecError, did_you_mean

AnyLoss = Annotated[Loss, LOSSES.any_kind()]
"""A loss of any kind, read back from a program's JSON by its `kind`."""


class LossTerm(ir.Node):
    weight: Annotated[float, Traced(saved_as="loss_weights")] = 1.0
    loss: AnyLoss
    output: str | None = None
    """The output it is for (`mse(price)`), in a model of several outputs."""


class EarlyStop(Entry):
    """Stop when `metric` has not improved for `patience` evaluations; with
    `restore_best`, the run ends with the parameters of its best evaluation."""

    kind: Literal["early_stop"] = "early_stop"
    metric: MetricPath = "valid.loss"
    patience: PositiveInt = 100
    mode: Symbol[Literal["min", "max"]] | None = None
    """`min` or `max`; by default the metric's direction (`max` for `valid.accuracy`).
    Always set once validated."""
    restore_best: bool = True

    @model_validator(mode="before")
    @classmethod
    def _mode_from_direction(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("mode") is not None:
            return data
        metric = data.get("metric", cls.model_fields["metric"].default)
        if not isinstance(metric, str):  # its own error says why
            return data
        higher = higher_is_better(metric)
        named = METRICS.get(metric.rpartition(".")[2])
        if higher is None and named is not None and named.scope != "report":
            raise PydanticCustomError(
                "mode", "'{metric}' has no better direction: give mode=min or mode=max",
                {"metric": metric})
        # a metric that is not recorded is reported by the task's check
        return {**data, "mode": "max" if higher else "min"}


def _names_a_loss(expr: ir.Expr) -> bool:
    """Whether `expr` names a loss anywhere (`mse`, `l2(0.1)`, `mse + l2`)."""
    if isinstance(expr, (ir.Call, ir.Name)):
        return expr.name in LOSSES
    if isinstance(expr, ir.BinOp):
        return _names_a_loss(expr.left) or _names_a_loss(expr.right)
    return isinstance(expr, ir.Neg) and _names_a_loss(expr.operand)


def _loss_terms(expr: ir.Expr, scope: Names, weight: float = 1.0
                ) -> list[tuple[float, ir.Call | ir.Name]]:
    if isinstance(expr, (ir.Call, ir.Name)):
        return [(weight, expr)]
    if isinstance(expr, ir.BinOp) and expr.op in "+-":
        right_weight = weight if expr.op == "+" else -weight
        return _loss_terms(expr.left, scope, weight) + _loss_terms(expr.right, scope,
                                                                   right_weight)
    if isinstance(expr, ir.BinOp) and expr.op == "*":
        if isinstance(expr.left, ir.Number):
            return _loss_terms(expr.right, scope, weight * expr.left.value)
        if isinstance(expr.right, ir.Number):
            return _loss_terms(expr.left, scope, weight * expr.right.value)
    if isinstance(expr, ir.BinOp) and expr.op == "/" and isinstance(expr.right, ir.Number):
        if expr.right.value == 0:
            raise SpecError.at(expr.span, "division by zero")
        return _loss_terms(expr.left, scope, weight / expr.right.value)
    if isinstance(expr, ir.Neg):
        return _loss_terms(expr.operand, scope, -weight)
    if isinstance(expr, ir.BinOp) and expr.op in "*/":
        # a term's weight that is no number holds a name that means nothing here
        # (`wd` in `mse + wd * l2`): that name's error, not the shape's
        for weight_side, term_side in ((expr.left, expr.right), (expr.right, expr.left)):
            if _names_a_loss(term_side) and not _names_a_loss(weight_side):
                settle(weight_side, float, scope)
    raise SpecError.at(expr.span, "a loss is a sum of weighted terms such as "
                                  "'softmax_cross_entropy + 1e-4 * l2'")


def _named_output(call: ir.Call | ir.Name, scope: Names) -> str | None:
    """The output a loss term names as its first argument (`mse(price)`): a bare name that
    no param or block argument binds."""
    if not isinstance(call, ir.Call) or not call.args or not isinstance(call.args[0], ir.Name):
        return None
    name = call.args[0].name
    bound = scope.evaluate(call.args[0])
    if scope.is_unknown(name) or not (isinstance(bound, ir.Name) and bound.name == name):
        return None
    return name


def loss_terms(value: ir.Expr, scope: Names) -> tuple[LossTerm, ...]:
    """`softmax_cross_entropy + 1e-4 * l2` -> its weighted terms, each bound in `scope`;
    `mse(price)` names the output the term is for."""
    terms = []
    for weight, call in _loss_terms(value, scope):
        if not math.isfinite(weight):
            raise SpecError.at(call.span, "the weight of this loss term is too large")
        output = _named_output(call, scope)
        try:
            loss = instantiate(LOSSES, call, scope)
            output = None
        except SpecError:
            if output is None:
                raise
            loss = instantiate(LOSSES, call.model_copy(update={"args": call.args[1:]}), scope)
        terms.append(LossTerm(weight=float(weight), loss=loss, output=output, span=call.span))
    if all(t.loss.regulariser for t in terms):
        raise SpecError.at(value.span, "the loss needs a data term (such as mse or "
                                       "softmax_cross_entropy), not only regularisers")
    return tuple(terms)


def optimizer_call(value: ir.Expr, scope: Names) -> OptaxCall:
    """`adam(learning_rate=1e-3)`, or an optimizer's bare name (`lbfgs`)."""
    if not isinstance(value, (ir.Call, ir.Name)):
        raise SpecError.at(value.span, "optimizer should be an optax optimizer call such as "
                                       "adam(learning_rate=1e-3)")
    return resolve_optax(value, "optimizer", scope)


def metric_names(value: ir.Expr, scope: Names) -> tuple[MetricUse, ...]:
    """`[accuracy, top_k_accuracy(k=3)]` -> the metrics, each call's arguments checked."""
    items = value.items if isinstance(value, ir.ListExpr) else (value,)
    used: list[MetricUse] = []
    for item in items:
        if not isinstance(item, (ir.Name, ir.Call)):
            raise SpecError.at(item.span, "metrics should be a list of metric names")
        output, _, name = item.name.rpartition(".")  # `price.rmse`: the output's
        item = item.model_copy(update={"name": name})
        if item.name not in METRICS:
            raise SpecError.at(item.span, f"unknown metric '{item.name}'"
                                          f"{did_you_mean(item.name, METRICS)}")
        metric = METRICS.get(item.name)
        arguments: tuple = ()
        if metric.arguments is not None:
            entry = build_entry(metric.arguments, item, f"metric '{item.name}'", scope)
            arguments = tuple(entry.arguments().items()) if entry is not None else ()
        elif isinstance(item, ir.Call):
            raise SpecError.at(item.span, f"metric '{item.name}' takes no arguments; write "
                                          f"{item.name}")
        output = output or None
        if any((u.output, u.name) == (output, item.name) for u in used):
            written = item.name if output is None else f"{output}.{item.name}"
            raise SpecError.at(item.span, f"metric '{written}' is listed twice (its history "
                                          "column is one)")
        used.append(MetricUse(name=item.name, arguments=arguments, output=output,
                              span=item.span))
    return tuple(used)


def early_stop_call(value: ir.Expr, scope: Names) -> EarlyStop:
    """`early_stop(metric=valid.accuracy)`, or `early_stop` with its defaults."""
    if not (isinstance(value, (ir.Call, ir.Name)) and value.name == "early_stop"):
        raise SpecError.at(value.span, "early_stop should be a call such as "
                                       "early_stop(metric=valid.loss, patience=100, mode=min)")
    return build_entry(EarlyStop, value, "early_stop", scope)


def _optax(kind: str) -> Catalogue:
    return Catalogue(kind, lambda: {n: f for n, f in optax_catalogue().items()
                                    if f.kind == kind},
                     lambda fn: [a.name for a in fn.arguments])


MAX_SEED = 2**63 - 1  # jax.random.PRNGKey takes a 64-bit integer


class TrainSection(SectionModel):
    """The `train` section with its defaults; field names are the setting names."""

    kind: Literal["train"] = "train"
    loss: Annotated[tuple[LossTerm, ...],
                    FromSpec(loss_terms, Catalogue("loss", lambda: LOSSES))]
    optimizer: Annotated[OptaxCall, FromSpec(optimizer_call, _optax("optimizer"),
                                             _optax("schedule"))]
    steps: PositiveInt | None = None
    epochs: PositiveInt | None = None
    batch: PositiveInt | None = None
    seed: NonNegativeInt = 0
    seeds: PositiveInt = 1
    eval_every: PositiveInt = 1
    checkpoint_every: PositiveInt | None = None
    """Steps between the orbax checkpoints of a run folder (`mlspec.runtime.checkpoints`);
    a multiple of `eval_every`, so that a checkpoint falls where a history row does."""
    metrics: Annotated[tuple[MetricUse, ...], FromSpec(metric_names, Catalogue(
        "metric", lambda: METRICS, lambda metric: metric.arguments.argument_names()
        if metric.arguments else []))] = ()
    clip_by_global_norm: PositiveFloat | None = None
    early_stop: Annotated[EarlyStop | None, FromSpec(early_stop_call, Catalogue(
        "setting", lambda: {"early_stop": EarlyStop}))] = None
    devices: PositiveInt | Symbol[Literal["all"]] = 1

    rules: ClassVar = (OneOf("steps", "epochs"),)

    @model_validator(mode="after")
    def _seeds_fit(self) -> TrainSection:
        # the members of `seeds = N` have the seeds from `seed` on
        last = self.seed + self.seeds - 1
        if last > MAX_SEED:
            raise PydanticCustomError(
                "seeds", f"seed {self.seed} with seeds = {self.seeds} gives the members "
                f"seeds up to {last}, past the largest seed (2**63 - 1 = {MAX_SEED}); lower "
                "the seed", {"setting": "seed"})
        every = self.checkpoint_every
        if every is not None and every % self.eval_every:
            nearest = max(1, round(every / self.eval_every)) * self.eval_every
            raise PydanticCustomError(
                "checkpoint_every", f"checkpoint_every = {every} is not a multiple of "
                f"eval_every = {self.eval_every}: a checkpoint is taken where a history row "
                f"is; try checkpoint_every = {nearest}",
                {"setting": "checkpoint_every"})
        return self

    @property
    def data_loss(self) -> Loss:
        """The first term that is not a regulariser: it defines the point predictions."""
        return next(t.loss for t in self.loss if not t.loss.regulariser)

    def output_loss(self, output: str) -> Loss:
        """The first data term for `output`: it defines that output's predictions."""
        return next(t.loss for t in self.loss if not t.loss.regulariser
                    and t.output == output)


def resolve_train(section: ir.Section, scope: Scope) -> TrainSection:
    """The train section's program; every setting is checked on its own, so that one
    mistake does not hide the others."""
    return validate_section(TrainSection, "train", section, scope,
                            TrainSection.setting_names())


# ------------------------------------------------------------------------------ tasks


def _argument_span(call: ir.Expr | None, span, arguments: list[str], argument: str):
    """The place of `argument` in `call` (given by name or position), else `span`."""
    if not isinstance(call, ir.Call):
        return span
    for keyword in call.kwargs:
        if keyword.name == argument:
            return keyword.value.span
    index = arguments.index(argument)
    return call.args[index].span if index < len(call.args) else span


def _term_call(setting: ir.Setting | None, term: LossTerm) -> ir.Call | None:
    """The call of a loss term in the loss setting's expression."""
    stack: list = [setting.value] if setting is not None else []
    while stack:
        expr = stack.pop()
        if isinstance(expr, ir.Call) and expr.span == term.span:
            return expr
        stack += [getattr(expr, side) for side in ("left", "right", "operand")
                  if hasattr(expr, side)]
    return None


def check_task(train: TrainSection, section: ir.Section, info: DataInfo,
               out_shape: tuple[int, ...], splits: tuple[str, ...], errors: ErrorCollector):
    """The loss fits the targets and the output width; the metrics fit the task."""
    loss_setting = section.get("loss")
    for term in train.loss:
        problem = term.loss.check(out_shape, info)
        if problem:
            argument = getattr(problem, "argument", None)
            span = term.span if argument is None else _argument_span(
                _term_call(loss_setting, term), term.span,
                type(term.loss).argument_names(), argument)
            errors.add(span, problem)
    metrics_setting = section.get("metrics")
    items = metrics_setting.value.items if metrics_setting and isinstance(
        metrics_setting.value, ir.ListExpr) else ()
    data_loss = train.data_loss
    for i, use in enumerate(train.metrics):
        name, metric = use.name, METRICS.get(use.name)
        span = use.span or (items[i].span if i < len(items) else None)
        if not fits(metric.needs, info):
            task = {"binary": "0/1 (two-class) targets", "class": "class targets",
                    "real": "real targets"}[metric.needs]
            errors.add(span, f"metric '{name}' needs {task}, which this data does not have")
        elif metric.needs_probabilities and not data_loss.has_probabilities:
            errors.add(span, f"metric '{name}' needs class probabilities, but the loss "
                             f"'{data_loss.kind}' gives scores, not logits")
        elif metric.arguments is not None:
            problem = metric.arguments(**dict(use.arguments)).check(info)
            if problem:
                call = items[i] if i < len(items) else None
                errors.add(_argument_span(call, span, metric.arguments.argument_names(),
                                          problem.argument), problem)
    stop = train.early_stop
    if stop is not None:
        split, _, name = stop.metric.partition(".")
        # the test split is held out until the end: training never sees its metrics
        watched = [s for s in splits if s != "test"]
        names = [m.name for m in train.metrics]
        known = [f"{s}.{m}" for s in watched for m in ("loss", *names)
                 if METRICS.get(m).scope == "split"]
        known += [m for m in names if METRICS.get(m).scope == "training"]
        if split == "test" and "test" in splits:
            errors.add(stop.span, f"early_stop cannot watch '{stop.metric}': the test split "
                                  "is held out until training ends (watch a valid metric)")
        elif name in METRICS and METRICS.get(name).scope == "report":
            errors.add(stop.span, f"early_stop cannot watch '{stop.metric}': {name} is a "
                                  "table of the returned model, not a history column")
        elif stop.metric not in known:
            errors.add(stop.span, f"early_stop watches '{stop.metric}', which is not recorded"
                                  f"{did_you_mean(stop.metric, known)}")
