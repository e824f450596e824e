"""A settings section as a pydantic model, and its validation with errors at their places.

Each field of a `SectionModel` is one setting: its name is the setting's name, its type
says what the setting takes, and a `FromSpec` in its metadata says how the spec's value
becomes the field's (a loss expression into weighted terms, a call into a catalogue entry)
and which catalogue names the value may call. The rules between settings (`OneOf`,
`Excludes`) are declared on the model. `validate_section` hands a section's settings to
pydantic and maps every error back to the setting's place in the text.

For example, a section `run { steps = 10 }` that takes exactly one of two settings:

    class RunSection(SectionModel):
        kind: Literal["run"] = "run"
        steps: PositiveInt | None = None
        epochs: PositiveInt | None = None
        rules: ClassVar = (OneOf("steps", "epochs"),)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, get_args, get_origin

from pydantic import TypeAdapter, ValidationError, ValidationInfo
from pydantic import field_validator as _field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from mlspec.catalog.registry import Entry, describe, to_python
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, Span, SpecError, did_you_mean
from mlspec.syntax.printer import format_expr

__all__ = ["Catalogue", "Excludes", "FromSpec", "OneOf", "SectionModel", "setting_place",
           "validate_section"]


def _entry_arguments(entry: Any) -> list[str]:
    return entry.argument_names()


@dataclass(frozen=True)
class Catalogue:
    """The names that a setting's value may call or name, from one catalogue."""

    what: str
    """What each entry is, in messages: "loss", "data source", "optimizer"."""
    entries: Callable[[], Mapping[str, Any]]
    """Name -> entry, read on first use (optax's catalogue is read from its source)."""
    arguments: Callable[[Any], list[str]] = _entry_arguments
    """An entry's argument names in positional order (none for a bare name)."""


class FromSpec:
    """Field metadata: how a setting's value in the spec becomes the field's value.

    `convert` gets the value with the params substituted and raises SpecError at the
    place of a mistake; a setting without a FromSpec takes the value as plain Python
    (numbers, strings, booleans, bare names as strings, lists as tuples). `calls` are the
    catalogues its value may name: the first is what the value itself is, the others
    what its arguments may call (an optimizer's schedules)."""

    def __init__(self, convert: Callable[[ir.Expr], Any], *calls: Catalogue):
        self.convert = convert
        self.calls = calls


@dataclass(frozen=True)
class OneOf:
    """Exactly one of two settings is given."""

    first: str
    second: str

    def broken(self, section: str, given: Iterable[str]) -> PydanticCustomError | None:
        given = set(given)
        if {self.first, self.second} <= given:
            return PydanticCustomError(
                "clash", "{section} has both '{first}' and '{second}'; give exactly one of "
                "them", {"section": section, "first": self.first, "second": self.second})
        if not {self.first, self.second} & given:
            return PydanticCustomError(
                "needs", "{section} needs exactly one of '{first}' and '{second}'",
                {"section": section, "first": self.first, "second": self.second})
        return None


@dataclass(frozen=True)
class Excludes:
    """Two settings that cannot be given together; `message` says why."""

    first: str
    second: str
    message: str

    def broken(self, section: str, given: Iterable[str]) -> PydanticCustomError | None:
        if {self.first, self.second} <= set(given):
            return PydanticCustomError("clash", self.message,
                                       {"first": self.first, "second": self.second})
        return None


def _rebuilt(error: dict) -> dict:
    """A pydantic error as pydantic takes it back (its message formatted already)."""
    return {"type": PydanticCustomError(error["type"], error["msg"], error.get("ctx")),
            "loc": error["loc"], "input": error["input"]}


def _from_spec_in(annotation: Any) -> FromSpec | None:
    if get_origin(annotation) is Annotated:
        found = next((m for m in annotation.__metadata__ if isinstance(m, FromSpec)), None)
        if found is not None:
            return found
    return next((f for arg in get_args(annotation) if (f := _from_spec_in(arg))), None)


class SectionModel(Entry):
    """A settings section: its fields are its settings (see the module's docstring)."""

    rules: ClassVar[tuple[OneOf | Excludes, ...]] = ()
    """Which settings exclude which."""
    derived: ClassVar[tuple[str, ...]] = ()
    """Fields that are no settings: what resolution adds (a data source's inspection)."""
    missing: ClassVar[dict[str, str]] = {}
    """The message for a required setting left out, where "SECTION needs 'NAME'" is not
    enough."""

    @classmethod
    def setting_names(cls) -> list[str]:
        return [n for n in cls.argument_names() if n not in cls.derived]

    @classmethod
    def from_spec(cls, name: str) -> FromSpec | None:
        """The FromSpec of a setting: on its field, or on its type (`Source | None`)."""
        info = cls.model_fields.get(name)
        if info is None:
            return None
        return next((m for m in info.metadata if isinstance(m, FromSpec)), None) \
            or _from_spec_in(info.annotation)

    def settings(self) -> dict[str, Any]:
        """The section's values by setting name, defaults included."""
        return {name: getattr(self, name) for name in self.setting_names()}

    @_field_validator("*", mode="before")
    @classmethod
    def _from_spec(cls, value: Any, info: ValidationInfo) -> Any:
        """A value from the spec (an IR node) evaluated in the section's scope, then
        converted by the field's FromSpec, or to plain Python."""
        if not isinstance(value, ir.Node):
            return value
        scope = (info.context or {}).get("scope")
        try:
            value = scope.evaluate(value) if scope is not None else value
            how = cls.from_spec(info.field_name)
            return how.convert(value) if how is not None else to_python(value)
        except SpecError as exc:
            raise PydanticCustomError("spec", "{diagnostics}",
                                      {"diagnostics": exc.diagnostics}) from None

    @_model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        """The rules between settings, reported with the settings' own mistakes."""
        broken = [(rule, e) for rule in cls.rules if isinstance(data, Mapping)
                  and (e := rule.broken(cls.entry_name(), data)) is not None]
        ruled = {n for rule, _ in broken for n in (rule.first, rule.second)}
        errors = [{"type": e, "loc": (), "input": data} for _, e in broken]
        try:
            model = handler(data)
        except ValidationError as exc:
            if not errors:
                raise
            errors += [_rebuilt(e) for e in exc.errors()
                       if not (e["type"] == "extra_forbidden" and e["loc"][0] in ruled)]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return model


# ---------------------------------------------------------------------------- places


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


def clash(first: ir.Setting, second: ir.Setting, message: str) -> Diagnostic:
    """`message` for two settings that exclude each other: at the one the spec's text
    holds (the second when both are there), naming the one an override gave."""
    for here, other in ((second, first), (first, second)):
        if _override(here) is None:
            given = _override(other)
            return Diagnostic(span=here.span, message=message + (
                f" ('{other.path}' comes from {given})" if given else ""))
    return Diagnostic(span=setting_place(second),
                      message=f"{message} (both come from overrides)")


SHOWN = 60  # characters of a value shown in an error


def _got(value: Any) -> str:
    if isinstance(value, ir.Node):
        text = format_expr(value)
    elif isinstance(value, tuple):
        text = "[" + ", ".join(_got(v) for v in value) + "]"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


# ------------------------------------------------------------------------ validation


def section_settings(section: ir.Section, known: list[str], name: str
                     ) -> tuple[dict[str, ir.Setting], list[Diagnostic]]:
    """The section's settings by name, and the mistakes of those that are unknown or
    given twice (which pydantic cannot see: it gets one value per name)."""
    found: dict[str, ir.Setting] = {}
    problems = []
    for s in section.settings:
        if s.path not in known:
            problems.append(Diagnostic(span=s.span, message=f"unknown {name} setting "
                                       f"'{s.path}'{did_you_mean(s.path, known)}"))
        elif s.path in found:
            problems.append(Diagnostic(span=s.span, message=f"'{s.path}' is set twice"))
        else:
            found[s.path] = s
    return found, problems


@functools.cache
def _adapter(model: Any) -> TypeAdapter:
    return TypeAdapter(model)


def validate_section(model: Any, name: str, section: ir.Section, scope: Scope,
                     known: list[str], members: Mapping[str, type[SectionModel]] = {},
                     **extra: Any) -> Any:
    """The section's model (a SectionModel, or a discriminated union of them whose tags
    are `members`), validated from its settings; a SpecError holds every mistake, each at
    its setting. `extra` are fields that are no settings (`folder`)."""
    settings, problems = section_settings(section, known, name)
    values = {path: s.value for path, s in settings.items()}
    try:
        result = _adapter(model).validate_python(
            {**values, **extra, "span": section.span}, context={"scope": scope})
    except ValidationError as exc:
        problems += _diagnostics(exc, name, settings, section, model, members)
    if problems:
        problems.sort(key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
        raise SpecError(problems)
    return result


def _diagnostics(exc: ValidationError, name: str, settings: dict[str, ir.Setting],
                 section: ir.Section, model: Any, members: Mapping[str, type[SectionModel]]
                 ) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    reported: set[str] = set()
    for err in exc.errors():
        loc = list(err["loc"])
        cls = model
        if loc and loc[0] in members:  # a member of a union: its tag leads
            cls = members[loc.pop(0)]
        setting = str(loc[0]) if loc else None
        ctx = err.get("ctx") or {}
        if err["type"] == "spec":
            out += ctx["diagnostics"]
        elif err["type"] == "clash":
            message = err["msg"]
            out.append(clash(settings[ctx["first"]], settings[ctx["second"]], message))
        elif setting is None:
            place = settings.get(ctx.get("setting", ""))
            out.append(Diagnostic(span=setting_place(place) or section.span,
                                  message=err["msg"]))
        elif setting in reported:  # a union reports once per member type
            continue
        elif err["type"] == "missing":
            missing = getattr(cls, "missing", {})
            out.append(Diagnostic(span=section.span, message=missing.get(
                setting, f"{name} needs '{setting}'")))
        else:
            message = err["msg"][0].lower() + err["msg"][1:]
            message = message.replace("input should", "should")
            if not message.startswith("should"):
                message = f"is invalid: {message}"
            value = err["input"]  # the spec's value, where the field's FromSpec refused it
            value = to_python(value) if isinstance(value, ir.Node) else value
            out.append(Diagnostic(span=setting_place(settings.get(setting)) or section.span,
                                  message=f"setting '{setting}' of {name} {message} "
                                          f"(got {describe(value)} {_got(value)})"))
        if setting is not None:
            reported.add(setting)
    return out

