"""What may differ between the members of one compiled program, declared on the field.

A numeric field marked `Traced()` is not a constant of the program that the compiler
builds: its value is fed to the program (in the training state, one value per member of a
sweep, vmapped), so members that differ only in such values train as one program:

    class LeakyRelu(Activation):
        kind: Literal["leaky_relu"] = "leaky_relu"
        slope: Annotated[NonNegativeFloat, Traced()] = 0.01

    class Huber(Loss):
        kind: Literal["huber"] = "huber"
        delta: Annotated[PositiveFloat, Traced()] = 1.0

Inside a program the entry's code reads the field as always (`self.slope`); there it holds
a traced scalar, so the code must use it as jax values are used (in arithmetic, not in a
Python `if`). Everything here is derived from the declarations: the values a program is
fed (`traced_values`, as the training state holds them: one flat list per name, in the
order of a walk of the program), how many each node holds (`count`), the entry as the
program sees it (`bind`), and the part of a program that must be equal for members to
share one compiled program (`untraced`). Nothing here imports jax.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Traced:
    """Marks a field whose value may differ between the members of one compiled program.

    Attributes:
        fed: the name of the entry's method that gives what the program is fed in place
            of the field, when its arithmetic needs another form computed on the host, in
            double precision, as a constant would be (dropout is fed its keep probability
            `1 - rate`). Inside a program that method returns the fed value.
        saved_as: the name of the values in the training state (and so in a run folder's
            state); by default `<kind>_<fed or field>`, such as `leaky_relu_slope`.
    """

    fed: str | None = None
    saved_as: str | None = None


@dataclass(frozen=True)
class TracedField:
    """One traced field of a node type: where it is fed from and under which name."""

    field: str
    attribute: str
    """The field, or the method that gives its fed form (`Traced.fed`)."""
    name: str
    """The state's name for the values of this field over a program."""
    fed: bool

    def host_value(self, node: Any) -> float:
        value = getattr(node, self.attribute)
        return float(value() if self.fed else value)


@functools.cache
def traced_fields(cls: type) -> tuple[TracedField, ...]:
    """The fields of a node type marked Traced, in field order."""
    fields = getattr(cls, "model_fields", {})
    found = []
    for name, info in fields.items():
        marker = next((m for m in info.metadata if isinstance(m, Traced)), None)
        if marker is None:
            continue
        attribute = marker.fed or name
        saved = marker.saved_as
        if saved is None:
            kind = fields["kind"].default if "kind" in fields else None
            if not isinstance(kind, str):
                raise TypeError(f"{cls.__name__}.{name} is traced but its type has no "
                                "kind to name it by: give Traced(saved_as=...)")
            saved = f"{kind}_{attribute}"
        found.append(TracedField(name, attribute, saved, marker.fed is not None))
    return tuple(found)


def _children(node: Any) -> Iterator[Any]:
    """The nodes that a value holds, in field order (fields excluded from dumps, such as
    spans and a program's source spec, are no part of it)."""
    if isinstance(node, BaseModel):
        for name, info in type(node).model_fields.items():
            if not info.exclude:
                yield from _children_of(getattr(node, name))


def _children_of(value: Any) -> Iterator[Any]:
    if isinstance(value, BaseModel):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _children_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _children_of(item)


def _walk(node: Any) -> Iterator[Any]:
    """The node and every node under it, depth first in field order: the order in which
    the state lists traced values. A composite's body is walked once (its copies share
    their values)."""
    yield node
    for child in _children(node):
        yield from _walk(child)


def traced_values(node: Any) -> dict[str, list[float]]:
    """The values that a program built from `node` is fed, by name, each list in walk
    order. Only names that occur are present."""
    values: dict[str, list[float]] = {}
    for item in _walk(node):
        for traced in traced_fields(type(item)):
            values.setdefault(traced.name, []).append(traced.host_value(item))
    return values


def count(node: Any) -> Counter[str]:
    """How many values of each name `node` and the nodes under it are fed."""
    return Counter(t.name for item in _walk(node) for t in traced_fields(type(item)))


def own_count(node: Any) -> Counter[str]:
    """How many values of each name the node itself is fed (not the nodes under it)."""
    return Counter(t.name for t in traced_fields(type(node)))


def bind(node: Any, traced: Mapping[str, Any] | None, start: Mapping[str, int]) -> Any:
    """The node as a program sees it: each of its own traced fields replaced by its value
    in `traced` (the arrays of the state, by name) at the position `start` gives for the
    name; for a field fed in another form, the method that gives it returns the value.
    With `traced` None, the node as it is (its values are constants of the program)."""
    fields = traced_fields(type(node))
    if traced is None or not fields:
        return node
    update = {t.field: traced[t.name][start.get(t.name, 0)] for t in fields if not t.fed}
    bound = node.model_copy(update=update)
    for t in fields:
        if t.fed:  # an instance attribute in front of the method, in this copy only
            bound.__dict__[t.attribute] = functools.partial(_given, traced[t.name][
                start.get(t.name, 0)])
    return bound


def _given(value: Any) -> Any:
    return value


def bind_tree(value: Any, traced: Mapping[str, Any] | None,
              start: Counter[str] | None = None) -> Any:
    """`bind` of every node in a value (a node, or nodes in tuples, lists and dicts) and
    of every node under them, positions counted in walk order from `start` (which is
    advanced past them). With `traced` None, the value as it is."""
    if traced is None:
        return value
    start = Counter() if start is None else start
    if isinstance(value, BaseModel):
        bound = bind(value, traced, start)
        start.update(own_count(value))
        update = {name: bind_tree(getattr(value, name), traced, start)
                  for name, info in type(value).model_fields.items()
                  if not info.exclude and any(True for _ in _children_of(getattr(value, name)))}
        return bound.model_copy(update=update) if update else bound
    if isinstance(value, (tuple, list)):
        return type(value)(bind_tree(item, traced, start) for item in value)
    if isinstance(value, dict):
        return {k: bind_tree(item, traced, start) for k, item in value.items()}
    return value


def declared_names(classes) -> tuple[str, ...]:
    """The names of the traced values that node types declare, each once, in order."""
    return tuple(dict.fromkeys(t.name for cls in classes for t in traced_fields(cls)))


def untraced(value: Any) -> Any:
    """A value as plain data with every traced field left out (as None): what must be
    equal for two programs to share one compiled program, as far as traced fields go.
    Nodes are written with their type's name, so that nodes of two types never meet."""
    if isinstance(value, (str, int, float, type(None))):
        return value
    if isinstance(value, BaseModel):
        cls = type(value)
        out: dict[str, Any] = {"__type__": cls.__name__}
        for name, traced in _shown_fields(cls):
            out[name] = None if traced else untraced(getattr(value, name))
        return out
    if isinstance(value, (tuple, list)):
        return [untraced(item) for item in value]
    if isinstance(value, dict):
        return {str(k): untraced(item) for k, item in value.items()}
    return value


@functools.cache
def _shown_fields(cls: type) -> tuple[tuple[str, bool], ...]:
    """A node type's fields that are part of its value (not excluded from dumps), each
    with whether it is traced."""
    skipped = {t.field for t in traced_fields(cls)}
    return tuple((name, name in skipped) for name, info in cls.model_fields.items()
                 if not info.exclude)
