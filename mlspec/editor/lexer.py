"""A Pygments lexer for .mlspec files.

Registered under the `pygments.lexers` entry point, so `pygmentize -l mlspec`, Sphinx and
anything else built on Pygments can highlight specs. Its tokens are the grammar's
(`mlspec.syntax.lexicon`): the keywords, symbols and patterns of names, numbers, strings
and comments are read from `mlspec/grammars/mlspec.lark` on first use, so a keyword the
grammar gains (a new section) is highlighted with no change here. What this module adds
is the styling: which token type each gets, and the few contexts that tell names apart.

Token types:

- `#` comments: `Comment.Single`; strings: `String.Double` (escapes: `String.Escape`);
- numbers: `Number.Integer` / `Number.Float`; `true`/`false`: `Keyword.Constant`;
- the section and statement keywords: `Keyword` (`Keyword.Namespace` for `import`,
  `Keyword.Declaration` for `param`/`block`), with the declared name after `model`
  (`Name.Class`), `block` (`Name.Function`), and `param`, `output` and `share`
  (`Name.Variable`);
- `->` and `+ - * / =`: `Operator`; `( ) { } [ ] , .`: `Punctuation`;
- a name followed by `(`: `Name.Function` (a call); `NAME=` inside parentheses:
  `Name.Attribute` (a keyword argument or a block parameter's default); a setting's
  path before `=` (`loss =`, `train.seed =`): `Name.Property`; any other name: `Name`.

It imports the parser (lark) but nothing that imports jax.
"""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from mlspec.syntax.lexicon import lexicon

__all__ = ["MlspecLexer"]

# The styling: a keyword's token type (others are Keyword), the name a keyword declares
# with what follows that name, and the symbols that are punctuation (others: Operator).
_KEYWORD_TYPES = {"import": Keyword.Namespace, "param": Keyword.Declaration,
                  "block": Keyword.Declaration}
_DECLARES = {"model": (Name.Class, "{"), "block": (Name.Function, "("),
             "param": (Name.Variable, "="), "output": (Name.Variable, "="),
             "share": (Name.Variable, "=")}
_PUNCTUATION = "(){}[],."
# Keywords may also name settings and path parts (`train.seed = [0, 1]`, `data.train.n`,
# `metric=train.loss`): only a keyword that is not part of a dotted path and not followed
# by `=` is highlighted as one.
_KW_BEFORE = r"(?<![.\w])"
_KW_AFTER = r"\b(?!\s*[.=])"


def _number(lexer, match):
    text = match.group()
    yield match.start(), Number.Float if any(c in text for c in ".eE") else Number.Integer, text


_ESCAPE = re.compile(r"\\.", re.DOTALL)


def _string(lexer, match):
    """A string literal: its quotes, its text, and its escapes (`\\"`, `\\\\`) marked."""
    text, start = match.group(), match.start()
    yield start, String.Double, text[0]
    at = 1
    for escape in _ESCAPE.finditer(text, 1, len(text) - 1):
        if escape.start() > at:
            yield start + at, String.Double, text[at:escape.start()]
        yield start + escape.start(), String.Escape, escape.group()
        at = escape.end()
    if len(text) - 1 > at:
        yield start + at, String.Double, text[at:-1]
    yield start + len(text) - 1, String.Double, text[-1]


def token_rules() -> dict[str, list]:
    """The Pygments states, from the grammar's terminals."""
    lex = lexicon()
    name = lex.patterns["NAME"]
    symbols = [(re.escape(s), Punctuation if s in _PUNCTUATION else Operator)
               for s in lex.symbols if s != "("]
    keywords = [(words(group, prefix=_KW_BEFORE, suffix=_KW_AFTER), token) for token, group in
                _grouped(lex.keywords)]
    declared = [(f"({re.escape(keyword)})(\\s+)({name})(?=\\s*{re.escape(follows)})",
                 bygroups(_KEYWORD_TYPES.get(keyword, Keyword), Whitespace, token))
                for keyword, (token, follows) in _DECLARES.items() if keyword in lex.keywords]
    constants = (words(lex.constants, prefix=_KW_BEFORE, suffix=_KW_AFTER), Keyword.Constant)
    return {
        "common": [
            (lex.patterns["WS"], Whitespace),
            (lex.patterns["COMMENT"], Comment.Single),
            (lex.patterns["STRING"], _string),
            (lex.patterns["NUMBER"], _number),
            (r"\(", Punctuation, "arguments"),
            *symbols,
        ],
        "root": [
            include("common"),
            *declared,
            constants,
            *keywords,
            (name + r"(?=\s*\()", Name.Function),
            (name + r"(?:\s*\.\s*" + name + r")*(?=\s*=)", Name.Property),
            (name, Name),
        ],
        "arguments": [
            (r"\)", Punctuation, "#pop"),
            include("common"),
            constants,
            (name + r"(?=\s*\()", Name.Function),
            (name + r"(?=\s*=)", Name.Attribute),
            (name, Name),
        ],
    }


def _grouped(keywords: tuple[str, ...]) -> list[tuple[object, tuple[str, ...]]]:
    groups: dict[object, list[str]] = {}
    for keyword in keywords:
        groups.setdefault(_KEYWORD_TYPES.get(keyword, Keyword), []).append(keyword)
    return [(token, tuple(group)) for token, group in groups.items()]


class MlspecLexer(RegexLexer):
    """Highlights .mlspec model specs."""

    name = "mlspec"
    aliases = ["mlspec"]
    filenames = ["*.mlspec"]
    mimetypes = ["text/x-mlspec"]

    @classmethod
    def get_tokendefs(cls):
        # read on the first lexer made, not at import: the grammar is loaded then
        return token_rules()
