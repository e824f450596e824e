"""Text -> spec IR. The LALR parser is built on first use and cached."""

from __future__ import annotations

import functools
from importlib import resources

from lark import Lark, Token, Tree, v_args
from lark.exceptions import (
    UnexpectedInput,
    VisitError,
)

from mlspec.syntax import ir
from mlspec.syntax.errors import (
    ErrorCollector,
    Span,
    SpecError,
    remember_source,
)
from mlspec.syntax.graph_syntax import GraphToIR
from mlspec.syntax.limits import MAX_DEPTH, MAX_INT
from mlspec.syntax.syntax_errors import syntax_error

GRAMMAR_FILE = "grammars/mlspec.lark"

# Comment tokens of the text being parsed, gathered by the lexer (comments are ignored
# by the grammar, but the formatter keeps them).
_comments: list[Token] = []


def grammar_text() -> str:
    """The grammar: the file's rules, and the section keywords of `ir.SECTION_NAMES`."""
    rules = resources.files("mlspec").joinpath(GRAMMAR_FILE).read_text()
    keywords = [(name.upper(), name) for name in ir.SECTION_NAMES]
    return (rules + "\n_section_keyword: " + " | ".join(t for t, _ in keywords) + "\n"
            + "".join(f'{terminal}: "{name}"\n' for terminal, name in keywords))


@functools.cache
def _parser() -> Lark:
    return Lark(
        grammar_text(), parser="lalr", start=["start", "expr"], propagate_positions=True,
        maybe_placeholders=True, cache=True, lexer_callbacks={"COMMENT": _comments.append},
    )


def lark_parser() -> Lark:
    """The LALR parser, built on first use: for tools that lex spec text or ask what may
    come next (`parse_interactive`), such as the editor's completion."""
    return _parser()


# Integer literals are kept to 64 bits, floats to finite values.


def _span(meta_or_token, file: str) -> Span:
    return Span(
        file=file, line=meta_or_token.line, column=meta_or_token.column,
        end_line=meta_or_token.end_line, end_column=meta_or_token.end_column,
    )


@v_args(meta=True)
class _ToIR(GraphToIR):
    """Builds IR nodes; it never validates (that is a later pass)."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _s(self, meta) -> Span | None:
        return None if getattr(meta, "empty", False) else _span(meta, self.file)

    # values
    def number(self, meta, children):
        text = str(children[0])
        is_float = any(c in text for c in ".eE")
        value = float(text) if is_float else int(text) if len(text.lstrip("-")) <= 19 \
            else None
        if value is None or (not is_float and value > MAX_INT) or value in (
                float("inf"), float("-inf")):
            raise SpecError.at(self._s(meta), f"the number {text[:20]}"
                                              f"{'...' if len(text) > 20 else ''} is too large")
        return ir.Number(value=value, text=text, span=self._s(meta))

    def string(self, meta, children):
        return ir.String(value=ir_string(children[0]), span=self._s(meta))

    def true(self, meta, children):
        return ir.Bool(value=True, span=self._s(meta))

    def false(self, meta, children):
        return ir.Bool(value=False, span=self._s(meta))

    def list(self, meta, children):
        return ir.ListExpr(items=tuple(c for c in children if c is not None), span=self._s(meta))

    def neg(self, meta, children):
        (operand,) = children
        if isinstance(operand, ir.Number):  # `-3` is a literal, and stays an integer
            text = operand.text
            if -operand.value > MAX_INT:  # `--9223372036854775808`
                raise SpecError.at(self._s(meta), f"the number {-operand.value} is too large")
            return ir.Number(value=-operand.value, span=self._s(meta),
                             text=f"-{text}" if text and not text.startswith("-") else None)
        return ir.Neg(operand=operand, span=self._s(meta))

    def _binop(op):  # noqa: N805 - a helper that builds methods
        def method(self, meta, children):
            left, right = children
            return ir.BinOp(op=op, left=left, right=right, span=self._s(meta))

        return method

    add, sub, mul, div = _binop("+"), _binop("-"), _binop("*"), _binop("/")

    def path(self, meta, children):
        return ".".join(str(c) for c in children), self._s(meta)

    def arguments(self, meta, children):
        return [c for c in children if c is not None]

    layer_arguments = arguments

    def keyword(self, meta, children):
        name, value = children
        return ir.Keyword(name=str(name), value=value, span=_span(name, self.file))

    def _split_arguments(self, arguments):
        args, kwargs = [], []
        for a in arguments or []:
            if isinstance(a, ir.Keyword):
                kwargs.append(a)
            elif kwargs:
                raise SpecError.at(a.span, "a positional argument cannot follow a keyword one")
            else:
                args.append(a)
        return tuple(args), tuple(kwargs)

    def call(self, meta, children):
        (name, _), arguments = children
        args, kwargs = self._split_arguments(arguments)
        if not (args or kwargs):  # a bare name (`relu`, `valid.loss`; `relu()` alike)
            return ir.Name(name=name, span=self._s(meta))
        return ir.Call(name=name, args=args, kwargs=kwargs, span=self._s(meta))

    # layers
    def layer(self, meta, children):
        name, arguments, body = children
        args, kwargs = self._split_arguments(arguments)
        return ir.LayerCall(
            name=str(name), args=args, kwargs=kwargs, body=body,
            span=self._s(meta) if arguments is not None else _span(name, self.file),
        )

    def layers(self, meta, children):
        return tuple(c for c in children if c is not None)

    # statements
    def import_stmt(self, meta, children):
        return ir.Import(path=ir_string(children[1]), span=self._s(meta))

    def param_stmt(self, meta, children):
        _, name, value = children
        return ir.Param(name=str(name), value=value, span=_span(name, self.file))

    def block_param(self, meta, children):
        name, default = children
        return ir.BlockParam(name=str(name), default=default, span=_span(name, self.file))

    def block_def(self, meta, children):
        _, name, *params, layers, graph = children
        self._check_body(layers, graph)
        return ir.Block(
            name=str(name), params=tuple(p for p in params if p is not None), body=layers,
            graph=graph, span=self._s(meta),
        )

    def input_line(self, meta, children):
        return children[1]

    def model_def(self, meta, children):
        _, name, input_shape, *inputs, layers, graph = children
        self._check_inputs(input_shape, inputs, graph)
        self._check_body(layers, graph)
        return ir.Model(name=str(name), input=input_shape, inputs=tuple(inputs), layers=layers,
                        graph=graph, span=self._s(meta))

    def setting(self, meta, children):
        (path, span), value = children
        return ir.Setting(path=path, value=value, span=span)

    def section(self, meta, children):
        return ir.Section(settings=tuple(children), span=self._s(meta))

    def section_def(self, meta, children):
        keyword, section = children
        span = _span(keyword, self.file)
        if section.span is not None:
            span = span.model_copy(update={"end_line": section.span.end_line,
                                           "end_column": section.span.end_column})
        return str(keyword), section.model_copy(update={"span": span}), span


def ir_string(token: Token) -> str:
    """A string literal's text, its quotes removed and `\\"`, `\\\\` unescaped."""
    return str(token)[1:-1].replace('\\"', '"').replace("\\\\", "\\")


# How deep a spec may nest, counted in IR nodes from the spec itself (a value in a
# value, a layer in a repeat's body, a term of a sum in the sum): far past what specs
# need, and within what everything that reads a spec can take (Python's recursion; JSON
# readers stop at 200 levels, and a spec's JSON nests at most twice as deep as its IR).
# Rules that build no IR node of their own, so nest the spec no deeper.
_FLAT_RULES = frozenset({"arguments", "layer_arguments", "layers", "graph", "path", "input_line",
                         "section_def"})


def _check_depth(tree: Tree, file: str, depth: int = 1) -> None:
    """Refuses a tree that nests deeper than MAX_DEPTH, at the first place (in reading
    order) that crosses it, before the recursive transformer overflows the stack."""
    stack = [(tree, depth)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            span = Span(file=file, line=meta.line, column=meta.column, end_line=meta.line,
                        end_column=meta.column + 1)
            raise SpecError.at(span, f"this is nested more than {MAX_DEPTH} deep (values "
                                     "in values, layers in bodies, or the terms of a long "
                                     "sum); split it into params or blocks")
        for child in reversed(node.children):
            if isinstance(child, Tree):
                stack.append((child, depth + (child.data not in _FLAT_RULES)))


_PAST_MAX_INT = str(MAX_INT + 1)


def _least_int(node) -> Tree | None:
    """`-9223372036854775808`, the least 64-bit integer, as one number literal (its digits
    alone are one past the largest); None for any other node."""
    if isinstance(node, Tree) and node.data == "neg" and isinstance(node.children[0], Tree) \
            and node.children[0].data == "number" \
            and str(node.children[0].children[0]) == _PAST_MAX_INT:
        digits = node.children[0].children[0]
        return Tree("number", [digits.update(value="-" + digits)], node.meta)
    return None


def _fold_least_ints(tree: Tree) -> Tree:
    stack = [tree := _least_int(tree) or tree]
    while stack:
        node = stack.pop()
        for i, child in enumerate(node.children):
            if isinstance(child, Tree):
                node.children[i] = _least_int(child) or child
                stack.append(node.children[i])
    return tree


def _transform(tree, file: str, depth: int = 1):
    _check_depth(tree, file, depth)
    tree = _fold_least_ints(tree)
    try:
        return _ToIR(file).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SpecError):
            raise exc.orig_exc from None
        raise


def _lark_parse(text: str, file: str, start: str):
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        raise syntax_error(exc, file, _parser()) from None


def parse(text: str, file: str = "<spec>") -> ir.Spec:
    """Parses .mlspec text into the spec IR; raises SpecError with every location."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # lines end at \n only
    remember_source(file, text)
    _comments.clear()
    tree = _lark_parse(text, file, "start")
    comments = tuple(ir.Comment(text=str(token).rstrip(), line=token.line)
                     for token in _comments)
    _comments.clear()
    items = _transform(tree, file).children
    errors = ErrorCollector()
    fields: dict = {"imports": [], "params": [], "blocks": []}
    plural = {ir.Import: "imports", ir.Param: "params", ir.Block: "blocks"}
    for item in items:
        if isinstance(item, ir.Model):
            if "model" in fields:
                errors.add(item.span, "a spec holds exactly one model; this is the second")
            fields["model"] = item
        elif isinstance(item, tuple):
            kind, section, span = item
            if kind in fields:
                errors.add(span, f"a spec holds at most one '{kind}' section; this is the second")
            fields[kind] = section
        else:
            fields[plural[type(item)]].append(item)
    errors.raise_if_any()
    path = None if file.startswith("<") else file
    return ir.Spec(**fields, comments=comments, path=path)


def comment_start(line: str) -> int | None:
    """Where the line's comment starts: the first `#` outside a string literal."""
    in_string = escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = in_string
        elif ch == '"':
            in_string = not in_string
        elif ch == "#" and not in_string:
            return i
    return None


def parse_expr(text: str, file: str = "<value>", depth: int = 4) -> ir.Expr:
    """Parses one value, as written on the right of `=` (used by `--set`). `depth` is
    where the value will sit in a spec (4: a setting's, in spec, section and setting),
    which counts towards MAX_DEPTH."""
    remember_source(file, text)
    return _transform(_lark_parse(text, file, "expr"), file, depth)
