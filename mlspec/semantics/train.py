"""The train section (optimizer, loss, metrics, schedule, stopping) and the task's fit
with the data and the model's output."""

from __future__ import annotations

import math
from typing import Any

from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS, fits
from mlspec.catalog.optimizers import resolve_optax
from mlspec.catalog.registry import (
    build_entry,
    entry_value,
    instantiate,
    validate_entry,
)
from mlspec.catalog.sources import DataInfo
from mlspec.semantics.data import clash, section_settings
from mlspec.semantics.program import (
    EarlyStop,
    LossTerm,
    TrainProgram,
)
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, Span, SpecError, did_you_mean

TRAIN_KEYS = TrainProgram.argument_names()


def _loss_terms(expr: ir.Expr, weight: float = 1.0) -> list[tuple[float, ir.Call | ir.Name]]:
    if isinstance(expr, (ir.Call, ir.Name)):
        return [(weight, expr)]
    if isinstance(expr, ir.BinOp) and expr.op in "+-":
        right_weight = weight if expr.op == "+" else -weight
        return _loss_terms(expr.left, weight) + _loss_terms(expr.right, right_weight)
    if isinstance(expr, ir.BinOp) and expr.op == "*":
        if isinstance(expr.left, ir.Number):
            return _loss_terms(expr.right, weight * expr.left.value)
        if isinstance(expr.right, ir.Number):
            return _loss_terms(expr.left, weight * expr.right.value)
    if isinstance(expr, ir.BinOp) and expr.op == "/" and isinstance(expr.right, ir.Number):
        if expr.right.value == 0:
            raise SpecError.at(expr.span, "division by zero")
        return _loss_terms(expr.left, weight / expr.right.value)
    if isinstance(expr, ir.Neg):
        return _loss_terms(expr.operand, -weight)
    raise SpecError.at(expr.span, "a loss is a sum of weighted terms such as "
                                  "'softmax_cross_entropy + 1e-4 * l2'")


def resolve_loss(setting: ir.Setting, scope: Scope) -> tuple[LossTerm, ...]:
    terms = []
    for weight, call in _loss_terms(scope.evaluate(setting.value)):
        if not math.isfinite(weight):
            raise SpecError.at(call.span, "the weight of this loss term is too large")
        terms.append(LossTerm(weight=float(weight), loss=instantiate(LOSSES, call, scope),
                              span=call.span))
    if all(t.loss.regulariser for t in terms):
        raise SpecError.at(setting.value.span, "the loss needs a data term (such as mse or "
                                               "softmax_cross_entropy), not only regularisers")
    return tuple(terms)


MAX_SEED = 2**63 - 1  # jax.random.PRNGKey takes a 64-bit integer


def resolve_train(section: ir.Section, scope: Scope) -> TrainProgram:
    """The train section's program; every setting is checked on its own, so that one
    mistake does not hide the others."""
    errors = ErrorCollector()
    settings = section_settings(section, TRAIN_KEYS, "train")
    for required in ("loss", "optimizer"):
        if required not in settings:
            errors.add(section.span, f"train needs '{required}'")
    if "steps" in settings and "epochs" in settings:
        errors.extend(clash(settings["steps"], settings["epochs"], "train has both 'steps' "
                             "and 'epochs'; give exactly one of them"))
    elif "steps" not in settings and "epochs" not in settings:
        errors.add(section.span, "train needs exactly one of 'steps' and 'epochs'")
    values: dict[str, Any] = {}
    spans: dict[str, Span | None] = {}
    for key, setting in settings.items():
        spans[key] = setting.value.span or setting.span
        try:
            if key == "loss":
                values[key] = resolve_loss(setting, scope)
            elif key == "optimizer":
                value = scope.evaluate(setting.value)
                if not isinstance(value, (ir.Call, ir.Name)):
                    raise SpecError.at(spans[key], "optimizer should be an optax optimizer "
                                                   "call such as adam(learning_rate=1e-3)")
                values[key] = resolve_optax(value, "optimizer", scope)
            elif key == "metrics":
                values[key] = _metric_names(scope.evaluate(setting.value))
            elif key == "early_stop":
                value = scope.evaluate(setting.value)
                call = value if isinstance(value, (ir.Call, ir.Name)) else None
                if call is None or call.name != "early_stop":
                    raise SpecError.at(spans[key], "early_stop should be a call such as "
                                       "early_stop(metric=valid.loss, patience=100, mode=min)")
                values[key] = build_entry(EarlyStop, call, "early_stop", scope)
            else:
                values[key] = entry_value(TrainProgram, key, setting.value, scope)
        except SpecError as exc:
            errors.extend(exc)
    program = None
    try:  # the settings that failed above (or are missing) are not reported again
        program = validate_entry(TrainProgram, values, spans, section.span, "train",
                                 noun="setting",
                                 skip=({"loss", "optimizer"} | set(settings)) - set(values))
    except SpecError as exc:
        errors.extend(exc)
    if program is not None and program.seed + program.seeds - 1 > MAX_SEED:
        # the members of `seeds = N` have the seeds from `seed` on
        errors.add(spans.get("seed") or section.span,
                   f"seed {program.seed} with seeds = {program.seeds} gives the members "
                   f"seeds up to {program.seed + program.seeds - 1}, past the largest seed "
                   f"(2**63 - 1 = {MAX_SEED}); lower the seed")
    errors.diagnostics.sort(key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
    errors.raise_if_any()
    return program


def _metric_names(value: ir.Expr) -> tuple[str, ...]:
    items = value.items if isinstance(value, ir.ListExpr) else (value,)
    names = []
    for item in items:
        if not isinstance(item, ir.Name):
            raise SpecError.at(item.span, "metrics should be a list of metric names")
        if item.name not in METRICS:
            raise SpecError.at(item.span, f"unknown metric '{item.name}'"
                                          f"{did_you_mean(item.name, METRICS)}")
        names.append(item.name)
    return tuple(names)


# ------------------------------------------------------------------------------ tasks


def check_task(train: TrainProgram, section: ir.Section, info: DataInfo,
               out_shape: tuple[int, ...], splits: tuple[str, ...], errors: ErrorCollector):
    """The loss fits the targets and the output width; the metrics fit the task."""
    for term in train.loss:
        problem = term.loss.check(out_shape, info)
        if problem:
            errors.add(term.span, problem)
    metrics_setting = section.get("metrics")
    items = metrics_setting.value.items if metrics_setting and isinstance(
        metrics_setting.value, ir.ListExpr) else ()
    for i, name in enumerate(train.metrics):
        metric = METRICS.get(name)
        if not fits(metric.needs, info):
            task = {"binary": "0/1 (two-class) targets", "class": "class targets",
                    "real": "real targets"}[metric.needs]
            span = items[i].span if i < len(items) else None
            errors.add(span, f"metric '{name}' needs {task}, which this data does not have")
    stop = train.early_stop
    if stop is not None:
        split, _, name = stop.metric.partition(".")
        # the test split is held out until the end: training never sees its metrics
        watched = [s for s in splits if s != "test"]
        known = [f"{s}.{m}" for s in watched for m in ("loss", *train.metrics)
                 if METRICS.get(m).scope == "split"]
        known += [m for m in train.metrics if METRICS.get(m).scope == "training"]
        if split == "test" and "test" in splits:
            errors.add(stop.span, f"early_stop cannot watch '{stop.metric}': the test split "
                                  "is held out until training ends (watch a valid metric)")
        elif stop.metric not in known:
            errors.add(stop.span, f"early_stop watches '{stop.metric}', which is not recorded"
                                  f"{did_you_mean(stop.metric, known)}")
