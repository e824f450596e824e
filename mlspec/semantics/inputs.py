"""The inputs of a model (LANGUAGE.md v2, "Graph models"): those the data gives (`x`, its
numeric features), or the `input NAME TYPE` lines of a model without data: a shape of
floats (`input x [8]`), `tokens(length, vocab=N)` or `category(vocab=N)`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from mlspec.catalog.registry import Entry, Registry, instantiate
from mlspec.catalog.signature import settle
from mlspec.semantics.program import ModelInput
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, SpecError


class InputType(Entry):
    """The type of an `input NAME TYPE` line that is no shape."""

    def model_input(self, name: str) -> ModelInput:
        raise NotImplementedError


class Tokens(InputType):
    """`tokens(length, vocab=N)`: a sequence of `length` token ids below `vocab`."""

    kind: Literal["tokens"] = "tokens"
    length: PositiveInt
    vocab: PositiveInt

    def model_input(self, name):
        return ModelInput(name=name, shape=(self.length,), dtype="int32", vocab=self.vocab)


class Category(InputType):
    """`category(vocab=N)`: one id below `vocab` per example."""

    kind: Literal["category"] = "category"
    vocab: PositiveInt

    def model_input(self, name):
        return ModelInput(name=name, shape=(), dtype="int32", vocab=self.vocab)


INPUT_TYPES: Registry[type[InputType]] = Registry("input type")
INPUT_TYPES.register(Tokens)
INPUT_TYPES.register(Category)


def data_inputs(data) -> dict[str, ModelInput]:
    """The inputs the data gives a model, by name: `x` (its numeric features) and one per
    categorical or text column."""
    return {i.name: ModelInput(name=i.name, shape=tuple(i.shape),
                               dtype="float32" if i.kind == "float" else "int32",
                               vocab=i.vocab)
            for i in data.info.inputs}


def declared_input(decl: ir.InputDecl, scope: Scope) -> ModelInput:
    if isinstance(decl.type, ir.ListExpr):
        shape = settle(scope.evaluate(decl.type), tuple[int, ...], scope)
        if not (isinstance(shape, tuple) and shape and all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            raise SpecError.at(decl.type.span, f"the shape of input '{decl.name}' should be a "
                                               "list of positive integers, such as [8]")
        return ModelInput(name=decl.name, shape=shape)
    if not isinstance(decl.type, (ir.Name, ir.Call)):
        raise SpecError.at(decl.type.span, f"input '{decl.name}' takes a shape ([8]), "
                                           "tokens(length, vocab=N) or category(vocab=N)")
    return instantiate(INPUT_TYPES, decl.type, scope).model_input(decl.name)


def model_inputs(model: ir.Model, scope: Scope, data, errors: ErrorCollector
                 ) -> dict[str, ModelInput] | None:
    """The graph model's inputs: the data's (which `input` lines must match), or its
    `input` lines where there is no data."""
    if model.input is not None:
        errors.add(model.input.span, "a graph model names its inputs: input x [8]")
    declared: dict[str, ModelInput] = {}
    for decl in model.inputs:
        if decl.name in declared:
            errors.add(decl.span, f"input '{decl.name}' is declared twice")
            continue
        try:
            declared[decl.name] = declared_input(decl, scope)
        except SpecError as exc:
            errors.extend(exc)
    if data is None:
        if not model.inputs:
            errors.add(model.span, f"graph model '{model.name}' needs its inputs: add a "
                                   "data section or lines such as input x [8]")
            return None
        return declared if len(declared) == len(model.inputs) else None
    found = data_inputs(data)
    for decl in model.inputs:
        given = declared.get(decl.name)
        if decl.name not in found:
            errors.add(decl.span, f"the data has no input '{decl.name}' (its inputs: "
                                  f"{', '.join(found)})")
        elif given is not None and given != found[decl.name]:
            errors.add(decl.span, f"input '{decl.name}' is declared {list(given.shape)}"
                                  f" but the data's is {list(found[decl.name].shape)}")
    return found


def chain_input(model: ir.Model, errors: ErrorCollector) -> ir.Model:
    """A v1 chain may name its one input (`input x [8]`): it is the chain's input."""
    if not model.inputs or model.input is not None:
        if model.inputs:
            errors.add(model.inputs[0].span, "the model has an input shape already")
        return model
    first = model.inputs[0]
    if len(model.inputs) > 1 or not isinstance(first.type, ir.ListExpr):
        errors.add(first.span, "a chain model takes one input of floats (input x [8]); "
                               "several or typed inputs need a graph model")
        return model
    return model.model_copy(update={"input": first.type})
