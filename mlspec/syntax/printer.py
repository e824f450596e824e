"""Spec IR -> canonical .mlspec text.

One layout for every spec: imports, params, blocks, model, then the settings sections in
`ir.SECTION_NAMES` order (data, train, sweep); four-space indents; a layer with arguments
starts a line and the bare layers after it (`-> sigmoid`) follow on that line; `=`
aligned within a section and among the params. Numbers keep their spelling (`3e-3` stays
`3e-3`). Comments are kept: each is printed before the first item that starts after it,
or at the end of the line it ended.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

# The printer reads nodes by their `kind`, so the IR can print itself (Spec.to_text)
# without the two modules importing each other.
if TYPE_CHECKING:
    from mlspec.syntax import ir

INDENT = "    "
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def format_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if value != 0 and abs(value) < 1e-3:  # 1e-4 reads better than 0.0001
        text = next(t for p in range(17) if float(t := f"{value:.{p}e}") == value)
    if "e" in text:  # 1e-05 -> 1e-5, 2e+20 -> 2e20
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else ""
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


# A number literal of the grammar (grammars/mlspec.lark), with the sign of a negative one.
_LITERAL = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


def _spelled(number: ir.Number) -> str:
    """A number as its author wrote it (`3e-3`, `0.010`), where that text is a literal
    that still reads as the node's value; else in canonical form."""
    text = number.text
    if text is not None and _LITERAL.fullmatch(text):
        value = float(text) if any(c in text for c in ".eE") else int(text)
        if value == number.value and type(value) is type(number.value):
            return text
    return format_number(number.value)


def format_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _arguments(args: tuple, kwargs: tuple) -> str:
    parts = [format_expr(a) for a in args] + [f"{k.name}={format_expr(k.value)}" for k in kwargs]
    return f"({', '.join(parts)})"


def format_expr(expr: ir.Expr, precedence: int = 0) -> str:
    """One value in canonical form."""
    return _EXPR[expr.kind](expr, precedence)


def _format_call(call: ir.Call, _: int) -> str:
    return call.name + (_arguments(call.args, call.kwargs) if call.has_arguments else "")


def _format_binop(node: ir.BinOp, precedence: int) -> str:
    own = _PRECEDENCE[node.op]
    # Left-associative: the right operand needs parentheses at equal precedence.
    text = f"{format_expr(node.left, own)} {node.op} {format_expr(node.right, own + 1)}"
    return f"({text})" if own < precedence else text


def _format_neg(node: ir.Neg, precedence: int) -> str:
    return "-" + format_expr(node.operand, 3)


_EXPR: dict[str, Callable[[ir.Node, int], str]] = {
    "number": lambda n, _: _spelled(n),
    "string": lambda n, _: format_string(n.value),
    "bool": lambda n, _: "true" if n.value else "false",
    "list": lambda n, _: "[" + ", ".join(format_expr(i) for i in n.items) + "]",
    "name": lambda n, _: n.name,
    "call": _format_call,
    "binop": _format_binop,
    "neg": _format_neg,
}


def _layer_head(layer: ir.LayerCall) -> str:
    return layer.name + (_arguments(layer.args, layer.kwargs) if layer.args or layer.kwargs
                         else "")


def _is_bare(layer: ir.LayerCall) -> bool:
    return not (layer.args or layer.kwargs or layer.body is not None)


class _Writer:
    """Collects output lines and places the source comments among them."""

    def __init__(self, comments: tuple[ir.Comment, ...]):
        self.lines: list[str] = []
        self.pending = sorted(comments, key=lambda c: c.line)

    def flush_before(self, line: int | None, indent: str) -> None:
        while self.pending and line is not None and self.pending[0].line < line:
            self.lines.append(indent + self.pending.pop(0).text)

    def emit(self, text: str, indent: str, first: int | None = None, last: int | None = None,
             trailing_comments: bool = True):
        self.flush_before(first, indent)
        trailing = []
        while trailing_comments and self.pending and first is not None \
                and self.pending[0].line <= (last or first):
            trailing.append(self.pending.pop(0).text)
        # A value that spanned several lines is printed on one: the comments of its earlier
        # lines go above it, each on its own line, so that none merges into another.
        self.lines.extend(indent + comment for comment in trailing[:-1])
        self.lines.append(indent + text + ("  " + trailing[-1] if trailing else ""))

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")


def _lines(node: ir.Node | None) -> tuple[int | None, int | None]:
    return (node.span.line, node.span.end_line) if node is not None and node.span else (None, None)


def _joins(prev: ir.LayerCall, nxt: ir.LayerCall) -> bool:
    """Whether `nxt` goes on `prev`'s line after `->`: where the author put it there, or,
    for specs without source positions, when it is a bare layer such as an activation."""
    if prev.body is not None or nxt.body is not None:
        return False
    if prev.span is not None and nxt.span is not None:
        return nxt.span.line == prev.span.end_line
    return _is_bare(nxt)


def _write_layers(w: _Writer, layers: tuple[ir.LayerCall, ...], indent: str) -> None:
    i = 0
    while i < len(layers):
        group = [layers[i]]
        while i + len(group) < len(layers) and _joins(group[-1], layers[i + len(group)]):
            group.append(layers[i + len(group)])
        first, _ = _lines(group[0])
        _, last = _lines(group[-1])
        text = " -> ".join(_layer_head(layer) for layer in group)
        head = group[0]
        if head.body is not None:
            w.emit(text + " {", indent, first, first, first != last)
            _write_layers(w, head.body, indent + INDENT)
            w.flush_before(last, indent + INDENT)
            w.emit("}", indent, last, last)
        else:
            w.emit(text, indent, first, last)
        i += len(group)


def _statement_head(statement: ir.Node) -> str:
    if statement.kind == "share":
        return f"share {statement.name} = "
    start = format_expr(statement.value.start)
    return ("output " if statement.kind == "output" else "") + f"{statement.name} = {start}"


def _write_graph(w: _Writer, graph: tuple, indent: str) -> None:
    """One statement a line, its layers joined by `->`; a layer with a body ends the line
    with `{`, its body below, and the chain goes on after the `}`."""
    for statement in graph:
        layers = (statement.layer,) if statement.kind == "share" else statement.value.layers
        value = statement.layer if statement.kind == "share" else statement.value
        first, last = _lines(statement)
        if value.span is not None:
            last = value.span.end_line
        text, joint = _statement_head(statement), "" if statement.kind == "share" else " -> "
        for layer in layers:
            text += joint + _layer_head(layer)
            joint = " -> "
            if layer.body is not None:
                body_first, body_last = _lines(layer)
                w.emit(text + " {", indent, first, body_first, first != last)
                _write_layers(w, layer.body, indent + INDENT)
                w.flush_before(body_last, indent + INDENT)
                text, first = "}", body_last
        w.emit(text, indent, first, last)


def _write_body(w: _Writer, layers: tuple, graph: tuple | None, indent: str) -> None:
    _write_layers(w, layers, indent)
    if graph is not None:
        _write_graph(w, graph, indent)


def _write_section(w: _Writer, name: str, section: ir.Section) -> None:
    first, last = _lines(section)
    w.emit(name + " {", "", first, first, first != last)
    width = max((len(s.path) for s in section.settings), default=0)
    for setting in section.settings:
        f, l_ = _lines(setting)
        if setting.value.span is not None:
            l_ = setting.value.span.end_line
        w.emit(f"{setting.path.ljust(width)} = {format_expr(setting.value)}", INDENT, f, l_)
    w.flush_before(last, INDENT)
    w.emit("}", "", last, last)


def _assign_comments(spec: ir.Spec, w: _Writer) -> dict[int, list[ir.Comment]]:
    """Gives each top-level item the comments above and inside it, in source order, so
    they travel with it when the canonical order differs from the file's."""
    items = [*spec.imports, *spec.params, *spec.blocks, spec.model,
             *spec.sections().values()]
    spans = [n.span for n in items if n is not None and n.span]
    located = sorted((n.span.end_line, id(n)) for n in items if n is not None and n.span)
    first_line = min((s.line for s in spans), default=None)
    owned: dict[int, list[ir.Comment]] = {key: [] for _, key in located}
    # The file's opening comments, up to the last blank line before the first item, stay
    # on top; the comments right above an item travel with it.
    before = [c for c in w.pending if first_line is not None and c.line < first_line]
    header_end = None
    for i, comment in enumerate(before):
        following = before[i + 1].line if i + 1 < len(before) else first_line
        if following > comment.line + 1:
            header_end = comment.line
    header, rest = [], []
    for comment in w.pending:
        owner = next((key for end, key in located if comment.line <= end), None)
        if header_end is not None and comment.line <= header_end:
            header.append(comment)
        elif owner is not None:
            owned[owner].append(comment)
        else:
            rest.append(comment)
    w.pending = []
    w.lines.extend(c.text for c in header)
    w.blank()
    owned[0] = rest
    return owned


def print_spec(spec: ir.Spec) -> str:
    """The canonical text of a spec, ending in a newline."""
    w = _Writer(spec.comments)
    owned = _assign_comments(spec, w)

    def take(node: ir.Node) -> None:
        w.pending = owned.get(id(node), [])

    for imp in spec.imports:
        take(imp)
        w.emit(f"import {format_string(imp.path)}", "", *_lines(imp))
    w.blank()
    width = max((len(p.name) for p in spec.params), default=0)  # `=` aligned, as settings
    for param in spec.params:
        take(param)
        first, _ = _lines(param)
        last = param.value.span.end_line if param.value.span else first
        w.emit(f"param {param.name.ljust(width)} = {format_expr(param.value)}", "", first,
               last)
    w.blank()
    for block in spec.blocks:
        take(block)
        params = ", ".join(
            p.name + ("" if p.default is None else f"={format_expr(p.default)}")
            for p in block.params
        )
        first, last = _lines(block)
        w.emit(f"block {block.name}({params}) {{", "", first, first, first != last)
        _write_body(w, block.body, block.graph, INDENT)
        w.flush_before(last, INDENT)
        w.emit("}", "", last, last)
        w.blank()
    if spec.model is not None:
        model = spec.model
        take(model)
        first, last = _lines(model)
        w.emit(f"model {model.name} {{", "", first, first, first != last)
        if model.input is not None:
            w.emit(f"input {format_expr(model.input)}", INDENT, *_lines(model.input))
        for decl in model.inputs:
            first_line, _ = _lines(decl)
            w.emit(f"input {decl.name} {format_expr(decl.type)}", INDENT, first_line,
                   _lines(decl.type)[1] or first_line)
        _write_body(w, model.layers, model.graph, INDENT)
        w.flush_before(last, INDENT)
        w.emit("}", "", last, last)
        w.blank()
    for name, section in spec.sections().items():
        take(section)
        _write_section(w, name, section)
        w.blank()
    rest = owned[0]
    last_end = max((n.span.end_line for n in (spec.model, *spec.sections().values(),
                                              *spec.blocks, *spec.params, *spec.imports)
                    if n is not None and n.span), default=None)
    if rest and last_end is not None and rest[0].line == last_end + 1:
        while w.lines and w.lines[-1] == "":  # the comment sat right under the last item
            w.lines.pop()
    w.lines.extend(c.text for c in rest)
    while w.lines and w.lines[-1] == "":
        w.lines.pop()
    return "\n".join(w.lines) + "\n"
