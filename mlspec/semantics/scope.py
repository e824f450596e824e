"""Evaluation: params and arithmetic reduced to literal values, within the limits a value
may reach."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from mlspec.catalog.signature import undefined_name
from mlspec.semantics.names import catalogue_kind
from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError
from mlspec.syntax.limits import MAX_DEPTH


class Scope:
    """Names visible to an expression: params, block arguments, `classes`.

    The spec's params are evaluated once each, in the scope of the spec (the root): a
    param means the same wherever it is named. A block's body sees the root's names and
    its own arguments. An unbound name stays a name (it may be a catalogue entry, a
    symbol or a metric path); the binder settles it where it is used, and asks the scope
    for the error when it means nothing there (`undefined`).
    """

    def __init__(self, params: Mapping[str, ir.Param], values: Mapping[str, ir.Expr] = (),
                 unknown: Iterable[str] = (), parent: Scope | None = None):
        self.params = dict(params)
        self.values: dict[str, ir.Expr] = dict(values)
        """Names bound here: block arguments (in a block), `classes` (at the root)."""
        self.unknown = frozenset(unknown)
        """Names whose values are not known here (a library's block arguments)."""
        self.root: Scope = self if parent is None else parent.root
        self.absent: dict[str, str] = {} if parent is None else parent.absent
        """Why a name the language knows is not bound in this spec (`classes` on real
        targets), for its error."""
        self._evaluating: list[str] = [] if parent is None else parent._evaluating
        """The params being evaluated, outermost first."""
        self._depth = [0] if parent is None else parent._depth
        """How deep the value being built is nested, where evaluation is."""

    def child(self, values: Mapping[str, ir.Expr], unknown: Iterable[str] = ()) -> Scope:
        """A scope that binds `values` (and leaves `unknown` unknown) on top of this one."""
        return Scope(self.params, {**self.values, **values}, self.unknown | set(unknown),
                     parent=self)

    def bind(self, name: str, value: ir.Expr) -> None:
        self.values[name] = value

    def visible(self) -> list[str]:
        return [*self.params, *self.values, *self.unknown]

    def is_unknown(self, name: str) -> bool:
        return name in self.unknown and name not in self.values

    def undefined(self, name: ir.Name, choices: Iterable[str]) -> SpecError:
        if name.name in self.absent:
            return SpecError.at(name.span, self.absent[name.name])
        return undefined_name(name, choices, self.visible(), catalogue_kind(name.name))

    def lookup(self, name: str, span: Span | None) -> ir.Expr | None:
        """The value `name` is bound to here, or None."""
        if name in self.values:
            return self.values[name]
        if name in self.unknown:
            return ir.Name(name=name, span=span)  # stands for itself, hiding a param
        if self.root is not self:
            return self.root.lookup(name, span)
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
        nests = not isinstance(expr, ir.Name)  # a name does not
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
        if isinstance(expr, ir.Name):
            value = self.lookup(expr.name, expr.span)
            if value is None:
                return expr
            # a value is placed where it is named; a name keeps its own place, where an
            # error about it (an undefined name a param holds) belongs
            return value if isinstance(value, ir.Name) else value.model_copy(
                update={"span": expr.span})
        if isinstance(expr, ir.Call):
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
