"""The run folder: everything needed to look at, reuse and reproduce a run.

    history.csv      one row per evaluation
    metrics.json     final metrics per split, steps done, how the run ended
    spec.mlspec      the spec as run (overrides applied), in canonical text
    manifest.json    versions, device, seed, wall time, status, spec hash, resume point
    state.msgpack    parameters, model state, optimizer state and PRNG keys (flax msgpack:
                     plain data, loading it never runs code)
    *.png            plots (see mlspec.plots)

Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import atomic_write

STATE_FILE = "state.msgpack"


class RunFolderError(Exception):
    """A run folder that cannot be read or written."""


def prepare_folder(out: Path) -> Path:
    """Creates the folder and proves it writable before any training starts."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / ".probe", b"ok")
        (out / ".probe").unlink()
    except OSError as exc:
        raise RunFolderError(f"cannot write to the output folder {out}: "
                             f"{exc.strerror or exc}") from None
    return out


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
    return result.program.spec.to_text()


def save_run(result, out_dir, *, blocks_done: int | None = None, chunk: int | None = None,
             plots: bool = True) -> Path:
    """Writes the run folder for `result` (complete, interrupted or diverged)."""
    import jax
    from flax import serialization

    out = prepare_folder(Path(out_dir))
    program = result.program
    atomic_write(out / "history.csv", result.history.to_csv(index=False))
    summary = {"model": program.name, **result.metrics_by_split(),
               "steps": result.steps_done, "status": result.status,
               "stopped_at": result.stopped_at, "best_step": result.best_step}
    if result.members:  # seeds or a sweep: every member, best first
        summary["best"] = result.settings
        summary["members"] = [{"settings": m.settings, **m.metrics_by_split(),
                               "status": m.status, "best_step": m.best_step}
                              for m in result.members]
    atomic_write(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    text = spec_text(result)
    atomic_write(out / "spec.mlspec", text)
    state = {"train": jax.tree.map(np.asarray, serialization.to_state_dict(result.state))}
    if result.normalizer is not None:
        state["normalizer"] = {"mean": result.normalizer[0], "std": result.normalizer[1]}
    atomic_write(out / STATE_FILE, serialization.msgpack_serialize(state))
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
        "spec_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "spec_folder": str(Path(spec_path).parent.resolve()) if spec_path else os.getcwd(),
        "device": _device(),
        "versions": {p: _version(p) for p in ("mlspec", "jax", "jaxlib", "flax", "optax")},
    }
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    if plots:
        from .plots import draw_all

        draw_all(result, out)
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"cannot read {path}: {exc}") from None


def read_state(path: Path) -> dict:
    """The saved state as plain arrays; msgpack cannot run code, and anything that is
    not mlspec's msgpack (a pickle, say) is refused."""
    from flax import serialization

    try:
        data = path.read_bytes()
        state = serialization.msgpack_restore(data)
    except OSError as exc:
        raise RunFolderError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception:  # msgpack raises several types for foreign bytes
        raise RunFolderError(f"{path} is not an mlspec state file (flax msgpack); it was "
                             "not loaded") from None
    if not isinstance(state, dict) or "train" not in state:
        raise RunFolderError(f"{path} is not an mlspec state file (flax msgpack); it was "
                             "not loaded")
    return state


def load_run(folder) -> Any:
    """Reads a run folder back into a Result that can predict and evaluate; its
    `manifest` says how the run went."""
    import jax.numpy as jnp

    from .compiler.trainer import Trainer
    from .runner import Result

    folder, manifest, program = _open(folder)
    saved = read_state(folder / STATE_FILE)
    trainer = Trainer(program, manifest["n_train"])
    example = jnp.zeros((1, *program.model.input_shape), jnp.float32)
    state = _restore(trainer.init(program.train.seed, example), saved, folder)
    normalizer = None
    if "normalizer" in saved:
        normalizer = (np.asarray(saved["normalizer"]["mean"]),
                      np.asarray(saved["normalizer"]["std"]))
    history = pd.read_csv(folder / "history.csv")
    best_step = manifest.get("best_step")
    rows = history if best_step is None else history[history["step"] == best_step]
    metrics = {k: float(v) for k, v in rows.iloc[-1].items() if k != "step"} \
        if len(rows) else {}
    return Result(program=program, history=history, metrics=metrics, state=state,
                  trainer=trainer, normalizer=normalizer, status=manifest["status"],
                  stopped_at=manifest.get("stopped_at"), best_step=best_step,
                  wall_time=manifest.get("wall_time_s", 0.0), manifest=manifest)


def _open(folder) -> tuple[Path, dict, Any]:
    """The folder, its manifest and the program of the spec that was run."""
    from .dsl.parser import parse
    from .dsl.resolve import resolve

    folder = Path(folder)
    if not (folder / "manifest.json").exists():
        raise RunFolderError(f"{folder} is not a run folder (no manifest.json)")
    manifest = _read_json(folder / "manifest.json")
    text = (folder / "spec.mlspec").read_text()
    # Relative data paths resolve against the folder of the spec that was run.
    spec = parse(text, str(folder / "spec.mlspec"))
    spec = spec.model_copy(update={"path": str(Path(manifest["spec_folder"]) / "spec.mlspec")})
    return folder, manifest, resolve(spec)


SPEC_DECIDED = ("loss_weights", "dropout_keep")
FRESH_IF_MISSING = (*SPEC_DECIDED, "best")
"""Also the best evaluation's copy of early stopping, which older versions did not keep:
a resumed run then keeps the best of the evaluations after the resume."""


def _restore(template, saved: dict, folder: Path):
    """The saved training state, in the structure of a fresh one. Entries that the spec
    alone decides (and that older versions did not save) come from the fresh state."""
    from flax import serialization

    train = saved["train"]
    if isinstance(train, dict):
        train = {**{key: serialization.to_state_dict(template[key]) for key in FRESH_IF_MISSING
                    if key in template}, **train}
    try:
        return serialization.from_state_dict(template, train)
    except (KeyError, ValueError, TypeError) as exc:
        raise RunFolderError(f"{folder / STATE_FILE} does not fit the spec's model: "
                             f"{exc}") from None


def resume_training(folder) -> Any:
    """A Training that continues an interrupted run from its folder, chunk for chunk as
    the original, so it ends with the same history as an uninterrupted run."""
    from .runner import Training

    folder, manifest, program = _open(folder)
    if manifest["status"] != "interrupted":
        raise RunFolderError(f"the run in {folder} is {manifest['status']}; only an "
                             "interrupted run can be resumed")
    if manifest.get("members"):
        raise RunFolderError(f"the run in {folder} is a sweep (or seeds) of "
                             f"{manifest['members']} runs, which cannot be resumed; run its "
                             "spec again")
    training = Training(program)
    training.chunk = manifest["chunk"]
    saved = read_state(folder / STATE_FILE)
    training.state = training.place_state(_restore(training.state, saved, folder))
    training.blocks_done = manifest["blocks_done"]
    training.wall_time = manifest.get("wall_time_s", 0.0)
    history = pd.read_csv(folder / "history.csv")
    if len(history):
        rows = {c: history[c].to_numpy() for c in history.columns if c != "step"}
        if training.trainer.early_stop is not None:
            rows["_stopped"] = np.zeros(len(history), bool)
        training.rows.append(rows)
    return training
