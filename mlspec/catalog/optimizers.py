"""Every optax optimizer alias and schedule, under optax's own names and argument names.

The catalogue is derived from optax itself: its source files are read with `ast` (without
importing optax, which would import jax) to list the aliases that `optax` exports from its
alias module, the schedules it exports, and each one's signature. A new optax release
brings its new optimizers with it.
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

from pydantic import Field, StrictBool, StrictFloat, StrictInt
from typing_extensions import TypeAliasType

from mlspec.catalog.registry import describe, name_span, to_python
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError, did_you_mean


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


def _is_pairs(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2
                                            for p in value)


def _check_value(fn: OptaxFunction, arg: OptaxArgument, value: Any, span) -> Any:
    label = f"argument '{arg.name}' of {fn.kind} '{fn.name}'"
    ann = arg.annotation
    takes_schedule = "Schedule" in ann
    if "Sequence[base.Schedule]" in ann:  # join_schedules: a list of schedules
        if not isinstance(value, tuple):
            raise SpecError.at(span, f"{label} should be a list of schedule calls")
        return [_check_value(fn, OptaxArgument(arg.name, True, "base.Schedule", None), v,
                             span) for v in value]
    if isinstance(value, ir.Call):
        if takes_schedule:
            return resolve_optax(value, "schedule")
        raise SpecError.at(span, f"{label} cannot be a call")
    if any(t in ann for t in ("GradientTransformation", "Callable", "MaskOrFn")):
        raise SpecError.at(span, f"{label} cannot be set from a spec")
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if arg.name == "learning_rate" and is_number and value <= 0:
        raise SpecError.at(span, f"{label} should be greater than 0 (got {value})")
    if takes_schedule:
        if not is_number:
            raise SpecError.at(span, f"{label} should be a number or a schedule call "
                                     f"(got {describe(value)})")
        return value
    if "dict" in ann and _is_pairs(value):  # [[100, 0.1], ...] -> {100: 0.1}
        return {k: v for k, v in value}
    if "dict" in ann and isinstance(value, tuple) and all(_is_pairs(v) for v in value):
        return [{k: v for k, v in pairs} for pairs in value]  # a list of such dicts
    if "dict" in ann:
        raise SpecError.at(span, f"{label} should be a list of [key, value] pairs")
    expected = _scalar_type(ann)
    if expected is bool and not isinstance(value, bool):
        raise SpecError.at(span, f"{label} should be true or false (got {describe(value)})")
    if expected is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise SpecError.at(span, f"{label} should be an integer (got {describe(value)})")
    if expected is float and not is_number:
        raise SpecError.at(span, f"{label} should be a number (got {describe(value)})")
    return value


def _scalar_type(annotation: str):
    bare = annotation.replace("Optional[", "").rstrip("]").replace(" | None", "")
    if bare == "bool":
        return bool
    if bare == "int":
        return int
    if bare in ("float", "chex.Numeric", "jax.typing.ArrayLike", "base.Numeric"):
        return float
    return None


LEARNING_RATE_NEEDED = {
    # optax makes learning_rate optional here, but without one it applies the update
    # as is, without the descent's change of sign, so training climbs the loss.
    "adadelta": "without one optax's adadelta does not descend (the paper's value is "
                "learning_rate=1.0)",
}


def resolve_optax(call: ir.Call, kind: Literal["optimizer", "schedule"]) -> OptaxCall:
    """Checks a resolved call against optax's signature and returns its typed form."""
    catalogue = optax_catalogue()
    fn = catalogue.get(call.name)
    if fn is None or fn.kind != kind:
        known = names(kind)
        raise SpecError.at(name_span(call), f"unknown {kind} '{call.name}'"
                                            f"{did_you_mean(call.name, known)}")
    label = f"{kind} '{fn.name}'"
    if len(call.args) > len(fn.arguments):
        raise SpecError.at(call.args[len(fn.arguments)].span,
                           f"{label} takes at most {len(fn.arguments)} positional arguments")
    given: dict[str, tuple[Any, Any]] = {}
    for arg, expr in zip(fn.arguments, call.args):
        given[arg.name] = (expr, expr.span)
    for kw in call.kwargs:
        if fn.argument(kw.name) is None:
            raise SpecError.at(kw.span, f"{label} has no argument '{kw.name}'"
                                        f"{did_you_mean(kw.name, [a.name for a in fn.arguments])}")
        if kw.name in given:
            raise SpecError.at(kw.span, f"argument '{kw.name}' of {label} is given twice")
        given[kw.name] = (kw.value, kw.value.span or kw.span)
    missing = [a.name for a in fn.arguments if a.required and a.name not in given]
    if missing:
        raise SpecError.at(call.span, f"{label} needs argument '{missing[0]}'")
    if fn.name in LEARNING_RATE_NEEDED and given.get("learning_rate", (None,))[0] is None:
        raise SpecError.at(call.span, f"{label} needs argument 'learning_rate': "
                                      f"{LEARNING_RATE_NEEDED[fn.name]}")
    arguments = {}
    for name, (expr, span) in given.items():
        value = expr if isinstance(expr, ir.Call) and expr.has_arguments else to_python(expr)
        if isinstance(value, str) and isinstance(expr, ir.Call):  # a bare name
            value = ir.Call(name=value, span=expr.span) if value in catalogue else value
        arguments[name] = _check_value(fn, fn.argument(name), value, span)
    return OptaxCall(name=fn.name, arguments=arguments, span=call.span)
