"""The settings sections: what each one means, in one registry.

The syntax of a section is its field on `mlspec.syntax.ir.Spec` (which gives the grammar
its keyword and the printer its place); its meaning is its entry here: the pydantic model
whose fields are its settings (see `mlspec.semantics.settings`). Everything else that
knows sections reads them from these two: `--set` paths and the argument names inside a
setting's call (`semantics.overrides`), the editor's completion, the docs' checks.

A new section is one `ir.Spec` field and one entry here (and the pass that resolves it);
a new setting is one field on its section's model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlspec.semantics.data import DATA_FORMS, DataSection
from mlspec.semantics.search import SearchSection
from mlspec.semantics.settings import Catalogue, FromSpec, SectionModel
from mlspec.semantics.train import TrainSection
from mlspec.syntax import ir


@dataclass(frozen=True)
class SectionKind:
    """One settings section."""

    name: str
    doc: str
    """What the section says, in a line (shown by the editor)."""
    model: Any = None
    """The model its settings validate into: a SectionModel, or a discriminated union of
    them whose members are `forms`; None for a section of paths into the others
    (`sweep`), which its own pass reads."""
    forms: dict[str, type[SectionModel]] = field(default_factory=dict)
    """The members of a union `model` by tag."""

    @property
    def models(self) -> tuple[type[SectionModel], ...]:
        return tuple(self.forms.values()) if self.forms else \
            (self.model,) if self.model is not None else ()

    def setting_names(self) -> list[str]:
        """Its settings, in the order of its model's fields."""
        return list(dict.fromkeys(n for m in self.models for n in m.setting_names()))

    def from_spec(self, setting: str) -> FromSpec | None:
        return next((f for m in self.models if (f := m.from_spec(setting)) is not None), None)

    def annotation(self, setting: str) -> Any:
        """The setting's type (of the first form that has it)."""
        return next((m.model_fields[setting].rebuild_annotation() for m in self.models
                     if setting in m.model_fields), None)

    def catalogues(self) -> Iterator[Catalogue]:
        """Every catalogue that its settings' values may call."""
        for name in self.setting_names():
            how = self.from_spec(name)
            yield from how.calls if how is not None else ()

    def find(self, name: str) -> tuple[Catalogue, Any] | None:
        """The catalogue and entry of a name its settings' values may call."""
        for catalogue in self.catalogues():
            entry = catalogue.entries().get(name)
            if entry is not None:
                return catalogue, entry
        return None

    def call_arguments(self, name: str) -> tuple[str, list[str]] | None:
        """What a call of `name` in one of its settings is ("data source", "optimizer") and
        its argument names in positional order; None for a name it cannot call."""
        found = self.find(name)
        return None if found is None else (found[0].what, found[0].arguments(found[1]))


SECTIONS: dict[str, SectionKind] = {kind.name: kind for kind in (
    SectionKind("data", "where the rows come from and how they are split", DataSection,
                DATA_FORMS),
    SectionKind("train", "the loss, the optimizer, the schedule and what is recorded",
                TrainSection),
    SectionKind("sweep", "settings to vary: each path a list of values, trained together"),
    SectionKind("search", "how to draw a sweep's distributions: method, trials, pruning",
                SearchSection),
)}
"""The settings sections by keyword, in `ir.SECTION_NAMES` order."""

if tuple(SECTIONS) != ir.SECTION_NAMES:  # pragma: no cover - a new section half-added
    raise RuntimeError(f"the sections {ir.SECTION_NAMES} of ir.Spec and the entries "
                       f"{tuple(SECTIONS)} of SECTIONS differ")


def setting_paths() -> list[str]:
    """Every `SECTION.SETTING` that `--set` and a sweep may name."""
    return [f"{kind.name}.{s}" for kind in SECTIONS.values() for s in kind.setting_names()]
