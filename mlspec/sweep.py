"""Many runs from one spec: `seeds = N` and the `sweep` grid.

Every combination of the swept values is a member. Members whose programs differ only in
values that keep every array shape (seeds, optimizer hyperparameters, loss weights, dropout
rates) form a group that trains as one compiled program, vmapped over their states; values
that change shapes (widths, depths, data) give one compiled program per distinct shape.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalog.registry import to_python
from .dsl import ir
from .dsl.budget import MAX_MEMBERS, memory_limit, program_needs, refuse_if_too_big
from .dsl.errors import SpecError
from .dsl.printer import format_expr
from .dsl.program import Program
from .dsl.resolve import apply_overrides, merge_imports, resolve


@dataclass(frozen=True)
class Member:
    """One combination: the swept settings (key -> value) and its validated program."""

    settings: dict[str, Any]
    program: Program


def _display(expr: ir.Expr) -> Any:
    value = to_python(expr)
    return value if isinstance(value, (int, float, str, bool)) else format_expr(expr)


def expand(spec: ir.Spec, overrides: Mapping[str, Any] | None = None) -> list[Member]:
    """The members of a spec: one without a sweep and `seeds = 1`, else the grid."""
    spec = apply_overrides(merge_imports(spec), overrides)
    sweep = spec.sweep
    base = spec.model_copy(update={"sweep": None})
    program = resolve(base)
    axes: list[tuple[str, list[ir.Expr]]] = []
    for setting in sweep.settings if sweep else ():
        values = setting.value.items if isinstance(setting.value, ir.ListExpr) \
            else (setting.value,)
        if not values:
            raise SpecError.at(setting.span, f"sweep '{setting.path}' has no values")
        try:
            apply_overrides(base, {setting.path: values[0]})
        except SpecError as exc:
            raise SpecError.at(setting.span, exc.diagnostics[0].message.replace(
                "--set: ", "sweep: ")) from None
        axes.append((setting.path, list(values)))
    seeds = program.train.seeds if program.train else 1
    swept_seeds = seeds > 1 and "train.seed" not in dict(axes)
    count = math.prod(len(values) for _, values in axes) * (seeds if swept_seeds else 1)
    if count > MAX_MEMBERS:  # counted before any is made
        raise SpecError.at(sweep.span if sweep else None, f"this sweep has {count:,} "
                           f"members; a run may have at most {MAX_MEMBERS:,}")
    if swept_seeds:
        first = program.train.seed
        axes.append(("train.seed", [ir.Number(value=first + i) for i in range(seeds)]))
    if not axes:
        return [Member(settings={}, program=program)]
    members = []
    errors = []
    for combo in itertools.product(*(values for _, values in axes)):
        chosen = {key: value for (key, _), value in zip(axes, combo)}
        if program.train is not None:
            chosen.setdefault("train.seeds", ir.Number(value=1))
        try:
            member_program = resolve(base, chosen)
        except SpecError as exc:
            errors.extend(exc.diagnostics)
            continue
        settings = {key: _display(value) for key, value in chosen.items()
                    if key != "train.seeds"}
        members.append(Member(settings=settings, program=member_program))
    if errors:
        raise SpecError(errors)
    _refuse_if_too_big(members, sweep.span if sweep else None, spec.train)
    return members


def _refuse_if_too_big(members: list[Member], span, train_section) -> None:
    """Members that train together (one group) are in memory at once: the largest group
    must fit. Grouping is skipped when all the members together would fit."""
    if members[0].program.train is None:  # nothing trains: each member was checked alone
        return
    needs = [program_needs(m.program, train_section) for m in members]
    if sum(n.nbytes for each in needs for n in each) <= memory_limit():
        return
    index = {id(m): i for i, m in enumerate(members)}
    for group in groups(members):
        group_needs = [needs[index[id(m)]] for m in group]
        largest = max(group_needs, key=lambda each: sum(n.nbytes for n in each))
        refuse_if_too_big(largest, len(group), span)


def structure(program: Program) -> str:
    """What must be equal for members to share one compiled program: everything but
    seeds, the optimizer's numeric hyperparameters, the loss weights and dropout rates."""
    data = program.model_dump(mode="json")
    train = data.get("train") or {}
    train["seed"] = train["seeds"] = None
    for name in program.train.optimizer.numeric_arguments():
        train["optimizer"]["arguments"][name] = None
    for term in train.get("loss", []):
        term["weight"] = None
    _forget_dropout_rates(data["model"]["layers"])
    return json.dumps(data, sort_keys=True)


def _forget_dropout_rates(layers: list[dict]) -> None:
    for layer in layers:
        if layer.get("kind") == "dropout":
            layer["rate"] = None
        _forget_dropout_rates(layer.get("body", []))


def groups(members: list[Member]) -> list[list[Member]]:
    """Members split into groups that share a compiled program, in first-seen order."""
    found: dict[str, list[Member]] = {}
    for member in members:
        found.setdefault(structure(member.program), []).append(member)
    return list(found.values())
