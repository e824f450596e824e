"""Many runs from one spec: `seeds = N` and the `sweep` grid.

Every combination of the swept values is a member. Members whose programs differ only in
values that keep every array shape (seeds, optimizer hyperparameters, fields marked Traced
such as loss weights and dropout rates) form a group that trains as one compiled program,
vmapped over their states (see mlspec.semantics.structure); values that change shapes
(widths, depths, data) give one compiled program per distinct shape.

`check_spec` validates every member without resolving each one (a sweep may have 100,000):
the axes are split into those that cannot meet in any check (they change different parts of
the spec, and no shape or size), each of which is checked value by value, and the rest,
whose combinations are checked together (see `mlspec.semantics.sweep_check`). Checking and
expanding a grid resolve each distinct program once (`Grid.attempt`, mlspec.semantics.grid).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlspec.semantics.grid import Grid, Member, display, read_grid
from mlspec.semantics.program import Program
from mlspec.semantics.resolve import resolve
from mlspec.semantics.sweep_check import validate
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError


def check_spec(spec: ir.Spec) -> Program | None:
    """What `mlspec check`, `mlspec.check` and the language server check: a library
    (params and blocks only, as `import` reads) as one, giving None; else the spec's
    program, every member of its sweep validated too, without resolving each (see
    `validate`)."""
    from mlspec.semantics.library import check_library, is_library

    if is_library(spec):
        check_library(spec)
        return None
    if spec.sweep is None and spec.search is None:
        return resolve(spec)
    grid = read_grid(spec, None)
    if grid.axes:
        validate(grid)
    # the program of the spec as given: its spec keeps the sweep, as `resolve` keeps it
    return grid.program.model_copy(update={"spec": grid.spec})


def expand(spec: ir.Spec, overrides: Mapping[str, Any] | None = None) -> list[Member]:
    """The members of a spec: one without a sweep and `seeds = 1`, else the grid. A
    search's trials are drawn as it runs (`mlspec.runtime.search`): a SpecError here."""
    grid = read_grid(spec, overrides)
    if grid.search is not None:
        raise SpecError.at(grid.search.span, "a search's trials are drawn as it runs: "
                                             "train it with mlspec.run")
    if not grid.axes:
        return [Member(settings={}, program=grid.program)]
    validate(grid)
    return [_member(grid, chosen) for chosen in grid.combinations()]


def find_member(spec: ir.Spec, settings: Mapping[str, Any]) -> Member | None:
    """The member whose swept settings are `settings` (as `Member.settings` shows them),
    resolving only that one; None if there is none."""
    grid = read_grid(spec, None)
    if set(settings) != {axis.path for axis in grid.axes}:
        return None
    if not grid.axes:
        return Member(settings={}, program=grid.program)
    chosen = {}
    for axis in grid.axes:
        drawn = axis.distribution is not None and axis.distribution.kind != "choice"
        value = ir.Number(value=settings[axis.path]) if drawn and isinstance(
            settings[axis.path], (int, float)) and not isinstance(settings[axis.path], bool) \
            else next((v for v in axis.values if display(v) == settings[axis.path]), None)
        if value is None:
            return None
        chosen[axis.path] = value
    return _member(grid, chosen)


def _member(grid: Grid, chosen: dict[str, ir.Expr]) -> Member:
    program = grid.attempt(chosen)  # resolved already where checking the grid needed it
    if isinstance(program, SpecError):
        raise program
    return Member(settings={key: display(value) for key, value in chosen.items()},
                  program=program)


# History columns that a swept setting's path would take over: the step, the seed of
# `seeds = N`, and the train loss (`train.loss` is a setting and a metric).
_HISTORY_COLUMNS = frozenset({"step", "seed", "train.loss"})


def setting_column(key: str) -> str:
    """The history column of a swept setting: its path, `seed` for `train.seed`, and
    `sweep.KEY` for a key that is a history column of its own (a param named `step`, a
    sweep of `train.loss`)."""
    if key == "train.seed":
        return "seed"
    return f"sweep.{key}" if key in _HISTORY_COLUMNS else key
