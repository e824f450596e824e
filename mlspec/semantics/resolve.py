"""Spec IR -> typed program.

The passes run in order (see `PASSES` at the end): imports are merged, overrides applied,
params and arithmetic evaluated, blocks expanded and every call bound to its catalogue
entry, then shapes and task fit are checked. Independent mistakes are collected so that
`check` reports them all at once. Nothing here imports jax.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlspec.catalog.layers import LAYERS, Layer, ShapeError
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS, fits
from mlspec.catalog.optimizers import optax_catalogue, resolve_optax
from mlspec.catalog.registry import (
    bind_arguments,
    instantiate,
    name_span,
    to_python,
    validate_entry,
)
from mlspec.catalog.sources import SOURCES, DataError, DataInfo
from mlspec.semantics.budget import MAX_MEMBERS, program_needs, refuse_if_too_big, rows_text
from mlspec.semantics.program import (
    BlockUse,
    DataProgram,
    EarlyStop,
    LossTerm,
    ModelProgram,
    Program,
    TrainProgram,
    size_rows,
)
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, Span, SpecError, did_you_mean
from mlspec.syntax.limits import MAX_DEPTH, NAME, SPEC_SUFFIXES
from mlspec.syntax.parser import load as load_file
from mlspec.syntax.parser import parse_expr

TRAIN_KEYS = TrainProgram.argument_names()
DATA_KEYS = ["train", "valid", "test", "source", "split_seed", "standardize"]

# ---------------------------------------------------------------------------- imports


def merge_imports(spec: ir.Spec) -> ir.Spec:
    """Brings the params and blocks of imported files into `spec`. Each file is read once,
    however many paths reach it (LANGUAGE.md v2: a diamond counts once)."""
    if not spec.imports:
        return spec
    here = Path(os.path.realpath(spec.path)) if spec.path else None
    found: dict[Path, tuple[ir.Spec, ir.Import]] = {}
    _gather_imports(spec, (here,) if here else (), found)
    params, blocks = list(spec.params), list(spec.blocks)
    owner = {p.name: p for p in params} | {b.name: b for b in blocks}
    for other, imp in found.values():
        for item in (*other.params, *other.blocks):
            if item.name in owner:
                raise SpecError.at(owner[item.name].span, f"'{item.name}' is defined here "
                                                          f"and in an import (from {imp.path})")
            owner[item.name] = item
        params.extend(other.params)
        blocks.extend(other.blocks)
    return spec.model_copy(update={"params": tuple(params), "blocks": tuple(blocks),
                                   "imports": ()})


def _gather_imports(spec: ir.Spec, stack: tuple[Path, ...],
                    found: dict[Path, tuple[ir.Spec, ir.Import]]) -> None:
    """The files `spec` imports, directly or not, each once by its real path, in the order
    first reached; each with the import line that first reached it."""
    folder = Path(spec.path).parent if spec.path else Path.cwd()
    for imp in spec.imports:
        # realpath, not Path.resolve: a symlink loop is reported when the file is read
        target = Path(os.path.realpath(folder / imp.path))
        if target in stack:
            chain = " -> ".join(p.name for p in (*stack, target))
            raise SpecError.at(imp.span, f"import cycle: {chain}")
        if target in found:
            continue
        if len(stack) > MAX_DEPTH:  # each import is read by a recursion of its own
            raise SpecError.at(imp.span, f"imports import imports more than {MAX_DEPTH} "
                                         "deep here; import the files from one place")
        if target.suffix.lower() not in SPEC_SUFFIXES:
            raise SpecError.at(imp.span, f"cannot import '{imp.path}': only .mlspec and .json "
                                         "spec files can be imported")
        other = load_file(target, imp.span, f"cannot import '{imp.path}'")
        for section in ("model", "data", "train", "sweep"):
            node = getattr(other, section)
            if node is not None:
                raise SpecError.at(node.span, f"an imported file may hold only param, block "
                                              f"and import lines, not '{section}'")
        found[target] = (other, imp)
        _gather_imports(other, (*stack, target), found)


# -------------------------------------------------------------------------- overrides


def _as_value(value: Any, key: str) -> ir.Expr:
    if isinstance(value, ir.Node):
        return value
    return ir.as_expr(value)


# A file path as typed in a shell, unquoted: /abs/a.csv, ../a.csv, ~/a.csv, data/a.csv (a
# last part with a suffix), a.csv (a data or spec file); `width/2` stays arithmetic and
# `valid.loss` a name.
_PATH = re.compile(r"(~|\.{1,2})?(/[\w.-]+)+|[\w.-]+(/[\w.-]+)*/[\w-]*\.[A-Za-z]\w*"
                   r"|[\w.-]+\.(csv|npz|json|mlspec)", re.IGNORECASE)


def parse_override(text: str) -> tuple[str, ir.Expr]:
    """`KEY=VALUE` as given to `--set`, with VALUE in .mlspec syntax; an unquoted file
    path is a string (`--set data.train.path=data/other.csv`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SpecError.at(None, f"--set needs KEY=VALUE, got '{text}'")
    key, value = key.strip(), value.strip()
    if _PATH.fullmatch(value):
        return key, ir.String(value=value)
    # where the value lands: a param's (spec, param), a setting's, or a keyword's in a
    # setting's call (two deeper for each part past the setting)
    parts = key.count(".") + 1
    depth = 3 if parts == 1 else 4 + 2 * (parts - 2)
    return key, parse_expr(value, file=f"--set {key}", depth=depth)


def _argument_names(call: ir.Call, section: str) -> tuple[str, list[str]] | None:
    """What a call names (a data source, an optax optimizer or schedule, a loss,
    early_stop) and its argument names in positional order; None for anything else."""
    if section == "data":
        entry = SOURCES.get(call.name)
        return ("data source", entry.argument_names()) if entry is not None else None
    if call.name == "early_stop":
        return "early_stop", EarlyStop.argument_names()
    fn = optax_catalogue().get(call.name)
    if fn is not None:
        return fn.kind, [a.name for a in fn.arguments]
    entry = LOSSES.get(call.name)
    return ("loss", entry.argument_names()) if entry is not None else None


def _set_in_call(call: ir.Expr, rest: list[str], value: ir.Expr, key: str,
                 section: str) -> ir.Expr:
    """`call` with the argument that `rest` names set to `value`: a keyword, or the
    positional argument of that name (`csv("a.csv")`: `path`)."""
    if not rest:
        return value
    if not isinstance(call, ir.Call):
        raise SpecError.at(None, f"cannot set '{key}': the value there is not a call")
    name, rest = rest[0], rest[1:]
    known = _argument_names(call, section)
    if known is not None and name not in known[1]:
        raise SpecError.at(None, f"--set: cannot set '{key}': {known[0]} '{call.name}' has "
                                 f"no argument '{name}'{did_you_mean(name, known[1])}")
    position = known[1].index(name) if known is not None else len(call.args)
    if position < len(call.args):
        args = list(call.args)
        args[position] = _set_in_call(args[position], rest, value, key, section)
        return call.model_copy(update={"args": tuple(args)})
    kwargs = list(call.kwargs)
    existing = call.keyword(name)
    new_value = _set_in_call(existing.value if existing else None, rest, value, key, section)
    if existing is not None:
        kwargs[kwargs.index(existing)] = existing.model_copy(update={"value": new_value})
    else:
        kwargs.append(ir.Keyword(name=name, value=new_value))
    return call.model_copy(update={"kwargs": tuple(kwargs)})


def _known_paths(spec: ir.Spec) -> list[str]:
    paths = [p.name for p in spec.params] + [f"train.{k}" for k in TRAIN_KEYS]
    paths += [f"data.{k}" for k in DATA_KEYS]
    for section in ("data", "train"):
        node = getattr(spec, section)
        for s in node.settings if node else ():
            if isinstance(s.value, ir.Call):
                known = _argument_names(s.value, section)
                names = known[1][:len(s.value.args)] if known else []
                paths += [f"{section}.{s.path}.{n}" for n in names]
                paths += [f"{section}.{s.path}.{k.name}" for k in s.value.kwargs]
    return paths


def apply_overrides(spec: ir.Spec, overrides: Mapping[str, Any] | None) -> ir.Spec:
    """Sets params by name and any setting by path (`train.steps`, `data.train.n`)."""
    for key, raw in (overrides or {}).items():
        value = _as_value(raw, key)
        parts = key.split(".")
        if len(parts) == 1:
            param = next((p for p in spec.params if p.name == key), None)
            if param is None:
                raise SpecError.at(None, f"--set: no param '{key}' in the spec"
                                         f"{did_you_mean(key, _known_paths(spec))}")
            params = tuple(p.model_copy(update={"value": value}) if p is param else p
                           for p in spec.params)
            spec = spec.model_copy(update={"params": params})
            continue
        section_name, setting_name, rest = parts[0], parts[1], parts[2:]
        keys = {"train": TRAIN_KEYS, "data": DATA_KEYS}.get(section_name)
        if keys is None or setting_name not in keys:
            raise SpecError.at(None, f"--set: unknown setting '{key}'"
                                     f"{did_you_mean(key, _known_paths(spec))}")
        section = getattr(spec, section_name) or ir.Section()
        setting = section.get(setting_name)
        if rest and setting is None:
            raise SpecError.at(None, f"--set: cannot set '{key}': '{section_name}' has no "
                                     f"'{setting_name}' setting")
        if raw is None and not rest:  # None unsets a setting: its default applies
            settings = tuple(s for s in section.settings if s is not setting)
            spec = spec.model_copy(update={section_name: section.model_copy(
                update={"settings": settings})})
            continue
        new_value = _set_in_call(setting.value if setting else None, rest, value, key,
                                 section_name)
        if setting is not None:
            settings = tuple(s.model_copy(update={"value": new_value}) if s is setting else s
                             for s in section.settings)
        else:
            settings = section.settings + (ir.Setting(path=setting_name, value=new_value),)
        spec = spec.model_copy(update={section_name: section.model_copy(
            update={"settings": settings})})
    return spec


# ------------------------------------------------------------------------- evaluation


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


# ------------------------------------------------------------------------------ model


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


# ------------------------------------------------------------------------------- data


def _settings(section: ir.Section, allowed: list[str], what: str) -> dict[str, ir.Setting]:
    out: dict[str, ir.Setting] = {}
    for s in section.settings:
        if s.path not in allowed:
            raise SpecError.at(s.span, f"unknown {what} setting '{s.path}'"
                                       f"{did_you_mean(s.path, allowed)}")
        if s.path in out:
            raise SpecError.at(s.span, f"'{s.path}' is set twice")
        out[s.path] = s
    return out


def setting_place(setting: ir.Setting | None) -> Span | None:
    """Where a setting is given: its value (an override's value is placed in its `--set`
    text), or else the setting itself."""
    return None if setting is None else setting.value.span or setting.span


def _override(setting: ir.Setting) -> str | None:
    """What gave a setting when an override did (`--set train.epochs`), else None."""
    span = setting.value.span
    if span is not None and span.file.startswith("--set "):
        return span.file
    return "an override" if setting.span is None else None


def _clash(first: ir.Setting, second: ir.Setting, message: str) -> SpecError:
    """`message` for two settings that exclude each other: at the one the spec's text
    holds (the second when both are there), naming the one an override gave."""
    for here, other in ((second, first), (first, second)):
        if _override(here) is None:
            given = _override(other)
            return SpecError.at(here.span, message + (f" ('{other.path}' comes from "
                                                      f"{given})" if given else ""))
    return SpecError.at(setting_place(second), f"{message} (both come from overrides)")


def _source(setting: ir.Setting, scope: Scope):
    value = scope.evaluate(setting.value)
    if not isinstance(value, ir.Call):
        raise SpecError.at(value.span or setting.span,
                           f"'{setting.path}' should be a data source call such as hill(n=1000)")
    source = instantiate(SOURCES, value)
    return source


def _info(source, folder: Path, span) -> DataInfo:
    try:
        return source.info(folder)
    except DataError as exc:
        raise SpecError.at(span, str(exc)) from None


def resolve_data(section: ir.Section, scope: Scope, folder: Path) -> DataProgram:
    settings = _settings(section, DATA_KEYS, "data")
    values: dict[str, Any] = {"folder": str(folder)}
    spans = {k: s.span for k, s in settings.items()}
    if "source" in settings:
        if "train" in settings:
            raise _clash(settings["source"], settings["train"], "with 'source', the splits "
                         "are sizes: give 'valid' (and 'test') as fractions or counts, "
                         "not a 'train' source")
        values["source"] = _source(settings["source"], scope)
        for split in ("valid", "test"):
            if split in settings:
                size = to_python(scope.evaluate(settings[split].value))
                if isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0 \
                        or (isinstance(size, float) and size >= 1):
                    raise SpecError.at(settings[split].span, f"'{split}' should be a fraction "
                                       "between 0 and 1 or a positive row count")
                values[f"{split}_size"] = size
        info = _info(values["source"], folder, settings["source"].value.span)
        if info.rows is not None:
            values["split_rows"] = _split(info.rows, settings, values)
    else:
        if "train" not in settings:
            raise SpecError.at(section.span, "data needs 'train' (and 'valid') sources, or "
                                             "one 'source' with a 'valid' size")
        for split in ("train", "valid", "test"):
            if split in settings:
                values[split] = _source(settings[split], scope)
        info = _info(values["train"], folder, settings["train"].value.span)
        rows = {"train": info.rows}
        for split in ("valid", "test"):
            other = values.get(split)
            if other is None:
                continue
            other_info = _info(other, folder, settings[split].value.span)
            problem = _misfit(other_info, info)
            if problem:
                raise SpecError.at(settings[split].span, f"the '{split}' source {problem}")
            rows[split] = other_info.rows
        values["split_rows"] = {k: n for k, n in rows.items() if n is not None}
    for key in ("split_seed", "standardize"):
        if key in settings:
            values[key] = to_python(scope.evaluate(settings[key].value))
    values["info"] = info
    return validate_entry(DataProgram, values, spans, section.span, "data", noun="setting")


def _split(rows: int, settings: dict[str, ir.Setting], values: dict[str, Any]) -> dict[str, int]:
    """The rows of each split of one source's `rows`; a size that takes none, or sizes
    that leave no train rows, are an error at the size that does it."""
    taken = {s: size_rows(values.get(f"{s}_size"), rows) for s in ("valid", "test")
             if f"{s}_size" in values}
    of = f"the source's {rows_text(rows)}"
    for split, count in taken.items():
        if not count:
            raise SpecError.at(setting_place(settings[split]), f"'{split}' = "
                               f"{values[f'{split}_size']} takes none of {of}")
    if sum(taken.values()) >= rows:
        # the one that alone takes every row, else the second: together they do
        split = next((s for s, n in taken.items() if n >= rows), list(taken)[-1])
        takes = " and ".join(f"'{s}' takes {n:,}" for s, n in taken.items())
        raise SpecError.at(setting_place(settings[split]), f"'{split}' = {values[f'{split}_size']} "
                           f"leaves no train rows: of {of}, {takes}")
    return {"train": rows - sum(taken.values()), **taken}


def _misfit(other: DataInfo, train: DataInfo) -> str | None:
    """Why a valid or test source cannot be encoded as the train source, or None: the
    same features, the same kind of target, and classes or target columns that the train
    source has (found from what the sources say of themselves, without making data)."""
    if (other.features, other.target) != (train.features, train.target):
        return f"yields {_describe(other)} but 'train' yields {_describe(train)}"
    if train.target == "real" and other.target_dim != train.target_dim:
        return (f"has {other.target_dim} target columns but 'train' has "
                f"{train.target_dim}")
    if train.target != "class":
        return None
    if other.class_names is not None and train.class_names is not None:
        unknown = sorted(set(other.class_names) - set(train.class_names))
        if unknown:
            return (f"has classes that 'train' does not have: "
                    f"{', '.join(repr(n) for n in unknown[:5])}")
    elif (other.class_names is None) != (train.class_names is None):
        named, ids = ("'train'", "it") if other.class_names is None else ("it", "'train'")
        return f"cannot be encoded as 'train': {named} has class names, {ids} has class ids"
    elif other.classes > train.classes:
        return (f"has {other.classes} classes (ids up to {other.classes - 1}) but 'train' "
                f"has {train.classes}")
    return None


def _describe(info: DataInfo) -> str:
    target = f"{info.classes} classes" if info.target == "class" else "real targets"
    return f"features {list(info.features)} with {target}"


# ------------------------------------------------------------------------------ train


def _loss_terms(expr: ir.Expr, weight: float = 1.0) -> list[tuple[float, ir.Call]]:
    if isinstance(expr, ir.Call):
        return [(weight, expr)]
    if isinstance(expr, ir.BinOp) and expr.op in "+-":
        right_weight = weight if expr.op == "+" else -weight
        return _loss_terms(expr.left, weight) + _loss_terms(expr.right, right_weight)
    if isinstance(expr, ir.BinOp) and expr.op == "*":
        if isinstance(expr.left, ir.Number):
            return _loss_terms(expr.right, weight * expr.left.value)
        if isinstance(expr.right, ir.Number):
            return _loss_terms(expr.left, weight * expr.right.value)
    if isinstance(expr, ir.BinOp) and expr.op == "/" and isinstance(expr.right, ir.Number):
        if expr.right.value == 0:
            raise SpecError.at(expr.span, "division by zero")
        return _loss_terms(expr.left, weight / expr.right.value)
    if isinstance(expr, ir.Neg):
        return _loss_terms(expr.operand, -weight)
    raise SpecError.at(expr.span, "a loss is a sum of weighted terms such as "
                                  "'softmax_cross_entropy + 1e-4 * l2'")


def resolve_loss(setting: ir.Setting, scope: Scope) -> tuple[LossTerm, ...]:
    terms = []
    for weight, call in _loss_terms(scope.evaluate(setting.value)):
        if not math.isfinite(weight):
            raise SpecError.at(call.span, "the weight of this loss term is too large")
        terms.append(LossTerm(weight=float(weight), loss=instantiate(LOSSES, call),
                              span=call.span))
    if all(t.loss.regulariser for t in terms):
        raise SpecError.at(setting.value.span, "the loss needs a data term (such as mse or "
                                               "softmax_cross_entropy), not only regularisers")
    return tuple(terms)


MAX_SEED = 2**63 - 1  # jax.random.PRNGKey takes a 64-bit integer


def resolve_train(section: ir.Section, scope: Scope) -> TrainProgram:
    """The train section's program; every setting is checked on its own, so that one
    mistake does not hide the others."""
    errors = ErrorCollector()
    settings = _settings(section, TRAIN_KEYS, "train")
    for required in ("loss", "optimizer"):
        if required not in settings:
            errors.add(section.span, f"train needs '{required}'")
    if "steps" in settings and "epochs" in settings:
        errors.extend(_clash(settings["steps"], settings["epochs"], "train has both 'steps' "
                             "and 'epochs'; give exactly one of them"))
    elif "steps" not in settings and "epochs" not in settings:
        errors.add(section.span, "train needs exactly one of 'steps' and 'epochs'")
    values: dict[str, Any] = {}
    spans: dict[str, Span | None] = {}
    for key, setting in settings.items():
        spans[key] = setting.value.span or setting.span
        try:
            if key == "loss":
                values[key] = resolve_loss(setting, scope)
            elif key == "optimizer":
                value = scope.evaluate(setting.value)
                if not isinstance(value, ir.Call):
                    raise SpecError.at(spans[key], "optimizer should be an optax optimizer "
                                                   "call such as adam(learning_rate=1e-3)")
                values[key] = resolve_optax(value, "optimizer")
            elif key == "metrics":
                values[key] = _metric_names(scope.evaluate(setting.value))
            elif key == "early_stop":
                value = scope.evaluate(setting.value)
                call = value if isinstance(value, ir.Call) else None
                if call is None or call.name != "early_stop":
                    raise SpecError.at(spans[key], "early_stop should be a call such as "
                                       "early_stop(metric=valid.loss, patience=100, mode=min)")
                args, arg_spans = bind_arguments(EarlyStop, call, "setting")
                values[key] = validate_entry(EarlyStop, args, arg_spans, call.span,
                                             "early_stop")
            else:
                values[key] = to_python(scope.evaluate(setting.value))
        except SpecError as exc:
            errors.extend(exc)
    program = None
    try:  # the settings that failed above (or are missing) are not reported again
        program = validate_entry(TrainProgram, values, spans, section.span, "train",
                                 noun="setting",
                                 skip=({"loss", "optimizer"} | set(settings)) - set(values))
    except SpecError as exc:
        errors.extend(exc)
    if program is not None and program.seed + program.seeds - 1 > MAX_SEED:
        # the members of `seeds = N` have the seeds from `seed` on
        errors.add(spans.get("seed") or section.span,
                   f"seed {program.seed} with seeds = {program.seeds} gives the members "
                   f"seeds up to {program.seed + program.seeds - 1}, past the largest seed "
                   f"(2**63 - 1 = {MAX_SEED}); lower the seed")
    errors.diagnostics.sort(key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
    errors.raise_if_any()
    return program


def _metric_names(value: ir.Expr) -> tuple[str, ...]:
    items = value.items if isinstance(value, ir.ListExpr) else (value,)
    names = []
    for item in items:
        if not (isinstance(item, ir.Call) and not item.has_arguments):
            raise SpecError.at(item.span, "metrics should be a list of metric names")
        if item.name not in METRICS:
            raise SpecError.at(item.span, f"unknown metric '{item.name}'"
                                          f"{did_you_mean(item.name, METRICS)}")
        names.append(item.name)
    return tuple(names)


# ------------------------------------------------------------------------------ tasks


def check_task(train: TrainProgram, section: ir.Section, info: DataInfo,
               out_shape: tuple[int, ...], splits: tuple[str, ...], errors: ErrorCollector):
    """The loss fits the targets and the output width; the metrics fit the task."""
    for term in train.loss:
        problem = term.loss.check(out_shape, info)
        if problem:
            errors.add(term.span, problem)
    metrics_setting = section.get("metrics")
    items = metrics_setting.value.items if metrics_setting and isinstance(
        metrics_setting.value, ir.ListExpr) else ()
    for i, name in enumerate(train.metrics):
        metric = METRICS.get(name)
        if not fits(metric.needs, info):
            task = {"binary": "0/1 (two-class) targets", "class": "class targets",
                    "real": "real targets"}[metric.needs]
            span = items[i].span if i < len(items) else None
            errors.add(span, f"metric '{name}' needs {task}, which this data does not have")
    stop = train.early_stop
    if stop is not None:
        split, _, name = stop.metric.partition(".")
        # the test split is held out until the end: training never sees its metrics
        watched = [s for s in splits if s != "test"]
        known = [f"{s}.{m}" for s in watched for m in ("loss", *train.metrics)
                 if METRICS.get(m).scope == "split"]
        known += [m for m in train.metrics if METRICS.get(m).scope == "training"]
        if split == "test" and "test" in splits:
            errors.add(stop.span, f"early_stop cannot watch '{stop.metric}': the test split "
                                  "is held out until training ends (watch a valid metric)")
        elif stop.metric not in known:
            errors.add(stop.span, f"early_stop watches '{stop.metric}', which is not recorded"
                                  f"{did_you_mean(stop.metric, known)}")


# ---------------------------------------------------------------------------- program


def resolve(spec: ir.Spec, overrides: Mapping[str, Any] | None = None) -> Program:
    """Validates a spec and returns its typed program; raises SpecError listing every
    mistake found. A `sweep` section is left to `mlspec.semantics.sweep.expand`, which resolves
    every member."""
    try:
        return _resolve(spec, overrides)
    except RecursionError:
        raise SpecError.at(None, "a value or block is nested too deeply to resolve") from None


def _resolve(spec: ir.Spec, overrides: Mapping[str, Any] | None) -> Program:
    errors = ErrorCollector()
    spec = apply_overrides(merge_imports(spec), overrides)
    if spec.model is None:
        library = all(getattr(spec, s) is None for s in ("data", "train", "sweep")) \
            and spec.params + spec.blocks
        raise SpecError.at(None, f"{spec.path + ': ' if spec.path else ''}the spec has no "
                                 "model" + (
            " (with only params and blocks, it is a library for `import`, which `mlspec "
            "check` checks)" if library else ""))
    if not NAME.fullmatch(spec.model.name):  # it names the run's folder: no path
        raise SpecError.at(spec.model.span, f"the model's name {spec.model.name[:40]!r} is not "
                                            "a name (letters, digits and _)")
    folder = Path(spec.path).parent if spec.path else Path.cwd()
    _check_unique(spec, errors)
    scope = Scope({p.name: p for p in spec.params})
    data = None
    data_failed = False
    if spec.data is not None:
        try:
            data = resolve_data(spec.data, scope, folder)
        except SpecError as exc:
            errors.extend(exc)
            data_failed = True
    if data is not None and data.info.target == "class":
        scope.values["classes"] = ir.Number(value=data.info.classes)
    elif data_failed:  # a stand-in, so that the data's mistake is not reported again
        scope.values["classes"] = ir.Number(value=2)
    model = spec.model
    input_shape = None if data_failed and model.input is None else _input_shape(
        model, scope, data, errors)
    resolver = ModelResolver({b.name: b for b in spec.blocks}, scope, errors)
    layers = resolver.model_layers(model.layers)
    out_shape = None
    if input_shape is not None and not errors.diagnostics \
            and check_layer_count(layers, model.span, errors):
        out_shape = infer_shapes(layers, input_shape, errors)
    train = None
    if spec.train is not None:
        try:
            train = resolve_train(spec.train, scope)
        except SpecError as exc:
            errors.extend(exc)
    if train is not None and data is not None and out_shape is not None:
        check_task(train, spec.train, data.info, out_shape, data.splits, errors)
    errors.raise_if_any()
    program = Program(
        model=ModelProgram(name=model.name, input_shape=input_shape, layers=layers,
                           output_shape=out_shape, span=model.span),
        data=data, train=train, spec=spec,
    )
    seeds = spec.train.get("seeds") if spec.train else None
    seeds_span = seeds.value.span or seeds.span if seeds else None
    if train is not None and train.seeds > MAX_MEMBERS:
        raise SpecError.at(seeds_span, f"seeds = {train.seeds:,} makes more members than a "
                                       f"run may have ({MAX_MEMBERS:,})")
    refuse_if_too_big(program_needs(program, spec.train), train.seeds if train else 1,
                      seeds_span)
    return program


def _check_unique(spec: ir.Spec, errors: ErrorCollector) -> None:
    seen: dict[str, ir.Node] = {}
    for item in (*spec.params, *spec.blocks):
        if item.name in seen:
            errors.add(item.span, f"'{item.name}' is defined twice")
        seen[item.name] = item
        if item.name in LAYERS and isinstance(item, ir.Block):
            errors.add(item.span, f"block '{item.name}' has the name of a layer")


def _input_shape(model: ir.Model, scope: Scope, data: DataProgram | None,
                 errors: ErrorCollector) -> tuple[int, ...] | None:
    if model.input is not None:
        shape = to_python(scope.evaluate(model.input))
        if not (isinstance(shape, tuple) and shape and all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            errors.add(model.input.span, "input should be a list of positive integers, "
                                         "such as input [28, 28, 1]")
            return None
        if data is not None and shape != data.info.features:
            errors.add(model.input.span, f"input {list(shape)} does not match the data's "
                                         f"features {list(data.info.features)}")
        return shape
    if data is None:
        errors.add(model.span, "the model needs an input shape: add a data section or a "
                               "first line such as input [2]")
        return None
    return data.info.features
