"""Overrides (`--set key=value`, `run(spec, {...})`) applied to the spec's text: params by
name, settings by section path, and arguments inside a setting's call."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mlspec.semantics.sections import SECTIONS
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError, did_you_mean
from mlspec.syntax.parser import parse_expr


def _as_value(value: Any, key: str) -> ir.Expr:
    """An override's value: spec IR as it is (what `--set` parsed), a Python value as
    the builders take it (a string in `train.loss` names a loss)."""
    if isinstance(value, ir.Node):
        return value
    from mlspec.semantics.build import setting_value

    try:
        return setting_value(key, value)
    except SpecError as error:
        raise SpecError.at(None, f"override '{key}': {error.diagnostics[0].message}") \
            from None


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
    """What a call in a setting of `section` names (a data source, an optax optimizer or
    schedule, a loss, early_stop) and its argument names in positional order; None for
    anything else."""
    kind = SECTIONS.get(section)
    return kind.call_arguments(call.name) if kind is not None else None


def _set_in_call(call: ir.Expr, rest: list[str], value: ir.Expr, key: str,
                 section: str) -> ir.Expr:
    """`call` with the argument that `rest` names set to `value`: a keyword, or the
    positional argument of that name (`csv("a.csv")`: `path`)."""
    if not rest:
        return value
    if isinstance(call, ir.Name):  # `iris`, `lbfgs`: a call without arguments yet
        call = ir.Call(name=call.name, span=call.span)
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
    paths = [p.name for p in spec.params]
    paths += [f"{name}.{k}" for name, kind in SECTIONS.items() for k in kind.setting_names()]
    for section, node in spec.sections().items():
        for s in node.settings:
            if isinstance(s.value, ir.Call):
                known = _argument_names(s.value, section)
                names = known[1][:len(s.value.args)] if known else []
                paths += [f"{section}.{s.path}.{n}" for n in names]
                paths += [f"{section}.{s.path}.{k.name}" for k in s.value.kwargs]
    return paths


def _pairs(overrides: Any) -> list[tuple[str, Any]]:
    """Overrides as (key, value) pairs: from a dict, or from pairs as `dict()` takes them."""
    items = overrides.items() if isinstance(overrides, Mapping) else overrides or ()
    try:
        pairs = [tuple(item) for item in items]
    except TypeError:
        pairs = [()]
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str):
            raise SpecError.at(None, "overrides are a dict of keys (a param's name or a "
                                     "setting's path) and values, e.g. {'train.steps': "
                                     f"500}}, not {overrides!r}"[:300])
    return pairs


def _refuse_swept(key: str, sweep: ir.Section | None) -> None:
    """An override of what the sweep sets (`lr`, `train.steps`, or an argument inside a
    swept `train.optimizer`) would be lost under the sweep's values: an error."""
    for setting in sweep.settings if sweep is not None else ():
        if key == setting.path or key.startswith(setting.path + "."):
            line = f" (line {setting.span.line})" if setting.span is not None else ""
            raise SpecError.at(None, f"--set {key}: '{setting.path}' is swept{line}; a "
                                     "sweep's values cannot be overridden; edit its values "
                                     "in the sweep, or remove it from the sweep to set it "
                                     "here")


def apply_overrides(spec: ir.Spec, overrides: Mapping[str, Any] | None) -> ir.Spec:
    """Sets params by name and any setting by path (`train.steps`, `data.train.n`); what
    the spec's sweep sets cannot be."""
    for key, raw in _pairs(overrides):
        _refuse_swept(key, spec.sweep)
        parts = key.split(".")
        # None unsets a setting (below); anywhere else it is no value, and says so
        value = None if raw is None and len(parts) == 2 else _as_value(raw, key)
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
        kind = SECTIONS.get(section_name)
        if kind is None or setting_name not in kind.setting_names():
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
