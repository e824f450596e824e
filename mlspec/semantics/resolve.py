"""Spec IR -> typed program: the passes that `resolve` runs in order.

Imports are merged and overrides applied to the text; then `PASSES` run, each a plain
function of the spec and the program built so far: names checked unique, params
evaluated, the data inspected, the names it gives bound (`classes`), the model bound and
its shapes inferred, the train section bound, the task's fit checked. Independent
mistakes are collected so that `check` reports them all at once. Nothing here imports jax.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec.catalog.layers import LAYERS
from mlspec.catalog.layers.graph import Graph
from mlspec.catalog.signature import settle
from mlspec.semantics.blocks import check_alone, used_blocks
from mlspec.semantics.budget import MAX_MEMBERS, program_needs, refuse_if_too_big
from mlspec.semantics.data import (
    DataSection,
    resolve_data,
    typed_input_layers,
    vocabulary_graph,
)
from mlspec.semantics.graph import GraphResolver, bind_graph, infer_graph
from mlspec.semantics.imports import merge_imports
from mlspec.semantics.inputs import chain_input
from mlspec.semantics.model import check_layer_count, infer_shapes
from mlspec.semantics.names import bind_names
from mlspec.semantics.outputs import check_fit
from mlspec.semantics.overrides import apply_overrides
from mlspec.semantics.program import ModelProgram, Program
from mlspec.semantics.scope import Scope
from mlspec.semantics.train import TrainSection, resolve_train
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, SpecError
from mlspec.syntax.limits import NAME


def resolve(spec: ir.Spec, overrides: Mapping[str, Any] | None = None) -> Program:
    """Validates a spec and returns its typed program; raises SpecError listing every
    mistake found. A `sweep` section is left to `mlspec.semantics.sweep.expand`, which resolves
    every member."""
    try:
        return _resolve(spec, overrides)
    except RecursionError:
        raise SpecError.at(None, "a value or block is nested too deeply to resolve") from None


def _resolve(spec: ir.Spec, overrides: Mapping[str, Any] | None) -> Program:
    spec = apply_overrides(merge_imports(spec), overrides)
    _require_model(spec)
    state = Resolution(spec=spec, errors=ErrorCollector(),
                       folder=Path(spec.path).parent if spec.path else Path.cwd())
    for run_pass in PASSES:
        run_pass(state)
    state.errors.raise_if_any()
    program = Program(
        model=ModelProgram(name=spec.model.name, input_shape=state.input_shape,
                           layers=state.layers, output_shape=state.output_shape,
                           inputs=state.inputs, graph=state.graph,
                           output_shapes=state.output_shapes, span=spec.model.span),
        data=state.data, train=state.train, spec=spec,
    )
    _refuse_if_too_big(program)
    return program


@dataclass
class Resolution:
    """What the passes have built so far; each pass reads what earlier ones left."""

    spec: ir.Spec
    errors: ErrorCollector
    folder: Path
    """Where the spec's relative data paths start."""
    scope: Scope | None = None
    data: DataSection | None = None
    data_failed: bool = False
    input_shape: tuple[int, ...] | None = None
    layers: tuple = ()
    output_shape: tuple[int, ...] | None = None
    inputs: tuple = ()
    """A graph model's inputs (ModelInput)."""
    graph: Graph | None = None
    output_shapes: tuple = ()
    """A graph model's outputs with their shapes."""
    train: TrainSection | None = None


def _require_model(spec: ir.Spec) -> None:
    if spec.model is None:
        library = not spec.sections() and spec.params + spec.blocks
        raise SpecError.at(None, f"{spec.path + ': ' if spec.path else ''}the spec has no "
                                 "model" + (
            " (with only params and blocks, it is a library for `import`, which `mlspec "
            "check` checks)" if library else ""))
    if not NAME.fullmatch(spec.model.name):  # it names the run's folder: no path
        raise SpecError.at(spec.model.span, f"the model's name {spec.model.name[:40]!r} is not "
                                            "a name (letters, digits and _)")


def check_names(state: Resolution) -> None:
    _check_unique(state.spec, state.errors)


def evaluate_params(state: Resolution) -> None:
    state.scope = Scope({p.name: p for p in state.spec.params})


def inspect_data(state: Resolution) -> None:
    if state.spec.data is not None:
        try:
            state.data = resolve_data(state.spec.data, state.scope, state.folder)
        except SpecError as exc:
            state.errors.extend(exc)
            state.data_failed = True


def bind_model(state: Resolution) -> None:
    model = state.spec.model
    if model.graph is not None:
        bind_graph(state)
        state.graph = vocabulary_graph(state.graph, state.inputs, state.errors)
        return
    before = len(state.errors.diagnostics)
    model = chain_input(model, state.errors)
    refused = len(state.errors.diagnostics) > before  # its input lines: said once
    if not refused and not (state.data_failed and model.input is None):
        state.input_shape = _input_shape(model, state.scope, state.data, state.errors)
    resolver = GraphResolver({b.name: b for b in state.spec.blocks}, state.scope, state.errors)
    state.layers = resolver.model_layers(model.layers)
    if state.data is not None:
        state.layers = typed_input_layers(state.layers, state.data.info, state.errors)


def infer_model_shapes(state: Resolution) -> None:
    if state.spec.model.graph is not None:
        infer_graph(state)
    elif state.input_shape is not None and not state.errors.diagnostics \
            and check_layer_count(state.layers, state.spec.model.span, state.errors):
        state.output_shape = infer_shapes(state.layers, state.input_shape, state.errors)


def bind_train(state: Resolution) -> None:
    if state.spec.train is not None:
        try:
            state.train = resolve_train(state.spec.train, state.scope)
        except SpecError as exc:
            state.errors.extend(exc)


def check_task_fit(state: Resolution) -> None:
    check_fit(state)  # mlspec.semantics.outputs: one output, or each of several


def check_unused_blocks(state: Resolution) -> None:
    """The spec's own blocks that the model does not use, checked on their own: a mistake
    in one is found now, not when it is first used (an imported library's blocks are
    checked with the library)."""
    blocks = {b.name: b for b in state.spec.blocks}
    used = used_blocks(state.spec.model, blocks)
    unused = [b.name for b in state.spec.blocks if b.name not in used
              and (b.span is None or b.span.file == (state.spec.path or b.span.file))]
    if unused:
        check_alone(unused, blocks, state.scope, state.errors)


PASSES = (check_names, evaluate_params, inspect_data, bind_names, bind_model,
          infer_model_shapes, bind_train, check_task_fit, check_unused_blocks)
"""The passes in the order they run; each reads the Resolution that earlier ones built."""


def _refuse_if_too_big(program: Program) -> None:
    """Members (seeds) and the memory the run needs, against what a run may have."""
    spec, train = program.spec, program.train
    seeds = spec.train.get("seeds") if spec.train else None
    seeds_span = seeds.value.span or seeds.span if seeds else None
    if train is not None and train.seeds > MAX_MEMBERS:
        raise SpecError.at(seeds_span, f"seeds = {train.seeds:,} makes more members than a "
                                       f"run may have ({MAX_MEMBERS:,})")
    refuse_if_too_big(program_needs(program, spec.train), train.seeds if train else 1,
                      seeds_span)


def _check_unique(spec: ir.Spec, errors: ErrorCollector) -> None:
    seen: dict[str, ir.Node] = {}
    for item in (*spec.params, *spec.blocks):
        if item.name in seen:
            errors.add(item.span, f"'{item.name}' is defined twice")
        seen[item.name] = item
        if item.name in LAYERS and isinstance(item, ir.Block):
            errors.add(item.span, f"block '{item.name}' has the name of a layer")
    for block in spec.blocks:
        names: set[str] = set()
        for param in block.params:
            if param.name in names:
                errors.add(param.span or block.span, f"block '{block.name}' has two "
                                                     f"parameters named '{param.name}'")
            names.add(param.name)


def _input_shape(model: ir.Model, scope: Scope, data: DataSection | None,
                 errors: ErrorCollector) -> tuple[int, ...] | None:
    inputs = data.info.inputs if data is not None else ()
    if len(inputs) > 1 and model.graph is None:
        errors.add(model.span, f"this data has the inputs "
                               f"{', '.join(i.name for i in inputs)}; a chain takes one "
                               "input, so write a graph model")
        return None
    if model.input is not None:
        shape = settle(scope.evaluate(model.input), tuple[int, ...], scope)
        if not (isinstance(shape, tuple) and shape and all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            errors.add(model.input.span, "input should be a list of positive integers, "
                                         "such as input [28, 28, 1]")
            return None
        if data is not None and shape != data.info.features:
            errors.add(model.input.span, f"input {list(shape)} does not match the data's "
                                         f"features {list(data.info.features)}")
        return shape
    if data is None:
        errors.add(model.span, "the model needs an input shape: add a data section or a "
                               "first line such as input [2]")
        return None
    return data.info.features
