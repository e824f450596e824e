"""Running a spec: resolve, load the data once onto the device, compile, train, collect."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .dsl import ir
from .dsl.errors import SpecError
from .dsl.parser import load
from .dsl.program import Program
from .dsl.resolve import resolve


def atomic_write(path: Path, data: bytes | str) -> None:
    """Writes to a temporary name beside `path`, then renames it into place, so a crash
    never leaves a half-written file."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Result:
    """A trained run: its history, final metrics and parameters."""

    program: Program
    history: pd.DataFrame
    """One row per evaluation: `step`, then `train.loss`, `valid.accuracy`, ..."""
    metrics: dict[str, float]
    """The final row of the history (and `test.*` where a test split exists)."""
    state: Any = field(repr=False)
    trainer: Any = field(repr=False)
    stopped_at: int | None = None
    """The step at which early stopping ended the run, if it did."""

    @property
    def params(self):
        """The trained flax parameters."""
        return self.state["params"]

    def predict(self, x) -> np.ndarray:
        """Point predictions for rows `x` (class ids, or real values)."""
        import jax.numpy as jnp

        out, _ = self.trainer.apply(self.params, self.state["model_state"],
                                    jnp.asarray(x, jnp.float32))
        return np.asarray(self.trainer.data_loss.predict(out))

    def metrics_by_split(self) -> dict[str, dict[str, float]]:
        grouped: dict[str, dict[str, float]] = {}
        for key, value in self.metrics.items():
            split, _, name = key.rpartition(".")
            grouped.setdefault(split or "training", {})[name] = value
        return grouped

    def save(self, out_dir: str | Path) -> Path:
        """Writes history.csv, metrics.json, spec.mlspec and params.msgpack."""
        from flax import serialization

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "history.csv", self.history.to_csv(index=False))
        summary = {"model": self.program.name, **self.metrics_by_split(),
                   "steps": int(self.history["step"].iloc[-1]),
                   "stopped_at": self.stopped_at}
        atomic_write(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
        atomic_write(out / "spec.mlspec", self.program.spec.to_text())
        atomic_write(out / "params.msgpack", serialization.msgpack_serialize(
            _to_numpy(self.params)))
        return out


def _to_numpy(tree):
    import jax

    return jax.tree.map(np.asarray, tree)


def _as_spec(spec: ir.Spec | str | os.PathLike) -> ir.Spec:
    if isinstance(spec, ir.Spec):
        return spec
    return load(spec)


def run(spec: ir.Spec | str | os.PathLike, overrides: Mapping[str, Any] | None = None,
        *, on_rows: Callable[[int, int], None] | None = None) -> Result:
    """Trains a spec and returns its Result.

    Args:
        spec: a parsed spec, or the path of a .mlspec file.
        overrides: params by name and settings by path, e.g. {"train.steps": 500}.
        on_rows: called as on_rows(done, total) with evaluation rows done, for progress.
    """
    program = resolve(_as_spec(spec), overrides)
    return train_program(program, on_rows=on_rows)


def train_program(program: Program, on_rows=None) -> Result:
    import jax
    import jax.numpy as jnp

    from .compiler.trainer import Trainer
    from .data.loading import load_data
    from .data.sources import DataError

    if program.data is None or program.train is None:
        missing = "data" if program.data is None else "train"
        raise SpecError.at(program.model.span, f"run needs a '{missing}' section")
    try:
        dataset = load_data(program.data)
    except DataError as exc:
        raise SpecError.at(None, str(exc)) from None
    trainer = Trainer(program, len(dataset["train"][0]))
    # The data goes to the device once and is passed to the compiled functions as
    # arguments (not baked in as constants).
    data = {split: (jnp.asarray(x), jnp.asarray(y)) for split, (x, y) in
            dataset.splits.items() if split in ("train", "valid")}
    state = trainer.init(program.train.seed, data["train"][0])
    schedule = trainer.schedule
    rows_total = schedule.blocks + 1
    chunks = []
    if schedule.blocks:
        run_blocks = jax.jit(trainer.run_blocks, static_argnums=2)
        state, rows = run_blocks(state, data, schedule.blocks)
        chunks.append(jax.device_get(rows))
        if on_rows:
            on_rows(schedule.blocks, rows_total)
    state, final = jax.jit(trainer.finish, static_argnums=2)(state, data, schedule.remainder)
    chunks.append(jax.device_get(final))
    if on_rows:
        on_rows(rows_total, rows_total)
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    order = [f"{split}.{m}" for split in data for m in trainer.split_metrics]
    order += trainer.training_metrics
    history = pd.DataFrame({"step": schedule.row_steps(),
                            **{k: columns[k].astype(np.float64) for k in order}})
    stopped_at = None
    if "_stopped" in columns:
        keep = ~columns["_stopped"]
        history = history[keep].reset_index(drop=True)
        if not keep[-1]:
            stopped_at = int(history["step"].iloc[-1])
    metrics = {k: float(v) for k, v in history.iloc[-1].items() if k != "step"}
    if "test" in dataset:
        x, y = dataset["test"]
        test = jax.jit(trainer.evaluate)(state, jnp.asarray(x), jnp.asarray(y))
        metrics.update({f"test.{k}": float(v) for k, v in test.items()})
    return Result(program=program, history=history, metrics=metrics, state=state,
                  trainer=trainer, stopped_at=stopped_at)
