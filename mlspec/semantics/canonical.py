"""Typed program -> spec IR with every default filled in and every param substituted,
for `mlspec check --resolved`: what exactly will be trained."""

from __future__ import annotations

import ast
from typing import Any

from mlspec.catalog.layers import BlockUse, Layer
from mlspec.catalog.optimizers import OptaxCall, argument_type, optax_catalogue
from mlspec.catalog.registry import Entry
from mlspec.catalog.signature import takes
from mlspec.semantics.program import Program
from mlspec.syntax import ir


def _value(value: Any, annotation: Any = Any) -> ir.Expr:
    """A value as the spec writes it; a string that `annotation` takes bare (a symbol, a
    metric path) as a name."""
    if isinstance(value, OptaxCall):
        return optax_call(value)
    if isinstance(value, Entry):
        return entry_call(value)
    if isinstance(value, dict):
        return ir.ListExpr(items=tuple(ir.as_expr([k, v]) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ir.ListExpr(items=tuple(_value(v) for v in value))
    if isinstance(value, str):
        taken = takes(annotation)
        if value in taken.symbols or taken.metric_path:
            return ir.Name(name=value)
    return ir.as_expr(value)


def entry_call(entry: Entry) -> ir.Call:
    """`Dense(features=2)` -> `dense(2, use_bias=true)`: required arguments positional."""
    fields = type(entry).model_fields
    args, kwargs = [], []
    for name in entry.argument_names():
        if name == "body":
            continue
        if getattr(entry, name) is None:  # an unset optional argument (pool's stride)
            continue
        value = _value(getattr(entry, name), fields[name].rebuild_annotation())
        if fields[name].is_required() and not kwargs:
            args.append(value)
        else:
            kwargs.append(ir.Keyword(name=name, value=value))
    return ir.Call(name=entry.entry_name(), args=tuple(args), kwargs=tuple(kwargs))


def _literal_default(text: str | None):
    try:
        value = ast.literal_eval(text) if text is not None else None
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, (bool, int, float, str)) else None


def optax_call(call: OptaxCall) -> ir.Call:
    """An optax call with the defaults that have a literal value written out."""
    fn = optax_catalogue()[call.name]
    kwargs = []
    for arg in fn.arguments:
        if arg.name in call.arguments:
            value = call.arguments[arg.name]
        else:
            value = _literal_default(arg.default)
            if value is None:
                continue
        kwargs.append(ir.Keyword(name=arg.name, value=_value(value, argument_type(arg))))
    return ir.Call(name=call.name, kwargs=tuple(kwargs))


def layer_calls(layers: tuple[Layer, ...]) -> tuple[ir.LayerCall, ...]:
    out: list[ir.LayerCall] = []
    for layer in layers:
        if isinstance(layer, BlockUse):  # blocks are expanded in the resolved spec
            out.extend(layer_calls(layer.body))
            continue
        call = entry_call(layer)
        body = layer_calls(layer.body) if layer.composite else None
        out.append(ir.LayerCall(name=call.name, args=call.args, kwargs=call.kwargs, body=body))
    return tuple(out)


def _loss(program: Program) -> ir.Expr:
    expr = None
    for term in program.train.loss:
        call = entry_call(term.loss)
        piece = call if term.weight == 1 else ir.BinOp(op="*", left=ir.as_expr(term.weight),
                                                      right=call)
        expr = piece if expr is None else ir.BinOp(op="+", left=expr, right=piece)
    return expr


def _section(values: dict[str, Any], of: type[ir.Node]) -> ir.Section:
    """The settings `values` of the section whose program is `of`."""
    fields = of.model_fields
    return ir.Section(settings=tuple(
        ir.Setting(path=k, value=_value(v, fields[k].rebuild_annotation() if k in fields
                                        else Any))
        for k, v in values.items() if v is not None))


def resolved_spec(program: Program) -> ir.Spec:
    model = program.model
    spec = ir.Spec(model=ir.Model(name=model.name, input=ir.as_expr(list(model.input_shape)),
                                  layers=layer_calls(model.layers)))
    if program.data is not None:
        data = program.data
        spec = spec.model_copy(update={"data": _section(data.settings(), type(data))})
    if program.train is not None:
        train = program.train
        values = train.settings()
        values["loss"] = _loss(program)
        values["metrics"] = [m.as_expr() for m in train.metrics]
        spec = spec.model_copy(update={"train": _section(values, type(train))})
    return spec
