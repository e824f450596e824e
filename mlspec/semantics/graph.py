"""Graph models (LANGUAGE.md v2, "Graph models"): statements bound into a `Graph`, then
shapes inferred through it in order.

A graph's names are its inputs (the data's, or its `input` lines; `in` in a graph
block), its bindings and outputs, and its `share`s. Every chain's layers are bound by the
model's resolver, so blocks, params and `repeat` work inside chains as in a v1 chain, and
a block whose body is a graph is used in a chain as any block is (`GraphResolver`).
Mistakes are reported where they are written: an unbound name at its use, a name bound
twice at the second binding, a binding nothing uses at the binding, an input nothing uses
at the model, a merge of mismatched shapes at the merge.

The passes' entry points are `bind_graph` and `infer_graph` (run by `bind_model` and
`infer_model_shapes` of mlspec.semantics.resolve for a model with a graph body).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlspec.catalog.layers import LAYERS, Layer
from mlspec.catalog.layers.graph import Graph, GraphBlockUse, GraphNode, SharedLayer, SharedUse
from mlspec.catalog.merges import MERGES
from mlspec.catalog.registry import instantiate, name_span
from mlspec.semantics.inputs import model_inputs
from mlspec.semantics.model import (
    MAX_LAYERS,
    ModelResolver,
    _TooManyLayers,
    at_use,
    check_layer_count,
    infer_shapes,
)
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import (
    Diagnostic,
    ErrorCollector,
    Span,
    SpecError,
    did_you_mean,
    nearest,
)

if TYPE_CHECKING:
    from mlspec.semantics.resolve import Resolution

Shape = tuple[int, ...]


class GraphResolver(ModelResolver):
    """The model's resolver, which also binds graph bodies: a graph model's, and a graph
    block's at each of its uses (each use its own weights)."""

    def block_use(self, block: ir.Block, call: ir.LayerCall, inner: Scope) -> Layer | None:
        if block.graph is None:
            return super().block_use(block, call, inner)
        graph = self.body(call, lambda: self.graph(block.graph, {"in": block.span}, inner,
                                                   block=block))
        return None if graph is None else GraphBlockUse(name=block.name, graph=graph,
                                                        span=call.span)

    share_names: set[str] = set()
    """The model's shared layers, which a chain names directly (a -> enc)."""
    output_classes: dict[str, int] = {}
    """With several targets: the number of classes of each class target, by name, which
    `classes` is in the chain of the output of that name."""

    def layer(self, call: ir.LayerCall, scope: Scope) -> Layer | None:
        if call.name in self.share_names and call.name not in LAYERS \
                and call.name not in self.blocks and scope.lookup(call.name, None) is None:
            raise SpecError.at(call.span, f"shared layer '{call.name}' stands directly in a "
                                          f"chain (x -> {call.name}), not in a body")
        return super().layer(call, scope)

    def report(self, span: Span | None, message: str) -> None:
        """A mistake written in a graph: inside a block, placed at the block's use."""
        self.errors.diagnostics.append(at_use(Diagnostic(message=message, span=span),
                                              self.uses, self.blocks))

    def graph(self, statements: tuple, inputs: Mapping[str, Span | None], scope: Scope,
              block: ir.Block | None = None, model: ir.Model | None = None,
              inputs_known: bool = True) -> Graph | None:
        """The graph of `statements` over `inputs` (names, with where they are declared);
        None where a mistake was reported. Without `inputs_known` (stand-ins for inputs
        that a mistake elsewhere hides), whether each input is used is not checked."""
        outer = self.share_names
        try:
            return self._graph(statements, inputs, scope, block, model, inputs_known)
        finally:
            self.share_names = outer

    def _graph(self, statements, inputs, scope, block, model, inputs_known) -> Graph | None:
        before = len(self.errors.diagnostics)
        state = _Binding(dict(inputs), statements)
        self.share_names = state.share_names
        nodes, outputs = [], []
        for statement in statements:
            name = statement.name
            if name in inputs:
                self.report(statement.span, f"'{name}' is an input of "
                                            f"{'the model' if block is None else 'the block'};"
                                            " bind another name")
                continue
            if name in state.bound or name in state.shares:
                first = state.bound.get(name) or state.shares[name].span
                self.report(statement.span, f"'{name}' is bound twice" + (
                    f" (first at line {first.line})" if first is not None else ""))
                continue
            if isinstance(statement, ir.Share):
                if block is not None:
                    self.report(statement.span, "share lines stand in the model body, "
                                                "not in a block's")
                elif name in LAYERS or name in self.blocks:
                    self.report(statement.span, f"shared layer '{name}' has the name of a "
                                                f"{'layer' if name in LAYERS else 'block'}")
                else:
                    state.shares_seen.add(name)
                    layers = self.layers((statement.layer,), scope)
                    if layers:
                        state.shares[name] = SharedLayer(name=name, layer=layers[0],
                                                         span=statement.span)
                continue
            if isinstance(statement, ir.Output):
                if block is not None:  # then read as the binding it would be in a block
                    self.report(statement.span, f"output lines stand in a model; the "
                                                f"value of block '{block.name}' is the "
                                                "binding named 'out'")
                    state.failed = True
                else:
                    outputs.append(name)
            inner = scope
            if isinstance(statement, ir.Output) and name in self.output_classes:
                inner = scope.child({"classes": ir.Number(value=self.output_classes[name])})
            node = self.node(statement, state, inner)
            state.bound[name] = statement.span
            state.binder[name] = statement
            if node is not None:
                nodes.append(node)
        if not state.failed:  # else the value a failed line was meant to use may be unused
            self.check_uses(state, inputs if inputs_known else {}, block, model)
        if block is not None and "out" not in state.bound:
            self.report(block.span, f"block '{block.name}' has a graph body, whose value is "
                                    "the binding named 'out': add out = ...")
        if model is not None and not outputs:
            self.errors.add(model.span, f"graph model '{model.name}' has no output: add "
                                        "a line output NAME = ...")
        if len(self.errors.diagnostics) > before:
            return None
        return Graph(inputs=tuple(inputs), shares=tuple(state.shares.values()),
                     nodes=tuple(nodes), outputs=tuple(outputs) if model is not None
                     else ("out",), span=block.span if block is not None else model.span)

    def node(self, statement: ir.Binding | ir.Output, state: _Binding,
             scope: Scope) -> GraphNode | None:
        start = statement.value.start
        merge, names, ok = None, [], True
        if isinstance(start, ir.Name):
            ok = self.value(start, statement, state)
            names = [start.name]
        elif start.name not in MERGES:
            what = "layer" if start.name in LAYERS else "block" if start.name in self.blocks \
                else None
            if what is not None:
                self.report(name_span(start), f"a chain starts from a value (an input, a "
                                              f"binding or a merge), and '{start.name}' is "
                                              f"a {what}: write {statement.name} = NAME -> "
                                              f"{start.name}(...)")
            else:
                self.report(name_span(start), f"unknown merge '{start.name}'"
                                              f"{did_you_mean(start.name, MERGES)}")
            ok = False
        else:
            for arg in start.args:
                if isinstance(arg, ir.Name):
                    ok = self.value(arg, statement, state) and ok
                    names.append(arg.name)
                else:
                    self.report(arg.span or start.span, f"{start.name} merges values, named "
                                                        "by inputs or bindings (its other "
                                                        "arguments are given by name, such "
                                                        "as axis=-1)")
                    ok = False
            try:
                merge = instantiate(MERGES, ir.Call(name=start.name, kwargs=start.kwargs,
                                                    span=start.span), scope)
            except SpecError as exc:
                for d in exc.diagnostics:
                    self.report(d.span, d.message)
                ok = False
        layers = []
        for call in statement.value.layers:
            if call.name in state.bound and call.name not in LAYERS \
                    and call.name not in self.blocks:
                self.report(call.span, f"'{call.name}' is a value, not a layer: a chain "
                                       "runs layers on the one value it starts from (merge "
                                       f"values to combine them: add({call.name}, ...))")
                ok = False
                continue
            if call.name in state.share_names and call.name not in self.blocks \
                    and call.name not in LAYERS:
                state.used.add(call.name)  # if wrongly: one mistake is enough
                if call.has_args_or_body:
                    self.report(call.span, f"shared layer '{call.name}' is used as it is "
                                           f"(-> {call.name}); its arguments stand on its "
                                           "share line")
                    ok = False
                elif call.name not in state.shares_seen:
                    self.report(call.span, f"shared layer '{call.name}' is used before its "
                                           "share line; share lines stand before their "
                                           "first use")
                    ok = False
                elif call.name in state.shares:
                    layers.append(SharedUse(name=call.name, span=call.span))
                continue
            layers.extend(self.layers((call,), scope))
        if not ok:
            state.failed = True
            return None
        return GraphNode(name=statement.name, inputs=tuple(names), merge=merge,
                         layers=tuple(layers), span=statement.span)

    def value(self, name: ir.Name, statement: ir.Node, state: _Binding) -> bool:
        """Whether `name` is a value bound before `statement`; if not, says why."""
        n = name.name
        if n in state.bound:
            state.used.add(n)
            return True
        if n == statement.name:
            message = f"'{n}' is used in its own binding; a value cannot depend on itself"
        elif n in state.later:
            message = f"'{n}' is used before it is bound; bind it on an earlier line"
        elif n in state.share_names:
            message = f"'{n}' is a shared layer, not a value: use it in a chain (x -> {n})"
        elif n in LAYERS or n in self.blocks:
            message = (f"a chain starts from a value (an input, a binding or a merge), and "
                       f"'{n}' is a {'layer' if n in LAYERS else 'block'}: write "
                       f"{statement.name} = NAME -> {n}")
        else:
            close = nearest(n, state.bound)
            message = f"undefined name '{n}'" + (f"; did you mean '{close}'?" if close else (
                f"; the values bound here are {', '.join(map(repr, state.bound))}"
                if state.bound else ""))
        self.report(name.span, message)
        return False

    def check_uses(self, state: _Binding, inputs: Mapping[str, Span | None],
                   block: ir.Block | None, model: ir.Model | None) -> None:
        for statement in state.statements:
            if isinstance(statement, ir.Binding) and statement.name not in state.used \
                    and not (block is not None and statement.name == "out") \
                    and state.binder.get(statement.name) is statement:
                self.report(statement.span, f"'{statement.name}' is bound but nothing uses "
                                            "it")
            if isinstance(statement, ir.Share) and statement.name in state.shares \
                    and statement.name not in state.used:
                self.report(statement.span, f"shared layer '{statement.name}' is never used")
        for name in inputs:
            if name not in state.used:
                if block is not None:
                    self.report(block.span, f"block '{block.name}' never uses its input 'in'")
                else:
                    self.errors.add(model.span, f"input '{name}' of model '{model.name}' "
                                                "is never used")


class _Binding:
    """What a graph's statements have bound so far."""

    def __init__(self, bound: dict[str, Span | None], statements: tuple):
        self.statements = statements
        self.bound = bound
        """Values bound so far (inputs first), with where."""
        self.binder: dict[str, ir.Node] = {}
        """The statement that binds each value."""
        self.later = {s.name for s in statements if not isinstance(s, ir.Share)}
        self.share_names = {s.name for s in statements if isinstance(s, ir.Share)}
        self.shares_seen: set[str] = set()
        self.shares: dict[str, SharedLayer] = {}
        self.used: set[str] = set()
        self.failed = False
        """Whether a line failed to bind: what it would use is not known."""


# ---------------------------------------------------------------- passes


def bind_graph(state: Resolution) -> None:
    """The graph model's inputs and statements bound (`state.graph`, `state.inputs`)."""
    model = state.spec.model
    inputs = None if state.data_failed else model_inputs(model, state.scope, state.data,
                                                         state.errors)
    resolver = GraphResolver({b.name: b for b in state.spec.blocks}, state.scope,
                             state.errors)
    if state.data is not None:
        resolver.output_classes = {t.name: t.classes for t in state.data.info.outputs
                                   if t.target == "class"}
    names = {name: model.span for name in inputs} if inputs else \
        {decl.name: decl.span for decl in model.inputs}
    if inputs is None:  # stand-ins: the names the lines read that no line binds
        names |= {name: model.span for name in _read_names(model.graph)}
    try:
        state.graph = resolver.graph(model.graph, names, state.scope, model=model,
                                     inputs_known=inputs is not None)
    except _TooManyLayers:
        state.errors.add(model.span, f"the model has more than {MAX_LAYERS:,} layers once "
                                     f"its blocks are written out; a model may have at "
                                     f"most {MAX_LAYERS:,}")
        return
    state.inputs = tuple(inputs.values()) if inputs else ()


def _read_names(statements: tuple) -> list[str]:
    bound = {s.name for s in statements}
    read = []
    for statement in statements:
        if isinstance(statement, ir.Share):
            continue
        start = statement.value.start
        for name in [start] if isinstance(start, ir.Name) else start.args:
            if isinstance(name, ir.Name) and name.name not in bound:
                read.append(name.name)
    return read


def infer_graph(state: Resolution) -> None:
    """Shapes through the graph, in order; its outputs' shapes (`state.output_shapes`,
    and with one input and one output, `state.input_shape` and `state.output_shape`)."""
    graph = state.graph
    if graph is None or not state.inputs or state.errors.diagnostics \
            or not check_layer_count(tuple(graph.layers()), state.spec.model.span,
                                     state.errors):
        return
    shapes = infer_graph_shapes(graph, {i.name: i.shape for i in state.inputs}, state.errors)
    if shapes is None:
        return
    state.output_shapes = tuple((name, shapes[name]) for name in graph.outputs)
    if len(state.inputs) == 1 and len(graph.outputs) == 1:
        state.input_shape = state.inputs[0].shape
        state.output_shape = shapes[graph.outputs[0]]


def infer_graph_shapes(graph: Graph, inputs: Mapping[str, Shape],
                       errors: ErrorCollector) -> dict[str, Shape] | None:
    """Every value's shape; a merge that cannot take its inputs is reported at the merge,
    a layer at the layer, a shared layer at its use."""
    shapes = dict(inputs)
    first_use: dict[str, tuple[Shape, Span | None]] = {}
    for node in graph.nodes:
        if node.merge is not None:
            try:
                shape = node.merge.output_shape([shapes[n] for n in node.inputs],
                                                node.inputs)
            except ValueError as exc:  # a ShapeError
                errors.add(node.merge.span, str(exc))
                return None
        else:
            shape = shapes[node.inputs[0]]
        for layer in node.layers:
            if isinstance(layer, SharedUse):
                seen = first_use.setdefault(layer.name, (shape, layer.span))
                if seen[0] != shape:
                    where = f" (at line {seen[1].line})" if seen[1] is not None else ""
                    errors.add(layer.span, f"shared layer '{layer.name}' takes "
                                           f"{list(seen[0])} at its first use{where} but "
                                           f"{list(shape)} here; its weights fit one shape")
                    return None
                inner = ErrorCollector()
                after = infer_shapes((graph.shared(layer.name),), shape, inner)
                errors.diagnostics += [Diagnostic(message=f"{d.message} (shared layer "
                                                          f"'{layer.name}', used here)",
                                                  span=layer.span) for d in inner.diagnostics]
            else:
                after = infer_shapes((layer,), shape, errors)
            if after is None:
                return None
            shape = after
        shapes[node.name] = shape
    return shapes
