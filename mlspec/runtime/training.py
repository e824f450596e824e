"""One training run on the device, advanced chunk by chunk: load the data once, compile, train,
collect the history. The host only steps in between chunks: to report progress, to notice
a diverging loss or an interruption, and to stop early."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlspec.catalog.metrics import higher_is_better
from mlspec.runtime import distributed
from mlspec.runtime.device import computed, enable_compilation_cache, mesh, on_device
from mlspec.runtime.results import Result, Status, combine
from mlspec.semantics.program import Program
from mlspec.semantics.sweep import setting_column
from mlspec.syntax.errors import SpecError


def _chunk_size(blocks: int, updates: int, align: int | None = None) -> int:
    """Blocks per compiled chunk: about `blocks / updates`, preferring a divisor of
    `blocks` so that one compiled chunk function serves the whole run. With `align` (the
    blocks between checkpoints, fewer than `blocks`), a divisor of it, so that every
    checkpoint falls where a chunk ends."""
    if align is not None and align < blocks:
        ideal = min(math.ceil(blocks / max(updates, 1)), align)
        return next(size for size in range(ideal, 0, -1) if align % size == 0)
    if updates <= 1 or blocks <= 1:
        return max(blocks, 1)
    ideal = math.ceil(blocks / updates)
    for size in range(ideal, max(1, ideal // 2) - 1, -1):
        if blocks % size == 0:
            return size
    return ideal


class Training:
    """One training run, advanced chunk by chunk; its state can be saved and resumed."""

    def __init__(self, program: Program, *, updates: int = 1,
                 members: list | None = None, prune=None):
        """`members` (from `mlspec.semantics.sweep`): programs that share `program`'s structure and
        train together, vmapped; each keeps its own seed, hyperparameters and weights.
        `prune`: a search's successive halving among them (`mlspec.compiler.trainer.Pruning`)."""
        import jax
        import jax.numpy as jnp

        from mlspec.catalog.sources import DataError
        from mlspec.compiler.trainer import Trainer, n_rows, take_rows
        from mlspec.runtime.loading import Dataset, load_data

        if program.data is None or program.train is None:
            missing = "data" if program.data is None else "train"
            raise SpecError.at(program.model.span, f"run needs a '{missing}' section")
        enable_compilation_cache()
        try:
            self.dataset = load_data(program.data)
        except DataError as exc:  # found only with the data in hand: said at the section
            data = program.spec.data
            raise SpecError.at(data.span if data else None, str(exc)) from None
        self.program = program
        self.members = members or []
        self.multi = len(self.members) > 1
        n_train = n_rows(self.dataset["train"][0])
        prune = prune if self.multi else None
        self.trainer = Trainer(program, n_train, inject=self.multi, prune=prune)
        # The data goes to the device once and is passed to the compiled functions as
        # arguments (not baked into the program as constants).
        self.mesh = mesh(program)
        # over several processes the state starts on each one's own device, from one row
        example = take_rows(self.dataset["train"][0], slice(0, 1)) \
            if distributed.processes() > 1 else None
        self.data = {split: (self._place(x, rows=True), self._place(y, rows=True))
                     for split, (x, y) in self.dataset.splits.items()
                     if split in ("train", "valid")}
        # The host copies of what went to the device are not needed again (the test split
        # is evaluated at the end, from the host): dropping them keeps peak memory down.
        self.dataset = Dataset({split: arrays for split, arrays in self.dataset.splits.items()
                                if split not in self.data}, self.dataset.mean, self.dataset.std,
                               self.dataset.encoding)
        x = self.data["train"][0] if example is None else example
        if self.multi:
            shared = self.trainer.module_init(jit=True)
            states = [Trainer(m.program, n_train, inject=True, prune=prune).init(
                m.program.train.seed, x, module_init=shared) for m in self.members]
            self.state = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
        else:
            self.state = self.trainer.init(program.train.seed, x, jit=True)
        self.state = self.place_state(self.state)
        self.counts = self.trainer.schedule.counts()
        every = program.train.checkpoint_every
        self.chunk = _chunk_size(len(self.counts), updates,
                                 None if every is None else every // self.schedule.eval_every)
        self.checkpoints = None
        """A `mlspec.runtime.checkpoints.Checkpoints` that saves this run as it goes."""
        self.blocks_done = 0
        self.rows: list[dict[str, np.ndarray]] = []
        self.status: Status | None = None
        self.stopped_at: int | None = None
        self.evaluated: dict[str, np.ndarray] | None = None
        """At an interruption: the row of the state reached, which no history row holds
        (a block's row is at its start)."""
        self.wall_time = 0.0
        self._compiled: dict[str, Any] = {}

    def _place(self, value, rows: bool):
        """On one device as is. Over several: a single run is data parallel (the data
        split along its rows, the state replicated); the members of a sweep are spread
        over the devices instead (their stacked states split, the data replicated). A
        size that does not divide evenly is kept whole on every device. Over several
        processes, each puts the rows its own devices hold (`distributed.place`)."""
        import jax
        import jax.numpy as jnp
        from jax.sharding import NamedSharding, PartitionSpec

        if self.mesh is None:
            return jax.tree.map(on_device, value)
        split_leading = rows != self.multi

        def place(leaf):
            split = split_leading and jnp.ndim(leaf) > 0 and len(leaf) % self.mesh.size == 0
            spec = PartitionSpec("batch") if split else PartitionSpec()
            return distributed.place(leaf, NamedSharding(self.mesh, spec))

        return jax.tree.map(place, value)

    def place_state(self, state):
        """A training state where this run keeps it (see `_place`)."""
        return self._place(state, rows=False)

    # ---- progress

    @property
    def schedule(self):
        return self.trainer.schedule

    @property
    def steps_done(self) -> int:
        """Where training stands: the steps of the blocks run, or where an early stop or
        divergence ended it (for members, the last one to stop)."""
        if self.status in ("diverged", "early_stopped"):
            return self.stopped_at if not self.multi \
                else max(self.schedule.row_step(row) for _, row in self._ends())
        return int(self.counts[:self.blocks_done].sum())

    @property
    def done(self) -> bool:
        return self.status is not None

    def last_evaluation(self) -> tuple[int, dict[str, float]]:
        """The step of the latest evaluation and its values, for progress reports: the
        last row so far, or where early stopping ended a run, its last row before the stop
        (the rows after it repeat the stopped model). For members: the latest step any
        member reached, with each value the best over the members' latest rows."""
        if not self.rows:
            return 0, {}
        rows = {k: np.concatenate([np.atleast_2d(r[k]) for r in self.rows], axis=-1)
                for k in self.rows[0]}  # (members, rows)
        stopped = rows.pop("_stopped", np.zeros(rows["train.loss"].shape, bool))
        last = [int(np.flatnonzero(~member)[-1]) for member in stopped]  # row 0 is live
        values = {}
        for key, value in rows.items():
            latest = np.array([value[m, row] for m, row in enumerate(last)], np.float64)
            # a metric without a better direction (pred_mean) shows its lowest
            best = latest.max() if higher_is_better(key) else latest.min()
            values[key] = float(best)
        return max(self.schedule.row_step(row) for row in last), values

    # ---- advancing

    def _jit(self, name: str):
        """The jitted (and, for members, vmapped) `Trainer.run_all`, `run_blocks` or
        `finish`; one compiled program per distinct number of blocks."""
        import jax

        from mlspec.compiler.trainer import MEMBERS, shared_jit

        if name not in self._compiled:
            fn = getattr(self.trainer, name)
            axes = (0, None) if name == "finish" else (0, None, None)
            self._compiled[name] = shared_jit(
                self.trainer, f"{name} vmapped" if self.multi else name,
                lambda: jax.jit(jax.vmap(fn, in_axes=axes, axis_name=MEMBERS) if self.multi
                                else fn))
        return self._compiled[name]

    def advance(self, stop_now: Callable[[], bool] | None = None) -> bool:
        """Runs the next chunk of blocks, or the final evaluation; a run in one chunk is
        one compiled program from start to end. With `stop_now`, asked while the chunk
        computes: when it says so, the chunk is dropped (it may compute on, unread) and
        the run stays where it was, its state on the host; False then."""
        import jax

        started = time.perf_counter()
        total = len(self.counts)
        if self.blocks_done == 0 and self.chunk >= total:
            state, rows = self._jit("run_all")(self.state, self.data, self.counts)
            blocks, final = total, True
        elif self.blocks_done < total:
            counts = self.counts[self.blocks_done:self.blocks_done + self.chunk]
            state, rows = self._jit("run_blocks")(self.state, self.data, counts)
            blocks, final = self.blocks_done + len(counts), False
        else:
            state, rows = self._jit("finish")(self.state, self.data)
            blocks, final = total, True
        if stop_now is not None and not computed((state, rows), stop_now):
            # what the host reads from here on must not queue behind the dropped chunk
            self.state = jax.device_get(self.state)
            return False
        self.state, self.blocks_done = state, blocks
        self.rows.append(distributed.fetch(rows))
        self.wall_time += time.perf_counter() - started
        self._check_rows(final)
        return True

    def _check_rows(self, final: bool) -> None:
        ends = self._ends()
        if self.multi:  # members run on together until every one has ended
            if all(status for status, _ in ends):
                stopped = any(status == "early_stopped" for status, _ in ends)
                self.status = "early_stopped" if stopped else "diverged"
            else:
                self.status = "completed" if final else None
            return
        (status, row), = ends
        if status == "diverged":  # keep the history up to and including the first bad row
            self.rows = [{k: np.concatenate([r[k] for r in self.rows])[:row + 1]
                          for k in self.rows[0]}]
        if status is not None:  # an early-stopped model no longer changes: skip the rest
            self.status, self.stopped_at = status, self.schedule.row_step(row)
        elif final:
            self.status = "completed"

    def _ends(self) -> list[tuple[Status | None, int | None]]:
        """How each member's (or the run's) training has ended so far, with the index of
        its row that says where: `diverged` at its first row with a NaN or infinite loss,
        `early_stopped` after its last row before the stop, or (None, None)."""
        rows = {k: np.concatenate([np.atleast_2d(r[k]) for r in self.rows], axis=-1)
                for k in self.rows[0]}  # (members, rows)
        losses = np.stack([v for k, v in rows.items() if k.endswith(".loss")])
        bad = ~np.isfinite(losses).all(axis=0)
        stopped = np.zeros(len(bad), bool) if self.trainer.early_stop is None \
            else np.atleast_1d(distributed.to_host(self.state["stop"]["stopped"]))
        ends = []
        for member in range(len(bad)):
            if bad[member].any():
                ends.append(("diverged", int(np.argmax(bad[member]))))
            elif stopped[member]:
                ends.append(("early_stopped", int(np.flatnonzero(~rows["_stopped"][member])[-1])))
            else:
                ends.append((None, None))
        return ends

    def row_steps(self, rows: int | None = None):
        """The step of every row produced so far and to come (or of the first `rows`)."""
        return self.schedule.row_steps(rows)

    def run(self, on_progress: Callable[[Training], None] | None = None,
            should_stop: Callable[[], bool] | None = None,
            stop_now: Callable[[], bool] | None = None) -> Result:
        """Advances to the end, or until `should_stop()` says so between chunks, or
        `stop_now()` while a chunk computes (that chunk is dropped; see `advance`)."""
        self.evaluated = None  # an earlier interruption's, stale once the run goes on
        try:
            while not self.done:
                if should_stop is not None and should_stop():
                    self.status = "interrupted"
                    self._evaluate_state(stop_now)
                    break
                if not self.advance(stop_now):  # no evaluation to queue behind the dropped
                    self.status = "interrupted"   # chunk
                    break
                if self.checkpoints is not None:
                    self.checkpoints.after_chunk(self)
                if on_progress is not None:
                    on_progress(self)
        finally:
            if self.checkpoints is not None:
                self.checkpoints.finish()
        return self.result()

    def _evaluate_state(self, stop_now: Callable[[], bool] | None) -> None:
        """Evaluates the state an interrupted run keeps, so that its metrics are those of
        its parameters; left out when `stop_now` says so meanwhile."""
        import jax

        if not self.blocks_done:
            return
        _, rows = self._jit("finish")(self.state, self.data)
        if stop_now is not None and not computed(rows, stop_now):
            self.state = jax.device_get(self.state)
            return
        self.evaluated = distributed.fetch(rows)

    # ---- results

    def history(self, member: int | None = None) -> pd.DataFrame:
        """The rows so far; for members, one block of rows per member, with the swept
        settings as columns (`seed` for `seeds = N`)."""
        trainer = self.trainer
        order = [f"{split}.{m}" for split in self.data for m in trainer.split_metrics]
        order += trainer.training_metrics
        if not self.rows:
            return pd.DataFrame(columns=["step", *order])
        if self.multi and member is None:
            return pd.concat([self.history(m) for m in range(len(self.members))],
                             ignore_index=True)
        columns = {k: np.concatenate([np.asarray(r[k]) if member is None
                                      else np.asarray(r[k])[member] for r in self.rows])
                   for k in self.rows[0]}
        n = len(columns["train.loss"])
        history = pd.DataFrame({"step": self.row_steps(n),
                                **{k: columns[k].astype(np.float64) for k in order}})
        if "_stopped" in columns:  # rows after an early stop repeat the stopped model
            history = history[~columns["_stopped"]].reset_index(drop=True)
        if member is not None:
            settings = self.members[member].settings
            for i, (key, value) in enumerate(settings.items()):
                history.insert(i, setting_column(key), [value] * len(history))
        return history

    def member_results(self) -> list[Result]:
        """One Result per member (for a single run, the run's own)."""
        import jax

        if not self.multi:
            result = self.result()
            if self.members:  # a group of one member keeps its swept settings
                result.settings = self.members[0].settings
            return [result]
        results = []
        states = distributed.local(self.state)
        for i, member in enumerate(self.members):
            state = jax.tree.map(lambda leaf: leaf[i], states)
            single = Training.__new__(Training)
            single.__dict__.update(self.__dict__)
            single.__dict__.update(state=state, multi=False, members=[], program=member.program,
                                   rows=[{k: np.asarray(v)[i] for k, v in r.items()}
                                         for r in self.rows], status=None, stopped_at=None,
                                   evaluated=None if self.evaluated is None else
                                   {k: np.asarray(v)[i] for k, v in self.evaluated.items()})
            if single.rows:  # each member diverges or stops early on its own
                single._check_rows(final=self.status in ("completed", "early_stopped"))
            result = single.result()
            result.settings = member.settings
            results.append(result)
        return results

    def result(self) -> Result:
        import jax

        if self.multi:
            return combine(self.member_results())
        history = self.history()
        state, best_step, rows = distributed.local(self.state), None, history
        finished = self.status in ("completed", "early_stopped")
        if finished and "best" in state:  # early_stop(restore_best=true)
            # The best model in place of the last; the copy itself is left out (a run
            # folder loads without it).
            best = state["best"]
            state = {**{k: v for k, v in state.items() if k != "best"},
                     "params": best["params"], "model_state": best["model_state"]}
            best_step = int(best["step"])
            rows = history[history["step"] == best_step]
        metrics = {k: float(v) for k, v in rows.iloc[-1].items() if k != "step"} \
            if len(rows) else {}
        evaluated_at = int(rows["step"].iloc[-1]) if len(rows) else None
        if self.status in (None, "interrupted") and self.evaluated is not None:
            metrics = {k: float(np.asarray(self.evaluated[k]).reshape(-1)[0]) for k in metrics}
            evaluated_at = int(state["step"])
        if "test" in self.dataset and finished:
            x, y = self.dataset["test"]
            from mlspec.compiler.trainer import shared_jit

            evaluate = shared_jit(self.trainer, "evaluate", lambda: jax.jit(self.trainer.evaluate))
            test = evaluate(state, jax.tree.map(on_device, x), jax.tree.map(on_device, y))
            # in the spec's order, as train.* and valid.* (jax returns a dict's keys sorted)
            metrics.update({f"test.{k}": float(test[k]) for k in self.trainer.split_metrics})
        normalizer = None
        if self.dataset.mean is not None:
            normalizer = (self.dataset.mean, self.dataset.std)
        return Result(program=self.program, history=history, metrics=metrics,
                      state=state, trainer=self.trainer, normalizer=normalizer,
                      encoding=self.dataset.encoding,
                      status=self.status or "interrupted", stopped_at=self.stopped_at,
                      best_step=best_step, evaluated_at=evaluated_at,
                      wall_time=self.wall_time)
