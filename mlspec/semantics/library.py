"""Checking a library: a file of params and blocks only, which other specs `import`.

With no model to use them, a library's blocks are checked as far as their own text tells:
every layer or block a body names exists and takes the arguments given; where the values
are known (numbers, params, the block's defaults) the layer is validated as in a model. A
value that depends on an argument without a default (or on `classes`) is checked where the
block is used; so are shapes, which need an input.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlspec.catalog.layers import LAYERS
from mlspec.catalog.registry import bind_arguments, instantiate, name_span
from mlspec.semantics.imports import merge_imports
from mlspec.semantics.model import _bind_block
from mlspec.semantics.resolve import _check_unique
from mlspec.semantics.scope import Scope, evaluated_call
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, SpecError, did_you_mean


def is_library(spec: ir.Spec) -> bool:
    """Whether `spec` is a file that only `import` may use: params, blocks and imports."""
    return spec.model is None and not spec.sections() and bool(spec.params or spec.blocks
                                                                or spec.imports)


def check_library(spec: ir.Spec) -> None:
    """Raises SpecError listing every mistake found in a library's params and blocks (and
    in the files it imports)."""
    errors = ErrorCollector()
    spec = merge_imports(spec)
    _check_unique(spec, errors)
    scope = Scope({p.name: p for p in spec.params})
    for param in spec.params:
        try:
            scope.lookup(param.name, param.span)
        except SpecError as exc:
            errors.extend(exc)
    blocks = {b.name: b for b in spec.blocks}
    for block in spec.blocks:
        known = {}
        for p in block.params:
            if p.default is not None:
                try:
                    known[p.name] = scope.evaluate(p.default)
                except SpecError as exc:
                    errors.extend(exc)
        unknown = {"classes"} | {p.name for p in block.params if p.name not in known}
        # an unknown value stands for itself (and hides a param of its name, as when used)
        inner = scope.child({**known, **{name: ir.Call(name=name) for name in unknown}})
        _check_layers(block.body, blocks, inner, unknown, errors)
    # a param's mistake met again inside a block is reported once
    errors.diagnostics = list(dict.fromkeys(errors.diagnostics))
    errors.raise_if_any()


def _check_layers(calls, blocks: Mapping[str, ir.Block], scope: Scope, unknown: set[str],
                  errors: ErrorCollector) -> None:
    for call in calls:
        try:
            _check_layer(call, blocks, scope, unknown, errors)
        except SpecError as exc:
            errors.extend(exc)


def _check_layer(call: ir.LayerCall, blocks, scope: Scope, unknown: set[str],
                 errors: ErrorCollector) -> None:
    if call.name not in LAYERS and call.name not in blocks:
        if call.name in unknown and not call.has_args_or_body:
            return  # a layer given as the block's argument (`act` in `dense(n) -> act`)
        bound = scope.lookup(call.name, call.span)
        if bound is None or call.has_args_or_body or not isinstance(bound, ir.Call):
            raise SpecError.at(name_span(call), f"unknown layer '{call.name}'"
                                                f"{did_you_mean(call.name, [*LAYERS, *blocks])}")
        call = ir.LayerCall(name=bound.name, args=bound.args, kwargs=bound.kwargs,
                            span=call.span)
        if call.name not in LAYERS and call.name not in blocks:
            raise SpecError.at(call.span, f"'{call.name}' is not a layer here")
    if call.name in blocks:
        if call.body is not None:
            raise SpecError.at(call.span, f"block '{call.name}' takes no body")
        _bind_block(blocks[call.name], call, scope)  # its own body is checked on its own
        return
    entry = LAYERS.get(call.name)
    evaluated = evaluated_call(call, scope)
    if entry.composite:
        if call.body is None:
            raise SpecError.at(call.span, f"'{call.name}' needs a body: {call.name} {{ ... }}")
        _check_layers(call.body, blocks, scope, unknown, errors)
    elif call.body is not None:
        raise SpecError.at(call.span, f"layer '{call.name}' takes no body")
    if any(_mentions(value, unknown) for value in
           (*evaluated.args, *(k.value for k in evaluated.kwargs))):
        bind_arguments(entry, evaluated, LAYERS.what)  # names and count; values when used
    else:
        instantiate(LAYERS, evaluated, **({"body": ()} if entry.composite else {}))


def _mentions(expr: ir.Expr, names: set[str]) -> bool:
    """Whether `expr` still refers to one of `names` (values not known here)."""
    if isinstance(expr, ir.Call):
        return (not expr.has_arguments and expr.name in names) or any(
            _mentions(a, names) for a in (*expr.args, *(k.value for k in expr.kwargs)))
    if isinstance(expr, ir.ListExpr):
        return any(_mentions(item, names) for item in expr.items)
    if isinstance(expr, ir.BinOp):
        return _mentions(expr.left, names) or _mentions(expr.right, names)
    if isinstance(expr, ir.Neg):
        return _mentions(expr.operand, names)
    return False
