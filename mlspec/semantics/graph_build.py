"""Graph models built from Python (LANGUAGE.md v2, "Graph models"), as the text writes them:

    >>> import mlspec
    >>> enc = mlspec.share("enc", mlspec.dense(8))
    >>> left = mlspec.binding("l", "a", enc)
    >>> right = mlspec.binding("r", "b", enc)
    >>> model = mlspec.model("siamese", enc, left, right,
    ...                      mlspec.output("y", mlspec.add(left, right), mlspec.dense(1)),
    ...                      inputs={"a": [4], "b": [4]})
    >>> print(mlspec.spec(model).to_text(), end="")
    model siamese {
        input a [4]
        input b [4]
        share enc = dense(8)
        l = a -> enc
        r = b -> enc
        output y = add(l, r) -> dense(1)
    }

A chain starts from a value, named by a string (an input) or by the statement that binds
it, or from a merge (`mlspec.concat(...)`, one function per merge of the catalogue, made
from its registry); its layers are what `mlspec.model` takes, and a `share` in a chain is
a use of that shared layer. `mlspec.model` and `mlspec.block` take these statements as
their body, so a built graph equals its parsed text.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from mlspec.semantics.builders import a_kind, check_entry_call, layers, value
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError
from mlspec.syntax.limits import NAME

__all__ = ["binding", "category", "identifier", "input_decls", "input_shape",
           "merge_function", "output", "share", "statements", "tokens"]

Statement = ir.Binding | ir.Output | ir.Share


def identifier(text: Any, what: str) -> str:
    """A name as the text writes it: letters, digits and _, not starting with a digit,
    and no keyword (`model`) or constant (`true`), so that `to_text()` parses back."""
    from mlspec.syntax.lexicon import lexicon

    words = lexicon()
    if not isinstance(text, str) or not NAME.fullmatch(text) \
            or text in words.keywords + words.constants:
        raise SpecError.at(None, f"{text!r} cannot name {what} (letters, digits and _, "
                                 "not starting with a digit, and no keyword)")
    return text


def input_shape(shape: Any) -> ir.ListExpr:
    """An input's shape per example, a list of positive integers."""
    if not (isinstance(shape, (list, tuple)) and shape and all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise SpecError.at(None, f"a model's input is a list of positive integers, the "
                                 f"shape of one example ([8, 8, 1]), not {shape!r}")
    return value(shape)


def _value_name(item: Any) -> ir.Name:
    """A value of a graph: an input's name, or the binding or output that names it."""
    if isinstance(item, (ir.Binding, ir.Output)):
        return ir.Name(name=item.name)
    if isinstance(item, str):
        return ir.Name(name=identifier(item, "a value"))
    raise SpecError.at(None, f"{a_kind(item)} cannot be a value of a graph (an input's "
                             "name, a binding or an output can)")


def _chain(start: Any, chain_layers: tuple) -> ir.Chain:
    if not (isinstance(start, ir.Call) and start.name in _merges()):
        start = _value_name(start)
    out: list[ir.LayerCall] = []
    for item in chain_layers:  # a share among them is a use of it
        out += [ir.LayerCall(name=item.name)] if isinstance(item, ir.Share) else layers([item])
    return ir.Chain(start=start, layers=tuple(out))


def binding(binding_name: str, start: Any, *chain: Any) -> ir.Binding:
    """`NAME = chain`: a value of a graph.

    Args:
        binding_name: the value's name.
        start: where the chain starts: an input's name, a binding or output, or a merge
            (`mlspec.concat("a", b)`).
        *chain: its layers, as `mlspec.model` takes them; a `share` is a use of it.

    Example:
        >>> h = mlspec.binding("h", mlspec.concat("x", "c"), mlspec.dense(64), "relu")
    """
    return ir.Binding(name=identifier(binding_name, "a binding"), value=_chain(start, chain))


def output(output_name: str, start: Any, *chain: Any) -> ir.Output:
    """`output NAME = chain`: an output of a graph model, as `binding` takes its chain.

    Example:
        >>> y = mlspec.output("y", "h", mlspec.dense(mlspec.classes))
    """
    return ir.Output(name=identifier(output_name, "an output"), value=_chain(start, chain))


def share(share_name: str, layer: Any) -> ir.Share:
    """`share NAME = layer`: one layer (or block) whose every use in a chain has the same
    weights; pass the share itself among a chain's layers to use it.

    Example:
        >>> enc = mlspec.share("enc", mlspec.dense(16))
        >>> left = mlspec.binding("l", "a", enc)
    """
    (built,) = layers([layer])
    return ir.Share(name=identifier(share_name, "a shared layer"), layer=built)


def tokens(length: int, vocab: int) -> ir.Call:
    """The type of an input of `length` token ids below `vocab`: `tokens(20, vocab=100)`."""
    return ir.Call(name="tokens", args=(value(length),),
                   kwargs=(ir.Keyword(name="vocab", value=value(vocab)),))


def category(vocab: int) -> ir.Call:
    """The type of an input of one id below `vocab`: `category(vocab=12)`."""
    return ir.Call(name="category", kwargs=(ir.Keyword(name="vocab", value=value(vocab)),))


def input_decls(inputs: Mapping[str, Any]) -> tuple[ir.InputDecl, ...]:
    """`input NAME TYPE` lines from {name: a shape such as [8], or `tokens(...)` or
    `category(...)`}."""
    if not isinstance(inputs, Mapping):
        raise SpecError.at(None, f"a model's inputs are a dict of names and types, not "
                                 f"{a_kind(inputs)}")
    decls = []
    for name, kind in inputs.items():
        if not isinstance(kind, ir.Call):
            kind = input_shape(kind)
        decls.append(ir.InputDecl(name=identifier(name, "an input"), type=kind))
    return tuple(decls)


def statements(body: tuple) -> tuple[Statement, ...] | None:
    """A body's graph statements, or None for a body of layers; a body that mixes them
    is an error."""
    found = [isinstance(item, (ir.Binding, ir.Output, ir.Share)) for item in body]
    if not any(found):
        return None
    if not all(found):
        item = body[found.index(False)]
        raise SpecError.at(None, f"{a_kind(item)} among graph statements: a body is either "
                                 "layers or bindings, outputs and shares")
    return tuple(body)


@functools.cache
def _merges():
    from mlspec.catalog.merges import MERGES

    return MERGES


@functools.cache
def merge_function(merge_name: str):
    """The builder of a merge of the catalogue (`mlspec.concat`), or None for a name that
    is none: its values (names, bindings, outputs) then its named arguments."""
    cls = _merges().get(merge_name) if merge_name in _merges() else None
    if cls is None:
        return None

    def build(*values: Any, **kwargs: Any) -> ir.Call:
        node = ir.Call(name=merge_name, args=tuple(_value_name(v) for v in values),
                       kwargs=tuple(ir.Keyword(name=k, value=value(v))
                                    for k, v in kwargs.items()))
        check_entry_call(cls, ir.LayerCall(name=merge_name, kwargs=node.kwargs), "merge")
        return node

    parameters = [inspect.Parameter("values", inspect.Parameter.VAR_POSITIONAL)] + [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY,
                          default=cls.model_fields[n].default)
        for n in cls.argument_names()]
    build.__name__ = build.__qualname__ = merge_name
    build.__module__ = "mlspec"
    build.__signature__ = inspect.Signature(parameters)
    build.__doc__ = (f"The merge `{merge_name}(a, b, ...)` of a graph model: "
                     f"{inspect.cleandoc(cls.__doc__ or '')}")
    return build
