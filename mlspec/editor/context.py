"""Where the cursor stands in a spec, as the parser sees it.

The text before the cursor is fed to the LALR parser (`parse_interactive`): what it
accepts next says which keywords fit there, and feeding it a name shows what a name
typed there would be (a layer, a setting, a value, an argument) from the parser's own
stack of the constructs still open. No second tokenizer or bracket counter: a value
that goes on over several lines, or a setting named by a keyword (`train.seed`), is
what the grammar says it is.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput

from mlspec.syntax import ir
from mlspec.syntax.lexicon import lexicon
from mlspec.syntax.parser import lark_parser

Role = Literal["layer", "setting", "value", "argument", "declared", "path", "start"]
"""What a name at the cursor would be; `start` is the start of a graph's chain (a value
or a merge: `h = |`)."""
_OPENERS = {"LBRACE": "{", "LPAR": "(", "LSQB": "["}
_CLOSERS = ("RBRACE", "RPAR", "RSQB")
# what a keyword that starts no statement may be followed by: a path part's next token
_PATH_FOLLOWS = {"DOT", "EQUAL", "LPAR"}


@dataclass(frozen=True)
class Open:
    """A bracket open before the cursor."""

    bracket: str
    kind: Literal["model", "block", "section", "body", "call", "layer", "block params",
                  "group", "list"]
    owner: str | None = None
    """The call or layer that the parenthesis is of (`dense`, `adam`)."""
    given: tuple[str, ...] = ()
    """The keyword arguments given in that call so far."""


@dataclass
class Place:
    statement: str | None = None
    """The statement the cursor is in: `model`, `block`, `param`, `import` or a section's
    keyword; None between statements."""
    block: str | None = None
    """The name of the block being defined."""
    opens: list[Open] = field(default_factory=list)
    setting: str | None = None
    """In a section, the setting whose value the cursor is in."""
    keyword: str | None = None
    """In a call, the keyword argument whose value the cursor is in."""
    role: Role | None = None
    """What a name typed at the cursor would be; None where no name fits."""
    keywords: list[str] = field(default_factory=list)
    """The keywords that may start there (`model`, `train`, `input`)."""
    graph: bool = False
    """Whether the model or block body the cursor is in holds graph statements."""

    @property
    def inner(self) -> Open | None:
        return self.opens[-1] if self.opens else None

    def call(self) -> Open | None:
        """The innermost call or layer whose parentheses the cursor is in."""
        return next((o for o in reversed(self.opens) if o.kind in ("call", "layer")), None)


def place_at(prefix: str) -> Place | None:
    """The place at the end of `prefix`; None inside a string or a number, or where the
    text before the cursor does not parse (the statement the cursor is in is broken)."""
    parser = _fed(prefix)
    if parser is None:
        return None
    place = Place()
    accepts = parser.accepts()
    if "NAME" in accepts:
        probe = parser.copy()
        probe.feed_token(Token("NAME", "_"))
        _read(probe.parser_state.value_stack, place)
    else:
        _read(parser.parser_state.value_stack + [None], place)
        place.role = None
    words = lexicon().terminals
    # the grammar takes statements after a chain, and an input line after a statement,
    # only to say that they cannot stand there
    kind = _body_kind(parser.parser_state.value_stack)
    place.graph = kind == "graph"
    refused = {"chain": {"OUTPUT", "SHARE"}, "graph": {"INPUT"}}.get(kind, set())
    for terminal in sorted(accepts & set(words) - refused):
        if words[terminal] in lexicon().keywords and _starts_here(parser, terminal):
            place.keywords.append(words[terminal])
    return place


def _body_kind(stack: list) -> Literal["chain", "graph"] | None:
    """What the body of the model or block the parser is in holds so far: a chain of
    layers (v1), graph statements, or neither yet."""
    heads = [i for i, t in enumerate(stack) if _is(t, "MODEL", "BLOCK")]
    if not heads:
        return None
    body = stack[heads[-1]:]
    opened = next((i for i, t in enumerate(body) if _is(t, "LBRACE")), None)
    rest = [] if opened is None else [
        t for t in body[opened + 1:] if t is not None and not (isinstance(t, Tree) and (
            t.data in ("input_line", "input_decl") or t.data.startswith("__model_def")))]
    if any(_is(t, "BIND", "OUTPUT", "SHARE") or isinstance(t, Tree) and t.data in (
            "_statement", "binding", "output_stmt", "share_stmt") for t in rest):
        return "graph"
    if rest and (_is(rest[0], "NAME") or isinstance(rest[0], Tree) and (
            rest[0].data == "layer" or rest[0].data.startswith("__layers"))):
        return "chain"
    return None


@functools.cache
def _statement_start() -> re.Pattern:
    """A line that starts with a keyword that starts a statement (`model`, `train`)."""
    parser = lark_parser().parse_interactive("", start="start")
    words = lexicon().terminals
    starting = [words[t] for t in parser.accepts() if t in words]
    return re.compile(r"^(?=(?:" + "|".join(starting) + r")\b)", re.M)


def _fed(prefix: str):
    """An interactive parser fed the tokens before the cursor (the word being typed left
    out); where an earlier statement is broken, fed from the last statement that starts a
    line before the cursor."""
    fed = _feed(prefix)
    if fed is None:
        starts = [m.start() for m in _statement_start().finditer(prefix)]
        if starts and starts[-1] > 0:
            fed = _feed(prefix[starts[-1]:])
    return fed or None


def _feed(text: str):
    """The parser fed `text`; False inside a string or right after a number or string;
    None where the text does not parse."""
    parser = lark_parser().parse_interactive(text, start="start")
    try:
        for token in parser.iter_parse():  # each token is fed when the next is asked for
            if token.end_pos == len(text):  # the token at the cursor
                if token.type in ("STRING", "NUMBER"):
                    return False
                if token.type == "NAME" or token.value in lexicon().keywords:
                    break  # the word being typed
    except UnexpectedCharacters as exc:
        return False if text[exc.pos_in_stream] == '"' else None
    except UnexpectedInput:
        return None
    return parser


def _starts_here(parser, terminal: str) -> bool:
    """Whether a keyword fed here starts something (a statement, the `input` line)
    rather than being the part of a path (`train.seed`)."""
    probe = parser.copy()
    probe.feed_token(Token(terminal, lexicon().terminals[terminal]))
    return not probe.accepts() & _PATH_FOLLOWS


_CLOSED = ("import_stmt", "param_stmt", "block_def", "model_def", "section_def")
_STATEMENTS = {"IMPORT": "import", "PARAM": "param", "BLOCK": "block", "MODEL": "model"}


def _is(element, *types: str) -> bool:
    return isinstance(element, Token) and element.type in types


def _read(stack: list, place: Place) -> None:
    """Fills `place` from the parser's value stack, whose last element is the probe (a
    name fed at the cursor, or None)."""
    i = 0
    while i < len(stack) - 1 and isinstance(stack[i], Tree) and (
            stack[i].data in _CLOSED or stack[i].data.startswith("__start")):
        i += 1
    body = stack[i:-1]
    if not body:
        return
    head = body[0]
    if isinstance(head, Tree) and head.data == "_section_keyword":
        place.statement = str(head.children[0])
    elif _is(head, *_STATEMENTS):
        place.statement = _STATEMENTS[head.type]
        if head.type == "BLOCK" and len(body) > 1 and _is(body[1], "NAME"):
            place.block = str(body[1])
    depths: list[int] = []  # index in `body` of each open bracket
    for j, element in enumerate(body):
        if _is(element, *_OPENERS):
            depths.append(j)
            place.opens.append(_opener(body, j, place))
        elif _is(element, *_CLOSERS) and place.opens:
            depths.pop()
            place.opens.pop()
    if place.statement in ir.SECTION_NAMES and place.opens:
        place.setting = _pending_setting(body[depths[0] + 1:depths[1] if len(depths) > 1
                                              else None])
    calls = [k for k, o in enumerate(place.opens) if o.kind in ("call", "layer")]
    if calls:
        k = calls[-1]
        call, inside = place.opens[k], body[depths[k] + 1:]
        place.opens[k] = Open(call.bracket, call.kind, call.owner, tuple(_keywords(inside)))
        if k == len(place.opens) - 1 and len(inside) >= 2 and _is(inside[-2], "NAME") \
                and _is(inside[-1], "EQUAL"):
            place.keyword = str(inside[-2])
    place.role = _role(body, place)


def _opener(body: list, j: int, place: Place) -> Open:
    bracket = _OPENERS[body[j].type]
    before = body[j - 1] if j else None
    if bracket == "[":
        return Open("[", "list")
    if bracket == "{":
        if not place.opens:
            return Open("{", {"model": "model", "block": "block"}.get(place.statement,
                                                                        "section"))
        return Open("{", "body")
    if isinstance(before, Tree) and before.data == "path":
        return Open("(", "call", ".".join(str(c) for c in before.children))
    if _is(before, "NAME"):
        if not place.opens and place.statement == "block":
            return Open("(", "block params", str(before))
        return Open("(", "layer", str(before))
    return Open("(", "group")


def _pending_setting(section_body: list) -> str | None:
    for k in range(len(section_body) - 1, 0, -1):
        if _is(section_body[k], "EQUAL") and isinstance(section_body[k - 1], Tree) \
                and section_body[k - 1].data == "path":
            return ".".join(str(c) for c in section_body[k - 1].children)
    return None


def _keywords(elements: list) -> list[str]:
    """The keyword arguments among a call's completed arguments (and one being given)."""
    found = []
    for element in elements:
        if isinstance(element, Tree) and element.data == "keyword":
            found.append(str(element.children[0]))
        elif isinstance(element, Tree) and element.data.startswith("__"):
            found += _keywords(element.children)
    if len(elements) >= 2 and _is(elements[-2], "NAME") and _is(elements[-1], "EQUAL"):
        found.append(str(elements[-2]))
    return found


def _role(body: list, place: Place) -> Role | None:
    prev = body[-1]
    if _is(prev, "DOT"):
        return "path"
    if _is(prev, "BIND") or _is(prev, "EQUAL") and len(body) >= 3 and _is(body[-3], "OUTPUT"):
        return "start"
    if _is(prev, "MODEL", "BLOCK", "PARAM", "OUTPUT", "SHARE") or (
            _is(prev, "INPUT") and place.inner is not None and place.inner.kind == "model"):
        return "declared"
    inner = place.inner
    if inner is None:
        return "value" if place.statement == "param" else None
    if inner.kind in ("model", "block", "body"):
        return "layer"
    if inner.kind == "section":
        # a name after a whole setting starts the next one: the parser has reduced it
        if _is(prev, "LBRACE") or isinstance(prev, Tree):
            return "setting"
        return "value"
    if inner.kind in ("call", "layer") and _is(prev, "LPAR", "COMMA"):
        return "argument"
    if inner.kind == "block params":
        return "value" if _is(prev, "EQUAL") else "declared"
    return "value"
