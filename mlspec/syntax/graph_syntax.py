"""The graph statements of a model or block body, text -> IR (LANGUAGE.md "Graph models").

A mixin of the parser's transformer: bindings (`h = x -> dense(8)`), outputs
(`output y = h -> dense(1)`), shares (`share enc = dense(16)`), the chains they hold, and
typed inputs (`input x [8]`); with the checks that only the text can make, each at its
place: a forgotten `=` (`h x -> dense(3)`, which the grammar reads as two more layers of
the chain above), a chain line among graph statements, and a reserved word bound.
"""

from __future__ import annotations

import re

from lark import Token, Transformer, v_args

from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError, source_line

# Words a graph line starts with, which no binding may name.
RESERVED = ("output", "share", "input")
STATEMENTS = "`NAME = chain`, `output NAME = chain` or `share NAME = layer`"
_NAME_AFTER = re.compile(r"[ \t]+[A-Za-z_]")


def token_span(token: Token, file: str, width: int | None = None) -> Span:
    width = len(str(token)) if width is None else width
    return Span(file=file, line=token.line, column=token.column, end_line=token.line,
                end_column=token.column + width)


def forgotten_equals(layer: ir.LayerCall) -> SpecError | None:
    """The error for `h x -> dense(3)` in a graph: a bare name that starts its line and
    is followed on it by another layer without `->` is a binding without its `=`; None
    for any other layer."""
    span = layer.span
    if span is None or layer.has_args_or_body:
        return None
    line = source_line(span.file, span.line) or ""
    if line[:span.column - 1].strip() or not _NAME_AFTER.match(line, span.end_column - 1):
        return None
    return SpecError.at(span, f"expected '=' after '{layer.name}': a binding is "
                              f"`{layer.name} = chain` (a layer that goes on with the chain "
                              "above follows '->')")


@v_args(meta=True)
class GraphToIR(Transformer):
    """Methods of the parser's transformer for graph bodies;
    the transformer gives them `file`, `_s` (a node's span) and `_split_arguments`."""

    file: str

    def _value(self, meta, name: Token, arguments) -> ir.Name | ir.Call:
        """A name or a call with arguments (`category(vocab=12)`, `concat(a, b)`)."""
        args, kwargs = self._split_arguments(arguments)
        if not (args or kwargs):
            return ir.Name(name=str(name), span=token_span(name, self.file))
        return ir.Call(name=str(name), args=args, kwargs=kwargs, span=self._s(meta))

    def input_kind(self, meta, children):
        return self._value(meta, *children)

    def input_decl(self, meta, children):
        _, name, kind = children
        return ir.InputDecl(name=str(name), type=kind, span=token_span(name, self.file))

    def chain_start(self, meta, children):
        return self._value(meta, *children)

    def chain(self, meta, children):
        start, *layers = children
        for layer in layers:
            if (error := forgotten_equals(layer)) is not None:
                raise error
        return ir.Chain(start=start, layers=tuple(layers), span=self._s(meta))

    def binding(self, meta, children):
        bind, chain = children
        name = str(bind).rstrip("= \t")
        span = token_span(bind, self.file, len(name))
        if name in RESERVED:
            what = {"output": "an output is `output NAME = chain`",
                    "share": "a shared layer is `share NAME = layer`",
                    "input": "an input is `input NAME [shape]` or `input NAME type(...)`"}
            raise SpecError.at(span, f"'{name}' is a reserved word here and needs a name "
                                     f"after it: {what[name]}")
        return ir.Binding(name=name, value=chain, span=span)

    def output_stmt(self, meta, children):
        _, name, chain = children
        return ir.Output(name=str(name), value=chain, span=token_span(name, self.file))

    def share_stmt(self, meta, children):
        _, name, layer = children
        return ir.Share(name=str(name), layer=layer, span=token_span(name, self.file))

    def late_input(self, meta, children):
        raise SpecError.at(token_span(children[0], self.file),
                           "the input lines stand first in a model, before its graph "
                           "statements (a graph block's input is `in`)")

    def graph(self, meta, children):
        return tuple(children)

    def _check_body(self, layers: tuple, graph: tuple | None) -> None:
        """Refuses a chain line before the graph statements of a body."""
        if graph is None or not layers:
            return
        error = forgotten_equals(layers[0])
        if error is None:
            error = SpecError.at(layers[0].span, "this chain line stands among graph "
                                                 f"statements: in a graph every line is "
                                                 f"{STATEMENTS} (a body is either a chain "
                                                 "of layers or a graph)")
        raise error

    def _check_inputs(self, shape: ir.ListExpr | None, decls: list,
                      graph: tuple | None) -> None:
        """Refuses `input [8]` beside named inputs, or in a graph (whose inputs have names)."""
        if shape is not None and decls:
            raise SpecError.at(decls[0].span, "a model has either one `input [shape]` line "
                                              "or named inputs (`input x [8]`), not both")
        if shape is not None and graph is not None:
            raise SpecError.at(shape.span, "a graph model names its inputs: "
                                           "`input x [8]`, `input x tokens(20, vocab=100)`")


def _in_body(stack: list) -> bool:
    """Whether the parser's stack is in a model's or block's body, outside any bracket
    (not in a section, where `output` may name a setting, nor in a layer's arguments)."""
    heads = [i for i, t in enumerate(stack)
             if isinstance(t, Token) and t.type in ("MODEL", "BLOCK")]
    return bool(heads) and not any(isinstance(t, Token) and t.type in ("LPAR", "LSQB")
                                   for t in stack[heads[-1]:])


def statement_hint(exc) -> tuple[str, Token] | None:
    """The message for a mistake right after `output NAME` or `share NAME` (the `=`
    forgotten: `output y h -> dense(1)`) and the token to place it at, from the parser's
    stack; None elsewhere."""
    stack = getattr(getattr(exc, "state", None), "value_stack", None) or []
    if not _in_body(stack):
        return None
    if len(stack) >= 2 and isinstance(stack[-1], Token) and stack[-1].type == "NAME" \
            and isinstance(stack[-2], Token) and stack[-2].type in ("OUTPUT", "SHARE"):
        name = str(stack[-1])
        shape = "chain" if stack[-2].type == "OUTPUT" else "layer"
        return (f"expected '=' after '{name}': `{stack[-2]} {name} = {shape}`", stack[-1])
    if stack and isinstance(stack[-1], Token) and stack[-1].type in ("OUTPUT", "SHARE"):
        shape = "chain" if stack[-1].type == "OUTPUT" else "layer"
        return (f"expected a name after '{stack[-1]}': `{stack[-1]} NAME = {shape}`",
                exc.token)
    return None
