"""Search beyond the grid: a sweep axis that is a distribution (`loguniform(1e-4, 1e-1)`,
`uniform`, `int_uniform`, `choice`) and the `search` section that says how to draw from
them (method, trials, how many train together, the metric, pruning, a shared storage).

Everything here is checked without training: each distribution's arguments, the section's
settings against the program (the metric is a history column, the pruning rung falls on
an evaluation). The values a distribution stands for at check time are its two ends, or
each of its choices: an axis whose ends resolve resolves everywhere between them, as the
two ends of `seeds = N` stand for every seed (`Distribution.checked`). Drawing the
trials, training them and telling optuna is `mlspec.runtime.search`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from mlspec.catalog.metrics import METRICS, higher_is_better
from mlspec.catalog.registry import Entry, build_entry
from mlspec.catalog.signature import MetricPath, Names, Symbol
from mlspec.semantics.program import Program
from mlspec.semantics.scope import Scope
from mlspec.semantics.settings import Catalogue, FromSpec, SectionModel, validate_section
from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError, did_you_mean
from mlspec.syntax.printer import format_expr

DISTRIBUTIONS = ("uniform", "loguniform", "int_uniform", "choice")
METHODS = ("grid", "random", "tpe")


@dataclass(frozen=True)
class Distribution:
    """One axis's distribution: `kind` one of DISTRIBUTIONS; `low` and `high` its ends (as
    written, with their places), or `choices` its values."""

    kind: str
    span: Span | None
    low: ir.Expr | None = None
    high: ir.Expr | None = None
    choices: tuple[ir.Expr, ...] = ()

    @property
    def log(self) -> bool:
        return self.kind == "loguniform"

    def checked(self) -> tuple[ir.Expr, ...]:
        """The values that stand for the whole distribution at check time."""
        return self.choices if self.kind == "choice" else (self.low, self.high)

    def bounds(self) -> tuple[float, float]:
        return _number(self.low), _number(self.high)


def _number(expr: ir.Expr) -> float | None:
    """A literal number (negative ones included), else None."""
    if isinstance(expr, ir.Neg) and isinstance(expr.operand, ir.Number):
        return -expr.operand.value
    return expr.value if isinstance(expr, ir.Number) else None


def read_distribution(setting: ir.Setting) -> Distribution | None:
    """The distribution a sweep setting's value is (None for a list or a single value);
    a SpecError at the argument for bad ends."""
    value = setting.value
    if not isinstance(value, ir.Call) or value.name not in DISTRIBUTIONS:
        return None
    name = value.name
    if value.kwargs:
        raise SpecError.at(value.kwargs[0].span, f"{name} takes its values in order, not "
                                                  f"by name ({name}(a, b))")
    if name == "choice":
        if not value.args:
            raise SpecError.at(value.span, "choice needs at least one value: choice(16, 32)")
        return Distribution("choice", value.span, choices=tuple(value.args))
    if len(value.args) != 2:
        raise SpecError.at(value.span, f"{name} takes two numbers, its low and high ends: "
                                       f"{name}(a, b)")
    low, high = value.args
    ends = []
    for end in (low, high):
        number = _number(end)
        if number is None or isinstance(number, bool):
            raise SpecError.at(end.span, f"{name}'s ends are numbers, not "
                                         f"{format_expr(end)}")
        if name == "int_uniform" and not float(number).is_integer():
            raise SpecError.at(end.span, f"int_uniform's ends are whole numbers, not "
                                         f"{format_expr(end)}")
        ends.append(number)
    if not ends[0] < ends[1]:
        raise SpecError.at(value.span, f"{name}({format_expr(low)}, {format_expr(high)}): "
                                       "the low end must be below the high end")
    if name == "loguniform" and ends[0] <= 0:
        raise SpecError.at(low.span, f"loguniform's ends must be above 0 (its values are "
                                     f"drawn on a log scale), not {format_expr(low)}")
    if name == "int_uniform":
        low, high = (ir.Number(value=int(n), span=e.span) for n, e in zip(ends, (low, high)))
    return Distribution(name, value.span, low, high)


# ------------------------------------------------------------------ the search section


class Halving(Entry):
    """`halving(keep=0.25, every=500)`: every `every` steps the trials trained together
    keep the best `keep` share of those still training; the rest stop."""

    kind: Literal["halving"] = "halving"
    keep: Annotated[float, Field(gt=0, lt=1)] = 0.5
    every: PositiveInt



def halving_call(value: ir.Expr, scope: Names) -> Halving:
    if not (isinstance(value, ir.Call) and value.name == "halving"):
        raise SpecError.at(value.span, "prune should be a call such as "
                                       "halving(keep=0.25, every=500)")
    return build_entry(Halving, value, "halving", scope)


class SearchSection(SectionModel):
    """The `search` section; field names are the setting names."""

    kind: Literal["search"] = "search"
    method: Symbol[Literal["grid", "random", "tpe"]] | None = None
    trials: PositiveInt | None = None
    together: PositiveInt = 8
    metric: MetricPath | None = None
    mode: Symbol[Literal["min", "max"]] | None = None
    prune: Annotated[Halving | None, FromSpec(halving_call, Catalogue(
        "setting", lambda: {"halving": Halving}))] = None
    storage: str | None = None
    study: str | None = None


@dataclass(frozen=True)
class Search:
    """A search, read and checked: what `mlspec.runtime.search` runs."""

    method: str
    trials: int
    together: int
    metric: str
    higher: bool
    """Whether a higher `metric` is better (`mode = max`)."""
    prune: Halving | None
    storage: str | None
    """An optuna storage: a journal file's absolute path, or a database URL."""
    study: str
    span: Span | None


def recorded(program: Program) -> list[str]:
    """The history columns of a program that a search may rank by (not the test split's)."""
    train = program.train
    outputs = program.data.info.outputs if program.data is not None else None
    if outputs:
        from mlspec.semantics.outputs import output_columns

        columns = output_columns(train)
    else:
        columns = ["loss"] + [m.name for m in train.metrics
                              if METRICS.get(m.name).scope == "split"]
    splits = [s for s in program.data.splits if s != "test"] if program.data else ["train"]
    known = [f"{s}.{c}" for s in splits for c in columns]
    return known + [m.name for m in train.metrics if METRICS.get(m.name).scope == "training"]


def default_metric(known: list[str]) -> str:
    """The first valid metric with a better direction, else the valid loss, else the
    train loss (as members of a sweep are ranked)."""
    valid = [k for k in known if k.startswith("valid.") and k != "valid.loss"
             and higher_is_better(k) is not None]
    return valid[0] if valid else "valid.loss" if "valid.loss" in known else "train.loss"


def read_search(spec: ir.Spec, program: Program, axes: list, grid_size: int) -> Search | None:
    """The spec's search, checked against its program (the spec without its sweep) and
    its sweep's `axes` (`mlspec.semantics.grid.Axis`); None for a plain grid sweep."""
    section = spec.search
    drawn = [axis for axis in axes if axis.distribution is not None]
    if section is None:
        if drawn:
            axis = drawn[0]
            raise SpecError.at(axis.distribution.span, f"'{axis.path}' is a distribution: "
                               "say how many trials to draw from it in a search section "
                               "(search { trials = 32 })")
        return None
    if not axes:
        raise SpecError.at(section.span, "a search draws from a sweep's axes: this spec "
                                         "has no sweep")
    scope = Scope({p.name: p for p in spec.params})
    settings = validate_section(SearchSection, "search", section, scope,
                                SearchSection.setting_names())
    place = {s.path: s.value.span for s in section.settings}
    method = settings.method or ("tpe" if drawn else "grid")
    if method == "grid":
        if drawn:
            raise SpecError.at(drawn[0].distribution.span, f"method = grid takes each axis "
                               f"as a list; '{drawn[0].path}' is a distribution (use method "
                               "= random or tpe)")
        trials = settings.trials or grid_size
        if trials > grid_size:
            raise SpecError.at(place["trials"], f"a grid search has {grid_size} trials, "
                                                f"not {trials} (one for each combination)")
    elif settings.trials is None:
        raise SpecError.at(section.span, f"a {method} search needs 'trials': how many to "
                                         "draw (trials = 32)")
    else:
        trials = settings.trials
    if program.train is not None and program.train.seeds > 1:
        seeds = spec.train.get("seeds")
        raise SpecError.at(seeds.span if seeds else section.span, "a search trains one "
                           "seed per trial: leave out 'seeds' (or sweep train.seed)")
    known = recorded(program) if program.train is not None else ["train.loss"]
    metric = settings.metric or default_metric(known)
    if metric not in known:
        raise SpecError.at(place.get("metric", section.span), f"the search ranks by "
                           f"'{metric}', which is not recorded{did_you_mean(metric, known)}")
    if settings.mode is not None:
        higher = settings.mode == "max"
    elif higher_is_better(metric) is None:
        raise SpecError.at(place.get("metric", section.span), f"'{metric}' has no better "
                           "direction: give mode = min or mode = max")
    else:
        higher = bool(higher_is_better(metric))
    if settings.prune is not None and program.train is not None:
        _check_rung(settings.prune, program, place["prune"])
    return Search(method, trials, settings.together, metric, higher, settings.prune,
                  _storage(settings.storage, spec), settings.study or _study_name(spec,
                                                                                  program),
                  section.span)


def _check_rung(prune: Halving, program: Program, span: Span | None) -> None:
    train = program.train
    if prune.every % train.eval_every:
        raise SpecError.at(span, f"prune every={prune.every} must be a multiple of "
                                 f"train.eval_every = {train.eval_every}: trials are cut at "
                                 "an evaluation")
    if train.steps is not None and prune.every >= train.steps:
        raise SpecError.at(span, f"prune every={prune.every} never cuts: training ends at "
                                 f"step {train.steps}")


def _storage(storage: str | None, spec: ir.Spec) -> str | None:
    """A URL as it is; a path relative to the spec's folder, made absolute."""
    if storage is None or "://" in storage:
        return storage
    folder = Path(spec.path).parent if spec.path else Path()
    return str((folder / storage).resolve())


def _study_name(spec: ir.Spec, program: Program) -> str:
    return Path(spec.path).stem if spec.path else program.name


__all__ = ["DISTRIBUTIONS", "Distribution", "Halving", "METHODS", "Search", "SearchSection",
           "read_distribution", "read_search"]
