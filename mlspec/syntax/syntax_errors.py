"""lark's syntax errors -> the spec's errors: at their place, in the spec's words, with
targeted messages for the common mistakes (a setting's forgotten `=`, `trian {`, a graph
statement's forgotten `=`, a call left open)."""

from __future__ import annotations

import re

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from mlspec.syntax.errors import Span, SpecError, nearest, source_line
from mlspec.syntax.graph_syntax import statement_hint, token_span

# How expected terminals are named in "expected ..." messages; a keyword's terminal is
# named by its text (IMPORT: 'import').
_TERMINAL_TEXT = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "LPAR": "'('",
    "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'",
    "EQUAL": "'='", "COMMA": "','", "DOT": "'.'", "_ARROW": "'->'", "PLUS": "'+'",
    "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "BIND": "a binding (`name = chain`)",
}


def syntax_error(exc: UnexpectedInput, file: str, parser: Lark) -> SpecError:
    """lark's error as the spec's: at its place, saying what was expected there."""
    line, column = exc.line, exc.column
    hint = statement_hint(exc) if isinstance(exc, UnexpectedToken) else None
    if hint is not None:
        message, token = hint
        if token.line is not None and token.type != "$END":
            return SpecError.at(token_span(token, file), message)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        message = "unexpected end of file"
    elif isinstance(exc, UnexpectedToken) and exc.token.type == "BIND":
        message = f"unexpected '{str(exc.token).rstrip('= ')} ='"
    elif isinstance(exc, UnexpectedToken):
        message = f"unexpected '{exc.token}'"
    elif isinstance(exc, UnexpectedCharacters):
        message = f"unexpected character '{exc.char}'"
    elif isinstance(exc, UnexpectedEOF):
        message = "unexpected end of file"
    else:  # pragma: no cover - lark has no other kinds today
        message = "syntax error"
    expected = sorted({_TERMINAL_TEXT.get(t, f"'{t.lower()}'") for t in exc.expected or ()}
                      if isinstance(exc, (UnexpectedToken, UnexpectedEOF)) else set())
    if expected and len(expected) <= 6:
        message += "; expected " + " or ".join(expected)
    elif isinstance(exc, UnexpectedToken) and exc.token.type == "NAME":
        message += _keyword_hint(str(exc.token), exc.expected or (), parser)
    if isinstance(exc, UnexpectedToken):
        message += _unclosed_hint(exc)
    width = len(str(exc.token)) if isinstance(exc, UnexpectedToken) else 1
    if isinstance(exc, UnexpectedToken) and exc.token.type == "BIND":
        width = len(str(exc.token).rstrip("= \t"))
    if line is None or line < 0:
        return SpecError.at(None, f"{file}: {message}")
    if isinstance(exc, UnexpectedToken) and "EQUAL" in (exc.expected or ()):
        found = _stray_path(file, line, column)
        if found is not None:
            return found
    span = Span(file=file, line=line, column=column, end_line=line, end_column=column + width)
    return SpecError.at(span, message)


def _unclosed_hint(exc: UnexpectedToken) -> str:
    """`; the '(' at 2:13 is not closed` where a ')' may come and the innermost '(' still
    open is on an earlier line (`h = concat(a, b` and the next line); "" elsewhere."""
    if "RPAR" not in (exc.expected or ()):
        return ""
    stack = getattr(getattr(exc, "state", None), "value_stack", None) or []
    opened = next((t for t in reversed(stack) if isinstance(t, Token) and t.type == "LPAR"),
                  None)
    if opened is None or (exc.token.type != "$END" and exc.token.line == opened.line):
        return ""
    return f"; the '(' at {opened.line}:{opened.column} is not closed"


def _keyword_hint(word: str, expected, parser: Lark) -> str:
    """`; did you mean 'train'?` for a name where only keywords may stand (`trian {`,
    `modle m {`): the nearest of the expected keywords, or "" where none is near."""
    words = {t.pattern.value for t in parser.terminals
             if t.name in expected and t.pattern.type == "str" and t.pattern.value.isidentifier()}
    close = nearest(word, sorted(words))
    return f"; did you mean '{close}'?" if close else ""


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*')
_PATH_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:[ \t]*\.[ \t]*[A-Za-z_][A-Za-z0-9_]*)*)"
                          r"\s*\Z")


def _stray_path(file: str, line: int, column: int) -> SpecError | None:
    """The mistake where a setting's '=' is missing, at the setting's name rather than at
    the token after it: a name that follows a value on its line (`steps = 1_000` reads as
    `steps = 1` and a setting `_000`), or one alone on its line; None for anything else."""
    lines = [source_line(file, n) or "" for n in range(1, line + 1)]
    before = "\n".join(lines[:-1] + [lines[-1][:column - 1]])
    before = _STRING_OR_COMMENT.sub(  # comments blanked, keeping every offset
        lambda m: " " * len(m.group()) if m.group().startswith("#") else m.group(), before)
    path = _PATH_BEFORE.search(before)
    if path is None:
        return None
    start_line = before.count("\n", 0, path.start()) + 1
    start_column = path.start() - (before.rfind("\n", 0, path.start()) + 1) + 1
    ahead = lines[start_line - 1][:start_column - 1].rstrip()
    name = path.group(1)
    span = Span(file=file, line=start_line, column=start_column, end_line=start_line,
                end_column=start_column + len(name))
    if not ahead:  # `steps` alone on its line, the '}' after it
        return SpecError.at(span, f"expected '=' after '{name}'; a setting is "
                                  "`name = value`")
    if not ahead or not (ahead[-1].isalnum() or ahead[-1] in ")]\"_"):  # no value ends there
        return None
    if ahead[-1].isdigit() and start_column - 1 == len(ahead) \
            and re.fullmatch(r"_[0-9_]*", name.split(".")[0]):
        number = re.search(r"[0-9.]+\Z", ahead).group() + name.split(".")[0]
        return SpecError.at(span, f"unexpected '{name}': a number has no '_' between its "
                                  f"digits (write {number.replace('_', '')})")
    return SpecError.at(span, f"unexpected '{name}' after the value of a setting; a "
                              "setting is `name = value`")
