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
    confusion_matrix.csv  with `confusion_matrix` among the metrics: the returned model's
                     on the valid split (else train), rows by target class, columns by
                     predicted class, both labelled by class name (see
                     mlspec.runtime.confusion; its PNG is one of the plots)
    trials.csv       for a search: one row per trial, best first (as metrics.json's
                     `members`): its optuna number, settings, status (completed or
                     pruned), steps and final metrics
    spec.mlspec      the spec as run (overrides applied, its sweep and search kept), in
                     canonical text
    manifest.json    versions, device, seed, wall time, status, resume point, the sha256
                     of spec.mlspec (`spec_sha256`) and of the other files (`file_sha256`):
                     a file changed or damaged after the run is refused, not misread;
                     `plots_missing` (plots not drawn yet: `mlspec plot` draws them)
    state/           parameters, model state, optimizer state and PRNG keys, an orbax
                     checkpoint (arrays and JSON: loading it never runs code; its sha256 is
                     of all its files): {"train", "normalizer"} for a single run;
                     {"members": {"0": {"train", "normalizer"}, "1": ...}} for seeds or a
                     sweep, numbered as metrics.json's `members` (0 the best). Folders
                     written before it hold the same as `state.msgpack` (flax msgpack),
                     which still loads
    tensorboard/     TensorBoard event files (mlspec.runtime.tracking)
    checkpoints/     with `checkpoint_every`: the last orbax checkpoints of the training
                     (mlspec.runtime.checkpoints)
    vocab.json       for a tabular source with categorical or text columns (or missing =
                     "fill"): each typed input's vocabulary and the fill values, which
                     `predict`, `evaluate` and `load_run` apply to new rows (an
                     `Encoding`; for seeds or a sweep whose members differ in them,
                     {"members": {"0": ..., "1": ...}})
    *.png            plots (see mlspec.runtime.plots)
    .lock            flock-ed by the process writing the folder

This module writes the folder: every file to a temporary name, renamed into place.
`mlspec.runtime.reading` reads a folder back, checking every file, and
`mlspec.runtime.reload` restores its state into a Result or a resumed Training. A folder
that cannot be used (a file missing, corrupt, or not the one that was run) is a
RunFolderError, which the command line reports as bad input (exit 2); one that cannot be
written is a RunFolderWriteError (exit 1).
"""


from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mlspec import files
from mlspec.runtime.checkpoints import FOLDER as CHECKPOINTS
from mlspec.runtime.checkpoints import spec_folder, tree_sha256, write_tree

STATE = "state"
STATE_FILE = "state.msgpack"
"""The state of a folder written before the state moved to orbax (`STATE`)."""
VOCAB_FILE = "vocab.json"
LOCK_FILE = ".lock"
RUN_FILES = ("history.csv", "metrics.json", "spec.mlspec", "manifest.json", STATE_FILE)
"""The files of a run folder (`STATE`, a folder, aside)."""


class RunFolderError(Exception):
    """A run folder that cannot be used: missing, corrupt, or changed since the run."""


class RunFolderWriteError(RunFolderError):
    """A run folder that cannot be written (full disk, not a folder, in use)."""


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
    if (out / "manifest.json").exists() or (out / CHECKPOINTS).is_dir():
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


def _vocab_json(result) -> str | None:
    """vocab.json's text, or None where the run's rows need no encoding beyond features."""
    encodings = [m.encoding for m in result.members] or [result.encoding]
    if all(e is None or e.trivial for e in encodings):
        return None
    if all(e == encodings[0] for e in encodings):
        return encodings[0].model_dump_json(indent=1) + "\n"
    members = {str(i): e.model_dump(mode="json") if e is not None else None
               for i, e in enumerate(encodings)}
    return json.dumps({"members": members}, indent=1) + "\n"


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
    from mlspec.runtime import confusion
    from mlspec.runtime.plots import draw_all, plot_names
    from mlspec.runtime.tracking import write_tensorboard

    program = result.program
    hashes: dict[str, str] = {}

    def put(name: str, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        files.atomic_write(out / name, data)
        hashes[name] = hashlib.sha256(data).hexdigest()

    put("history.csv", result.history.to_csv(index=False))
    if result.trials is not None:  # a search: one row per trial, best first
        put("trials.csv", result.trials.to_csv(index=False))
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
    if confusion.wanted(result):
        put(confusion.CSV, confusion.to_csv(confusion.of_split(result)[1]))
    text = spec_text(result)
    put("spec.mlspec", text)
    if result.members:
        state = {"members": {str(i): _state_entry(m) for i, m in enumerate(result.members)}}
    else:
        state = _state_entry(result)
    write_tree(out / STATE, state)
    hashes[STATE] = tree_sha256(out / STATE)
    if (out / STATE_FILE).exists():  # an older folder's, resumed: the new state replaces it
        (out / STATE_FILE).unlink()
    vocab = _vocab_json(result)
    if vocab is not None:
        put(VOCAB_FILE, vocab)
    write_tensorboard(result, out)
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
        "spec_folder": spec_folder(program.spec),
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
