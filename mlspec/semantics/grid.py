"""A spec's sweep read as a grid: its axes, the settings every member shares, and each
combination resolved once (`Grid.attempt`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlspec.catalog.registry import to_python
from mlspec.semantics.budget import MAX_MEMBERS
from mlspec.semantics.imports import merge_imports
from mlspec.semantics.overrides import apply_overrides
from mlspec.semantics.program import Program
from mlspec.semantics.resolve import resolve
from mlspec.semantics.search import Distribution, Search, read_distribution, read_search
from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError
from mlspec.syntax.printer import format_expr


@dataclass(frozen=True)
class Member:
    """One combination: the swept settings (key -> value) and its validated program."""

    settings: dict[str, Any]
    program: Program


@dataclass(frozen=True)
class Axis:
    path: str
    values: tuple[ir.Expr, ...]
    seeds: bool = False
    """The axis that `seeds = N` makes: consecutive seeds, checked by its two ends."""
    distribution: Distribution | None = None
    """For a search: the distribution its values are drawn from; `values` are then those
    that stand for it at check time (its two ends, or its choices)."""


@dataclass
class Grid:
    """A spec's sweep, read: the spec as given (its sweep kept), the spec without it, its
    program, the axes and the settings every member shares."""

    spec: ir.Spec
    base: ir.Spec
    program: Program
    axes: list[Axis]
    fixed: dict[str, ir.Expr]
    span: Span | None
    train_section: ir.Section | None
    search: Search | None = None
    """The spec's search (`mlspec.semantics.search`), None for a grid sweep."""
    resolved: dict[tuple, Program | SpecError] = field(default_factory=dict)
    """Every combination resolved so far, by `attempt`: checking and expanding a grid
    resolve each program once."""

    @property
    def count(self) -> int:
        return math.prod(len(axis.values) for axis in self.axes)

    def combinations(self) -> Iterator[dict[str, ir.Expr]]:
        for combo in itertools.product(*(axis.values for axis in self.axes)):
            yield {axis.path: value for axis, value in zip(self.axes, combo)}

    def attempt(self, chosen: dict[str, ir.Expr]) -> Program | SpecError:
        """The program of the base with the `chosen` values of some axes (the others at
        the spec's own) and the fixed settings, or its SpecError; each combination is
        resolved once, its values set in the order of the axes."""
        ordered = {axis.path: chosen[axis.path] for axis in self.axes if axis.path in chosen}
        key = tuple((path, text(value)) for path, value in ordered.items())
        if key not in self.resolved:
            try:
                self.resolved[key] = resolve(self.base, {**self.fixed, **ordered})
            except SpecError as exc:
                self.resolved[key] = exc
        return self.resolved[key]


def display(expr: ir.Expr) -> Any:
    value = to_python(expr)
    return value if isinstance(value, (int, float, str, bool)) else format_expr(expr)


def read_grid(spec: ir.Spec, overrides: Mapping[str, Any] | None) -> Grid:
    spec = apply_overrides(merge_imports(spec), overrides)
    sweep = spec.sweep
    base = spec.model_copy(update={"sweep": None, "search": None})
    program = resolve(base)
    axes: list[Axis] = []
    for setting in sweep.settings if sweep else ():
        if any(axis.path == setting.path for axis in axes):
            raise SpecError.at(setting.span, f"'{setting.path}' is swept twice; give all "
                                             "its values in one list")
        distribution = read_distribution(setting)
        values = distribution.checked() if distribution is not None else \
            setting.value.items if isinstance(setting.value, ir.ListExpr) else (setting.value,)
        if not values:
            raise SpecError.at(setting.span, f"sweep '{setting.path}' has no values")
        try:
            apply_overrides(base, {setting.path: values[0]})
        except SpecError as exc:
            raise SpecError.at(setting.span, exc.diagnostics[0].message.replace(
                "--set: ", "sweep: ")) from None
        axes.append(Axis(setting.path, tuple(values), distribution=distribution))
    search = read_search(spec, program, axes, math.prod(len(axis.values) for axis in axes))
    seeds = program.train.seeds if program.train else 1
    swept_seeds = seeds > 1 and "train.seed" not in {axis.path for axis in axes}
    count = search.trials if search is not None else \
        math.prod(len(axis.values) for axis in axes) * (seeds if swept_seeds else 1)
    if count > MAX_MEMBERS:  # counted before any is made
        raise SpecError.at(sweep.span if sweep else None, f"this sweep has {count:,} "
                           f"members; a run may have at most {MAX_MEMBERS:,}")
    if swept_seeds:
        first = program.train.seed
        axes.append(Axis("train.seed", tuple(ir.Number(value=first + i)
                                              for i in range(seeds)), seeds=True))
    fixed = {"train.seeds": ir.Number(value=1)} if program.train is not None else {}
    grid = Grid(spec, base, program, axes, fixed, sweep.span if sweep else None, spec.train,
                search)
    if seeds == 1:  # the fixed `seeds = 1` changes nothing: the program is its own
        grid.resolved[()] = program
    return grid


def text(value: ir.Expr) -> str:
    """A value's identity: its canonical text (IR equality has 1 == 1.0)."""
    return format_expr(value)
