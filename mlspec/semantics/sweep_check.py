"""`check` of a sweep without resolving every member (a sweep may have 100,000): the
axes are split into sets that cannot meet in any check (they change different parts of the
spec, and no shape or size), each checked value by value, and the rest, whose combinations
are checked together (`validate`)."""

from __future__ import annotations

import collections
import itertools
import math
from typing import Any

from mlspec.semantics.budget import memory_limit, program_needs, refuse_if_too_big
from mlspec.semantics.grid import Axis, Grid, text
from mlspec.semantics.overrides import _argument_names
from mlspec.semantics.program import Program
from mlspec.semantics.structure import structure
from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, Span, SpecError
from mlspec.syntax.printer import format_expr


def validate(grid: Grid) -> None:
    """Raises a SpecError for every mistake that any member of the grid would have.

    Axes that touch a common part of the spec (a layer or the blocks it uses, the data, a
    train setting, or what reads the data's `classes`) form one set; each combination of
    a set's values is resolved with the other axes at the spec's own values, which are
    valid (the spec without its sweep resolved). A set whose every combination leaves the
    structure and size of the program as they were (learning rates, seeds, loss weights,
    dropout rates) meets no other set in any check, so that is all it needs. The sets
    that change shapes or sizes meet in the shape and memory checks: the combinations of
    their values are resolved together."""
    attempt = grid.attempt
    reference = attempt({})
    if isinstance(reference, SpecError):
        raise reference
    own = _fingerprint(reference)
    errors: list[Diagnostic] = []
    shaping: list[list[dict[str, ir.Expr]]] = []  # per set: its valid combinations
    for members in _independent_sets(grid.base, grid.axes):
        axes = [grid.axes[i] for i in members]
        values = [_checked_values(axis, len(axes) == 1) for axis in axes]
        valid, failed, changes = [], [], False
        for combo in itertools.product(*values):
            chosen = {axis.path: value for axis, value in zip(axes, combo)}
            result = attempt(chosen)
            if isinstance(result, SpecError):
                failed.append((chosen, result))
                continue
            valid.append(chosen)
            changes = changes or _fingerprint(result) != own
        errors.extend(_set_errors(axes, values, failed, attempt))
        if changes:
            shaping.append(valid)
    combos = [{path: value for part in parts for path, value in part.items()}
              for parts in itertools.product(*shaping)]
    programs = []
    for chosen in combos:
        result = attempt(chosen)
        if isinstance(result, SpecError):
            errors.extend(_blame(result, chosen))
        programs.append(result)
    if errors:
        unique = dict.fromkeys((d.message, d.span) for d in errors)
        raise SpecError([Diagnostic(message=m, span=s) for m, s in unique])
    # a combination of the shaping values stands for every member that has them
    shaping_axes = [axis for axis in grid.axes if axis.path in combos[0]]
    counts = {axis.path: collections.Counter(text(v) for v in axis.values)
              for axis in shaping_axes}
    others = grid.count // math.prod(len(axis.values) for axis in shaping_axes)
    counted = [(program, others * math.prod(counts[path][text(value)]
                                            for path, value in chosen.items()))
               for program, chosen in zip(programs, combos)]
    _refuse_if_too_big(counted, grid.span, grid.train_section)


def _set_errors(axes: list[Axis], values: list[tuple[ir.Expr, ...]],
                failed: list[tuple[dict[str, ir.Expr], SpecError]], attempt) -> list[Diagnostic]:
    """The mistakes of a set's combinations that failed. A value that fails with every
    value of the other axes, and on its own (the others at the spec's values), is said of
    it alone, at its place in the sweep; any other failure names its combination (a
    value may be wrong at the spec's values and right with the swept ones)."""
    if len(axes) == 1:
        return [d for chosen, error in failed for d in _blame(error, chosen)]
    failures = collections.Counter((path, text(value)) for chosen, _ in failed
                                   for path, value in chosen.items())
    blamed, errors = set(), []
    for i, axis in enumerate(axes):
        with_each = math.prod(len(v) for j, v in enumerate(values) if j != i)
        for value in values[i]:
            key = (axis.path, text(value))
            if failures[key] < with_each:
                continue
            alone = attempt({axis.path: value})
            if isinstance(alone, SpecError):
                blamed.add(key)
                errors.extend(_blame(alone, {axis.path: value}))
    for chosen, error in failed:
        if not any((path, text(value)) in blamed for path, value in chosen.items()):
            errors.extend(_blame(error, chosen))
    return errors


def _checked_values(axis: Axis, alone: bool) -> tuple[ir.Expr, ...]:
    """The values of an axis to resolve: each distinct one, or for the consecutive seeds
    of `seeds = N`, alone in its set, the two ends (a seed is valid or not by its size)."""
    if axis.seeds and alone:
        return (axis.values[0], axis.values[-1])
    distinct: dict[str, ir.Expr] = {}
    for value in axis.values:
        distinct.setdefault(text(value), value)
    return tuple(distinct.values())


def _fingerprint(program: Program) -> tuple:
    """What a member shares with every member of the same compiled program and size: its
    structure, its memory needs, and the seeds it makes."""
    if program.train is None:
        return (program.model_dump_json(exclude={"spec"}), ())
    needs = tuple((n.what, n.nbytes, n.per_member) for n in program_needs(program))
    # a numeric optimizer argument that the spec leaves out and a sweep gives (`b1`)
    # changes no shape or size: left out here, so that such a set stays on its own
    optimizer = program.train.optimizer
    numeric = optimizer.numeric_arguments()
    optimizer = optimizer.model_copy(update={"arguments": {
        k: v for k, v in optimizer.arguments.items() if k not in numeric}})
    program = program.model_copy(update={"train": program.train.model_copy(
        update={"optimizer": optimizer})})
    return (structure(program), needs, program.train.seeds)


def _blame(error: SpecError, chosen: dict[str, ir.Expr]) -> list[Diagnostic]:
    """The mistakes of one combination, said of it: a mistake that one swept value makes
    is reported at that value in the sweep (saying where it went wrong); one that takes
    several values names them all."""
    blamed = []
    for d in error.diagnostics:
        if len(chosen) == 1:
            (path, value), = chosen.items()
            if value.span is None or _inside(d.span, value.span):
                blamed.append(Diagnostic(message=f"{path} = {format_expr(value)}: "
                                                 f"{d.message}", span=d.span or value.span))
                continue
            where = f" (at {_place(d.span, value.span)})" if d.span else ""
            blamed.append(Diagnostic(message=f"{path} = {format_expr(value)}: {d.message}"
                                             f"{where}", span=value.span))
        else:
            with_ = ", ".join(f"{path} = {format_expr(value)}" for path, value in chosen.items())
            blamed.append(Diagnostic(message=f"with {with_}: {d.message}", span=d.span))
    return blamed


def _inside(span: Span | None, outer: Span) -> bool:
    return span is not None and span.file == outer.file \
        and (outer.line, outer.column) <= (span.line, span.column) \
        and (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)


def _place(span: Span, other: Span) -> str:
    place = f"line {span.line}, column {span.column}"
    return place if span.file == other.file else f"{span.file}, {place}"


# ----------------------------------------------------------- which axes can meet


def _mentions(node: Any) -> set[str]:
    """Every name that a node's values and layers mention (params, blocks, calls)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, ir.Node):
            if isinstance(item, (ir.Name, ir.Call, ir.LayerCall)):
                found.add(item.name)
            stack.extend(v for k, v in item.__dict__.items() if k != "span")
    return found


class _Reads:
    """The names that each part of a spec reads, through its params and blocks. The
    parts resolve on their own: the model's input, each of its layers, the data, each
    train setting; `classes` stands for the data's classes."""

    def __init__(self, spec: ir.Spec):
        self.direct: dict[str, set[str]] = {p.name: _mentions(p.value) for p in spec.params}
        for block in spec.blocks:
            self.direct[block.name] = self.direct.get(block.name, set()) | _mentions(block)
        self.full: dict[str, set[str]] = {}
        for name in self.direct:
            self.full[name] = self.closure(self.direct[name])
        self.parts: dict[str, set[str]] = {}
        model = spec.model
        if model is not None and model.input is not None:
            self.parts["model.input"] = self.closure(_mentions(model.input))
        for i, layer in enumerate(model.layers if model is not None else ()):
            self.parts[f"layer {i}"] = self.closure(_mentions(layer))
        for i, part in enumerate((*model.inputs, *(model.graph or ())) if model else ()):
            self.parts[f"graph line {i}"] = self.closure(_mentions(part))
        if spec.data is not None:
            self.parts["data"] = self.closure(_mentions(spec.data))
        for setting in spec.train.settings if spec.train else ():
            for part, node in _train_parts(setting):
                self.parts[part] = self.closure(_mentions(node))

    def closure(self, names: set[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self.full:
                seen |= self.full[name]
            else:
                stack.extend(self.direct.get(name, ()))
        return seen


def _train_parts(setting: ir.Setting) -> list[tuple[str, Any]]:
    """A train setting's parts: the optimizer call's each argument on its own (optax's
    arguments are checked one by one, so `b1` and `learning_rate` never meet), with its
    name as `train.optimizer`; any other setting whole."""
    path, value = f"train.{setting.path}", setting.value
    known = _argument_names(value, "train") if setting.path == "optimizer" \
        and isinstance(value, ir.Call) and value.has_arguments else None
    if known is None:
        return [(path, value)]
    return [(path, value.model_copy(update={"args": (), "kwargs": ()})),
            *((f"{path}.{name}", arg) for name, arg in zip(known[1], value.args)),
            *((f"{path}.{kw.name}", kw.value) for kw in value.kwargs)]


def _meet(one: set[str], other: set[str]) -> bool:
    """Whether two sets of parts share one: `train.optimizer` (the whole call) holds
    `train.optimizer.b1`."""
    return any(a == b or a.startswith(b + ".") or b.startswith(a + ".")
               for a in one for b in other)


def _independent_sets(spec: ir.Spec, axes: list[Axis]) -> list[list[int]]:
    """The axes (by index) in sets such that no two sets touch a common part of the spec,
    nor read each other's params in their values."""
    reads = _Reads(spec)
    touched: list[set[str]] = []
    read: list[set[str]] = []
    for axis in axes:
        section, _, rest = axis.path.partition(".")
        if not rest:  # a param: every part that reads it
            parts = {part for part, names in reads.parts.items() if axis.path in names}
        elif section == "data":
            parts = {"data"}
        else:  # a train setting, or one argument of the optimizer call
            words = rest.split(".")
            parts = {"train." + ".".join(words[:2] if words[0] == "optimizer" else words[:1])}
        names = reads.closure(set().union(*(_mentions(value) for value in axis.values)))
        if "classes" in names or any("classes" in reading for part, reading
                                     in reads.parts.items() if _meet({part}, parts)):
            parts.add("data")  # what reads the classes reads the data
        touched.append(parts)
        read.append(names)
    owner = list(range(len(axes)))

    def find(i: int) -> int:
        while owner[i] != i:
            owner[i] = owner[owner[i]]
            i = owner[i]
        return i

    for i, j in itertools.combinations(range(len(axes)), 2):
        if _meet(touched[i], touched[j]) or axes[j].path in read[i] or axes[i].path in read[j]:
            owner[find(i)] = find(j)
    sets: dict[int, list[int]] = {}
    for i in range(len(axes)):
        sets.setdefault(find(i), []).append(i)
    return list(sets.values())


# ---------------------------------------------------------------- groups and sizes


def _refuse_if_too_big(programs: list[tuple[Program, int]], span, train_section) -> None:
    """Members that train together (one group) are in memory at once: the largest group
    must fit. `programs`: each distinct program, with how many members it stands for.
    Grouping is skipped when all the members together would fit."""
    if programs[0][0].train is None:  # nothing trains: each member was checked alone
        return
    needs = [program_needs(program, train_section) for program, _ in programs]
    if sum(k * n.nbytes for (_, k), each in zip(programs, needs) for n in each) \
            <= memory_limit():
        return
    found: dict[str, tuple[int, list]] = {}
    for (program, k), each in zip(programs, needs):
        size, largest = found.get(structure(program), (0, each))
        if sum(n.nbytes for n in each) > sum(n.nbytes for n in largest):
            largest = each
        found[structure(program)] = (size + k, largest)
    for size, largest in found.values():
        refuse_if_too_big(largest, size, span)
