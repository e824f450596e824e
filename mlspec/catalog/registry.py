"""Registries and the typed catalogue entry every layer, loss and data source builds on.

An entry is a frozen pydantic model whose fields are its arguments, in positional order:

    class Dense(Layer):
        kind: Literal["dense"] = "dense"
        features: PositiveInt
        use_bias: bool = True

Registering it makes `dense(2)` and `dense(features=2, use_bias=false)` mean `Dense(...)`:
the call is bound to the entry's fields by `signature.bind`, and types and ranges are
checked by pydantic, whose errors are mapped back to the argument's place in the source.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any, Generic, TypeVar

from pydantic import ConfigDict, ValidationError
from pydantic_core import core_schema

from mlspec.catalog.signature import NO_NAMES, Names, Signature, bind
from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, Span, SpecError, did_you_mean

T = TypeVar("T")


class Entry(ir.Node):
    """A typed catalogue node: `kind` names it, the other fields are its arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)

    @classmethod
    def entry_name(cls) -> str:
        return cls.model_fields["kind"].default

    @classmethod
    def argument_names(cls) -> list[str]:
        return [n for n in cls.model_fields if n not in ("kind", "span")]

    def arguments(self) -> dict[str, Any]:
        """The arguments that differ from their defaults, for printing."""
        fields = type(self).model_fields
        return {n: getattr(self, n) for n in self.argument_names()
                if fields[n].is_required() or getattr(self, n) != fields[n].default}


class Registry(Generic[T]):
    """Names -> entries for one catalogue; duplicates are refused, unknowns get a hint."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}
        self._kinds: dict[str, type[Entry]] = {}
        self._kinds_read = False

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, cls: T) -> T:
        """Class decorator: registers an Entry under its `kind`."""
        self._check_kind(cls)  # type: ignore[arg-type]
        self.add(cls.entry_name(), cls)  # type: ignore[attr-defined]
        self._kinds[cls.entry_name()] = cls  # type: ignore[attr-defined]
        return cls

    def add_kind(self, cls: type[Entry]) -> type[Entry]:
        """Class decorator: a kind that a typed program may hold but no spec names (a
        block's use); `register` adds every entry's kind too."""
        self._check_kind(cls)
        self._kinds[cls.entry_name()] = cls
        return cls

    def _check_kind(self, cls: type[Entry]) -> None:
        kind = cls.entry_name()
        if kind in self._kinds:
            raise ValueError(f"{self.what} kind '{kind}' is registered twice")
        if self._kinds_read:  # a schema built already would not know it
            raise RuntimeError(f"{self.what} kind '{kind}' is registered after a schema of "
                               f"every {self.what} kind was built: register it with the "
                               "catalogue")

    def kinds(self) -> dict[str, type[Entry]]:
        """Every kind a typed program may hold, by its `kind`."""
        return dict(self._kinds)

    def any_kind(self) -> AnyKind:
        """Field metadata for a value of any of this registry's kinds, read back from JSON
        by its `kind`: `body: tuple[Annotated[Layer, LAYERS.any_kind()], ...]`."""
        return AnyKind(self)

    def get(self, name: str) -> T | None:
        return self._entries.get(name)

    def lookup(self, name: str, span: Span | None, others: Iterable[str] = ()) -> T:
        """The entry `name`; an unknown one is an error at `span` naming the nearest of
        the entries and `others` (the blocks, where a layer is looked up)."""
        entry = self._entries.get(name)
        if entry is None:
            raise unknown(self.what, name, span, [*self, *others])
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self):
        return self._entries.items()


def unknown(what: str, name: str, span: Span | None, choices: Iterable[str]) -> SpecError:
    """`unknown layer 'dens'; did you mean 'dense'?`: a name where a catalogue's entry is
    expected that is none of `choices`."""
    return SpecError.at(span, f"unknown {what} '{name}'{did_you_mean(name, choices)}")


class AnyKind:
    """A discriminated union on `kind` over a registry's kinds, as pydantic metadata. It
    is built with the schema that holds it, on first use (schemas are deferred), so it
    takes every kind the catalogue registers, wherever in the catalogue that is."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        registry = self.registry
        registry._kinds_read = True
        return core_schema.tagged_union_schema(
            {kind: handler.generate_schema(cls) for kind, cls in registry._kinds.items()},
            discriminator="kind")


def name_span(call: ir.Node) -> Span | None:
    """The span of just the name at the start of a call, for "unknown name" carets."""
    s = call.span
    if s is None:
        return None
    name = getattr(call, "name", None) or getattr(call, "kind", "")
    return s.model_copy(update={"end_line": s.line, "end_column": s.column + len(name)})


def to_python(expr: ir.Expr) -> Any:
    """A literal value as plain Python: numbers, strings, booleans, lists as tuples; any
    other node (a name, a call, arithmetic left over) stays as it is."""
    if isinstance(expr, (ir.Number, ir.String, ir.Bool)):
        return expr.value
    if isinstance(expr, ir.ListExpr):
        return tuple(to_python(item) for item in expr.items)
    return expr


def describe(value: Any) -> str:
    if isinstance(value, ir.Call):
        return f"a call of '{value.name}'"
    if isinstance(value, ir.Name):
        return "a name"
    if isinstance(value, ir.Node):
        return "an expression"
    if isinstance(value, tuple):
        return "a list"
    return {"int": "an integer", "float": "a number", "str": "a string",
            "bool": "a boolean"}.get(type(value).__name__, type(value).__name__)


def validate_entry(
    cls: type[Entry], values: dict[str, Any], spans: dict[str, Span | None],
    span: Span | None, label: str, noun: str = "argument",
    skip: Collection[str] = (), **extra: Any,
) -> Any:
    """Builds the entry with pydantic and maps its errors to the offending argument. The
    fields in `skip` (left out of `values`: their own mistakes are reported already) are
    not reported; when only they are wrong, None."""
    data = {**values, **extra} | ({"span": span} if "span" in cls.model_fields else {})
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = []
        reported = set()
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else None
            # a union reports once per member type (the first is kept)
            if field in reported or field in skip:
                continue
            reported.add(field)
            if err["type"] == "missing":
                problems.append((span, f"{label} needs argument '{field}'"))
                continue
            message = err["msg"][0].lower() + err["msg"][1:]
            if field is None or field not in spans:
                problems.append((span, f"{label}: {message}"))
            else:
                value = values.get(field)
                message = message.removeprefix("input ")
                problems.append((spans.get(field) or span,
                                 f"{noun} '{field}' of {label} {_as_clause(message)}"
                                 f" (got {describe(value)} {_short(value)})"))
        if not problems:
            return None
        raise SpecError([Diagnostic(message=m, span=s) for s, m in problems]) from None


def _as_clause(message: str) -> str:
    return message if message.startswith(("should", "cannot")) else f"is invalid: {message}"


SHOWN = 60  # characters of a value shown in an error


def _short(value: Any) -> str:
    if isinstance(value, ir.Node):
        from mlspec.syntax.printer import format_expr

        text = format_expr(value)
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, tuple):
        text = "[" + ", ".join(_short(v) for v in value) + "]"
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def instantiate(registry: Registry, call: ir.Name | ir.Call | ir.LayerCall,
                scope: Names = NO_NAMES, **extra: Any) -> Any:
    """`name(args)` -> the registered entry, its arguments bound in `scope` and validated;
    None where only arguments not known here (a library's) might be wrong."""
    cls = registry.lookup(call.name, name_span(call))
    return build_entry(cls, call, f"{registry.what} '{call.name}'", scope, **extra)


def build_entry(cls: type[Entry], call: ir.Name | ir.Call | ir.LayerCall, label: str,
                scope: Names = NO_NAMES, **extra: Any) -> Any:
    """The entry `cls` from `call`'s arguments, every mistake in them reported at once."""
    bound = bind(Signature.of_entry(cls, label), call, scope)
    try:
        entry = validate_entry(cls, bound.values, bound.spans, call.span, label,
                               skip=bound.unknown | bound.failed, **extra)
    except SpecError as exc:
        bound.errors += exc.diagnostics
        entry = None
    bound.raise_with()
    return None if bound.unknown else entry


def entry_value(cls: type, name: str, expr: ir.Expr, scope: Names = NO_NAMES) -> Any:
    """The value of the field `name` of `cls` (a section's setting) from `expr`, as the
    binder makes an argument's: evaluated in `scope`, its names settled by the field's
    type. pydantic validates it with the rest."""
    return Signature.of_entry(cls, cls.__name__).value(name, expr, scope)
