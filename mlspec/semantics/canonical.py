"""Typed program -> spec IR with every default filled in and every param substituted,
for `mlspec check --resolved`: what exactly will be trained."""

from __future__ import annotations

import ast
from typing import Any

from mlspec.catalog.layers import BlockUse, Layer
from mlspec.catalog.layers.graph import Graph, GraphBlockUse, SharedUse
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


def layer_calls(layers: tuple[Layer, ...], blocks: list[ir.Block] | None = None
                ) -> tuple[ir.LayerCall, ...]:
    """The layers as calls, blocks written out; a graph block's use becomes a block of its
    own (`inception_1`, its graph resolved), added to `blocks`."""
    out: list[ir.LayerCall] = []
    blocks = [] if blocks is None else blocks
    for layer in layers:
        if isinstance(layer, BlockUse):  # blocks are expanded in the resolved spec
            out.extend(layer_calls(layer.body, blocks))
            continue
        if isinstance(layer, SharedUse):
            out.append(ir.LayerCall(name=layer.name))
            continue
        if isinstance(layer, GraphBlockUse):
            taken = {b.name for b in blocks}
            name = next(f"{layer.name}_{i}" for i in range(1, len(blocks) + 2)
                        if f"{layer.name}_{i}" not in taken)
            body = graph_statements(layer.graph, blocks, block=True)
            blocks.append(ir.Block(name=name, graph=body))
            out.append(ir.LayerCall(name=name))
            continue
        call = entry_call(layer)
        body = layer_calls(layer.body, blocks) if layer.composite else None
        out.append(ir.LayerCall(name=call.name, args=call.args, kwargs=call.kwargs, body=body))
    return tuple(out)


def graph_statements(graph: Graph, blocks: list[ir.Block], block: bool = False) -> tuple:
    """A graph's lines: its shares (a shared block as one `repeat(1) { ... }`), then a
    binding or an output per node."""
    out: list = []
    for share in graph.shares:
        calls = layer_calls((share.layer,), blocks)
        layer = calls[0] if len(calls) == 1 else ir.LayerCall(
            name="repeat", args=(ir.Number(value=1),), body=calls)
        out.append(ir.Share(name=share.name, layer=layer))
    for node in graph.nodes:
        if node.merge is None:
            start = ir.Name(name=node.inputs[0])
        else:
            call = entry_call(node.merge)
            start = call.model_copy(update={"args": tuple(
                ir.Name(name=n) for n in node.inputs) + call.args})
        value = ir.Chain(start=start, layers=layer_calls(node.layers, blocks))
        kind = ir.Output if node.name in graph.outputs and not block else ir.Binding
        out.append(kind(name=node.name, value=value))
    return tuple(out)


def _input_type(model_input) -> ir.Expr:
    if model_input.vocab is None:
        return ir.as_expr(list(model_input.shape))
    if model_input.shape:
        return ir.Call.of("tokens", model_input.shape[0], vocab=model_input.vocab)
    return ir.Call.of("category", vocab=model_input.vocab)


def _loss(program: Program) -> ir.Expr:
    expr = None
    for term in program.train.loss:
        call = entry_call(term.loss)
        if term.output is not None:  # mse(price): the output first
            call = ir.Call(name=call.name, args=(ir.Name(name=term.output),
                                                 *getattr(call, "args", ())),
                           kwargs=getattr(call, "kwargs", ()))
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
    if model.graph is not None:
        blocks: list[ir.Block] = []
        spec = ir.Spec(model=ir.Model(name=model.name, inputs=tuple(
            ir.InputDecl(name=i.name, type=_input_type(i)) for i in model.inputs),
            graph=graph_statements(model.graph, blocks)))
        spec = spec.model_copy(update={"blocks": tuple(blocks)})
    else:
        spec = ir.Spec(model=ir.Model(name=model.name,
                                      input=ir.as_expr(list(model.input_shape)),
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
