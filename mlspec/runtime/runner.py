"""Running a spec: resolve it once (every member of its seeds or sweep), then train program
by program; a search draws its trials batch by batch as it trains (`mlspec.runtime.search`).
`mlspec.run` and `mlspec run` both come here: a `Plan` is the spec resolved, a `Run` trains
it, reporting progress and asking whether to stop through callbacks:

    from mlspec.runtime.runner import Run, plan

    run = Run(plan("specs/hill.mlspec", {"train.steps": 500}), updates=10)
    result = run.train(on_progress=lambda training: print(training.steps_done))
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from mlspec.runtime.results import DivergedError, Result, combine
from mlspec.runtime.training import Training
from mlspec.semantics.grid import Grid, read_grid
from mlspec.semantics.program import Program
from mlspec.semantics.structure import groups
from mlspec.semantics.sweep import Member, expand
from mlspec.semantics.sweep_check import validate
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError
from mlspec.syntax.reader import load


def _as_spec(spec: ir.Spec | str | os.PathLike) -> ir.Spec:
    if isinstance(spec, ir.Spec):
        return spec
    return load(spec)


def spec_as_run(spec: ir.Spec, overrides: Mapping[str, Any] | None = None) -> ir.Spec:
    """The spec with its imports merged and overrides applied, its sweep kept: what a run
    folder's spec.mlspec holds, from which `mlspec.semantics.sweep.expand` gives every member."""
    from mlspec.semantics.imports import merge_imports
    from mlspec.semantics.overrides import apply_overrides

    return apply_overrides(merge_imports(spec), overrides)


@dataclass(frozen=True)
class Plan:
    """What a run trains: the spec as run (its sweep kept) and its members, each member's
    program resolved once."""

    run_spec: ir.Spec
    members: list[Member]
    search: Grid | None = None
    """For a search: its grid (axes and search), whose trials are drawn as it trains
    (`members` is then empty)."""

    @property
    def program(self) -> Program:
        """The first member's program (a single run's own; a search's without its sweep)."""
        return self.search.program if self.search is not None else self.members[0].program

    @property
    def single(self) -> bool:
        """One run, without seeds, a sweep or a search."""
        return self.search is None and len(self.members) == 1 \
            and not self.members[0].settings


def plan(spec: ir.Spec | str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> Plan:
    """The spec (a Spec or the path of a .mlspec file) resolved for a run: every member
    of its seeds or sweep, once. Raises SpecError for a mistake, or a spec that has no
    data or train section to run."""
    run_spec = spec_as_run(_as_spec(spec), overrides)
    grid = None
    if run_spec.search is not None:  # its trials are drawn as it trains
        grid = read_grid(run_spec, None)
        validate(grid)
        members, program = [], grid.program
    else:
        members = expand(run_spec)
        program = members[0].program
    if program.data is None or program.train is None:
        missing = "data" if program.data is None else "train"
        raise SpecError.at(None, f"run needs a '{missing}' section")
    return Plan(run_spec, members, grid)


Following = Callable[[Training, int, int], AbstractContextManager[Any]]
"""`following(training, i, n)`: a context around the training of the i-th of n programs."""


class Run:
    """A plan's training: one Training for a single run, else one per group of members
    that share a compiled program, in turn. An interrupted sweep keeps the members trained
    so far (those of programs not started are left out); it cannot be resumed."""

    def __init__(self, plan: Plan, *, updates: int = 1, training: Training | None = None):
        """`updates`: how many chunks to split each program's training into, for progress
        reports and stops (1: one compiled call, the fastest). A single run's Training
        is made here (its data loaded); the groups' as each one starts. `training`: a
        single run's own, already made (a resumed one)."""
        self.plan = plan
        self.updates = updates
        self.results: list[Result] = []
        """The member results of the programs trained so far."""
        self.training = training
        """The Training now under way (or the last one)."""
        self.searching = None
        """For a search: its SearchRun (mlspec.runtime.search), once it trains."""
        if self.training is None and plan.single:
            self.training = Training(plan.program, updates=updates)

    @classmethod
    def resumed(cls, training: Training) -> Run:
        """A run that goes on with an interrupted single run's Training."""
        program = training.program
        return cls(Plan(program.spec, [Member(settings={}, program=program)]),
                   training=training)

    @property
    def single(self) -> bool:
        return self.plan.single

    def kept(self) -> bool:
        """Whether some chunk of training has finished: what stopping now would keep."""
        if self.searching is not None:
            self.training = self.searching.training
            if self.searching.results:
                return True
        return bool(self.results) or (self.training is not None
                                      and self.training.blocks_done > 0)

    def resume_point(self) -> dict[str, int]:
        """Where a single run stands (`blocks_done`, `chunk`), for its folder's manifest;
        seeds and sweeps have none, as they do not resume."""
        if not self.single:
            return {}
        return {"blocks_done": self.training.blocks_done, "chunk": self.training.chunk}

    def train(self, *, following: Following | None = None,
              on_progress: Callable[[Training], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              stop_now: Callable[[Training], bool] | None = None) -> Result | None:
        """Trains to the end, or until `should_stop()` says so (asked between chunks and
        between programs) or `stop_now(training)` does while a chunk computes (see
        `Training.run`). `on_progress(training)` comes after each chunk. Returns the
        Result (for members, combined, `interrupted` unless every member finished), or
        None when it stopped before any chunk finished: nothing to keep. A Run trains
        once."""
        following = following or (lambda training, i, n: contextlib.nullcontext())
        if self.plan.search is not None:
            from mlspec.runtime.search import SearchRun

            self.searching = SearchRun(self.plan.search, self.plan.run_spec, self.updates)
            result = self.searching.train(following, on_progress, should_stop, stop_now)
            self.results = self.searching.results
            return result
        if self.single:
            training = self.training
            with following(training, 1, 1):
                result = self._advance(training, on_progress, should_stop, stop_now)
            return None if result.status == "interrupted" and not training.blocks_done \
                else result
        shapes = groups(self.plan.members)
        for i, group in enumerate(shapes, 1):
            if should_stop is not None and should_stop():
                break
            training = self.training = Training(group[0].program, updates=self.updates,
                                                members=group)
            with following(training, i, len(shapes)):
                self._advance(training, on_progress, should_stop, stop_now)
            if training.blocks_done:  # a program stopped before its first step is left out
                self.results.extend(training.member_results())
        if not self.results:
            return None
        result = combine(self.results, self.plan.run_spec)
        if len(self.results) < len(self.plan.members) or \
                any(r.status == "interrupted" for r in self.results):
            result.status = "interrupted"
        return result

    @staticmethod
    def _advance(training: Training, on_progress, should_stop, stop_now) -> Result:
        now = None if stop_now is None else (lambda: stop_now(training))
        return training.run(on_progress=on_progress, should_stop=should_stop, stop_now=now)


def run(spec: ir.Spec | str | os.PathLike, overrides: Mapping[str, Any] | None = None,
        *, on_progress: Callable[[Training], None] | None = None,
        updates: int = 1) -> Result:
    """Trains a spec and returns its Result: for seeds, a sweep or a search, the best
    member's, with every member (trial) in `members`, best first, and for a search its
    trials table in `trials` (see `mlspec.runtime.search`).

    Args:
        spec: a parsed spec, or the path of a .mlspec file.
        overrides: params by name and settings by path, e.g. {"train.steps": 500}.
        on_progress: called with the Training after each compiled chunk.
        updates: how many chunks to split the run into for progress reports (1: the whole
            run is one compiled call, the fastest).

    Raises:
        SpecError: a mistake in the spec or its data.
        DivergedError: the loss became NaN or infinite; `.result` has the run so far.
    """
    planned = Run(plan(spec, overrides), updates=updates)
    result = planned.train(on_progress=on_progress)
    if planned.single and result.status == "diverged":
        raise DivergedError(result)
    return result


def train_program(program: Program, *, on_progress=None, updates: int = 1) -> Result:
    """Trains one resolved program (no seeds or sweep); raises DivergedError as `run`."""
    result = Training(program, updates=updates).run(on_progress)
    if result.status == "diverged":
        raise DivergedError(result)
    return result
