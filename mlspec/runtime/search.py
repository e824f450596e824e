"""Running a search (`mlspec.semantics.search`): optuna draws the trials through its ask
and tell interface, `together` at a time; each batch's trials become members (their
settings as spec values, each program resolved once by `Grid.attempt`), grouped by shape
and trained vmapped as a sweep's members are, pruned inside the compiled program
(`mlspec.compiler.trainer.Pruning`); their final metrics are told back before the next
batch is asked for.

A study of N trials shared by several processes (a `storage`): optuna numbers a study's
trials in the order they are created, under its storage's own lock (the journal file's
lock, the database's transaction), so the numbers 0 to N-1 are the study's trials, each
asked by exactly one process. A process that is given a number N or above tells that
trial FAIL at once (its user attribute `mlspec` says it was past the study's end) and
asks no more: between them the processes train N trials, none twice. A trial whose process
died stays RUNNING and is not run again.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from mlspec.runtime.results import Result, combine
from mlspec.semantics.grid import Grid, Member, display
from mlspec.semantics.search import Distribution, Search
from mlspec.semantics.structure import groups
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError
from mlspec.syntax.printer import format_expr

PAST_THE_END = "past the study's trials"


def _grid_sampler(grid: Grid):
    """The sampler of `method = grid`: trial number K gets the K-th combination (in the
    order of the axes, the last varying fastest). Numbers are unique in a study, shared
    or not, so no combination is given twice."""
    from optuna.samplers import BaseSampler

    combinations = [{path: format_expr(value) for path, value in chosen.items()}
                    for chosen in grid.combinations()]

    class GridByNumber(BaseSampler):
        def infer_relative_search_space(self, study, trial):
            return {}

        def sample_relative(self, study, trial, search_space):
            return {}

        def sample_independent(self, study, trial, name, distribution):
            return combinations[trial.number][name]

    return GridByNumber()


def open_study(search: Search, seed: int, grid: Grid):
    """The optuna study: in memory, or in the search's storage (created or joined). A
    study of its own is seeded by `seed` (train.seed), so that a search is reproducible;
    one in a storage, which several processes may share, by this process's own seed as
    well, so that they do not draw the same trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = search.storage
    if storage is not None and "://" not in storage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(storage))
    if storage is not None:
        seed = int.from_bytes(os.urandom(4), "little") >> 1
    if search.method == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif search.method == "tpe":
        # constant_liar: the trials of a batch, asked before any is told, spread out
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                             n_startup_trials=min(10, max(2, search.trials // 4)))
    else:
        sampler = _grid_sampler(grid)
    return optuna.create_study(study_name=search.study, storage=storage, sampler=sampler,
                               direction="maximize" if search.higher else "minimize",
                               load_if_exists=True)


def suggest(trial: Any, path: str, distribution: Distribution | None,
            values: tuple[ir.Expr, ...]) -> ir.Expr:
    """The value an optuna trial draws for one axis: from its distribution, or one of
    its values (a list axis, and `choice`, are categorical, by their text)."""
    if distribution is None or distribution.kind == "choice":
        options = distribution.choices if distribution is not None else values
        texts = [format_expr(v) for v in options]
        return options[texts.index(trial.suggest_categorical(path, texts))]
    low, high = distribution.bounds()
    if distribution.kind == "int_uniform":
        return ir.Number(value=trial.suggest_int(path, int(low), int(high)))
    return ir.Number(value=trial.suggest_float(path, float(low), float(high),
                                               log=distribution.log))


class SearchRun:
    """A search's training, batch by batch; `Run.train` of a plan with a search comes here."""

    def __init__(self, grid: Grid, run_spec: ir.Spec, updates: int = 1):
        self.grid = grid
        self.search: Search = grid.search
        self.run_spec = run_spec
        self.updates = updates
        self.results: list[Result] = []
        self.numbers: list[int] = []
        """The optuna trial number of each result."""
        self.training = None
        self.interrupted = False

    def _ask(self, study, n: int) -> list:
        """Up to `n` trials of the study's first `trials` (see the module's docstring)."""
        from optuna.trial import TrialState

        asked = []
        # the trials so far (any state): past `trials`, nothing is asked for; in a shared
        # study another process may ask meanwhile, which the trial's number settles
        left = self.search.trials - len(study.get_trials(deepcopy=False))
        while len(asked) < min(n, left):
            trial = study.ask()
            if trial.number >= self.search.trials:
                trial.set_user_attr("mlspec", PAST_THE_END)
                study.tell(trial, state=TrialState.FAIL)
                self.finished = True
                break
            asked.append(trial)
        if len(asked) < n:
            self.finished = True
        return asked

    def _member(self, trial) -> Member:
        chosen = {axis.path: suggest(trial, axis.path, axis.distribution, axis.values)
                  for axis in self.grid.axes}
        program = self.grid.attempt(chosen)
        if isinstance(program, SpecError):
            raise program
        return Member(settings={k: display(v) for k, v in chosen.items()}, program=program)

    def train(self, following, on_progress, should_stop, stop_now) -> Result | None:
        from mlspec.compiler.trainer import Pruning
        from mlspec.runtime.training import Training

        search = self.search
        study = open_study(search, self.grid.program.train.seed, self.grid)
        prune = None if search.prune is None else Pruning(
            search.prune.keep, search.prune.every, search.metric, search.higher)
        self.finished = False
        batch_number = 0
        while not self.finished and not self.interrupted:
            if should_stop is not None and should_stop():
                break
            trials = self._ask(study, search.together)
            if not trials:
                if not self.results and not batch_number:
                    raise SpecError.at(search.span, f"the study '{search.study}' already has "
                                       f"its {search.trials} trials: nothing is left to train "
                                       "(raise trials to draw more)")
                break
            batch_number += 1
            members = [self._member(trial) for trial in trials]
            by_member = {id(m): t for m, t in zip(members, trials)}
            shapes = groups(members)
            for i, group in enumerate(shapes, 1):
                told = [by_member[id(m)] for m in group]
                if self.interrupted or (should_stop is not None and should_stop()):
                    self._fail(study, told)
                    self.interrupted = True
                    continue
                training = self.training = Training(group[0].program, updates=self.updates,
                                                    members=group, prune=prune)
                with following(training, i, len(shapes)):
                    now = None if stop_now is None else (lambda: stop_now(training))
                    training.run(on_progress=on_progress, should_stop=should_stop,
                                 stop_now=now)
                if training.status == "interrupted":
                    self.interrupted = True
                if not training.blocks_done:
                    self._fail(study, told)
                    continue
                results = training.member_results()
                pruned = np.atleast_1d(np.asarray(training.state["pruned"])) \
                    if "pruned" in training.state else np.zeros(len(results), bool)
                for result, trial, cut in zip(results, told, pruned):
                    if cut and result.status == "completed":
                        result.status = "pruned"
                    # saved as a sweep member's state, which a run folder reloads
                    result.state = {k: v for k, v in result.state.items() if k != "pruned"}
                    self._tell(study, trial, result)
                    self.results.append(result)
                    self.numbers.append(trial.number)
        if not self.results:
            return None
        result = combine(self.results, self.run_spec, rank=(search.metric, search.higher))
        result.trials = trials_table(result, self.results, self.numbers, self.grid)
        if self.interrupted or any(r.status == "interrupted" for r in self.results):
            result.status = "interrupted"
        return result

    def _tell(self, study, trial, result: Result) -> None:
        from optuna.trial import TrialState

        value = result.metrics.get(self.search.metric, math.nan)
        if result.status == "interrupted":
            study.tell(trial, state=TrialState.FAIL)
        elif result.status == "pruned":
            trial.report(value if math.isfinite(value) else self._worst(), result.steps_done)
            study.tell(trial, state=TrialState.PRUNED)
        else:  # a diverged trial is the worst there is, not a failure to run
            study.tell(trial, value if math.isfinite(value) and result.status != "diverged"
                       else self._worst())

    def _worst(self) -> float:
        return -math.inf if self.search.higher else math.inf

    @staticmethod
    def _fail(study, trials) -> None:
        from optuna.trial import TrialState

        for trial in trials:
            study.tell(trial, state=TrialState.FAIL)


def trials_table(result: Result, results: list[Result], numbers: list[int],
                 grid: Grid) -> pd.DataFrame:
    """trials.csv: one row per trial, best first (the order of `result.members`): its
    optuna number, settings, status, steps and final metrics. `attrs["log"]` names the
    log-uniform axes (their plot has a log x axis)."""
    number = {id(r): n for r, n in zip(results, numbers)}
    rows = []
    for member in result.members:
        rows.append({"trial": number[id(member)], **member.settings,
                     "status": member.status, "steps": member.steps_done,
                     **member.metrics})
    return described(pd.DataFrame(rows), grid)


def described(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """The trials table with what its plot needs of the search in `attrs`: the axes, the
    log-uniform and categorical ones, the metric and its direction."""
    table.attrs["log"] = [a.path for a in grid.axes
                          if a.distribution is not None and a.distribution.log]
    table.attrs["axes"] = [a.path for a in grid.axes]
    table.attrs["categorical"] = [a.path for a in grid.axes if a.distribution is None
                                  or a.distribution.kind == "choice"]
    table.attrs["metric"], table.attrs["higher"] = grid.search.metric, grid.search.higher
    return table
