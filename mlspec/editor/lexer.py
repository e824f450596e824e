"""A Pygments lexer for .mlspec files.

Registered under the `pygments.lexers` entry point, so `pygmentize -l mlspec`, Sphinx and
anything else built on Pygments can highlight specs. It follows the lexical rules of
LANGUAGE.md and the grammar in `mlspec/grammars/mlspec.lark`, and is pure regular
expressions: it imports nothing of mlspec (and so never jax).

Token types:

- `#` comments: `Comment.Single`; strings: `String.Double` (escapes: `String.Escape`);
- numbers: `Number.Integer` / `Number.Float`; `true`/`false`: `Keyword.Constant`;
- the section and statement keywords: `Keyword` (`Keyword.Namespace` for `import`,
  `Keyword.Declaration` for `param`/`block`), with the declared name after `model`
  (`Name.Class`), `block` (`Name.Function`) and `param` (`Name.Variable`);
- `->` and `+ - * / =`: `Operator`; `( ) { } [ ] , .`: `Punctuation`;
- a name followed by `(`: `Name.Function` (a call); `NAME=` inside parentheses:
  `Name.Attribute` (a keyword argument or a block parameter's default); a setting's
  path before `=` (`loss =`, `train.seed =`): `Name.Property`; any other name: `Name`.
"""

from __future__ import annotations

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

__all__ = ["MlspecLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_EXP = r"(?:[eE][+-]?[0-9]+)"
# Keywords may also name settings and path parts (`train.seed = [0, 1]`, `data.train.n`,
# `metric=train.loss`): only a keyword that is not part of a dotted path and not followed
# by `=` is highlighted as one.
_KW_BEFORE = r"(?<![.\w])"
_KW_AFTER = r"\b(?!\s*[.=])"


class MlspecLexer(RegexLexer):
    """Highlights .mlspec model specs."""

    name = "mlspec"
    aliases = ["mlspec"]
    filenames = ["*.mlspec"]
    mimetypes = ["text/x-mlspec"]

    tokens = {
        "common": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"', String.Double, "string"),
            (r"(?:[0-9]+\.[0-9]*|\.[0-9]+)" + _EXP + "?", Number.Float),
            (r"[0-9]+" + _EXP, Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"->", Operator),
            (r"[+\-*/=]", Operator),
            (r"\(", Punctuation, "arguments"),
            (r"[{}\[\],.]", Punctuation),
        ],
        "root": [
            include("common"),
            (r"(model)(\s+)(" + _NAME + ")" + r"(?=\s*\{)",
             bygroups(Keyword, Whitespace, Name.Class)),
            (r"(block)(\s+)(" + _NAME + ")" + r"(?=\s*\()",
             bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (r"(param)(\s+)(" + _NAME + ")" + r"(?=\s*=)",
             bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            (words(("true", "false"), prefix=_KW_BEFORE, suffix=_KW_AFTER),
             Keyword.Constant),
            (words(("import",), prefix=_KW_BEFORE, suffix=_KW_AFTER),
             Keyword.Namespace),
            (words(("param", "block", "model", "input", "data", "train", "sweep"),
                   prefix=_KW_BEFORE, suffix=_KW_AFTER), Keyword),
            (_NAME + r"(?=\s*\()", Name.Function),
            (_NAME + r"(?:\s*\.\s*" + _NAME + r")*(?=\s*=)", Name.Property),
            (_NAME, Name),
            (r"\)", Punctuation),  # unbalanced; the parser reports it
        ],
        "arguments": [
            include("common"),
            (r"\)", Punctuation, "#pop"),
            (words(("true", "false"), prefix=_KW_BEFORE, suffix=_KW_AFTER),
             Keyword.Constant),
            (_NAME + r"(?=\s*\()", Name.Function),
            (_NAME + r"(?=\s*=)", Name.Attribute),
            (_NAME, Name),
        ],
        "string": [
            (r'\\["\\]', String.Escape),
            (r'\\.', String.Double),
            (r'[^"\\]+', String.Double),
            (r'"', String.Double, "#pop"),
        ],
    }
