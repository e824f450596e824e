"""Checkpoints of a training in its run folder's `checkpoints/`, by orbax-checkpoint: with
`train { checkpoint_every = N }`, the whole training state (parameters, optimizer and
model state, keys, the step), the history rows so far and where the run stands (blocks
done, chunk, wall time) every N steps, so that a process killed without a word (SIGKILL,
a power loss) resumes from the newest complete one (`mlspec run --resume RUN_DIR`, see
`mlspec.runtime.reload`) and ends as an uninterrupted run would.

A save copies the state off the device between two chunks and writes it in orbax's
background thread while the next chunk trains; orbax writes each checkpoint under a
temporary name and renames it into place when complete, so a kill mid-write leaves the
previous ones whole. The last `KEEP` are kept. Each one also holds the spec as run (its
text and folder), since a killed run has written no other file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = "checkpoints"
KEEP = 3
FORMAT = 1


def _quiet() -> None:
    """orbax logs each save through absl at INFO and WARNING: not the user's concern."""
    for name in ("absl", "orbax"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _manager(folder: Path, *, create: bool):
    import orbax.checkpoint as ocp

    _quiet()
    options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, create=create,
                                           enable_async_checkpointing=True,
                                           cleanup_tmp_directories=create)
    return ocp.CheckpointManager(Path(folder).resolve() / FOLDER, options=options)


def _flat_state(state) -> dict[str, Any]:
    """The state's arrays by path (`params/Dense_0/kernel`), the empty ones left out: orbax
    cannot save an array of size 0 (nor an empty dict), and the template restores them."""
    return {k: v for k, v in _flat(state).items() if _kept(v)}


def _flat(state) -> dict[str, Any]:
    from flax import serialization, traverse_util

    return traverse_util.flatten_dict(serialization.to_state_dict(state), sep="/",
                                      keep_empty_nodes=True)


def _kept(leaf) -> bool:
    return bool(getattr(leaf, "size", 0))


def _rows(training) -> dict[str, np.ndarray]:
    rows = training.rows
    return {k: np.concatenate([np.asarray(r[k]) for r in rows], axis=-1) for k in rows[0]}


class CheckpointError(OSError):
    """The checkpoints folder cannot be made."""


class Checkpoints:
    """Saves a single run's Training every `every` steps into `folder`/checkpoints."""

    def __init__(self, folder, every: int, spec_text: str, spec_folder: str):
        self.every = every
        self.spec = {"text": spec_text, "folder": spec_folder}
        try:
            self.manager = _manager(Path(folder), create=True)
        except Exception as exc:  # orbax and the file system raise several types
            raise CheckpointError(f"cannot write the checkpoints into {folder}: "
                                  f"{str(exc).strip()[:300]}") from None
        self.saves = 0
        self.error: str | None = None
        """Why saving failed (a full disk, say): the run trains on without checkpoints."""
        self.save_time = 0.0
        """Seconds the training waited on saves (the device-to-host copy and the handing
        over to orbax's thread)."""

    def after_chunk(self, training) -> None:
        """Saves where the run now stands if that is a multiple of `every` steps and the
        run goes on (its end is the run folder's own state)."""
        steps = training.steps_done
        if self.error is None and training.status is None and steps % self.every == 0 \
                and 0 < training.blocks_done < len(training.counts):
            self.save(training)

    def save(self, training) -> None:
        import time

        import orbax.checkpoint as ocp

        started = time.perf_counter()
        rows = _rows(training)
        meta = {"format": FORMAT, "spec": self.spec, "blocks_done": training.blocks_done,
                "chunk": training.chunk, "steps_done": training.steps_done,
                "n_train": training.trainer.n_train, "wall_time_s": training.wall_time,
                "rows": {k: [list(v.shape), v.dtype.str] for k, v in rows.items()}}
        try:  # an earlier save's failure in orbax's thread comes up here too
            self.manager.save(training.steps_done, args=ocp.args.Composite(
                state=ocp.args.StandardSave(_flat_state(training.state)),
                rows=ocp.args.StandardSave(rows), meta=ocp.args.JsonSave(meta)))
        except Exception as exc:  # orbax and the file system raise several types
            self._failed(exc)
            return
        self.saves += 1
        self.save_time += time.perf_counter() - started

    def finish(self) -> None:
        """Waits for the saves under way (a run that ends or stops leaves no half-written
        checkpoint behind)."""
        try:
            self.manager.wait_until_finished()
        except Exception as exc:  # orbax and the file system raise several types
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.error = self.error or (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def spec_folder(spec) -> str:
    """The folder a spec's relative data paths resolve against."""
    import os

    return str(Path(spec.path).parent.resolve()) if spec.path else os.getcwd()


def attach(training, folder) -> None:
    """Has a single run's `training` save its checkpoints into `folder` where its spec
    says `checkpoint_every`."""
    every = training.program.train.checkpoint_every
    if every is not None:
        spec = training.program.spec
        training.checkpoints = Checkpoints(folder, every, spec.to_text(), spec_folder(spec))


def has_checkpoints(folder) -> bool:
    return (Path(folder) / FOLDER).is_dir()


def latest_meta(folder) -> dict | None:
    """The newest complete checkpoint's description (spec, blocks_done, chunk, steps_done,
    n_train, wall_time_s), with its orbax `step`; None when there is none."""
    import orbax.checkpoint as ocp

    if not has_checkpoints(folder):
        return None
    manager = _manager(Path(folder), create=False)
    step = manager.latest_step()
    if step is None:
        return None
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    manager.close()
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {step} is not an mlspec checkpoint")
    return {**meta, "step": step}


def restore(folder, meta: dict, template) -> tuple[Any, dict[str, np.ndarray]]:
    """The state (the `template`'s structure, shapes, dtypes and placement) and history
    rows of the checkpoint `meta` describes. Raises ValueError when it does not fit."""
    import orbax.checkpoint as ocp
    from flax import serialization, traverse_util

    flat = _flat(template)
    wanted = {k: ocp.utils.to_shape_dtype_struct(v) for k, v in flat.items() if _kept(v)}
    rows = {k: np.zeros(tuple(shape), np.dtype(dtype))
            for k, (shape, dtype) in meta["rows"].items()}
    manager = _manager(Path(folder), create=False)
    try:
        saved = manager.restore(meta["step"], args=ocp.args.Composite(
            state=ocp.args.StandardRestore(wanted), rows=ocp.args.StandardRestore(rows)))
    finally:
        manager.close()
    state = traverse_util.unflatten_dict({**flat, **saved["state"]}, sep="/")
    return serialization.from_state_dict(template, state), \
        {k: np.asarray(v) for k, v in saved["rows"].items()}


# ------------------------------------------------------------ a run folder's final state


def _this_process_alone():
    """An orbax Checkpointer of host arrays for this process alone: under `jax.distributed`
    orbax would otherwise wait at barriers for every process (process 0 alone writes the
    folder, and each process reads a saved state on its own)."""
    import jax
    import orbax.checkpoint as ocp

    here = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(),
                                              active_processes={jax.process_index()})
    handler = ocp.CompositeCheckpointHandler(
        composite_options=ocp.CompositeOptions(multiprocessing_options=here))
    return ocp.Checkpointer(handler, multiprocessing_options=here)


def write_tree(path: Path, tree: dict) -> None:
    """Writes a state dict (nested dicts of arrays, as flax's `to_state_dict` gives) as
    the orbax folder `path`, into place once complete. Orbax saves no empty array nor
    empty dict: the layout (`layout`, JSON) keeps every leaf's place, shape and dtype."""
    import shutil

    import orbax.checkpoint as ocp
    from flax import traverse_util

    _quiet()
    flat = traverse_util.flatten_dict(tree, keep_empty_nodes=True, sep="/")
    layout = {k: None if v is traverse_util.empty_node
              else [list(np.shape(v)), np.asarray(v).dtype.str] for k, v in flat.items()}
    arrays = {k: np.asarray(v) for k, v in flat.items() if _kept(v)}
    path = Path(path).resolve()
    fresh, old = path.with_name(path.name + ".new"), path.with_name(path.name + ".old")
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    with _this_process_alone() as checkpointer:
        checkpointer.save(fresh, ocp.args.Composite(arrays=ocp.args.StandardSave(arrays),
                                                    layout=ocp.args.JsonSave(layout)))
    if path.exists():
        path.rename(old)
    fresh.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def read_tree(path: Path) -> dict:
    """The state dict `write_tree` wrote, as NumPy arrays. Raises ValueError for a folder
    that is not one."""
    import orbax.checkpoint as ocp
    from flax import traverse_util

    _quiet()
    with _this_process_alone() as checkpointer:
        layout = checkpointer.restore(Path(path).resolve(), ocp.args.Composite(
            layout=ocp.args.JsonRestore()))["layout"]
        if not isinstance(layout, dict):
            raise ValueError("no layout")
        flat = {}
        for key, leaf in layout.items():
            if leaf is None:
                flat[key] = traverse_util.empty_node
                continue
            shape, dtype = leaf
            flat[key] = np.zeros(tuple(int(n) for n in shape), np.dtype(dtype))
        wanted = {k: v for k, v in flat.items() if _kept(v)}
        arrays = checkpointer.restore(Path(path).resolve(), ocp.args.Composite(
            arrays=ocp.args.StandardRestore(wanted)))["arrays"]
    flat.update({k: np.asarray(v) for k, v in arrays.items()})
    return traverse_util.unflatten_dict(flat, sep="/")


def tree_sha256(path: Path) -> str:
    """One sha256 of a folder's files: their relative paths and bytes, in order."""
    import hashlib

    digest = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()
