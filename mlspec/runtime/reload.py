"""A run folder opened again: read back as a Result that predicts and evaluates, or as a
Training that resumes an interrupted run where it stopped. Its saved state is restored
only where it fits the spec's model: the structure, every shape and dtype."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from mlspec.runtime.distributed import is_main
from mlspec.runtime.reading import _read_text, member_of, open_folder, read_state, state_path
from mlspec.runtime.results import Result
from mlspec.runtime.runs import VOCAB_FILE, RunFolderError, prepare_folder
from mlspec.runtime.training import Training


def load_run(folder, member: int = 0) -> Any:
    """Reads a run folder back into a Result that can predict and evaluate; its
    `manifest` says how the run went. For seeds or a sweep, `member` picks one by its
    place in metrics.json's `members` (0, the default, is the best)."""
    run = open_folder(folder)
    program, settings, metrics, history, ending = member_of(run, member)
    path = state_path(run.path)
    saved = read_state(path, run.manifest.file_sha256.get(path.name))
    if run.manifest.members:
        entry = saved.get("members", {}).get(str(member)) if isinstance(
            saved.get("members"), dict) else None
        if not isinstance(entry, dict) or "train" not in entry:
            raise RunFolderError(f"{path} holds no state for member {member}")
    else:
        entry = saved
        if "train" not in entry:
            raise RunFolderError(f"{path} holds no state for the run")
    trainer, state = restore_state(program, run.manifest.n_train, program.train.seed,
                                   entry["train"], path)
    return Result(program=program, history=history, metrics=metrics, state=state,
                  trainer=trainer, normalizer=read_normalizer(entry, program, path),
                  encoding=read_encoding(run, member, program),
                  wall_time=run.manifest.wall_time_s, manifest=run.raw_manifest,
                  settings=settings, trials=_trials(run), **ending)


def _trials(run):
    """A search's trials.csv (its hash checked), described for its plot; None elsewhere."""
    import hashlib
    import io

    import pandas as pd

    from mlspec.runtime.search import described
    from mlspec.semantics.grid import read_grid

    path = run.path / "trials.csv"
    expected = run.manifest.file_sha256.get(path.name)
    if expected is None:
        return None
    text = _read_text(path)
    if hashlib.sha256(text.encode()).hexdigest() != expected:
        raise RunFolderError(f"{path} was changed after the run (its hash differs from "
                             "manifest.json's)")
    try:
        table = pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError) as exc:
        raise RunFolderError(f"{path} cannot be read: {exc}") from None
    return described(table, read_grid(run.spec, None))


def resume_training(folder) -> Any:
    """A Training that continues an interrupted run from its folder, chunk for chunk as
    the original, so it ends with the same history as an uninterrupted run: from where a
    signal stopped it (its manifest), or from its newest checkpoint where that is further
    on (a process killed without a word leaves only its checkpoints). Everything is
    checked before training starts: the folder is writable, the spec is the one that was
    run, and the manifest or checkpoint, history and state agree with it."""
    from mlspec.runtime import checkpoints

    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a run folder (no such folder)")
    try:
        latest = checkpoints.latest_meta(folder)
    except (ValueError, OSError, KeyError) as exc:
        raise RunFolderError(f"{folder / checkpoints.FOLDER}: its newest checkpoint cannot "
                             f"be read: {str(exc).splitlines()[0][:200]}") from None
    if (folder / "manifest.json").exists():
        run = open_folder(folder, metrics=False)
        _check_resumable(run)
        if latest is None or latest["steps_done"] <= run.manifest.steps_done:
            return _with_checkpoints(_from_manifest(run), folder)
        if hashlib.sha256(latest["spec"]["text"].encode()).hexdigest() != \
                run.manifest.spec_sha256:
            raise RunFolderError(f"the newest checkpoint in {folder} is not of the spec "
                                 "that was run")
    elif latest is None:
        raise RunFolderError(f"{folder} is not a run folder (no manifest.json, no "
                             "checkpoints)")
    return _with_checkpoints(_from_checkpoint(folder, latest), folder)


def _check_resumable(run) -> None:
    folder, manifest = run.path, run.manifest
    if manifest.status != "interrupted":
        raise RunFolderError(f"the run in {folder} is {manifest.status}; only an "
                             "interrupted run can be resumed")
    if manifest.members:
        raise RunFolderError(f"the run in {folder} is a sweep (or seeds) of "
                             f"{manifest.members} runs, which cannot be resumed;\nrun its "
                             "spec again")
    if manifest.blocks_done is None or manifest.chunk is None:
        raise RunFolderError(f"{folder / 'manifest.json'} has no resume point (blocks_done "
                             "and chunk)")


def _with_checkpoints(training, folder: Path):
    """The resumed training, saving checkpoints on as the original did."""
    from mlspec.runtime.checkpoints import CheckpointError, attach
    from mlspec.runtime.runs import RunFolderWriteError

    try:
        attach(training, folder)
    except CheckpointError as exc:
        raise RunFolderWriteError(str(exc)) from None
    return training


def _resume_point(training, where, blocks_done: int, chunk: int, steps_done: int,
                  n_train: int) -> None:
    counts = training.counts
    if blocks_done > len(counts):
        raise RunFolderError(f"{where}: blocks_done {blocks_done} is past the run's "
                             f"{len(counts)} blocks")
    if steps_done != int(counts[:blocks_done].sum()):
        raise RunFolderError(f"{where}: steps_done {steps_done} does not match "
                             f"blocks_done {blocks_done}")
    if n_train != training.trainer.n_train:
        raise RunFolderError(f"{where}: the run had {n_train} train rows; its data "
                             f"now has {training.trainer.n_train}")
    if not isinstance(chunk, int) or chunk < 1:
        raise RunFolderError(f"{where}: chunk {chunk!r} is not a number of blocks")
    training.chunk, training.blocks_done = chunk, blocks_done


def _from_manifest(run) -> Any:
    from mlspec.semantics.resolve import resolve

    folder, manifest = run.path, run.manifest
    where = folder / "manifest.json"
    path = state_path(folder)
    saved = read_state(path, manifest.file_sha256.get(path.name))
    if is_main():  # over several processes, process 0 alone writes the folder
        prepare_folder(folder)
    training = Training(resolve(run.spec))
    _resume_point(training, where, manifest.blocks_done, manifest.chunk, manifest.steps_done,
                  manifest.n_train)
    _, state = restore_state(training.program, manifest.n_train, training.program.train.seed,
                             saved.get("train"), path, template=training.state)
    if int(state["step"]) != manifest.steps_done:
        raise RunFolderError(f"{path} is at step {int(state['step'])}; manifest.json "
                             f"says {manifest.steps_done}")
    history = run.history
    expected = list(training.history().columns)
    steps = training.row_steps(manifest.blocks_done).tolist()
    if list(history.columns) != expected or list(history["step"]) != steps:
        raise RunFolderError(f"{folder / 'history.csv'} does not match the run: expected "
                             f"columns {expected} and rows at steps {steps[:3]}...")
    training.state = training.place_state(state)
    training.wall_time = manifest.wall_time_s
    if len(history):
        rows = {c: history[c].to_numpy() for c in history.columns if c != "step"}
        if training.trainer.early_stop is not None:
            rows["_stopped"] = np.zeros(len(history), bool)
        training.rows.append(rows)
    return training


def _from_checkpoint(folder: Path, meta: dict) -> Any:
    from mlspec.runtime import checkpoints
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.parser import parse

    where = folder / checkpoints.FOLDER / str(meta["step"])
    spec = parse(meta["spec"]["text"], str(where / "spec.mlspec"))
    # Relative data paths resolve against the folder of the spec that was run.
    spec = spec.model_copy(update={"path": str(Path(meta["spec"]["folder"]) / "spec.mlspec")})
    if is_main():  # over several processes, process 0 alone writes the folder
        prepare_folder(folder)
    training = Training(resolve(spec))
    _resume_point(training, where, meta["blocks_done"], meta["chunk"], meta["steps_done"],
                  meta["n_train"])
    try:
        state, rows = checkpoints.restore(folder, meta, training.state)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise RunFolderError(f"{where} does not fit the spec's model: "
                             f"{str(exc).splitlines()[0][:200]}") from None
    if int(state["step"]) != meta["steps_done"] or \
            len(rows.get("train.loss", ())) != meta["blocks_done"]:
        raise RunFolderError(f"{where} is not at step {meta['steps_done']}, as it says")
    training.state = training.place_state(state)
    training.wall_time = float(meta["wall_time_s"])
    training.rows.append(rows)
    return training


# ---------------------------------------------------------------- the saved state


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

    from mlspec.compiler.graph import example_input
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
            example = example_input(program.model, make=jnp.zeros)
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
    shape = tuple(program.model.input_shape or program.model.input_shapes()["x"])
    for value in (mean, std):
        if not isinstance(value, np.ndarray) or value.shape != shape or \
                value.dtype.kind != "f":
            raise RunFolderError(f"{path}: the saved standardization does not fit the "
                                 f"model's input {list(shape)}")
    return mean, std


def read_encoding(run, member: int, program):
    """The run's saved vocabularies and fill values (vocab.json), checked against its
    data's inputs; None for a run without the file (its rows need none, or it is older)."""
    import json

    from mlspec.catalog.sources.typed import Encoding

    path = run.path / VOCAB_FILE
    sha256 = run.manifest.file_sha256.get(VOCAB_FILE)
    if sha256 is None and not path.exists():
        return None
    text = _read_text(path, sha256)
    try:
        saved = json.loads(text)
        if isinstance(saved, dict) and "members" in saved:
            saved = saved["members"][str(member)]
        encoding = None if saved is None else Encoding.model_validate(saved)
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's errors are ValueErrors
        raise RunFolderError(f"{path} is not the run's vocabularies: "
                             f"{str(exc).splitlines()[0][:200]}") from None
    vocabularies = {} if encoding is None else encoding.vocabularies
    data = program.data
    for info in data.info.inputs if data is not None else ():
        if info.kind == "float":
            continue
        saved_one = vocabularies.get(info.name)
        if saved_one is None or (saved_one.kind, saved_one.size) != (info.kind, info.vocab):
            had = "none" if saved_one is None else f"{saved_one.size} ids"
            raise RunFolderError(f"{path} does not fit the run's data: its input "
                                 f"'{info.name}' takes {info.vocab} ids now, the run's "
                                 f"vocabulary {had} (has the data file changed?)")
    return encoding
