"""The data section: its source inspected (no training rows loaded) and split sizes
settled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec.catalog.registry import (
    entry_value,
    instantiate,
    validate_entry,
)
from mlspec.catalog.sources import SOURCES, DataError, DataInfo
from mlspec.semantics.budget import rows_text
from mlspec.semantics.program import (
    DataProgram,
    size_rows,
)
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError, did_you_mean

DATA_KEYS = ["train", "valid", "test", "source", "split_seed", "standardize"]


def section_settings(section: ir.Section, allowed: list[str], what: str) -> dict[str, ir.Setting]:
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


def clash(first: ir.Setting, second: ir.Setting, message: str) -> SpecError:
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
    if not isinstance(value, (ir.Call, ir.Name)):
        raise SpecError.at(value.span or setting.span,
                           f"'{setting.path}' should be a data source call such as hill(n=1000)")
    source = instantiate(SOURCES, value, scope)
    return source


def _info(source, folder: Path, span) -> DataInfo:
    try:
        return source.info(folder)
    except DataError as exc:
        raise SpecError.at(span, str(exc)) from None


def resolve_data(section: ir.Section, scope: Scope, folder: Path) -> DataProgram:
    settings = section_settings(section, DATA_KEYS, "data")
    values: dict[str, Any] = {"folder": str(folder)}
    spans = {k: s.span for k, s in settings.items()}
    if "source" in settings:
        if "train" in settings:
            raise clash(settings["source"], settings["train"], "with 'source', the splits "
                         "are sizes: give 'valid' (and 'test') as fractions or counts, "
                         "not a 'train' source")
        values["source"] = _source(settings["source"], scope)
        for split in ("valid", "test"):
            if split in settings:
                size = entry_value(DataProgram, f"{split}_size", settings[split].value, scope)
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
            values[key] = entry_value(DataProgram, key, settings[key].value, scope)
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
