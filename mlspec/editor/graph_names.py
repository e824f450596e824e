"""The names of the graph body the cursor is in, for completion: its inputs, the values
bound on the lines before the cursor, and its shared layers.

Found from the tokens, without parsing (the text being edited is often broken): a model's
inputs are its `input NAME` lines, else its data's (`x` for numeric features, and one per
`categorical` or `text` column, named as the data names them); a graph block's input is
`in`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lark import Token

from mlspec.catalog.sources.typed import input_name
from mlspec.syntax.lexicon import lex

_OPEN, _CLOSE = ("LPAR", "LBRACE", "LSQB"), ("RPAR", "RBRACE", "RSQB")


@dataclass
class GraphNames:
    inputs: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    """Bindings and outputs bound before the cursor's line, in order."""
    shares: list[str] = field(default_factory=list)
    """Shared layers declared before the cursor's line."""


def graph_names(text: str, offset: int) -> GraphNames:
    """The names of the model or block body that holds `offset` (a code point index)."""
    tokens = lex(text)
    body = body_at(tokens, offset)
    names = GraphNames()
    if body is None:
        return names
    head, start, end = body
    line_start = text.rfind("\n", 0, offset) + 1
    depth = 0
    inside = tokens[start + 1:end]
    for i, tok in enumerate(inside):
        if tok.type in _OPEN:
            depth += 1
        elif tok.type in _CLOSE:
            depth -= 1
        if depth or tok.start_pos >= line_start or i + 1 == len(inside):
            continue
        nxt = inside[i + 1]
        before = inside[i - 1] if i else None
        if tok.type == "INPUT" and nxt.type == "NAME":
            names.inputs.append(str(nxt))
        elif tok.type == "SHARE" and nxt.type == "NAME":
            names.shares.append(str(nxt))
        elif tok.type == "NAME" and nxt.type == "EQUAL" and not (
                before is not None and before.type in ("SHARE", "INPUT")):
            names.values.append(str(tok))
    if head == "BLOCK":
        names.inputs = ["in"]
    elif not names.inputs:
        names.inputs = _data_inputs(tokens)
    names.values = list(dict.fromkeys(n for n in names.values if n not in names.inputs))
    return names


def body_at(tokens: list[Token], offset: int) -> tuple[str, int, int] | None:
    """(MODEL or BLOCK, the index of its body's `{`, of its `}` or len(tokens) where it
    is not closed) for the body that holds `offset`; None outside any."""
    i, depth = 0, 0
    while i < len(tokens) and tokens[i].start_pos < offset:
        tok = tokens[i]
        if depth == 0 and tok.type in ("MODEL", "BLOCK"):
            brace = next((j for j in range(i + 1, len(tokens)) if tokens[j].type == "LBRACE"),
                         None)
            if brace is None or tokens[brace].start_pos >= offset:
                return None
            end = _closing(tokens, brace)
            if end == len(tokens) or tokens[end].start_pos >= offset:
                return tok.type, brace, end
            i = end + 1
            continue
        depth += tok.type in _OPEN
        depth -= tok.type in _CLOSE
        i += 1
    return None


def _closing(tokens: list[Token], brace: int) -> int:
    depth = 0
    for j in range(brace, len(tokens)):
        depth += tokens[j].type in _OPEN
        depth -= tokens[j].type in _CLOSE
        if depth == 0:
            return j
    return len(tokens)


def _data_inputs(tokens: list[Token]) -> list[str]:
    """The inputs a data section's tokens name: `x` unless `features=[]`, and the
    `categorical` and `text` columns."""
    start = next((i for i, t in enumerate(tokens) if t.type == "DATA"), None)
    if start is None:
        return []
    inputs, x = [], True
    for i in range(start, len(tokens) - 2):
        tok, eq, bracket = tokens[i], tokens[i + 1], tokens[i + 2]
        if tok.type != "NAME" or eq.type != "EQUAL" or bracket.type != "LSQB":
            continue
        items = []
        for item in tokens[i + 3:]:
            if item.type != "STRING" and item.type != "COMMA":
                break
            if item.type == "STRING":
                try:
                    items.append(json.loads(str(item)))
                except ValueError:
                    pass
        if str(tok) in ("categorical", "text"):
            inputs += [input_name(c) for c in items if isinstance(c, str)]
        elif str(tok) == "features" and i + 3 < len(tokens) and tokens[i + 3].type == "RSQB":
            x = False
    return list(dict.fromkeys((["x"] if x else []) + inputs))
