"""A run folder read back: its manifest, spec, history, metrics and state, each checked
(`mlspec.runtime.runs` describes the files). A file missing, corrupt or changed since the
run is a RunFolderError, never a misreading."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mlspec.runtime.runs import STATE, STATE_FILE, RunFolderError, write_manifest
from mlspec.semantics.sweep import setting_column


class Manifest(BaseModel):
    """manifest.json as save_run writes it (keys added later are kept)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    status: Literal["completed", "early_stopped", "interrupted", "diverged", "pruned"]
    steps_done: int = Field(ge=0)
    steps_total: int = Field(ge=0)
    stopped_at: int | None
    best_step: int | None = None
    """The step of the returned model with early_stop(restore_best=true)."""
    blocks_done: int | None = Field(ge=0)
    chunk: int | None = Field(ge=1)
    members: int = Field(ge=0)
    n_train: int = Field(ge=1)
    seed: int
    wall_time_s: float = Field(ge=0)
    spec_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    spec_folder: str
    device: str
    versions: dict[str, str | None]
    file_sha256: dict[str, Annotated[str, Field(pattern="^[0-9a-f]{64}$")]] = {}
    """history.csv, metrics.json and state.msgpack as written (older folders: none)."""
    null_metrics: dict[str, Literal["NaN", "Infinity", "-Infinity"]] = {}
    plots_missing: list[str] = []


_METRIC_GROUP = TypeAdapter(dict[str, float | None])
_NOT_METRICS = ("settings", "best")


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where + ': ' if where else ''}{first['msg']}"


def _read_bytes(path: Path, sha256: str | None = None) -> bytes:
    """The file's bytes; with `sha256` (from the manifest), only if they are the bytes
    that were written."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing") from None
    except IsADirectoryError:
        raise RunFolderError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise RunFolderError(f"cannot read {path}: {exc.strerror or exc}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise RunFolderError(f"{path} was changed or damaged after the run\n(its sha256 "
                             "differs from manifest.json's file_sha256)")
    return data


def _read_text(path: Path, sha256: str | None = None) -> str:
    try:
        return _read_bytes(path, sha256).decode()
    except UnicodeDecodeError:
        raise RunFolderError(f"{path} is not UTF-8 text") from None


def _read_manifest(folder: Path) -> tuple[Manifest, dict]:
    path = folder / "manifest.json"
    data = _read_bytes(path)
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as exc:
        raise RunFolderError(f"{path} is not an mlspec manifest ({_problem(exc)})") from None
    return manifest, manifest.model_dump()


def _flat_metrics(entry: dict, path: Path, where: str, nulls: dict[str, str]) -> dict:
    """{"valid": {"loss": 0.1}} -> {"valid.loss": 0.1}; null back to what it was."""
    flat: dict[str, float] = {}
    for split, values in entry.items():
        if split in _NOT_METRICS or not isinstance(values, dict):
            continue
        try:
            values = _METRIC_GROUP.validate_python(values, strict=True)
        except ValidationError as exc:
            raise RunFolderError(f"{path}: {where}{split}: {_problem(exc)}") from None
        for name, value in values.items():
            key = name if split == "training" else f"{split}.{name}"
            flat[key] = float(nulls.get(where + key, "nan")) if value is None else value
    return flat


class _MemberMetrics(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    settings: dict[str, Any]
    status: Literal["completed", "early_stopped", "interrupted", "diverged", "pruned"]
    stopped_at: int | None = None
    best_step: int | None = None
    evaluated_at: int | None = Field(default=None, ge=0)  # older folders: none


class _RunMetrics(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    evaluated_at: int | None = Field(default=None, ge=0)
    members: list[_MemberMetrics] = []


def _read_metrics(folder: Path, sha256: str | None) -> _RunMetrics:
    path = folder / "metrics.json"
    data = _read_bytes(path, sha256)
    try:
        return _RunMetrics.model_validate_json(data)
    except ValidationError as exc:
        raise RunFolderError(f"{path} is not an mlspec metrics file ({_problem(exc)})") \
            from None


def _read_history(folder: Path, sha256: str | None,
                  setting_columns: frozenset[str] = frozenset()) -> pd.DataFrame:
    """history.csv, its metric columns numbers; `setting_columns` (those of the swept
    settings, which may hold text such as `adam(learning_rate=0.1)`) are not metrics."""
    path = folder / "history.csv"
    text = _read_text(path, sha256)
    try:
        history = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise RunFolderError(f"{path} is not a history table: {exc}") from None
    if "step" not in history.columns:
        raise RunFolderError(f"{path} is not a history table: it has no 'step' column")
    for column in history.columns:
        if column not in setting_columns and (column == "step" or "." in column):
            if not pd.api.types.is_numeric_dtype(history[column]) or \
                    pd.api.types.is_bool_dtype(history[column]):
                raise RunFolderError(f"{path}: column '{column}' holds values that are not "
                                     "numbers")
    if history["step"].isna().any() or not (history["step"] % 1 == 0).all():
        raise RunFolderError(f"{path}: column 'step' holds values that are not whole steps")
    history["step"] = history["step"].astype(np.int64)
    return history


def state_path(folder: Path) -> Path:
    """Where a run folder's state is: `state/` (orbax), or in a folder written before
    it, `state.msgpack`."""
    folder = Path(folder)
    return folder / STATE_FILE if (folder / STATE_FILE).exists() and \
        not (folder / STATE).exists() else folder / STATE


def read_state(path: Path, sha256: str | None = None) -> dict:
    """The saved state as plain arrays, from an orbax folder (`state/`) or a flax msgpack
    file (`state.msgpack`); neither can run code, and anything that is not mlspec's state
    (a pickle, say) is refused."""
    from flax import serialization

    if path.is_dir():
        from mlspec.runtime.checkpoints import read_tree, tree_sha256

        if sha256 is not None and tree_sha256(path) != sha256:
            raise RunFolderError(f"{path} was changed or damaged after the run\n(its "
                                 "sha256 differs from manifest.json's file_sha256)")
        try:
            state = read_tree(path)
        except Exception:  # orbax and tensorstore raise several types for foreign files
            state = None
    elif path.name == STATE and not path.exists():
        raise RunFolderError(f"{path} is missing")
    else:
        data = _read_bytes(path, sha256)
        try:
            state = serialization.msgpack_restore(data)
        except Exception:  # msgpack raises several types for foreign bytes
            state = None
    if not isinstance(state, dict) or not ("train" in state or "members" in state):
        raise RunFolderError(f"{path} is not an mlspec state (an orbax checkpoint, or "
                             "flax msgpack); it was not loaded")
    return state


@dataclass
class _Folder:
    """A run folder's files, read and checked."""

    path: Path
    manifest: Manifest
    raw_manifest: dict
    spec: Any
    history: pd.DataFrame
    metrics: _RunMetrics | None


def require_run_folder(folder) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a run folder (no such folder)")
    if not (folder / "manifest.json").exists():
        raise RunFolderError(f"{folder} is not a run folder (no manifest.json)")
    return folder


def open_folder(folder, *, metrics: bool = True) -> _Folder:
    """The folder's manifest, spec (the one that was run: its hash is checked), history
    and metrics."""
    from mlspec.syntax.parser import parse

    folder = require_run_folder(folder)
    manifest, raw = _read_manifest(folder)
    spec_path = folder / "spec.mlspec"
    text = _read_text(spec_path)
    if hashlib.sha256(text.encode()).hexdigest() != manifest.spec_sha256:
        raise RunFolderError(
            f"{spec_path} is not the spec that was run: it was changed after the run\n(its "
            "hash differs from manifest.json's spec_sha256); to train an edited spec, run "
            "it as a new run")
    spec = parse(text, str(spec_path))
    # Relative data paths resolve against the folder of the spec that was run.
    spec = spec.model_copy(update={"path": str(Path(manifest.spec_folder) / "spec.mlspec")})
    hashes = manifest.file_sha256
    read = _read_metrics(folder, hashes.get("metrics.json")) if metrics else None
    if read is not None and len(read.members) != manifest.members:
        raise RunFolderError(f"{folder / 'metrics.json'} lists {len(read.members)} members; "
                             f"manifest.json says {manifest.members}")
    swept = frozenset(setting_column(k) for k in read.members[0].settings) \
        if read is not None and read.members else frozenset()
    history = _read_history(folder, hashes.get("history.csv"), swept)
    return _Folder(folder, manifest, raw, spec, history, read)


def member_of(run: _Folder, member: int):
    """(program, settings, flat metrics, history, how it ended) of member K."""
    from mlspec.semantics.resolve import resolve

    nulls = run.manifest.null_metrics
    metrics_path = run.path / "metrics.json"
    entries = run.metrics.members
    if not entries:
        if member != 0:
            raise RunFolderError(f"{run.path} holds a single run; it has no member {member}")
        metrics = _flat_metrics(run.metrics.model_extra, metrics_path, "", nulls)
        ending = {"status": run.manifest.status, "stopped_at": run.manifest.stopped_at,
                  "best_step": run.manifest.best_step,
                  "evaluated_at": run.metrics.evaluated_at}
        return resolve(run.spec), {}, metrics, run.history, ending
    if not 0 <= member < len(entries):
        raise RunFolderError(f"{run.path} has members 0 to {len(entries) - 1} (0 the best); "
                             f"there is no member {member}")
    from mlspec.semantics.sweep import find_member

    entry = entries[member]
    found = find_member(run.spec, entry.settings)  # only this member is resolved
    if found is None:
        raise RunFolderError(f"{metrics_path}: member {member}'s settings {entry.settings} "
                             "are not a member of spec.mlspec's sweep")
    columns = {setting_column(k): v for k, v in entry.settings.items()}
    missing = [c for c in columns if c not in run.history.columns]
    if missing:
        raise RunFolderError(f"{run.path / 'history.csv'} has no column '{missing[0]}' for "
                             "the swept setting")
    rows = np.ones(len(run.history), bool)
    for column, value in columns.items():
        values = run.history[column].to_numpy()
        if isinstance(value, float):  # as the CSV's text read back: to the last digit
            rows &= np.isclose(values.astype(float), value, rtol=1e-15, atol=0)
        else:
            rows &= values == value
    history = run.history[rows].drop(columns=list(columns)).reset_index(drop=True)
    metrics = _flat_metrics(entry.model_extra, metrics_path, f"members[{member}].", nulls)
    ending = {"status": entry.status, "stopped_at": entry.stopped_at,
              "best_step": entry.best_step, "evaluated_at": entry.evaluated_at}
    return found.program, entry.settings, metrics, history, ending


def full_history(folder) -> tuple[pd.DataFrame, list[str]]:
    """Every member's history rows and the columns that tell the members apart."""

    run = open_folder(folder)
    members = run.metrics.members
    return run.history, [setting_column(k) for k in members[0].settings] if members else []


def mark_plots_drawn(folder, missing: list[str]) -> None:
    """Sets the manifest's `plots_missing` (keeping every other key as it was)."""
    folder = Path(folder)
    _, raw = _read_manifest(folder)
    raw["plots_missing"] = missing
    write_manifest(folder, raw)
