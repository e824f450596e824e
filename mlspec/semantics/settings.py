"""A settings section as a pydantic model, and its validation with errors at their places.

Each field of a `SectionModel` is one setting: its name is the setting's name, its type
says what the setting takes, and a `FromSpec` in its metadata says how the spec's value
becomes the field's (a loss expression into weighted terms, a call into a catalogue entry)
and which catalogue names the value may call. The rules between settings (`OneOf`,
`Excludes`) are declared on the model. `validate_section` converts each setting, checks
the rules, hands the values to pydantic and maps every error back to the setting's place
in the text. The model itself holds no validator that reads the spec: a typed program's
JSON reads back into it as plain data (pydantic's strict JSON reading of tuples does not
survive a "before" validator).

For example, a section `run { steps = 10 }` that takes exactly one of two settings:

    class RunSection(SectionModel):
        kind: Literal["run"] = "run"
        steps: PositiveInt | None = None
        epochs: PositiveInt | None = None
        rules: ClassVar = (OneOf("steps", "epochs"),)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, get_args, get_origin

from pydantic import Discriminator, ValidationError
from pydantic_core import PydanticCustomError

from mlspec.catalog.registry import Entry, describe, entry_value, to_python
from mlspec.catalog.signature import NO_NAMES, Names, takes
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, Span, SpecError, did_you_mean, nearest
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

    `convert(value, scope)` gets the value with the params substituted and the scope
    that the names in it are bound in, and raises SpecError at the place of a mistake; a
    setting without a FromSpec is settled by its field's type, as a call's argument is
    (`registry.entry_value`: numbers, strings, booleans, lists as tuples, a bare name as
    the symbol or metric path the type takes, else `undefined name`). `calls` are the
    catalogues its value may name: the first is what the value itself is, the others
    what its arguments may call (an optimizer's schedules)."""

    def __init__(self, convert: Callable[[ir.Expr, Names], Any], *calls: Catalogue):
        self.convert = convert
        self.calls = calls


@dataclass(frozen=True)
class OneOf:
    """Exactly one of two settings is given."""

    first: str
    second: str

    def broken(self, section: str, given: Iterable[str]) -> str | None:
        given = set(given)
        if {self.first, self.second} <= given:
            return (f"{section} has both '{self.first}' and '{self.second}'; give exactly "
                    "one of them")
        if not {self.first, self.second} & given:
            return f"{section} needs exactly one of '{self.first}' and '{self.second}'"
        return None


@dataclass(frozen=True)
class Excludes:
    """Two settings that cannot be given together; `message` says why."""

    first: str
    second: str
    message: str

    def broken(self, section: str, given: Iterable[str]) -> str | None:
        return self.message if {self.first, self.second} <= set(given) else None


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

    @classmethod
    def convert(cls, name: str, value: ir.Expr, scope: Names = NO_NAMES) -> Any:
        """A setting's value in the spec as its field's: converted by the field's
        FromSpec (with the params substituted), or settled by the field's type as a
        call's argument is. A mistake is a SpecError at its place, or a
        PydanticCustomError that says what the setting should be."""
        how = cls.from_spec(name)
        if how is None:
            return entry_value(cls, name, value, scope)
        return how.convert(scope.evaluate(value), scope)


# ---------------------------------------------------------------------------- places


def setting_place(setting: ir.Setting | None) -> Span | None:
    """Where a setting is given: its value (an override's value is placed in its `--set`
    text), or else the setting itself."""
    return None if setting is None else setting.value.span or setting.span


def _override(setting: ir.Setting) -> str | None:
    """What gave a setting when an override did (`--set train.epochs`, a sweep's values,
    which are placed in the spec's text while the setting is not), else None."""
    span = setting.value.span
    if span is not None and span.file.startswith("--set "):
        return span.file
    if setting.span is not None:
        return None
    return "an override" if span is None else f"the sweep at line {span.line}"


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


def _member(model: Any, members: Mapping[str, type[SectionModel]],
            values: Mapping[str, ir.Expr]) -> type[SectionModel]:
    """The member of a discriminated union `model` that the settings `values` are."""
    if not members:
        return model
    found = next(m for m in getattr(model, "__metadata__", ()) if isinstance(m, Discriminator))
    return members[found.discriminator(values)]


def validate_section(model: Any, name: str, section: ir.Section, scope: Scope,
                     known: list[str], members: Mapping[str, type[SectionModel]] = {},
                     **extra: Any) -> Any:
    """The section's model (a SectionModel, or a discriminated union of them whose tags
    are `members`), validated from its settings; a SpecError holds every mistake, each at
    its setting. `extra` are fields that are no settings (`folder`).

    Each setting is converted here (`SectionModel.convert`) and the rules checked, then
    pydantic validates the values: the models hold no validators that read the spec, so
    a program's JSON reads back into them as plain data."""
    settings, problems = section_settings(section, known, name)
    cls = _member(model, members, {path: s.value for path, s in settings.items()})
    values: dict[str, Any] = {}
    failed: set[str] = set()
    for path, setting in settings.items():
        if path not in cls.model_fields:  # a rule says why (or pydantic, that it is extra)
            values[path] = setting.value
            continue
        try:
            values[path] = cls.convert(path, setting.value, scope)
        except SpecError as exc:
            problems += exc.diagnostics
            failed.add(path)
        except PydanticCustomError as exc:
            problems.append(_refused(name, setting, exc.message(),
                                     scope.evaluate(setting.value)))
            failed.add(path)
    ruled: set[str] = set()
    for rule in cls.rules:
        message = rule.broken(name, settings)
        if message is None:
            continue
        ruled |= {rule.first, rule.second}
        if {rule.first, rule.second} <= set(settings):
            problems.append(clash(settings[rule.first], settings[rule.second], message))
        else:
            problems.append(Diagnostic(span=section.span, message=message))
    try:
        result = cls.model_validate({**values, **extra, "span": section.span})
    except ValidationError as exc:
        problems += _diagnostics(exc, name, settings, section, cls, skip=failed | ruled)
    if problems:
        problems.sort(key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
        raise SpecError(problems)
    return result


def _word_hint(value: str, words: tuple[str, ...]) -> str:
    """`; did you mean 'all'?` for `devices = "al"`, else the words that may stand there."""
    if not words:
        return ""
    close = nearest(value, words)
    return f"; did you mean '{close}'?" if close else "; it may also be " + " or ".join(
        f"'{w}'" for w in words)


def _refused(name: str, setting: ir.Setting, message: str, value: Any, hint: str = ""
             ) -> Diagnostic:
    """`setting 'steps' of train should be ... (got a number 2.5)` at the setting, and
    `hint` (`; did you mean 'all'?`, for a string where a word may stand)."""
    message = message[0].lower() + message[1:]
    message = message.replace("input should", "should")
    if not message.startswith("should"):
        message = f"is invalid: {message}"
    value = to_python(value) if isinstance(value, ir.Node) else value
    return Diagnostic(span=setting_place(setting), message=f"setting '{setting.path}' of "
                      f"{name} {message} (got {describe(value)} {_got(value)}){hint}")


def _diagnostics(exc: ValidationError, name: str, settings: dict[str, ir.Setting],
                 section: ir.Section, cls: type[SectionModel], skip: set[str]
                 ) -> list[Diagnostic]:
    """pydantic's errors at their settings; those of the settings in `skip` (reported
    already, by their conversion or a rule) are left out."""
    out: list[Diagnostic] = []
    reported: set[str] = set(skip)
    for err in exc.errors():
        setting = str(err["loc"][0]) if err["loc"] else None
        ctx = err.get("ctx") or {}
        if setting is None:
            place = settings.get(ctx.get("setting", ""))
            out.append(Diagnostic(span=setting_place(place) or section.span,
                                  message=err["msg"]))
        elif setting in reported:  # a union reports once per member type
            continue
        elif err["type"] == "missing":
            out.append(Diagnostic(span=section.span, message=cls.missing.get(
                setting, f"{name} needs '{setting}'")))
        elif setting in settings:
            field = cls.model_fields.get(setting)
            words = takes(field.annotation).symbols if field is not None else ()
            hint = _word_hint(err["input"], words) if isinstance(err["input"], str) else ""
            out.append(_refused(name, settings[setting], err["msg"], err["input"], hint))
        else:
            out.append(Diagnostic(span=section.span, message=f"{name}: {err['msg']}"))
        if setting is not None:
            reported.add(setting)
    return out
