"""The lexical rules of .mlspec text, as the grammar's terminals state them.

Tools that read spec text without parsing it whole (the Pygments lexer, the language
server's completion) take their tokens from here, so the grammar is the one place a
token is defined: a keyword, a symbol or the pattern of a name is what
`grammars/mlspec.lark` says it is (the section keywords included, see `ir.SECTION_NAMES`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lark import Token
from lark.exceptions import UnexpectedCharacters

from mlspec.syntax.parser import lark_parser

__all__ = ["Lexicon", "lex", "lexicon"]


@dataclass(frozen=True)
class Lexicon:
    keywords: tuple[str, ...]
    """Words that start statements and sections (`model`, `train`); they may also name a
    setting or a path part (`train.seed`)."""
    constants: tuple[str, ...]
    """Words that are values (`true`, `false`)."""
    symbols: dict[str, str]
    """Operator and punctuation text -> its terminal (`"->"`: `_ARROW`, `"("`: `LPAR`),
    longest first."""
    patterns: dict[str, str]
    """The regular expressions of the other terminals: NAME, BIND (a name and its `=`),
    NUMBER, STRING, COMMENT and the white space WS."""
    terminals: dict[str, str]
    """Keyword and symbol terminal -> its text (`MODEL`: `model`)."""


@functools.cache
def lexicon() -> Lexicon:
    parser = lark_parser()
    words, symbols, patterns = {}, {}, {}
    for terminal in parser.terminals:
        pattern = terminal.pattern
        if pattern.type == "str" and pattern.value.isidentifier():
            words[terminal.name] = pattern.value
        elif pattern.type == "str":
            symbols[pattern.value] = terminal.name
        else:
            patterns[terminal.name] = pattern.to_regexp()
    # keywords may name path parts (`train.seed`), constants may not: ask the parser
    after_dot = parser.parse_interactive("x.", start="expr")
    after_dot.exhaust_lexer()
    path_parts = after_dot.accepts()
    return Lexicon(
        keywords=tuple(w for t, w in words.items() if t in path_parts),
        constants=tuple(w for t, w in words.items() if t not in path_parts),
        symbols=dict(sorted(symbols.items(), key=lambda kv: -len(kv[0]))),
        patterns=patterns,
        terminals={**words, **{t: s for s, t in symbols.items()}},
    )


def _split(token: Token, offset: int) -> list[Token]:
    """The token placed at `offset`; a binding's `h =` (one token for the parser, see
    the grammar's BIND) as its name and its `=`, as tools see them everywhere else."""
    start = token.start_pos + offset
    if token.type != "BIND":
        return [Token(token.type, token.value, start_pos=start, end_pos=token.end_pos + offset)]
    name = token.value.rstrip("= \t")
    return [Token("NAME", name, start_pos=start, end_pos=start + len(name)),
            Token("EQUAL", "=", start_pos=token.end_pos + offset - 1,
                  end_pos=token.end_pos + offset)]


def lex(text: str) -> list[Token]:
    """The tokens of `text` (comments and white space left out), as the parser's lexer
    makes them, placed in `text`; a character that starts no token is skipped, so that
    text being edited still gives the tokens around its mistakes."""
    tokens: list[Token] = []
    offset = 0
    while offset <= len(text):
        try:
            for token in lark_parser().lex(text[offset:]):
                tokens += _split(token, offset)
            break
        except UnexpectedCharacters as exc:
            offset += exc.pos_in_stream + 1
    return tokens
