"""Running a spec: resolve, load the data once onto the device, compile, train in chunks,
collect the history. The host only steps in between chunks: to report progress, to notice
a diverging loss or an interruption, and to stop early."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from mlspec.runtime.results import DivergedError, Result, combine
from mlspec.runtime.training import Training
from mlspec.semantics.program import Program
from mlspec.syntax import ir
from mlspec.syntax.parser import load


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


def run(spec: ir.Spec | str | os.PathLike, overrides: Mapping[str, Any] | None = None,
        *, on_progress: Callable[[Training], None] | None = None,
        updates: int = 1) -> Result:
    """Trains a spec and returns its Result.

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
    from mlspec.semantics.structure import groups
    from mlspec.semantics.sweep import expand

    spec = _as_spec(spec)
    members = expand(spec, overrides)
    if len(members) == 1 and not members[0].settings:
        return train_program(members[0].program, on_progress=on_progress, updates=updates)
    results = []
    for group in groups(members):
        training = Training(group[0].program, updates=updates, members=group)
        training.run(on_progress)
        results.extend(training.member_results())
    return combine(results, spec_as_run(spec, overrides))


def train_program(program: Program, *, on_progress=None, updates: int = 1) -> Result:
    result = Training(program, updates=updates).run(on_progress)
    if result.status == "diverged":
        raise DivergedError(result)
    return result

