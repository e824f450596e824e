"""Which members of a sweep share one compiled program: those whose programs are equal but
in what the programs are fed rather than built from."""

from __future__ import annotations

import json
from typing import Any

from mlspec.catalog.traced import untraced
from mlspec.semantics.program import Program


def structure(program: Program) -> str:
    """What must be equal for members to share one compiled program: the program but its
    traced fields (those marked `Traced`: loss weights, dropout rates, ...), the seed (its
    keys are made outside every program) and the optimizer's numeric hyperparameters
    (`OptaxCall.build_injected` puts them in the optimizer's state). A numeric argument
    is left out by value, not by name: an optimizer given `b1` and one that is not stay
    apart, as their states differ."""
    train = program.train
    if train is not None:
        optimizer = train.optimizer
        numeric = optimizer.numeric_arguments()
        optimizer = optimizer.model_copy(update={"arguments": {
            k: None if k in numeric else v for k, v in optimizer.arguments.items()}})
        program = program.model_copy(update={"train": train.model_copy(
            update={"seed": 0, "seeds": 1, "optimizer": optimizer})})
    shape = untraced(program)
    shape.pop("spec", None)  # the text as written differs member by member
    return json.dumps(shape, sort_keys=True, default=repr)


def groups(members: list[Any]) -> list[list[Any]]:
    """Members (anything with a `program`) split into groups that share a compiled
    program, in first-seen order."""
    found: dict[str, list[Any]] = {}
    for member in members:
        found.setdefault(structure(member.program), []).append(member)
    return list(found.values())
