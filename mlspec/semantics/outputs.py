"""Several outputs (LANGUAGE.md v2, "Graph models", Outputs): each output is trained
against the target of its name, each loss term names its output as its first argument
(`mse(price)`), each metric is written `OUTPUT.METRIC`. `check_outputs` checks that the
outputs, the targets, the loss terms and the metrics fit one another, each mistake at its
place; `check_output_names` checks the names a model of one output may give."""

from __future__ import annotations

from mlspec.catalog.metrics import METRICS, fits
from mlspec.catalog.sources import DataInfo
from mlspec.semantics.train import TrainSection, _argument_span, _term_call
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, Span, did_you_mean

TASKS = {"binary": "0/1 (two-class) targets", "class": "class targets", "real": "real targets"}


def target_span(data: ir.Section | None, name: str) -> Span | None:
    """Where the data section names the target `name` (`target=[..., "sold"]`, npz's
    `y=[...]`): that item, else the argument, else the section."""
    if data is None:
        return None
    for setting in data.settings:
        call = setting.value
        if not isinstance(call, ir.Call):
            continue
        for keyword in call.kwargs:
            if keyword.name not in ("target", "y"):
                continue
            items = keyword.value.items if isinstance(keyword.value, ir.ListExpr) else (
                keyword.value,)
            for item in items:
                if isinstance(item, ir.String) and item.value == name:
                    return item.span
            return keyword.value.span
    return data.span


def _metric_spans(section: ir.Section, train: TrainSection) -> list[Span | None]:
    setting = section.get("metrics")
    items = setting.value.items if setting and isinstance(setting.value, ir.ListExpr) else ()
    return [use.span or (items[i].span if i < len(items) else None)
            for i, use in enumerate(train.metrics)]


def check_output_names(train: TrainSection, section: ir.Section, output: str | None,
                       errors: ErrorCollector) -> None:
    """With one output, a loss term or metric may name it (`mse(y)`, `y.rmse`), and no
    other; a chain's output has no name."""
    known = [output] if output else []
    where = f"model's output is '{output}'" if output else "model is a chain, whose one " \
        "output has no name"
    for term in train.loss:
        if term.output is not None and term.output != output:
            call = _term_call(section.get("loss"), term)
            span = call.args[0].span if call is not None and call.args else term.span
            errors.add(span, f"undefined name '{term.output}'{did_you_mean(term.output, known)}"
                             f" (the {where})")
    for use, span in zip(train.metrics, _metric_spans(section, train), strict=True):
        if use.output is not None and use.output != output:
            errors.add(span, f"metric '{use.output}.{use.name}' names no output of the model"
                             f"{did_you_mean(use.output, known)} (the {where})")


def check_outputs(train: TrainSection, section: ir.Section, info: DataInfo,
                  model: ir.Model, output_shapes: dict[str, tuple[int, ...]],
                  output_spans: dict[str, Span | None], data: ir.Section | None,
                  splits: tuple[str, ...], errors: ErrorCollector) -> None:
    """A model of several outputs against data of several targets (see the module)."""
    outputs = list(output_shapes)
    listed = ", ".join(outputs)
    targets = list(info.target_names)
    if not targets:
        errors.add(model.span, f"model '{model.name}' has {len(outputs)} outputs ({listed}), "
                               "but the data has one target: give a target for each output, "
                               "as target=[" + ", ".join(f'"{o}"' for o in outputs) + "]")
        return
    for name in outputs:
        if name not in targets:
            errors.add(output_spans.get(name) or model.span,
                       f"output '{name}' has no target of its name"
                       f"{did_you_mean(name, targets)} (the data's targets: "
                       f"{', '.join(targets)})")
    for name in targets:
        if name not in outputs:
            column = next(t.column for t in info.outputs if t.name == name)
            errors.add(target_span(data, column), f"the target '{column}' is no output of "
                                                  f"model '{model.name}' (its outputs: "
                                                  f"{listed}); each target needs the "
                                                  "output of its name")
    loss_setting = section.get("loss")
    trained = set()
    for term in train.loss:
        if term.loss.regulariser:
            continue
        call = _term_call(loss_setting, term)
        if term.output is None:
            errors.add(term.span, f"model '{model.name}' has several outputs ({listed}): "
                                  f"name the output this loss term is for, as "
                                  f"{term.loss.kind}({outputs[0]})")
            continue
        if term.output not in outputs:
            span = call.args[0].span if call is not None and call.args else term.span
            errors.add(span, f"'{term.output}' is no output of model '{model.name}'"
                             f"{did_you_mean(term.output, outputs)} (its outputs: {listed})")
            continue
        trained.add(term.output)
        if term.output not in targets:
            continue
        problem = term.loss.check(output_shapes[term.output], info.target_info(term.output))
        if problem:
            argument = getattr(problem, "argument", None)
            span = term.span if argument is None else _argument_span(
                call, term.span, type(term.loss).argument_names(), argument)
            errors.add(span, f"{problem} (output '{term.output}')")
    for name in outputs:
        if name not in trained and not errors.diagnostics:
            errors.add(loss_setting.span if loss_setting else section.span,
                       f"output '{name}' has no loss term: add one, as mse({name})")
    _check_metrics(train, section, info, outputs, targets, errors)
    _check_early_stop(train, outputs, splits, errors)


def _check_metrics(train, section, info, outputs, targets, errors) -> None:
    for use, span in zip(train.metrics, _metric_spans(section, train), strict=True):
        metric = METRICS.get(use.name)
        if metric.scope == "training":
            if use.output is not None:
                errors.add(span, f"metric '{use.name}' is of the whole model, not of an "
                                 f"output: write {use.name}")
            continue
        if use.output is None:
            errors.add(span, f"metric '{use.name}' needs its output in a model of several "
                             f"outputs: write {outputs[0]}.{use.name}")
            continue
        if use.output not in outputs:
            errors.add(span, f"metric '{use.output}.{use.name}' names no output of the model"
                             f"{did_you_mean(use.output, outputs)} (its outputs: "
                             f"{', '.join(outputs)})")
            continue
        if use.output not in targets or not any(
                t.output == use.output and not t.loss.regulariser for t in train.loss):
            continue
        own = info.target_info(use.output)
        if metric.scope == "report":
            errors.add(span, f"metric '{use.name}' is not yet drawn for one output of "
                             "several; list it in a model of one output")
        elif not fits(metric.needs, own):
            errors.add(span, f"metric '{use.name}' needs {TASKS[metric.needs]}, which the "
                             f"target of output '{use.output}' does not have")
        elif metric.needs_probabilities and not train.output_loss(use.output).has_probabilities:
            errors.add(span, f"metric '{use.name}' needs class probabilities, but the loss "
                             f"of output '{use.output}' gives scores, not logits")
        elif metric.arguments is not None:
            problem = metric.arguments(**dict(use.arguments)).check(own)
            if problem:
                errors.add(span, str(problem))


def output_columns(train: TrainSection) -> list[str]:
    """The split metrics of a model of several outputs: `loss`, then `OUTPUT.METRIC`."""
    return ["loss"] + [f"{m.output}.{m.name}" for m in train.metrics
                       if m.output is not None and METRICS.get(m.name).scope == "split"]


def _check_early_stop(train, outputs, splits, errors) -> None:
    stop = train.early_stop
    if stop is None or errors.diagnostics:
        return
    watched = [s for s in splits if s != "test"]
    known = [f"{s}.{c}" for s in watched for c in output_columns(train)]
    known += [m.name for m in train.metrics if METRICS.get(m.name).scope == "training"]
    if stop.metric.startswith("test.") and "test" in splits:
        errors.add(stop.span, f"early_stop cannot watch '{stop.metric}': the test split "
                              "is held out until training ends (watch a valid metric)")
    elif stop.metric not in known:
        errors.add(stop.span, f"early_stop watches '{stop.metric}', which is not recorded"
                              f"{did_you_mean(stop.metric, known)}")


def check_fit(state) -> None:
    """The pass `check_task_fit` of mlspec.semantics.resolve: the loss and metrics fit the
    targets and the model's output, or each output its target."""
    from mlspec.semantics.train import check_task

    train, data, graph = state.train, state.data, state.graph
    if train is None or data is None:
        return
    section = state.spec.train
    if graph is None:
        if data.info.outputs:
            model = state.spec.model
            state.errors.add(model.span, f"the data has the targets "
                                         f"{', '.join(data.info.target_names)}; a chain has "
                                         f"one output, so write a graph model with a line "
                                         f"output NAME = ... for each")
        elif state.output_shape is not None:
            check_task(train, section, data.info, state.output_shape, data.splits,
                       state.errors)
            check_output_names(train, section, None, state.errors)
        return
    if not state.output_shapes:
        return
    shapes = dict(state.output_shapes)
    if len(shapes) > 1 or data.info.outputs:
        spans = {node.name: node.span for node in graph.nodes if node.name in shapes}
        check_outputs(train, section, data.info, state.spec.model, shapes, spans,
                      state.spec.data, data.splits, state.errors)
        return
    (output, shape), = shapes.items()
    check_task(train, section, data.info, shape, data.splits, state.errors)
    check_output_names(train, section, output, state.errors)
