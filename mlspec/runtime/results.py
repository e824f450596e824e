"""A trained run's Result, how members rank, and members combined into one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlspec.catalog.metrics import higher_is_better
from mlspec.semantics.program import Program
from mlspec.semantics.sweep import setting_column
from mlspec.syntax import ir

Status = str  # "completed", "early_stopped", "interrupted", "diverged" or (a search's) "pruned"


class DivergedError(RuntimeError):
    """The loss became NaN or infinite; `.result` holds the run up to that evaluation."""

    def __init__(self, result: Result):
        self.result = result
        super().__init__(result.divergence_message())


@dataclass
class Result:
    """A trained run: its history, final metrics, parameters and how it ended."""

    program: Program
    history: pd.DataFrame
    """One row per evaluation: `step`, then `train.loss`, `valid.accuracy`, ..."""
    metrics: dict[str, float]
    """The row of the returned model: the history's last, or its best evaluation's with
    `early_stop(restore_best=true)` (and `test.*` where a test split exists)."""
    state: Any = field(repr=False)
    trainer: Any = field(repr=False)
    normalizer: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    """Train-split feature mean and std, applied to new rows, when `standardize` is on."""
    encoding: Any = field(default=None, repr=False)
    """A tabular source's vocabularies and fill values (an `Encoding`), applied to new rows."""
    status: Status = "completed"
    stopped_at: int | None = None
    """The step at which early stopping (or divergence) ended the run."""
    best_step: int | None = None
    """With `early_stop(restore_best=true)`: the step of the best evaluation, whose
    parameters and metrics the run returns."""
    evaluated_at: int | None = None
    """The step of the parameters that `metrics` were measured on: the returned ones',
    except when a second signal dropped the chunk in progress before the parameters of
    the interruption could be evaluated (then the last history row's step)."""
    wall_time: float = 0.0
    manifest: dict[str, Any] | None = field(default=None, repr=False)
    """For a run read back from its folder: its manifest.json."""
    settings: dict[str, Any] = field(default_factory=dict)
    """For a member of a sweep: its swept settings."""
    members: list[Result] = field(default_factory=list, repr=False)
    """For seeds or a sweep: every member's Result, best first; this Result is the best
    member's, with the history of all members (a column per swept setting)."""
    trials: pd.DataFrame | None = field(default=None, repr=False)
    """For a search: trials.csv, one row per trial, best first (its optuna number,
    settings, status, steps and final metrics; see `mlspec.runtime.search`)."""
    run_spec: ir.Spec | None = field(default=None, repr=False)
    """For seeds or a sweep: the spec as run (overrides applied, its sweep kept), which
    the run folder's spec.mlspec holds."""

    @property
    def params(self):
        """The trained flax parameters."""
        return self.state["params"]

    @property
    def steps_done(self) -> int:
        """Gradient steps taken: where an early stop or divergence ended the run (the
        state's step counter runs on past a diverged row), else the state's count."""
        if self.status in ("early_stopped", "diverged") and self.stopped_at is not None:
            return self.stopped_at
        return int(self.state["step"])

    @property
    def params_step(self) -> int:
        """The step of the returned parameters: the best evaluation's where early stopping
        restored it, else the state's (past `stopped_at` for a diverged run, whose chunk
        computed on)."""
        return self.best_step if self.best_step is not None else int(self.state["step"])

    def outputs(self, x) -> np.ndarray:
        """The model's raw outputs (logits or values) for rows `x`, in evaluation mode."""
        import jax
        import jax.numpy as jnp

        from mlspec.runtime.predict import model_input  # rows of another width are a DataError

        x = model_input(self, x)
        out, _ = self.trainer.apply(self.params, self.state["model_state"],
                                    jax.tree.map(jnp.asarray, x))
        return jax.tree.map(np.asarray, out)

    def predict(self, x) -> np.ndarray | dict[str, np.ndarray]:
        """Point predictions for rows `x`: class ids, or real values (with several
        outputs, a dict of them by output name)."""
        import jax.numpy as jnp

        out = self.outputs(x)
        if self.trainer.heads:
            return {head: np.asarray(self.trainer.outputs.losses[head].predict(jnp.asarray(
                out[head]))) for head in self.trainer.heads}
        return np.asarray(self.trainer.data_loss.predict(jnp.asarray(out)))

    def probabilities(self, x) -> np.ndarray:
        """Each class's probability for rows `x`, shape (rows, classes): the softmax of the
        logits, or for `sigmoid_binary_cross_entropy` the sigmoid of its one logit (and
        one minus it). A run of real targets, or of a loss of scores (`hinge_loss`), has
        none: a ValueError."""

        out = self.outputs(x)
        if self.trainer.heads:
            return {head: self._probabilities(self.trainer.outputs.losses[head], out[head],
                                              self.program.data.info.target_info(head))
                    for head in self.trainer.heads
                    if self.trainer.outputs.losses[head].has_probabilities}
        return self._probabilities(self.trainer.data_loss, out, self.program.data.info)

    @staticmethod
    def _probabilities(loss, out, info) -> np.ndarray:
        import jax.numpy as jnp

        proba = loss.probabilities(jnp.asarray(out))
        if proba is None:
            what = "a run of real targets" if info.target == "real" \
                else "a run whose loss gives scores, not logits,"
            raise ValueError(f"{what} (its loss is {loss.kind}) has no class probabilities")
        return np.asarray(proba)

    def metrics_by_split(self) -> dict[str, dict[str, float]]:
        grouped: dict[str, dict[str, float]] = {}
        for key, value in self.metrics.items():
            split, dot, name = key.partition(".")  # valid.price.rmse: valid's price.rmse
            grouped.setdefault(split if dot else "training", {})[name if dot else key] = value
        return grouped

    def divergence_message(self) -> str:
        return (f"the loss became {self.metrics.get('train.loss')} at step {self.stopped_at}; "
                "training stopped there. Try a lower learning rate (or clip_by_global_norm).")

    def save(self, out_dir) -> Any:
        """Writes the run folder (see `mlspec.runtime.runs`)."""
        from mlspec.runtime.runs import save_run

        return save_run(self, out_dir)



def rank_metric(metrics: Mapping[str, float]) -> tuple[str, bool]:
    """The metric that ranks members, and whether higher is better: the first valid
    metric but the loss that has a better direction (not `pred_mean`), else the valid
    loss, else the train loss."""
    valid = [k for k in metrics if k.startswith("valid.") and k != "valid.loss"
             and higher_is_better(k) is not None]
    key = valid[0] if valid else "valid.loss" if "valid.loss" in metrics else "train.loss"
    return key, bool(higher_is_better(key))


def _rank_key(result: Result, rank: tuple[str, bool] | None = None) -> tuple:
    """Best first: by `rank` (a search's metric and whether higher is better), else by
    `rank_metric`, in its direction; a diverged member last, whatever its metrics (NaN
    outputs still get an accuracy), a pruned trial after every completed one."""
    key, higher_is_better = rank or rank_metric(result.metrics)
    value = result.metrics.get(key, float("nan"))
    value = -value if higher_is_better else value
    return (result.status == "diverged", result.status == "pruned", np.isnan(value), value)


def combine(results: list[Result], run_spec: ir.Spec | None = None,
            rank: tuple[str, bool] | None = None) -> Result:
    """The results of members as one: the best member's, carrying all histories, each
    with its swept settings as leading columns. `run_spec` (the spec as run, see
    `spec_as_run`) is needed to save it; `rank`: see `_rank_key`."""
    ranked = sorted(results, key=lambda r: _rank_key(r, rank))
    best = ranked[0]
    histories = []
    for r in results:
        settings = pd.DataFrame({setting_column(k): [v] * len(r.history)
                                 for k, v in r.settings.items()})
        histories.append(pd.concat([settings, r.history], axis=1))
    return Result(program=best.program, history=pd.concat(histories, ignore_index=True),
                  metrics=best.metrics, state=best.state, trainer=best.trainer,
                  normalizer=best.normalizer, encoding=best.encoding, status=best.status,
                  stopped_at=best.stopped_at, best_step=best.best_step,
                  evaluated_at=best.evaluated_at,
                  wall_time=sum(r.wall_time for r in results), settings=best.settings,
                  members=ranked, run_spec=run_spec)

