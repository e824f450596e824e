"""Blocks checked on their own, as far as their text tells: for a library (nothing uses
its blocks there) and for the blocks a model does not use (nothing else would look at
them). Every layer or block a body names must exist and take the arguments given, every
name must mean something, and no block may use itself. Values that depend on an argument
without a default (or on `classes`) and shapes are checked where a block is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from mlspec.semantics.graph import GraphResolver
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, SpecError


def layer_calls(layers: Iterable[ir.LayerCall]) -> Iterator[ir.LayerCall]:
    """Every layer call of a body, those inside composite bodies too."""
    for call in layers:
        yield call
        if call.body:
            yield from layer_calls(call.body)


def body_calls(item: ir.Model | ir.Block) -> list[ir.LayerCall]:
    """The layers a model's or a block's body holds: its chain's, or its graph's."""
    calls = list(getattr(item, "layers", ())) + list(getattr(item, "body", ()))
    for statement in item.graph or ():
        calls.extend((statement.layer,) if isinstance(statement, ir.Share)
                     else statement.value.layers)
    return calls


def used_blocks(model: ir.Model | None, blocks: Mapping[str, ir.Block]) -> set[str]:
    """The blocks that the model uses, directly or through other blocks."""
    used: set[str] = set()
    stack = [c.name for c in layer_calls(body_calls(model) if model is not None else ())]
    while stack:
        name = stack.pop()
        if name in blocks and name not in used:
            used.add(name)
            stack.extend(c.name for c in layer_calls(body_calls(blocks[name])))
    return used


def check_cycles(names: Iterable[str], blocks: Mapping[str, ir.Block],
                 errors: ErrorCollector) -> None:
    """`block 'a' uses itself (a -> b -> a)`, at the use that closes the loop, for each
    block of `names` on a loop of uses (each loop reported once)."""
    reported: set[frozenset[str]] = set()

    def visit(name: str, chain: list[str]) -> None:
        for call in layer_calls(body_calls(blocks[name])):
            if call.name not in blocks:
                continue
            if call.name in chain:
                loop = chain[chain.index(call.name):]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    errors.add(call.span, f"block '{call.name}' uses itself "
                                          f"({' -> '.join([*loop, call.name])})")
            elif len(chain) < len(blocks):
                visit(call.name, [*chain, call.name])

    for name in names:
        visit(name, [name])


def check_alone(names: Iterable[str], blocks: Mapping[str, ir.Block], scope: Scope,
                errors: ErrorCollector) -> None:
    """The blocks `names`, each body checked with its defaults known and its other
    arguments standing for themselves (they hide a param of their name, as when used)."""
    names = list(names)
    loops = ErrorCollector()
    check_cycles(names, blocks, loops)
    if loops.diagnostics:  # a loop would be followed forever below
        errors.diagnostics += loops.diagnostics
        return
    resolver = GraphResolver(dict(blocks), scope, errors, expand=False)
    for name in names:
        block = blocks[name]
        known = {}
        for p in block.params:
            if p.default is not None:
                try:
                    known[p.name] = scope.evaluate(p.default)
                except SpecError as exc:
                    errors.extend(exc)
        unknown = {p.name for p in block.params if p.name not in known}
        if block.graph is not None:
            resolver.graph(block.graph, {"in": block.span}, scope.child(known, unknown),
                           block=block)
        else:
            resolver.layers(block.body, scope.child(known, unknown))
