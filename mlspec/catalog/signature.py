"""One signature and one binder for every call of the language.

A `Signature` lists what a call takes: each parameter's name, default and type. It is made
from a catalogue entry's pydantic fields (`Signature.of_entry`), from a block's params
(`Signature.of_block`), or from an optax function's signature as read from optax's source
(`optimizers.optax_signature`). `bind` maps a call's positional and keyword arguments
onto it, evaluates each in the caller's scope and settles every bare name in it by what
the parameter's type takes:

- a symbol that the type lists: `mode: Symbol[Literal["min", "max"]]` takes `mode=min`;
- an entry of a catalogue that the type names (`Annotated[..., Catalogue(...)]`), written
  as its name or as a call and built through the same binder:
  `learning_rate=cosine_decay_schedule(...)`;
- a metric path: `metric: MetricPath` takes `metric=valid.loss`.

Any other name is `undefined name 'widht'; did you mean 'width'?` at its place: a name in
a spec is never silently a string. Types and ranges are then pydantic's to check.

Example:
    >>> from typing import Literal
    >>> from mlspec.syntax.parser import parse_expr
    >>> mode = Symbol[Literal["a", "b"]]
    >>> signature = Signature("f", (Parameter("n", int), Parameter("mode", mode, "a")))
    >>> bind(signature, parse_expr("f(2, mode=b)")).values
    {'n': 2, 'mode': 'b'}
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, Union, get_args, get_origin

from pydantic_core import PydanticUndefined

from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, Span, SpecError, did_you_mean, nearest


@dataclass(frozen=True)
class Symbols:
    """Annotated metadata: the bare names that a value may be written as."""

    names: tuple[str, ...]


class Symbol:
    """`Symbol[Literal["min", "max"]]`: a value written as one of these bare names
    (`mode=min`) or as the string of one (`mode="min"`); pydantic sees the Literal."""

    def __class_getitem__(cls, literal: Any) -> Any:
        return Annotated[literal, Symbols(get_args(literal))]


@dataclass(frozen=True)
class _MetricPath:
    """Annotated metadata: a metric's history column, written bare (`valid.loss`)."""


MetricPath = Annotated[str, _MetricPath()]
"""A metric path such as `valid.loss`; whether it is recorded is the task's check."""


@dataclass(frozen=True)
class Catalogue:
    """Annotated metadata: a value of this type is an entry of a catalogue, written as its
    name or as a call of it, and built by `build(call, scope)`."""

    what: str
    names: Callable[[], Collection[str]]
    build: Callable[[ir.Name | ir.Call, Names], Any]

    def __contains__(self, name: object) -> bool:
        return name in self.names()


class Expression:
    """The type of a block's parameters: the value stays an expression, evaluated but not
    settled; its names mean what they mean where the block's body uses them."""


class Names(Protocol):
    """What the binder needs of a scope (`mlspec.semantics.scope.Scope`)."""

    @property
    def root(self) -> Names:
        """The scope that defaults are evaluated in: the spec's params and `classes`."""

    def evaluate(self, expr: ir.Expr) -> ir.Expr:
        """`expr` with the names bound here (params, block arguments) substituted."""

    def is_unknown(self, name: str) -> bool:
        """Whether `name` stands for a value not known here (a library's block argument)."""

    def undefined(self, name: ir.Name, choices: Iterable[str]) -> SpecError:
        """The error for `name`, which means nothing where it stands; `choices` are what
        the place takes."""


class NoNames:
    """A scope without params, block arguments or `classes` (a call built from Python)."""

    root: Names

    def __init__(self) -> None:
        self.root = self

    def evaluate(self, expr: ir.Expr) -> ir.Expr:
        return expr

    def is_unknown(self, name: str) -> bool:
        return False

    def undefined(self, name: ir.Name, choices: Iterable[str]) -> SpecError:
        return undefined_name(name, choices)


NO_NAMES = NoNames()


def undefined_name(name: ir.Name, choices: Iterable[str], visible: Iterable[str] = (),
                   kind: str | None = None) -> SpecError:
    """`undefined name 'x'; did you mean 'y'?` (the nearest of what the place takes,
    `choices`, and the names bound there, `visible`; else the few choices there are), or,
    for a name that is `kind` (a layer, a loss) where that cannot stand, says so."""
    choices = list(choices)
    close = nearest(name.name, {*choices, *visible})
    hint = f"; did you mean '{close}'?" if close else did_you_mean(name.name, choices)
    if kind is not None:
        return SpecError.at(name.span, f"'{name.name}' is {kind}, which cannot stand here{hint}")
    return SpecError.at(name.span, f"undefined name '{shown(name.name)}'{hint}")


SHOWN = 60  # characters of a name shown in an error


def shown(name: str) -> str:
    return name if len(name) <= SHOWN else name[:SHOWN] + "..."


REQUIRED: Any = PydanticUndefined
"""The default of a parameter that has none."""


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: Any = Any
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Signature:
    """What a call takes, in positional order; `label` names the callee in messages
    ("layer 'dense'") and `noun` what it calls its parameters."""

    label: str
    parameters: tuple[Parameter, ...]
    noun: str = "argument"
    forms: tuple[tuple[int, tuple[str, ...]], ...] = ()
    """Short forms: so many positional arguments bind to these parameters, not to the
    first ones (`embedding(8)` is `embedding(features=8)`)."""

    def positional(self, count: int) -> list[str]:
        """The parameters that `count` positional arguments bind to, in order."""
        return list(dict(self.forms).get(count, self.names))

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @classmethod
    @functools.cache
    def of_entry(cls, entry: type, label: str) -> Signature:
        """A pydantic model's fields (an Entry's arguments: `kind`, `span` and a
        composite's `body` are no arguments)."""
        names = entry.argument_names() if hasattr(entry, "argument_names") else [
            n for n in entry.model_fields if n not in ("kind", "span")]
        fields = entry.model_fields
        return cls(label, tuple(Parameter(n, fields[n].rebuild_annotation(),
                                          REQUIRED if fields[n].is_required()
                                          else fields[n].get_default(call_default_factory=True))
                                for n in names), forms=getattr(entry, "positional_forms", ()))

    @classmethod
    def of_block(cls, block: ir.Block) -> Signature:
        """A block's params; a default is an expression of the spec's params and
        `classes`, evaluated where the block is used."""
        return cls(f"block '{block.name}'", tuple(
            Parameter(p.name, Expression, REQUIRED if p.default is None else p.default)
            for p in block.params), noun="parameter")

    def value(self, name: str, expr: ir.Expr, scope: Names = NO_NAMES) -> Any:
        """One parameter's value from `expr`, as `bind` makes it."""
        return settle(scope.evaluate(expr), self.parameter(name).annotation, scope)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The value of an argument that depends on a value not known where it is bound."""


@dataclass
class Bound:
    """A call's arguments bound to a signature: each given (or defaulted expression)
    parameter's value and place, and the parameters whose values are not known here or
    whose names were wrong (`errors`, reported with the values' other mistakes)."""

    values: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, Span | None] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    errors: list[Diagnostic] = field(default_factory=list)

    def raise_with(self) -> None:
        """Raises the errors found (the binding's and its validation's), in reading
        order, if any."""
        if self.errors:
            raise SpecError(sorted(self.errors, key=lambda d: (
                (d.span.file, d.span.line, d.span.column) if d.span else ("", 0, 0))))


def bind(signature: Signature, call: ir.Name | ir.Call | ir.LayerCall,
         scope: Names = NO_NAMES) -> Bound:
    """Maps `call`'s arguments onto `signature`: positional ones in order (or as the
    signature's short form for so many says), keywords by name. Too many positional
    arguments, an unknown or twice-given keyword, and a missing required argument are
    errors at their place; each value is evaluated in `scope` and its names settled by
    its parameter's type (see `settle`)."""
    label, parameters = signature.label, signature.parameters
    args, kwargs = getattr(call, "args", ()), getattr(call, "kwargs", ())
    if len(args) > len(parameters):
        n = len(parameters)
        raise SpecError.at(args[n].span, f"{label} takes no arguments" if not n else
                           f"{label} takes at most {n} positional argument{'s' * (n != 1)}")
    given: dict[str, tuple[ir.Expr, Span | None]] = {
        n: (a, a.span) for n, a in zip(signature.positional(len(args)), args)}
    for kw in kwargs:
        if signature.parameter(kw.name) is None:
            raise SpecError.at(kw.span, f"{label} has no {signature.noun} '{kw.name}'"
                                        f"{did_you_mean(kw.name, signature.names)}")
        if kw.name in given:
            raise SpecError.at(kw.span, f"argument '{kw.name}' of {label} is given twice")
        given[kw.name] = (kw.value, kw.value.span or kw.span)
    missing = next((p.name for p in parameters if p.required and p.name not in given), None)
    if missing is not None:
        raise SpecError.at(call.span, f"{label} needs argument '{missing}'")
    bound = Bound()
    for p in parameters:
        where = scope
        if p.name in given:
            expr, span = given[p.name]
        elif p.annotation is Expression and not p.required:  # a block's default
            expr, span, where = p.default, call.span, scope.root  # of the spec's names
        else:
            continue
        try:
            value = settle(where.evaluate(expr), p.annotation, where)
        except SpecError as exc:
            bound.errors += exc.diagnostics
            bound.failed.add(p.name)
            continue
        if value is UNKNOWN:
            bound.unknown.add(p.name)
        else:
            bound.values[p.name], bound.spans[p.name] = value, span
    return bound


# ------------------------------------------------------------------ settling names


@dataclass(frozen=True)
class Takes:
    """The bare names a type takes, read from its annotation."""

    symbols: tuple[str, ...] = ()
    catalogues: tuple[Catalogue, ...] = ()
    metric_path: bool = False
    expression: bool = False
    items: Takes | None = None
    """What a list's items take, for a list type."""
    strings: tuple[str, ...] = ()
    """The strings a Literal lists: written as strings (`padding="SAME"`), not bare."""
    words: tuple[str, ...] = ()
    """Other words that may stand there (`true`), for a misspelling's hint."""
    text: bool = False
    """Whether any string may stand there (`path: str`): a bare name is one unquoted."""

    def __or__(self, other: Takes) -> Takes:
        items = self.items if other.items is None else (
            other.items if self.items is None else self.items | other.items)
        return Takes(self.symbols + other.symbols, self.catalogues + other.catalogues,
                     self.metric_path or other.metric_path,
                     self.expression or other.expression, items,
                     self.strings + other.strings, self.words + other.words,
                     self.text or other.text)

    def choices(self) -> Iterator[str]:
        yield from self.symbols
        for catalogue in self.catalogues:
            yield from catalogue.names()
        yield from self.words


_NOTHING = Takes()
_SEQUENCES = (tuple, list, set, frozenset, Sequence, Iterable, Collection)


def takes(annotation: Any) -> Takes:
    """The names `annotation` takes: its symbols, catalogues and metric paths, through
    unions, `Annotated` and list types."""
    if annotation is Expression:
        return Takes(expression=True)
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        found = takes(base)
        for item in metadata:
            if isinstance(item, Symbols):
                found |= Takes(symbols=item.names)
            elif isinstance(item, Catalogue):
                found |= Takes(catalogues=(item,))
            elif isinstance(item, _MetricPath):
                found |= Takes(metric_path=True)
        return found
    if origin in (Union, types.UnionType):
        return functools.reduce(Takes.__or__, map(takes, get_args(annotation)), _NOTHING)
    if origin in _SEQUENCES:
        items = [takes(a) for a in get_args(annotation) if a is not Ellipsis]
        return Takes(items=functools.reduce(Takes.__or__, items, _NOTHING))
    if origin is Literal:
        return Takes(strings=tuple(a for a in get_args(annotation) if isinstance(a, str)))
    if annotation is bool:
        return Takes(words=("true", "false"))
    if annotation is str:
        return Takes(text=True)
    return _NOTHING


def settle(value: ir.Expr, annotation: Any, scope: Names = NO_NAMES) -> Any:
    """An evaluated value as the Python data that pydantic validates: literals as their
    values, lists as tuples, each bare name as what `annotation` takes it to be (its
    symbol's string, its metric path, its catalogue entry built). A value that depends on
    a name not known here is UNKNOWN."""
    return _settle(value, takes(annotation), scope)


def _settle(value: ir.Expr, taken: Takes, scope: Names) -> Any:
    if taken.expression:
        return value
    if isinstance(value, ir.Name):
        if scope.is_unknown(value.name):
            return UNKNOWN
        if value.name in taken.symbols:
            return value.name
        catalogue = next((c for c in taken.catalogues if value.name in c), None)
        if catalogue is not None:
            return catalogue.build(value, scope)
        if taken.metric_path:
            return value.name
        error = scope.undefined(value, taken.choices())
        said = error.diagnostics[0].message
        if value.name in taken.strings or (taken.text and said.startswith("undefined name")
                                           and "did you mean" not in said):
            raise SpecError.at(value.span, f"undefined name '{shown(value.name)}'; this is a "
                                           f"string here: write \"{shown(value.name)}\"")
        raise error
    if isinstance(value, ir.Call):
        if taken.catalogues:  # the one that has it, else the first says it does not
            catalogue = next((c for c in taken.catalogues if value.name in c),
                             taken.catalogues[0])
            return catalogue.build(value, scope)
        return value  # pydantic says what should stand here instead
    if isinstance(value, ir.ListExpr):
        items = [_settle(item, taken.items or _NOTHING, scope) for item in value.items]
        return UNKNOWN if any(item is UNKNOWN for item in items) else tuple(items)
    if isinstance(value, (ir.BinOp, ir.Neg)):  # arithmetic left over holds a name
        for name in _names_in(value):
            if scope.is_unknown(name.name):
                return UNKNOWN
            raise scope.undefined(name, ())
        return value
    return value.value


def _names_in(expr: ir.Expr) -> Iterator[ir.Name]:
    """The bare names of arithmetic, in reading order."""
    if isinstance(expr, ir.Name):
        yield expr
    elif isinstance(expr, ir.BinOp):
        yield from _names_in(expr.left)
        yield from _names_in(expr.right)
    elif isinstance(expr, ir.Neg):
        yield from _names_in(expr.operand)
