"""A run folder opened again: read back as a Result that predicts and evaluates, or as a
Training that resumes an interrupted run where it stopped."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlspec.runtime.results import Result
from mlspec.runtime.runs import (
    STATE_FILE,
    RunFolderError,
    member_of,
    open_folder,
    prepare_folder,
    read_normalizer,
    read_state,
    restore_state,
)
from mlspec.runtime.training import Training


def load_run(folder, member: int = 0) -> Any:
    """Reads a run folder back into a Result that can predict and evaluate; its
    `manifest` says how the run went. For seeds or a sweep, `member` picks one by its
    place in metrics.json's `members` (0, the default, is the best)."""
    run = open_folder(folder)
    program, settings, metrics, history, ending = member_of(run, member)
    state_path = run.path / STATE_FILE
    saved = read_state(state_path, run.manifest.file_sha256.get(STATE_FILE))
    if run.manifest.members:
        entry = saved.get("members", {}).get(str(member)) if isinstance(
            saved.get("members"), dict) else None
        if not isinstance(entry, dict) or "train" not in entry:
            raise RunFolderError(f"{state_path} holds no state for member {member}")
    else:
        entry = saved
        if "train" not in entry:
            raise RunFolderError(f"{state_path} holds no state for the run")
    trainer, state = restore_state(program, run.manifest.n_train, program.train.seed,
                                   entry["train"], state_path)
    return Result(program=program, history=history, metrics=metrics, state=state,
                  trainer=trainer, normalizer=read_normalizer(entry, program, state_path),
                  wall_time=run.manifest.wall_time_s, manifest=run.raw_manifest,
                  settings=settings, **ending)


def resume_training(folder) -> Any:
    """A Training that continues an interrupted run from its folder, chunk for chunk as
    the original, so it ends with the same history as an uninterrupted run. Everything is
    checked before training starts: the folder is writable, the spec is the one that was
    run, and the manifest, history and state agree with it."""
    from mlspec.semantics.resolve import resolve

    run = open_folder(folder, metrics=False)
    folder, manifest = run.path, run.manifest
    where = folder / "manifest.json"
    if manifest.status != "interrupted":
        raise RunFolderError(f"the run in {folder} is {manifest.status}; only an "
                             "interrupted run can be resumed")
    if manifest.members:
        raise RunFolderError(f"the run in {folder} is a sweep (or seeds) of "
                             f"{manifest.members} runs, which cannot be resumed;\nrun its "
                             "spec again")
    if manifest.blocks_done is None or manifest.chunk is None:
        raise RunFolderError(f"{where} has no resume point (blocks_done and chunk)")
    state_path = folder / STATE_FILE
    saved = read_state(state_path, manifest.file_sha256.get(STATE_FILE))
    prepare_folder(folder)
    training = Training(resolve(run.spec))
    counts = training.counts
    if manifest.blocks_done > len(counts):
        raise RunFolderError(f"{where}: blocks_done {manifest.blocks_done} is past the "
                             f"run's {len(counts)} blocks")
    if manifest.steps_done != int(counts[:manifest.blocks_done].sum()):
        raise RunFolderError(f"{where}: steps_done {manifest.steps_done} does not match "
                             f"blocks_done {manifest.blocks_done}")
    if manifest.n_train != training.trainer.n_train:
        raise RunFolderError(f"{where}: the run had {manifest.n_train} train rows; its data "
                             f"now has {training.trainer.n_train}")
    _, state = restore_state(training.program, manifest.n_train, training.program.train.seed,
                             saved.get("train"), state_path, template=training.state)
    if int(state["step"]) != manifest.steps_done:
        raise RunFolderError(f"{state_path} is at step {int(state['step'])}; manifest.json "
                             f"says {manifest.steps_done}")
    history = run.history
    expected = list(training.history().columns)
    steps = training.row_steps(manifest.blocks_done).tolist()
    if list(history.columns) != expected or list(history["step"]) != steps:
        raise RunFolderError(f"{folder / 'history.csv'} does not match the run: expected "
                             f"columns {expected} and rows at steps {steps[:3]}...")
    training.chunk = manifest.chunk
    training.state = training.place_state(state)
    training.blocks_done = manifest.blocks_done
    training.wall_time = manifest.wall_time_s
    if len(history):
        rows = {c: history[c].to_numpy() for c in history.columns if c != "step"}
        if training.trainer.early_stop is not None:
            rows["_stopped"] = np.zeros(len(history), bool)
        training.rows.append(rows)
    return training
