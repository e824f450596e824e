"""How a run's steps fall: how many, in which evaluation blocks, over how many rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlspec.semantics.program import Program


@dataclass(frozen=True)
class Schedule:
    """How many steps, in which blocks, over how many train rows per step."""

    total: int
    eval_every: int
    batch: int | None
    """Rows per step, or None for the full train set."""
    steps_per_epoch: int

    @property
    def blocks(self) -> int:
        return self.total // self.eval_every

    @property
    def remainder(self) -> int:
        return self.total % self.eval_every

    @property
    def rows(self) -> int:
        """History rows: one every `eval_every` steps from 0, and one at the end."""
        return -(-self.total // self.eval_every) + 1

    def row_step(self, row: int) -> int:
        return min(row * self.eval_every, self.total)

    def row_steps(self, rows: int | None = None):
        """The step of each of the first `rows` history rows (all by default), as a NumPy
        array: a long run's schedule costs 8 bytes a row, not a Python list's 40."""
        n = self.rows if rows is None else min(rows, self.rows)
        return np.minimum(np.arange(n, dtype=np.int64) * self.eval_every, self.total)

    def counts(self):
        """Steps in each block: `eval_every`, and what is left over in a last one."""
        counts = np.full(self.blocks + (1 if self.remainder else 0), self.eval_every, np.int32)
        if self.remainder:
            counts[-1] = self.remainder
        return counts


def make_schedule(program: Program, n_train: int) -> Schedule:
    train = program.train
    batch = train.batch if train.batch is not None and train.batch < n_train else None
    per_epoch = max(1, n_train // batch) if batch else 1
    total = train.steps if train.steps is not None else train.epochs * per_epoch
    return Schedule(total, min(train.eval_every, total), batch, per_epoch)
