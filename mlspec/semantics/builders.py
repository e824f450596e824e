"""The catalogue as Python functions: `mlspec.dense(2)`, `mlspec.hill(n=1000)`,
`mlspec.adam(learning_rate=0.01)`, made from the registries on first use.

Each function's signature and docstring come from its entry (an entry's fields, an optax
function's arguments), so `help(mlspec.dense)` and the completion of an IDE that asks
Python (IPython, Jupyter) show its arguments; a new entry gets its function with no edit
here. A call is checked as `check` would check it, as far as its arguments are plain
values: an unknown or repeated argument, a missing one, a value of the wrong type or out
of range is a SpecError at once. Arguments that are names (params) or expressions are
left to `mlspec.check`.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mlspec.catalog.registry import Entry, build_entry
from mlspec.catalog.signature import NoNames, bind
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError, did_you_mean
from mlspec.syntax.limits import NAME

_ENTRY = "__mlspec_entry__"  # the attribute that names a function's catalogue entry


def entry_name_of(function: Any) -> str | None:
    """The catalogue name that a function of this module builds, else None."""
    return getattr(function, _ENTRY, None)


def _entries() -> dict[str, tuple[str, type[Entry]]]:
    """Catalogue entries with fields, by name: (what it is, its class); a name is the
    first catalogue's that has it (layers, losses, sources, then early_stop)."""
    from mlspec.catalog.layers import LAYERS
    from mlspec.catalog.losses import LOSSES
    from mlspec.catalog.sources import SOURCES
    from mlspec.semantics.train import EarlyStop

    found: dict[str, tuple[str, type[Entry]]] = {}
    for registry in (LAYERS, LOSSES, SOURCES):
        for entry_name, cls in registry.items():
            found.setdefault(entry_name, (registry.what, cls))
    found.setdefault(EarlyStop.entry_name(), ("setting", EarlyStop))
    return found


def catalogue_names() -> list[str]:
    """Every name that `catalogue_function` knows."""
    from mlspec.catalog.optimizers import optax_catalogue

    return sorted(set(_entries()) | set(optax_catalogue()))


def catalogue_kind(entry_name: str) -> str | None:
    """What a catalogue name is ("layer", "loss", "optimizer", ...), or None."""
    from mlspec.catalog.optimizers import optax_catalogue

    if entry_name in _entries():
        return _entries()[entry_name][0]
    fn = optax_catalogue().get(entry_name)
    return fn.kind if fn is not None else None


@functools.cache
def catalogue_function(entry_name: str) -> Callable[..., Any] | None:
    """The builder function of a catalogue entry, or None for a name that is none."""
    entry = _entries().get(entry_name)
    if entry is not None:
        return _entry_function(entry_name, *entry)
    from mlspec.catalog.optimizers import optax_catalogue

    fn = optax_catalogue().get(entry_name)
    return _optax_function(fn) if fn is not None else None


def _finish(function, entry_name: str, signature: inspect.Signature, doc: str):
    function.__name__ = function.__qualname__ = entry_name
    function.__module__ = "mlspec"
    function.__signature__ = signature
    function.__doc__ = doc
    setattr(function, _ENTRY, entry_name)
    return function


# ---------------------------------------------------------------- values and layers


def name(text: str) -> ir.Expr:
    """A bare name in a value position: a param, a block argument, `classes`, a metric
    path (`valid.loss`) or a symbol (`min`).

    Args:
        text: the name, dotted where it is a path.

    Returns:
        The name's IR node.

    Example:
        >>> wide = mlspec.dense(mlspec.name("width"))  # dense(width)
    """
    if not isinstance(text, str) or not all(NAME.fullmatch(p) for p in text.split(".")):
        raise SpecError.at(None, f"{text!r} is not a name (letters, digits and _, dotted "
                                 "for a path such as valid.loss)")
    return ir.Name(name=text)


classes = name("classes")
"""The data's number of classes, as a value: `mlspec.dense(mlspec.classes)`."""


def a_word(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def a_kind(item: Any) -> str:
    """What a Python value is, for a message: `an int`, `a dict`."""
    return a_word(type(item).__name__)


def value(item: Any) -> ir.Expr:
    """A Python value as a spec value: literals as they are, lists as lists, a dict as a
    list of `[key, value]` pairs (`{100: 0.1}` for optax's step boundaries); a param, a
    block arg or an uncalled catalogue function as its name; a layer as a call."""
    if isinstance(item, (ir.Param, ir.BlockParam)):
        return name(item.name)
    if isinstance(item, ir.LayerCall):
        if item.body is not None:
            raise SpecError.at(None, f"layer '{item.name}' with a body cannot be a value")
        return _as_value(item)
    if isinstance(item, ir.Node):
        return item
    if callable(item) and entry_name_of(item) is not None:
        return name(entry_name_of(item))
    if isinstance(item, float) and not math.isfinite(item) or isinstance(item, int) \
            and not isinstance(item, bool) and not -(2**63) <= item <= 2**63 - 1:
        raise SpecError.at(None, f"{item!r} is no spec number (a 64-bit integer or a "
                                 "finite float)")
    if isinstance(item, (bool, int, float, str)):
        return ir.as_expr(item)
    if isinstance(item, Mapping):
        return ir.ListExpr(items=tuple(value([k, v]) for k, v in item.items()))
    if isinstance(item, (list, tuple)):
        return ir.ListExpr(items=tuple(value(v) for v in item))
    raise SpecError.at(None, f"{a_kind(item)} cannot be a spec value (numbers, "
                             "strings, booleans, lists, params and calls can)")


def call(callee: str, *args: Any, **kwargs: Any) -> ir.Call:
    """A call by name, unchecked: for what the catalogue functions do not cover.

    Args:
        callee: the name called (a catalogue entry, an optax function).
        *args: positional arguments, as Python values.
        **kwargs: keyword arguments, as Python values.

    Returns:
        The call's IR node; `mlspec.check` checks it where it is used.

    Example:
        >>> trial = mlspec.call("loguniform", 1e-4, 1e-1)  # loguniform(0.0001, 0.1)
    """
    return ir.as_expr(ir.Call(name=callee, args=tuple(value(a) for a in args), kwargs=tuple(
        ir.Keyword(name=k, value=value(v)) for k, v in kwargs.items())))


def layers(items: Iterable[Any]) -> tuple[ir.LayerCall, ...]:
    """Layers from Python: layer calls, layer names (`"relu"`), uncalled catalogue
    functions (`mlspec.relu`), block args and blocks (used without arguments), and lists
    of these."""
    out: list[ir.LayerCall] = []
    for item in items:
        if isinstance(item, ir.LayerCall):
            out.append(item)
        elif isinstance(item, (list, tuple)):
            out.extend(layers(item))
        elif isinstance(item, str):
            out.append(_layer_function(item)())
        elif callable(item) and entry_name_of(item) is not None:
            out.append(_layer_function(entry_name_of(item))())
        elif isinstance(item, (ir.BlockParam, ir.Block)):
            out.append(ir.LayerCall(name=item.name))
        elif isinstance(item, ir.Call):  # `mlspec.call(...)`, or a call of another catalogue
            what = catalogue_kind(item.name)
            if what not in (None, "layer"):
                raise SpecError.at(None, f"'{item.name}' is {a_word(what)}, not a layer")
            out.append(layer(item.name, *item.args, **{k.name: k.value for k in item.kwargs}))
        else:
            raise SpecError.at(None, f"{a_kind(item)} cannot be a layer (a layer "
                                     "call, a layer's name or a block can)")
    return tuple(out)


def _layer_function(layer_name: str) -> Callable[..., ir.LayerCall]:
    from mlspec.catalog.layers import LAYERS

    if layer_name not in LAYERS:
        what = catalogue_kind(layer_name)
        raise SpecError.at(None, f"'{layer_name}' is {a_word(what)}, not a layer" if what else
                           f"unknown layer '{layer_name}'{did_you_mean(layer_name, LAYERS)}")
    return catalogue_function(layer_name)


def layer(callee: str | ir.Block, *args: Any, **kwargs: Any) -> ir.LayerCall:
    """A layer by name: a catalogue layer (checked as `mlspec.dense` checks its call),
    or a block, given as itself or, for one imported from a library file, by its name.

    Args:
        callee: a layer's or a block's name, or a block made by `mlspec.block`.
        *args: its positional arguments; a composite's body follows them.
        **kwargs: its keyword arguments.

    Returns:
        The layer's IR node.

    Example:
        >>> width = mlspec.arg("width")
        >>> mlp = mlspec.block("mlp", [width], mlspec.dense(width), "relu")
        >>> two = mlspec.model("two", mlspec.layer(mlp, 64), mlspec.layer("mlp", 8))
    """
    from mlspec.catalog.layers import LAYERS

    if isinstance(callee, ir.Block):
        callee = callee.name
    if not isinstance(callee, str):
        raise SpecError.at(None, f"{a_kind(callee)} cannot name a layer (a layer's or a "
                                 "block's name, or a block, can)")
    if callee in LAYERS:
        return _layer_function(callee)(*args, **kwargs)
    # not through `call`: a call without arguments would be a bare name, not a call
    return ir.LayerCall(name=callee, args=tuple(value(a) for a in args), kwargs=tuple(
        ir.Keyword(name=k, value=value(v)) for k, v in kwargs.items()))


# ---------------------------------------------------------------- entries with fields


def _entry_function(entry_name: str, what: str, cls: type[Entry]):
    composite = bool(getattr(cls, "composite", False))
    names = cls.argument_names()
    fields = cls.model_fields
    required = [n for n in names if fields[n].is_required()]

    def build(*args: Any, **kwargs: Any):
        body = None
        if composite:  # the required arguments, then the body
            args, body = args[:len(required)], layers(args[len(required):])
        node = ir.LayerCall(name=entry_name, args=tuple(value(a) for a in args), kwargs=tuple(
            ir.Keyword(name=k, value=value(v)) for k, v in kwargs.items()), body=body)
        check_entry_call(cls, node, what)
        return node if what == "layer" else _as_value(node)

    parameters = []
    for i, n in enumerate(names):
        # a required argument after an optional one (`embedding(vocab=None, features)`) is
        # shown keyword-only, as Python has it; given by position, it binds as in a spec
        after_optional = n in required and any(m not in required for m in names[:i])
        kind = inspect.Parameter.KEYWORD_ONLY if (composite and n not in required) \
            or after_optional else inspect.Parameter.POSITIONAL_OR_KEYWORD
        default = inspect.Parameter.empty if fields[n].is_required() else fields[n].default
        parameters.append(inspect.Parameter(
            n, kind, default=default, annotation=_Shown(_type_text(fields[n].annotation))))
    if composite:
        parameters.insert(len(required), inspect.Parameter(
            "body", inspect.Parameter.VAR_POSITIONAL, annotation=_Shown("layer")))
    returns = _Shown("LayerCall" if what == "layer" else "Call")
    return _finish(build, entry_name, inspect.Signature(parameters, return_annotation=returns),
                   _entry_doc(entry_name, what, cls, composite))


def _as_value(layer: ir.LayerCall) -> ir.Name | ir.Call:
    """A layer-shaped call as a value: a call with its arguments, or the bare name."""
    return ir.as_expr(ir.Call(name=layer.name, args=layer.args, kwargs=layer.kwargs,
                              span=layer.span))


class _Deferred(NoNames):
    """The scope of a call built from Python: every name is left to `check`, which knows
    the spec's params and the data's `classes`."""

    def is_unknown(self, name: str) -> bool:
        return True


_DEFERRED = _Deferred()


def check_entry_call(cls: type[Entry], call: ir.LayerCall, what: str) -> None:
    """The checks of `check` that need no names: argument names and counts, and the
    arguments given as plain values (their types and ranges)."""
    build_entry(cls, call, f"{what} '{call.name}'", _DEFERRED)


def _plain(expr: ir.Expr) -> bool:
    """A value that is itself: no name, call or arithmetic in it."""
    if isinstance(expr, ir.ListExpr):
        return all(_plain(item) for item in expr.items)
    return isinstance(expr, (ir.Number, ir.String, ir.Bool))


def _entry_doc(entry_name: str, what: str, cls: type[Entry], composite: bool) -> str:
    from mlspec.catalog.tables import entry_arguments

    fields = cls.model_fields
    plain = [a for a in entry_arguments(cls) if a != "{ body }"]
    spelled = entry_name + (f"({', '.join(plain)})" if plain else "") + \
        (" { body }" if composite else "")
    lines = [inspect.cleandoc(cls.__doc__ or f"The {what} '{entry_name}'."), ""]
    if cls.argument_names() or composite:
        lines.append("Args:")
    for n in cls.argument_names():
        field = fields[n]
        bounds = "".join(f", {_bound(m)}" for m in field.metadata if _bound(m))
        default = "required" if field.is_required() else "optional" \
            if field.default is None else f"default {ir_text(field.default)}"
        lines.append(f"    {n}: {_type_text(field.annotation)}{bounds}; {default}.")
    if composite:
        lines.append("    *body: its layers, as `mlspec.model` takes them.")
    use = {"layer": "`mlspec.model`, a block or a composite's body",
           "loss": "`mlspec.train(loss=...)`", "data source": "`mlspec.data(...)`"}
    lines += ["", "Returns:", f"    The {what} as spec IR, for "
              f"{use.get(what, '`mlspec.train(...)`')}.", "", "Example:",
              f"    `mlspec.{entry_name}(...)` with the arguments of `{spelled}` in a spec"
              + (", then the body's layers." if composite else ".")]
    return "\n".join(lines)


def ir_text(default: Any) -> str:
    """A default as a spec writes it."""
    from mlspec.syntax.printer import format_expr

    return format_expr(ir.as_expr(default))


_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _bound(metadata: Any) -> str | None:
    for attribute, sign in _BOUNDS.items():
        if getattr(metadata, attribute, None) is not None:
            return f"{sign} {getattr(metadata, attribute)}"
    return None


def _type_text(annotation: Any) -> str:
    """`Union[Annotated[int, Gt(0)], tuple[...]]` as `int | tuple[int, ...]`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_text(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is tuple:
        return f"tuple[{_type_text(args[0])}, ...]" if args[-1:] == (...,) else "tuple"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


# ---------------------------------------------------------------- optax functions


def _optax_function(fn):
    from mlspec.catalog.optimizers import optax_signature, resolve_optax
    from mlspec.catalog.tables import optax_arguments


    def build(*args: Any, **kwargs: Any) -> ir.Call:
        node = ir.Call(name=fn.name, args=tuple(value(a) for a in args), kwargs=tuple(
            ir.Keyword(name=k, value=value(v)) for k, v in kwargs.items()))
        bind(optax_signature(fn), node, _DEFERRED).raise_with()
        if _optax_plain(node):
            resolve_optax(node, fn.kind)
        return node

    parameters = [inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=inspect.Parameter.empty if a.required
                                    else _optax_default(a.default),
                                    annotation=_Shown(a.annotation or "Any"))
                  for a in fn.arguments]
    spelled = optax_arguments(fn)  # those a spec can give, as it writes them
    lines = [f"`optax.{fn.name}`: {fn.summary}", "", "Args:"]
    lines += [f"    {a.name}: {a.annotation or 'any'}; " + (
        "required." if a.required else f"default {a.default}." if a.name in spelled
        or any(p.startswith(f"{a.name}=") or p == f"[{a.name}]" for p in spelled)
        else "a Python object, which a spec cannot give.") for a in fn.arguments]
    lines += ["", "Returns:", "    The call as spec IR, for `mlspec.train(optimizer=...)`"
              + (" or an optimizer's `learning_rate`" if fn.kind == "schedule" else "") + ".",
              "", "Example:", f"    `mlspec.{fn.name}(...)` with the arguments of "
              f"`{fn.name}({', '.join(spelled)})` in a spec."]
    return _finish(build, fn.name, inspect.Signature(parameters, return_annotation=_Shown(
        "Call")), "\n".join(lines))


class _Shown:
    """Text shown as it is in a signature: a type, or a default that is no Python
    literal (`jnp.float32`) as optax writes it."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _optax_default(text: str | None) -> Any:
    try:
        return ast.literal_eval(text or "None")
    except (ValueError, SyntaxError):
        return _Shown(text)


def _optax_plain(expr: ir.Expr) -> bool:
    """Only plain values and calls of optax functions with such values: checkable now."""
    if isinstance(expr, ir.Call):
        return expr.has_arguments and all(
            _optax_plain(e) for e in (*expr.args, *(k.value for k in expr.kwargs)))
    if isinstance(expr, ir.ListExpr):
        return all(_optax_plain(item) for item in expr.items)
    return isinstance(expr, (ir.Number, ir.String, ir.Bool))
