"""A spec compiled for users who embed its pieces in their own code: the flax module, the
optax transformation, and the whole training run as one jitted call.

    >>> import mlspec
    >>> compiled = mlspec.compile(mlspec.load("specs/hill.mlspec"))  # doctest: +SKIP
    >>> state = compiled.init(seed=0)                                 # doctest: +SKIP
    >>> state, rows = compiled.train(state, compiled.data)            # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlspec.semantics.program import Program


@dataclass
class Compiled:
    """The compiled pieces of a spec, for users who embed them in their own code.

    Attributes:
        program: the validated program.
        module: the flax.linen module (`module.apply({"params": p}, x)`).
        tx: the optax GradientTransformation (clipping included).
        data: the splits on the device, {"train": (x, y), "valid": (x, y)}.
    """

    program: Program
    trainer: Any = field(repr=False)
    data: dict = field(repr=False)

    @property
    def module(self):
        return self.trainer.module

    @property
    def tx(self):
        return self.trainer.tx

    def init(self, seed: int | None = None):
        """A fresh training state (params, model state, optimizer state, step, keys)."""
        seed = self.program.train.seed if seed is None else seed
        return self.trainer.init(seed, self.data["train"][0])

    def train(self, state, data=None):
        """The whole run as one jitted call: the final state and the metric rows (a dict
        of arrays, one entry per evaluation)."""
        data = self.data if data is None else data
        return self._run_all(state, data, self.trainer.schedule.counts())

    def __post_init__(self):
        import jax

        from mlspec.compiler.trainer import shared_jit

        self._run_all = shared_jit(self.trainer, "run_all", lambda: jax.jit(self.trainer.run_all))


def compile_program(program: Program) -> Compiled:
    from mlspec.runtime.training import Training

    training = Training(program)
    return Compiled(program=program, trainer=training.trainer, data=training.data)
