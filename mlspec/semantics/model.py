"""The model: blocks expanded and every layer bound to its catalogue entry, then shapes
inferred through the chain."""

from __future__ import annotations

from collections.abc import Mapping

from mlspec.catalog.layers import LAYERS, BlockUse, Layer, ShapeError
from mlspec.catalog.registry import (
    instantiate,
    name_span,
)
from mlspec.semantics.scope import Scope, check_value_size, evaluated_call
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, Span, SpecError, did_you_mean
from mlspec.syntax.limits import MAX_DEPTH


def _bind_block(block: ir.Block, call: ir.LayerCall, scope: Scope) -> dict[str, ir.Expr]:
    names = [p.name for p in block.params]
    if len(call.args) > len(names):
        raise SpecError.at(call.args[len(names)].span,
                           f"block '{block.name}' takes at most {len(names)} arguments")
    bound = {n: scope.evaluate(a) for n, a in zip(names, call.args)}
    for kw in call.kwargs:
        if kw.name not in names:
            raise SpecError.at(kw.span, f"block '{block.name}' has no parameter '{kw.name}'"
                                        f"{did_you_mean(kw.name, names)}")
        if kw.name in bound:
            raise SpecError.at(kw.span, f"argument '{kw.name}' of block '{block.name}' is "
                                        "given twice")
        bound[kw.name] = scope.evaluate(kw.value)
    for p in block.params:
        if p.name not in bound:
            if p.default is None:
                raise SpecError.at(call.span, f"block '{block.name}' needs argument "
                                              f"'{p.name}'")
            bound[p.name] = Scope(scope.params).evaluate(p.default)
    for name, value in bound.items():
        check_value_size(value, call.span, f"argument '{name}' of block '{block.name}'")
    return bound


# A model's layers once every block and repeat is written out: more cannot be built in
# useful time.
MAX_LAYERS = 10_000


class _TooManyLayers(Exception):
    """Blocks that write out more than MAX_LAYERS layers (blocks using blocks, twice each,
    double at every level): expansion stops at once."""


class ModelResolver:
    def __init__(self, blocks: Mapping[str, ir.Block], scope: Scope, errors: ErrorCollector):
        self.blocks, self.scope, self.errors = blocks, scope, errors
        self.expanding: list[str] = []
        self.written = 0
        self.nesting = 1  # how deep the layers being resolved sit, once blocks are written out

    def model_layers(self, calls: tuple[ir.LayerCall, ...]) -> tuple[Layer, ...]:
        out = []
        for call in calls:
            try:
                out.extend(self.layers((call,), self.scope))
            except _TooManyLayers:
                self.errors.add(call.span, f"the model has more than {MAX_LAYERS:,} layers "
                                           "once its blocks are written out; a model may "
                                           f"have at most {MAX_LAYERS:,}")
                break
        return tuple(out)

    def layers(self, calls: tuple[ir.LayerCall, ...], scope: Scope) -> tuple[Layer, ...]:
        out = []
        for call in calls:
            try:
                out.append(self.layer(call, scope))
            except SpecError as exc:
                self.errors.extend(exc)
        return tuple(out)

    def layer(self, call: ir.LayerCall, scope: Scope) -> Layer:
        self.written += 1
        if self.written > MAX_LAYERS:
            raise _TooManyLayers
        known = call.name in LAYERS or call.name in self.blocks
        bound = None if known else scope.lookup(call.name, call.span)
        if bound is not None and not call.has_args_or_body:
            if not isinstance(bound, ir.Call):
                raise SpecError.at(call.span, f"'{call.name}' is not a layer here")
            call = ir.LayerCall(name=bound.name, args=bound.args, kwargs=bound.kwargs,
                                span=call.span)
        block = self.blocks.get(call.name)
        if block is not None:
            return self.block(block, call, scope)
        if call.name not in LAYERS:
            names = [*LAYERS, *self.blocks]
            raise SpecError.at(name_span(call), f"unknown layer '{call.name}'"
                                                f"{did_you_mean(call.name, names)}")
        entry = LAYERS.get(call.name)
        evaluated = evaluated_call(call, scope)
        if entry.composite:
            if call.body is None:
                raise SpecError.at(call.span, f"'{call.name}' needs a body: "
                                              f"{call.name} {{ ... }}")
            body = self.body(call, lambda: self.layers(call.body, scope))
            return instantiate(LAYERS, evaluated, body=body)
        if call.body is not None:
            raise SpecError.at(call.span, f"layer '{call.name}' takes no body")
        return instantiate(LAYERS, evaluated)

    def block(self, block: ir.Block, call: ir.LayerCall, scope: Scope) -> Layer:
        if call.body is not None:
            raise SpecError.at(call.span, f"block '{block.name}' takes no body")
        if block.name in self.expanding:
            raise SpecError.at(call.span, f"block '{block.name}' uses itself "
                                          f"({' -> '.join([*self.expanding, block.name])})")
        bound = _bind_block(block, call, scope)
        self.expanding.append(block.name)
        try:
            body = self.body(call, lambda: self.layers(block.body, Scope(scope.params).child(
                {**{k: v for k, v in scope.values.items() if k == "classes"}, **bound})))
        finally:
            self.expanding.pop()
        return BlockUse(name=block.name, body=body, span=call.span)

    # Layers may nest as deep as in text (a model's layers sit 2 below the spec)
    MAX_NESTING = MAX_DEPTH - 2

    def body(self, call: ir.LayerCall, resolve_body):
        """The layers of `call`'s body, one level deeper than `call`."""
        if self.nesting >= self.MAX_NESTING:
            raise SpecError.at(name_span(call), f"layers are nested more than "
                                                f"{self.MAX_NESTING} deep here once blocks "
                                                "are written out")
        self.nesting += 1
        try:
            return resolve_body()
        finally:
            self.nesting -= 1


def infer_shapes(layers: tuple[Layer, ...], shape: tuple[int, ...],
                 errors: ErrorCollector) -> tuple[int, ...] | None:
    """Runs each layer's shape function; a layer that cannot take its input is reported
    at its place."""
    for layer in layers:
        try:
            if layer.composite:
                inner = shape
                for _ in range(getattr(layer, "times", 1)):
                    after = infer_shapes(layer.body, inner, errors)
                    if after is None:
                        return None
                    if after == inner:  # every later copy sees this shape too
                        break
                    inner = after
            shape = layer.output_shape(shape)
        except ShapeError as exc:
            errors.add(name_span(layer) if not layer.composite else layer.span, str(exc))
            return None
    return shape


def expanded_count(layers: tuple[Layer, ...]) -> int:
    return sum(getattr(layer, "times", 1) * expanded_count(layer.body) if layer.composite
               else 1 for layer in layers)


def check_layer_count(layers: tuple[Layer, ...], span: Span | None,
                      errors: ErrorCollector) -> bool:
    """Whether the model is small enough to build; if not, says so at the outermost layer
    that makes it too big (or the model)."""
    total = expanded_count(layers)
    if total <= MAX_LAYERS:
        return True
    where = next((layer.span for layer in layers if expanded_count((layer,)) > MAX_LAYERS),
                 span)
    errors.add(where, f"this makes {total:,} layers once every repeat is written out; a "
                      f"model may have at most {MAX_LAYERS:,}")
    return False
