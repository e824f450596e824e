"""The run folder: everything needed to look at, reuse and reproduce a run.

    history.csv      one row per evaluation (for seeds or a sweep: every member's rows,
                     with a column per swept setting); NaN stays NaN here
    metrics.json     final metrics per split, steps done, how the run ended, and the step
                     whose parameters they measure (`evaluated_at`): the saved parameters'
                     step, but for a divergence or a chunk dropped by a second signal,
                     where the saved parameters ran on past it; for seeds or a sweep also
                     `members`, best first. Strict JSON: a NaN or infinite metric is
                     written as null, and manifest.json's `null_metrics` says which
                     (key -> "NaN", "Infinity" or "-Infinity")
    spec.mlspec      the spec as run (overrides applied, its sweep kept), in canonical text
    manifest.json    versions, device, seed, wall time, status, resume point, the sha256
                     of spec.mlspec (`spec_sha256`) and of the other files (`file_sha256`):
                     a file changed or damaged after the run is refused, not misread;
                     `plots_missing` (plots not drawn yet: `mlspec plot` draws them)
    state.msgpack    parameters, model state, optimizer state and PRNG keys (flax msgpack:
                     plain data, loading it never runs code): {"train", "normalizer"} for a
                     single run; {"members": {"0": {"train", "normalizer"}, "1": ...}} for
                     seeds or a sweep, numbered as metrics.json's `members` (0 the best)
    *.png            plots (see mlspec.runtime.plots)
    .lock            flock-ed by the process writing the folder

Every file is written to a temporary name and renamed into place. A folder that cannot be
used (a file missing, corrupt, or not the one that was run) is a RunFolderError, which the
command line reports as bad input (exit 2); one that cannot be written is a
RunFolderWriteError (exit 1).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mlspec import files

STATE_FILE = "state.msgpack"
LOCK_FILE = ".lock"
RUN_FILES = ("history.csv", "metrics.json", "spec.mlspec", "manifest.json", STATE_FILE)


class RunFolderError(Exception):
    """A run folder that cannot be used: missing, corrupt, or changed since the run."""


class RunFolderWriteError(RunFolderError):
    """A run folder that cannot be written (full disk, not a folder, in use)."""


# ---------------------------------------------------------------------------- writing


def prepare_folder(out: Path) -> Path:
    """Creates the folder and proves it writable before any training starts."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        files.atomic_write(out / ".probe", b"ok")
        (out / ".probe").unlink()
    except OSError as exc:
        raise RunFolderWriteError(f"cannot write to the output folder {out}: "
                                  f"{exc.strerror or exc}") from None
    for name in RUN_FILES:
        if (out / name).is_dir():
            raise RunFolderWriteError(f"cannot write {out / name}: a folder is in its place")
    return out


_HELD: dict[Path, Any] = {}  # folder -> open lock file, for the folders this process holds


@contextlib.contextmanager
def locked(out: Path):
    """Holds the folder's `.lock` while inside, so a second process writing the same folder
    is refused instead of silently overwriting it. The lock is an flock, which the system
    releases when the process ends, so a crash leaves no stale lock. Re-entrant."""
    key = Path(out).resolve()
    if key in _HELD:
        yield
        return
    try:
        handle = open(Path(out) / LOCK_FILE, "a+")  # noqa: SIM115 - held until the end
    except OSError as exc:
        raise RunFolderWriteError(f"cannot write to the output folder {out}: "
                                  f"{exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RunFolderWriteError(
            f"another mlspec process (pid {holder}) is writing to {out};\nwait for it to "
            "finish or choose another --out") from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    _HELD[key] = handle
    try:
        yield
    finally:
        del _HELD[key]
        handle.close()


def require_unused(out: Path) -> None:
    """A run never writes over what a folder already holds (an earlier run, the user's
    files): `--out` must name a new or empty folder (the held `.lock` aside)."""
    held = [p.name for p in sorted(out.iterdir()) if p.name != LOCK_FILE]
    if not held:
        return
    if (out / "manifest.json").exists():
        raise RunFolderWriteError(
            f"{out} already holds a run, which is never overwritten: choose another --out"
            f"\n(or continue an interrupted run with: mlspec run --resume {out})")
    shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
    raise RunFolderWriteError(f"{out} is not empty (it holds {shown});\na run is written "
                              "to a new or empty folder: choose another --out")


def numbered_folder(base: Path) -> Path:
    """`base`, or `base-2`, `base-3`, ... : never an existing folder."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _device() -> str:
    import jax

    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', '')} x{jax.device_count()}"


def spec_text(result) -> str:
    """The spec as run: for seeds or a sweep the whole spec (its sweep kept), else the
    program's spec (overrides applied)."""
    if result.members:
        if result.run_spec is None:
            raise ValueError("a Result of seeds or a sweep needs its run_spec to be saved "
                             "(mlspec.runtime.results.combine(results, run_spec))")
        return result.run_spec.to_text()
    return result.program.spec.to_text()


def _finite_or_null(value: float, key: str, nulls: dict[str, str]) -> float | None:
    if math.isfinite(value):
        return value
    nulls[key] = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    return None


def _json_metrics(result, prefix: str, nulls: dict[str, str]) -> dict:
    return {split: {name: _finite_or_null(v, prefix + (name if split == "training"
                                                       else f"{split}.{name}"), nulls)
                    for name, v in values.items()}
            for split, values in result.metrics_by_split().items()}


def _state_entry(result) -> dict:
    import jax
    from flax import serialization

    entry = {"train": jax.tree.map(np.asarray, serialization.to_state_dict(result.state))}
    if result.normalizer is not None:
        entry["normalizer"] = {"mean": np.asarray(result.normalizer[0]),
                               "std": np.asarray(result.normalizer[1])}
    return entry


def save_run(result, out_dir, *, blocks_done: int | None = None, chunk: int | None = None,
             plots: bool = True, should_stop=None) -> Path:
    """Writes the run folder for `result` (complete, interrupted or diverged). The plots
    come last, each only while `should_stop()` is false; those not drawn are listed in the
    manifest's `plots_missing`."""
    out = Path(out_dir)
    prepare_folder(out)
    with locked(out):
        return _write(result, out, blocks_done, chunk, plots, should_stop)


def _write(result, out: Path, blocks_done, chunk, plots: bool, should_stop) -> Path:
    from flax import serialization

    from mlspec.runtime.plots import draw_all, plot_names

    program = result.program
    hashes: dict[str, str] = {}

    def put(name: str, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        files.atomic_write(out / name, data)
        hashes[name] = hashlib.sha256(data).hexdigest()

    put("history.csv", result.history.to_csv(index=False))
    nulls: dict[str, str] = {}
    summary = {"model": program.name, **_json_metrics(result, "", nulls),
               "steps": result.steps_done, "status": result.status,
               "stopped_at": result.stopped_at, "best_step": result.best_step,
               "evaluated_at": result.evaluated_at}
    if result.members:  # seeds or a sweep: every member, best first
        summary["best"] = result.settings
        summary["members"] = [{"settings": m.settings, **_json_metrics(m, f"members[{i}].",
                                                                        nulls),
                               "status": m.status, "stopped_at": m.stopped_at,
                               "best_step": m.best_step, "evaluated_at": m.evaluated_at}
                              for i, m in enumerate(result.members)]
    put("metrics.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    text = spec_text(result)
    put("spec.mlspec", text)
    if result.members:
        state = {"members": {str(i): _state_entry(m) for i, m in enumerate(result.members)}}
    else:
        state = _state_entry(result)
    put(STATE_FILE, serialization.msgpack_serialize(state))
    spec_path = program.spec.path
    manifest = {
        "model": program.name,
        "status": result.status,
        "steps_done": result.steps_done,
        "steps_total": result.trainer.schedule.total,
        "stopped_at": result.stopped_at,
        "best_step": result.best_step,
        "blocks_done": blocks_done,
        "chunk": chunk,
        "members": len(result.members),
        "n_train": result.trainer.n_train,
        "seed": program.train.seed,
        "wall_time_s": round(result.wall_time, 3),
        "spec_sha256": hashes.pop("spec.mlspec"),
        "file_sha256": hashes,
        "spec_folder": str(Path(spec_path).parent.resolve()) if spec_path else os.getcwd(),
        "device": _device(),
        "versions": {p: _version(p) for p in ("mlspec", "jax", "jaxlib", "flax", "optax")},
        "null_metrics": nulls,
        "plots_missing": plot_names(result),
    }
    write_manifest(out, manifest)
    if plots:
        _, manifest["plots_missing"] = draw_all(result, out, should_stop=should_stop)
        write_manifest(out, manifest)
    return out


def write_manifest(out: Path, manifest: dict) -> None:
    files.atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")


# ---------------------------------------------------------------------------- reading


class Manifest(BaseModel):
    """manifest.json as save_run writes it (keys added later are kept)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    status: Literal["completed", "early_stopped", "interrupted", "diverged"]
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
    status: Literal["completed", "early_stopped", "interrupted", "diverged"]
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


def _read_history(folder: Path, sha256: str | None) -> pd.DataFrame:
    path = folder / "history.csv"
    text = _read_text(path, sha256)
    try:
        history = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise RunFolderError(f"{path} is not a history table: {exc}") from None
    if "step" not in history.columns:
        raise RunFolderError(f"{path} is not a history table: it has no 'step' column")
    for column in history.columns:
        if column == "step" or "." in column:
            if not pd.api.types.is_numeric_dtype(history[column]) or \
                    pd.api.types.is_bool_dtype(history[column]):
                raise RunFolderError(f"{path}: column '{column}' holds values that are not "
                                     "numbers")
    if history["step"].isna().any() or not (history["step"] % 1 == 0).all():
        raise RunFolderError(f"{path}: column 'step' holds values that are not whole steps")
    history["step"] = history["step"].astype(np.int64)
    return history


def read_state(path: Path, sha256: str | None = None) -> dict:
    """The saved state as plain arrays; msgpack cannot run code, and anything that is
    not mlspec's msgpack (a pickle, say) is refused."""
    from flax import serialization

    data = _read_bytes(path, sha256)
    try:
        state = serialization.msgpack_restore(data)
    except Exception:  # msgpack raises several types for foreign bytes
        state = None
    if not isinstance(state, dict) or not ("train" in state or "members" in state):
        raise RunFolderError(f"{path} is not an mlspec state file (flax msgpack); it was "
                             "not loaded")
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
    history = _read_history(folder, hashes.get("history.csv"))
    return _Folder(folder, manifest, raw, spec, history, read)


def member_of(run: _Folder, member: int):
    """(program, settings, flat metrics, history, how it ended) of member K."""
    from mlspec.semantics.resolve import resolve
    from mlspec.semantics.sweep import setting_column

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


def _flat(tree) -> dict:
    from flax import traverse_util

    return traverse_util.flatten_dict(tree, keep_empty_nodes=True)


def _misfit(expected, saved) -> str | None:
    """Why the saved state dict does not have the structure, shapes and dtypes of the
    expected one (leaves with .shape and .dtype), or None when it fits."""
    from flax.traverse_util import empty_node

    want, have = _flat(expected), _flat(saved)
    for key in [*want, *(k for k in have if k not in want)]:
        name = "/".join(map(str, key)) or "the state"
        if key not in have:
            return f"{name} is missing"
        if key not in want:
            return f"{name} is not part of the spec's model"
        a, b = want[key], have[key]
        if a is empty_node or b is empty_node:
            if a is not b:
                return f"{name} should {'' if a is empty_node else 'not '}be empty"
            continue
        if not isinstance(b, np.ndarray | np.generic):
            return f"{name} is not an array"
        if b.shape != tuple(a.shape) or b.dtype != a.dtype:
            return (f"{name} is {b.dtype}{list(b.shape)}; the spec's model has "
                    f"{a.dtype}{list(a.shape)}")
    return None


def _fill_spec_decided(saved_train: dict, trainer) -> dict:
    """Entries that the spec alone decides, which older versions did not save (its traced
    values, such as `dropout_keep`, or those of a field made sweepable since); and early
    stopping's copy of the best evaluation, which a finished run (or an older version)
    does not save: a fresh record of the saved model, so a resumed run keeps the best of
    the evaluations after the resume."""
    decided: dict = trainer.traced_state()
    stop = trainer.early_stop
    if stop is not None and stop.restore_best and "params" in saved_train:
        decided["best"] = {"value": np.float32(np.inf), "step": np.int32(0),
                           "params": saved_train["params"],
                           "model_state": saved_train.get("model_state", {})}
    return {**{k: v for k, v in decided.items() if k not in saved_train}, **saved_train}


def restore_state(program, n_train: int, seed: int, saved_train, path: Path, *,
                  template=None):
    """(trainer, state) for a saved training state, checked against the spec's model:
    the structure, every shape and dtype must fit. A member of seeds or a sweep that
    trained together with others has an optimizer state with injected hyperparameters."""
    import jax
    import jax.numpy as jnp
    from flax import serialization

    from mlspec.compiler.trainer import Trainer

    if not isinstance(saved_train, dict):
        raise RunFolderError(f"{path} does not fit the spec's model: the state is not a "
                             "table of arrays")
    problem = None
    for inject in (False, True):
        trainer = Trainer(program, n_train, inject=inject)
        if template is not None:
            shapes = template
        else:  # shapes only: nothing allocated before the file is known to fit
            example = jnp.zeros((1, *program.model.input_shape), jnp.float32)
            shapes = jax.eval_shape(functools.partial(trainer.init, seed), example)
        train = _fill_spec_decided(saved_train, trainer)
        why = _misfit(serialization.to_state_dict(shapes), train)
        if why is None:
            return trainer, serialization.from_state_dict(shapes, train)
        problem = problem or why
        if template is not None:
            break
    raise RunFolderError(f"{path} does not fit the spec's model: {problem}")


def read_normalizer(entry: dict, program, path: Path):
    if "normalizer" not in entry:
        return None
    saved = entry["normalizer"]
    mean = saved.get("mean") if isinstance(saved, dict) else None
    std = saved.get("std") if isinstance(saved, dict) else None
    shape = tuple(program.model.input_shape)
    for value in (mean, std):
        if not isinstance(value, np.ndarray) or value.shape != shape or \
                value.dtype.kind != "f":
            raise RunFolderError(f"{path}: the saved standardization does not fit the "
                                 f"model's input {list(shape)}")
    return mean, std


def full_history(folder) -> tuple[pd.DataFrame, list[str]]:
    """Every member's history rows and the columns that tell the members apart."""
    from mlspec.semantics.sweep import setting_column

    run = open_folder(folder)
    members = run.metrics.members
    return run.history, [setting_column(k) for k in members[0].settings] if members else []


def mark_plots_drawn(folder, missing: list[str]) -> None:
    """Sets the manifest's `plots_missing` (keeping every other key as it was)."""
    folder = Path(folder)
    _, raw = _read_manifest(folder)
    raw["plots_missing"] = missing
    write_manifest(folder, raw)
