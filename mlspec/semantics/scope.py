"""Evaluation: params and arithmetic reduced to literal values, within the limits a value
may reach."""

from __future__ import annotations

import math
from collections.abc import Mapping

from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError
from mlspec.syntax.limits import MAX_DEPTH


def evaluated_call(call: ir.Call, scope: Scope) -> ir.Call:
    """`call` with each of its arguments evaluated in `scope` (its body as it is)."""
    return ir.Call(name=call.name, span=call.span,
                   args=tuple(scope.evaluate(a) for a in call.args),
                   kwargs=tuple(k.model_copy(update={"value": scope.evaluate(k.value)})
                                for k in call.kwargs))


class Scope:
    """Names visible to an expression: params, block arguments, `classes`."""

    def __init__(self, params: Mapping[str, ir.Param], extra: Mapping[str, ir.Expr] = ()):
        self.params = dict(params)
        self.values: dict[str, ir.Expr] = dict(extra)
        self._evaluating: list[str] = []  # the params being evaluated, outermost first
        self._depth = [0]  # how deep the value being built is nested, where evaluation is

    def child(self, values: Mapping[str, ir.Expr]) -> Scope:
        scope = Scope(self.params, {**self.values, **values})
        scope._evaluating, scope._depth = self._evaluating, self._depth
        return scope

    def lookup(self, name: str, span: Span | None) -> ir.Expr | None:
        if name in self.values:
            return self.values[name]
        param = self.params.get(name)
        if param is None:
            return None
        if name in self._evaluating:
            raise SpecError.at(param.span, f"param '{name}' is defined in terms of itself")
        if len(self._evaluating) >= MAX_DEPTH:  # each is evaluated by a recursion of its own
            raise SpecError.at(span, f"params are defined by params more than {MAX_DEPTH} "
                                     f"deep here ({self._evaluating[0]} -> ... -> {name})")
        self._evaluating.append(name)
        try:
            value = self.evaluate(param.value)
        finally:
            self._evaluating.pop()
        check_value_size(value, param.span, f"param '{name}'")
        self.values[name] = value
        return value

    def evaluate(self, expr: ir.Expr) -> ir.Expr:
        """Substitutes names and folds arithmetic over numbers."""
        nests = not (isinstance(expr, ir.Call) and not expr.has_arguments)  # a name does not
        self._depth[0] += nests
        try:
            if self._depth[0] > MAX_DEPTH:
                raise SpecError.at(expr.span, f"this is nested more than {MAX_DEPTH} deep "
                                              "once the params it names are written out")
            return self._evaluate(expr)
        finally:
            self._depth[0] -= nests

    def _evaluate(self, expr: ir.Expr) -> ir.Expr:
        if isinstance(expr, ir.ListExpr):
            return expr.model_copy(update={"items": tuple(self.evaluate(i) for i in expr.items)})
        if isinstance(expr, ir.Call):
            if not expr.has_arguments:
                value = self.lookup(expr.name, expr.span)
                if value is not None:
                    return value.model_copy(update={"span": expr.span})
            return expr.model_copy(update={
                "args": tuple(self.evaluate(a) for a in expr.args),
                "kwargs": tuple(k.model_copy(update={"value": self.evaluate(k.value)})
                                for k in expr.kwargs),
            })
        if isinstance(expr, ir.Neg):
            operand = self.evaluate(expr.operand)
            if isinstance(operand, ir.Number):
                return ir.Number(value=-operand.value, span=expr.span)
            return expr.model_copy(update={"operand": operand})
        if isinstance(expr, ir.BinOp):
            left, right = self.evaluate(expr.left), self.evaluate(expr.right)
            if isinstance(left, ir.Number) and isinstance(right, ir.Number):
                return number(_arithmetic(expr, left.value, right.value), expr.span)
            return expr.model_copy(update={"left": left, "right": right})
        return expr


# Nodes of a value once the params it names are written out: params that each use the
# one before twice double it at every step, and whatever reads the value (loss terms, the
# printer, JSON) walks it whole.
MAX_VALUE_NODES = 10_000


def check_value_size(value: ir.Expr, span: Span | None, what: str) -> None:
    size, depth = _written_out(value)
    if size > MAX_VALUE_NODES:
        raise SpecError.at(span, f"{what} is {size:,} terms when written out in full; a "
                                 f"value may have at most {MAX_VALUE_NODES:,}")
    if depth > MAX_DEPTH:  # a value nests the values of the params it names
        raise SpecError.at(span, f"{what} is nested {depth:,} deep when written out in "
                                 f"full; a value may be nested at most {MAX_DEPTH} deep")


def _children(node: ir.Node) -> list[ir.Node]:
    out = []
    for key, value in node.__dict__.items():
        if key != "span":
            out += [v for v in (value if isinstance(value, tuple) else (value,))
                    if isinstance(v, ir.Node)]
    return out


def _written_out(value: ir.Node) -> tuple[int, int]:
    """The value's size and depth as a tree, its shared parts (a param named twice)
    computed once each; without recursion, as the depth is what is being checked."""
    known: dict[int, tuple[int, int]] = {}
    stack = [(value, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in known:
            continue
        children = _children(node)
        if ready:
            sizes = [known[id(child)] for child in children]
            known[id(node)] = (1 + sum(size for size, _ in sizes),
                               1 + max((depth for _, depth in sizes), default=0))
        else:
            stack.append((node, True))
            stack += [(child, False) for child in children if id(child) not in known]
    return known[id(value)]


def _arithmetic(expr: ir.BinOp, a, b):
    try:
        if expr.op == "+":
            return a + b
        if expr.op == "-":
            return a - b
        if expr.op == "*":
            return a * b
        if b == 0:
            raise SpecError.at(expr.span, "division by zero")
        return a / b
    except OverflowError:
        raise SpecError.at(expr.span, "the result is too large") from None


def number(value, span) -> ir.Number:
    """A folded number, if it is one the IR can hold (64-bit integer, finite float)."""
    if (isinstance(value, int) and abs(value) > 2**63 - 1) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise SpecError.at(span, "the result is too large")
    return ir.Number(value=value, span=span)
