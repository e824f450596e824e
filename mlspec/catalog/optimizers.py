"""Every optax optimizer alias and schedule, under optax's own names and argument names.

The catalogue is derived from optax itself: its source files are read with `ast` (without
importing optax, which would import jax) to list the aliases that `optax` exports from its
alias module, the schedules it exports, and each one's signature. A new optax release
brings its new optimizers with it. A call is bound to that signature by the one binder
(`signature.bind`) and its values checked by a pydantic model made from it, each
argument's type read from its annotation (see `argument_type`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from mlspec.catalog.registry import name_span, unknown, validate_entry
from mlspec.catalog.signature import (
    NO_NAMES,
    REQUIRED,
    Catalogue,
    Names,
    Parameter,
    Signature,
    Symbol,
    bind,
)
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError


@dataclass(frozen=True)
class OptaxArgument:
    name: str
    required: bool
    annotation: str
    default: str | None


@dataclass(frozen=True)
class OptaxFunction:
    name: str
    kind: Literal["optimizer", "schedule"]
    arguments: tuple[OptaxArgument, ...]
    summary: str

    def argument(self, name: str) -> OptaxArgument | None:
        return next((a for a in self.arguments if a.name == name), None)


def _optax_root() -> Path:
    spec = importlib.util.find_spec("optax")
    if spec is None or spec.origin is None:  # pragma: no cover - optax is a dependency
        raise RuntimeError("optax is not installed")
    return Path(spec.origin).parent


def _functions(path: Path) -> dict[str, tuple[ast.FunctionDef, dict[str, str]]]:
    """Top-level functions of a module, and `name = functools.partial(fn, k=v)` aliases
    (with their preset keywords)."""
    tree = ast.parse(path.read_text())
    found: dict[str, tuple[ast.FunctionDef, dict[str, str]]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found[node.name] = (node, {})
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func).endswith("partial") and node.value.args
                and isinstance(node.value.args[0], ast.Name)
                and node.value.args[0].id in found):
            base, _ = found[node.value.args[0].id]
            presets = {k.arg: ast.unparse(k.value) for k in node.value.keywords if k.arg}
            found[node.targets[0].id] = (base, presets)
    return found


_SPELLED = {"True": "true", "False": "false"}  # Python's literals as a spec writes them


def _signature(name: str, kind, fn: ast.FunctionDef, presets: dict[str, str]) -> OptaxFunction:
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    arguments = []
    for arg, default in pairs:
        default_text = presets.get(arg.arg, ast.unparse(default) if default else None)
        arguments.append(OptaxArgument(
            name=arg.arg, required=default_text is None,
            annotation=ast.unparse(arg.annotation) if arg.annotation else "",
            default=default_text,
        ))
    summary = (ast.get_docstring(fn) or "").strip().split("\n")[0]
    if presets:  # nadam = partial(adam, nesterov=True) has adam's docstring: say so
        given = ", ".join(f"`{k}={_SPELLED.get(v, v)}`" for k, v in presets.items())
        summary = f"{summary.rstrip('.')}: `{fn.name}` with {given}."
    return OptaxFunction(name, kind, tuple(arguments), summary)


def _imported_names(path: Path, module_suffix: str) -> list[str]:
    tree = ast.parse(path.read_text())
    return [a.asname or a.name for node in tree.body if isinstance(node, ast.ImportFrom)
            and (node.module or "").endswith(module_suffix) for a in node.names]


def _cache_file(root: Path) -> Path:
    """Where the catalogue read from this optax installation is kept between runs."""
    stamp = "-".join(str(int((root / f).stat().st_mtime_ns)) for f in (
        "__init__.py", "_src/alias.py", "schedules/_schedule.py"))
    key = hashlib.sha256(f"{root}:{stamp}:{_CACHE_VERSION}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mlspec" / f"optax-catalogue-{key}.json"


_CACHE_VERSION = 2


@functools.cache
def optax_catalogue() -> dict[str, OptaxFunction]:
    """Optimizer aliases and schedules that `optax` exports, by name (read from optax's
    source once per installation, then from a small cache file)."""
    root = _optax_root()
    cache = _cache_file(root)
    try:
        raw = json.loads(cache.read_text())
        return {name: OptaxFunction(name=f["name"], kind=f["kind"], summary=f["summary"],
                                    arguments=tuple(OptaxArgument(**a) for a in f["arguments"]))
                for name, f in raw.items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    catalogue = _read_optax(root)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({n: dataclasses.asdict(f) for n, f in catalogue.items()}))
        os.replace(tmp, cache)
    except OSError:  # a read-only home: read optax's source each time
        pass
    return catalogue


def _read_optax(root: Path) -> dict[str, OptaxFunction]:
    catalogue: dict[str, OptaxFunction] = {}
    aliases = _functions(root / "_src" / "alias.py")
    for name in _imported_names(root / "__init__.py", "_src.alias"):
        if name in aliases:
            catalogue[name] = _signature(name, "optimizer", *aliases[name])
    schedules_dir = root / "schedules"
    for module in ("_schedule", "_join"):
        definitions = _functions(schedules_dir / f"{module}.py")
        for name in _imported_names(schedules_dir / "__init__.py", module):
            if name in definitions:
                catalogue[name] = _signature(name, "schedule", *definitions[name])
    return catalogue


def names(kind: Literal["optimizer", "schedule"]) -> list[str]:
    return sorted(n for n, f in optax_catalogue().items() if f.kind == kind)


# An argument's value, read back from JSON as it was: a schedule call, a list, or a dict
# of step boundaries (`{100: 0.1}`, int keys) or of keyword arguments (str keys).
OptaxValue = TypeAliasType("OptaxValue", Annotated[Union[  # noqa: UP007 - a recursive alias
    StrictBool, StrictInt, StrictFloat, str, "OptaxCall", list["OptaxValue"],
    dict[int, "OptaxValue"], dict[str, "OptaxValue"]], Field(union_mode="left_to_right")])


class OptaxCall(ir.Node):
    """A validated call of an optax optimizer or schedule, as JSON-ready data."""

    kind: Literal["optax"] = "optax"
    name: str
    arguments: dict[str, OptaxValue] = {}

    def build(self):
        """The optax object (imports optax)."""
        import optax

        return getattr(optax, self.name)(**self._built_arguments())

    def _built_arguments(self) -> dict[str, Any]:
        def value(v):
            if isinstance(v, list):
                return [value(item) for item in v]
            return v.build() if isinstance(v, OptaxCall) else v

        return {k: value(v) for k, v in self.arguments.items()}

    def numeric_arguments(self) -> dict[str, float]:
        """The plain-number arguments: those a sweep can vary inside one program."""
        return {k: v for k, v in self.arguments.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def build_injected(self):
        """The optimizer with its numeric hyperparameters in its state
        (`optax.inject_hyperparams`); everything else stays fixed."""
        import optax

        built = self._built_arguments()
        static = [k for k in built if k not in self.numeric_arguments()]
        factory = optax.inject_hyperparams(getattr(optax, self.name), static_args=static)
        return factory(**built)


# ------------------------------------------------------------ what optax's arguments take
#
# Each optax argument's type, from its annotation as optax writes it (read with `ast`,
# without importing optax): these are the kinds a spec can give. An annotation not listed
# takes any value pydantic can hold; an argument of a kind that holds a Python object
# (a function, a transformation, a mask) cannot be set from a spec.


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number_type", "Input should be a number")
    return value


def _positive(value: Any) -> Any:
    if not value > 0:
        raise PydanticCustomError("greater_than", "Input should be greater than 0")
    return value


def _schedule(value: Any) -> Any:
    if not isinstance(value, OptaxCall):
        raise PydanticCustomError("schedule_type", "Input should be a schedule call")
    return value


def _number_or_schedule(value: Any) -> Any:
    if isinstance(value, OptaxCall):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number_or_schedule",
                                  "Input should be a number or a schedule call")
    return value


def _pairs(value: Any) -> Any:
    """`[[100, 0.1], ...]` as optax's `{100: 0.1, ...}`."""
    if not (isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2
                                             for p in value)):
        raise PydanticCustomError("pairs_type", "Input should be a list of [key, value] pairs")
    return dict(value)


def _unsettable(value: Any) -> Any:
    raise PydanticCustomError("unsettable", "Input cannot be set from a spec: optax takes a "
                                            "Python function or object there")


SCHEDULE = Catalogue("schedule", lambda: names("schedule"),
                     lambda call, scope: resolve_optax(call, "schedule", scope))
"""A schedule argument takes a schedule, by name or call: `cosine_decay_schedule(...)`."""

Number = Annotated[Any, PlainValidator(_number)]
NumberOrSchedule = Annotated[Any, PlainValidator(_number_or_schedule), SCHEDULE]
Schedule = Annotated[Any, PlainValidator(_schedule), SCHEDULE]
DType = Symbol[Literal["bfloat16", "float16", "float32"]]
"""The dtypes optax keeps state in (`mu_dtype=bfloat16`)."""
Unsettable = Annotated[Any, PlainValidator(_unsettable)]

_TYPES: dict[str, Any] = {
    "bool": StrictBool, "int": StrictInt, "float": Number, "str": StrictStr, "Any": Any,
    "chex.Numeric": Number, "base.Numeric": Number, "jax.typing.ArrayLike": Number,
    "base.ScalarOrSchedule": NumberOrSchedule, "base.Schedule": Schedule,
    "jax.typing.DTypeLike": DType, "chex.ArrayDType": DType,
    "base.GradientTransformation": Unsettable,
    "base.GradientTransformationExtraArgs": Unsettable, "MaskOrFn": Unsettable,
    "base.Params": Unsettable, "Callable": Unsettable,
}


def _union(members: list[Any]) -> Any:
    members = [m for m in members if m is not None]  # a spec has no None to give
    if Unsettable in members:
        return Unsettable
    if Any in members:
        return Any
    if NumberOrSchedule in members or (Schedule in members and Number in members):
        return NumberOrSchedule
    unique = list(dict.fromkeys(members))
    return unique[0] if len(unique) == 1 else Union[tuple(unique)]  # noqa: UP007


def _resolved(node: ast.expr) -> Any:
    """The type of an annotation as optax writes it (`Optional[base.ScalarOrSchedule]`)."""
    text = ast.unparse(node)
    if text in _TYPES:
        return _TYPES[text]
    if text == "None":
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([_resolved(node.left), _resolved(node.right)])
    if isinstance(node, ast.Subscript):
        head = ast.unparse(node.value)
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Optional":
            return _union([_resolved(inner[0]), None])
        if head == "Union":
            return _union([_resolved(m) for m in inner])
        if head in ("Sequence", "Iterable", "list", "tuple"):
            return list[_resolved(inner[0])]
        if head in ("dict", "Mapping") and len(inner) == 2:
            return Annotated[dict[_resolved(inner[0]), _resolved(inner[1])],
                             BeforeValidator(_pairs)]
        if head == "Callable":
            return Unsettable
    return Any


def argument_type(arg: OptaxArgument) -> Any:
    """What a spec may give for one optax argument."""
    try:
        kind = _resolved(ast.parse(arg.annotation, mode="eval").body) if arg.annotation \
            else Any
    except SyntaxError:
        kind = Any
    if kind is Any and "dtype" in arg.name:  # optax types its dtypes Any
        return DType
    if arg.name == "learning_rate" and kind in (Number, NumberOrSchedule):
        return Annotated[kind, AfterValidator(_positive_number)]  # a descent's step
    return kind


def _positive_number(value: Any) -> Any:
    return value if isinstance(value, OptaxCall) else _positive(value)


@functools.cache
def optax_signature(fn: OptaxFunction) -> Signature:
    """The call signature of an optax function, from its signature as read."""
    return Signature(f"{fn.kind} '{fn.name}'", tuple(
        Parameter(a.name, argument_type(a), REQUIRED if a.required else a.default)
        for a in fn.arguments))


@functools.cache
def optax_model(fn: OptaxFunction) -> type[BaseModel]:
    """A pydantic model of the function's arguments, which checks a call's values."""
    fields = {p.name: (p.annotation, None) for p in optax_signature(fn).parameters}
    return create_model(f"optax_{fn.name}", __config__=ConfigDict(extra="forbid"), **fields)


LEARNING_RATE_NEEDED = {
    # optax makes learning_rate optional here, but without one it applies the update
    # as is, without the descent's change of sign, so training climbs the loss.
    "adadelta": "without one optax's adadelta does not descend (the paper's value is "
                "learning_rate=1.0)",
}


def resolve_optax(call: ir.Name | ir.Call, kind: Literal["optimizer", "schedule"],
                  scope: Names = NO_NAMES) -> OptaxCall:
    """An optax optimizer or schedule call, bound to optax's signature in `scope` and its
    values checked, as its typed form."""
    fn = optax_catalogue().get(call.name)
    if fn is None or fn.kind != kind:
        raise unknown(kind, call.name, name_span(call), names(kind))
    signature = optax_signature(fn)
    bound = bind(signature, call, scope)
    given = {*bound.values, *bound.failed, *bound.unknown}
    if fn.name in LEARNING_RATE_NEEDED and "learning_rate" not in given:
        raise SpecError.at(call.span, f"{signature.label} needs argument 'learning_rate': "
                                      f"{LEARNING_RATE_NEEDED[fn.name]}")
    arguments = {}
    try:
        checked = validate_entry(optax_model(fn), bound.values, bound.spans, call.span,
                                 signature.label, skip=bound.failed)
        arguments = {name: getattr(checked, name) for name in bound.values}
    except SpecError as exc:
        bound.errors += exc.diagnostics
    bound.raise_with()
    return OptaxCall(name=fn.name, arguments=arguments, span=call.span)
