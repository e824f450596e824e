"""Source spans and the one error type that every user mistake becomes.

A spec error renders as ``FILE:LINE:COL: error: MESSAGE``, followed by the source line and a
caret under the offending token, the way compilers report errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

MAX_REPORTED = 20
MAX_QUOTED = 500  # a longer line is not shown under its error (nor a caret as long)
MAX_HINTED = 100  # a longer name gets no "did you mean" (edit distance is quadratic)

# Text of every spec parsed, keyed by its file name (or pseudo name, for mlspec.parse), so
# errors can show the offending line. Only text parsed as a spec is ever quoted: a span
# naming any other file (a JSON spec may say anything) shows no line.
_SOURCES: dict[str, list[str]] = {}


def remember_source(name: str, text: str) -> None:
    """Keep `text` so that errors pointing into `name` can quote its lines; "" for a
    file none of whose lines may be quoted."""
    # by "\n" only, as the parser counts lines (splitlines also breaks at \f, \x85, ...)
    _SOURCES[name] = text.split("\n") if text else []


def source_line(name: str, line: int) -> str | None:
    lines = _SOURCES.get(name, [])
    return lines[line - 1] if 0 < line <= len(lines) else None


class Span(BaseModel):
    """Where a node came from: 1-based line and column, end exclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str = "<spec>"
    line: int
    column: int
    end_line: int
    end_column: int


def located(file: str | None, message: str) -> str:
    """An error without a place in a source: `FILE: error: MESSAGE`, as compilers write
    it, naming the file (or folder) it is about. A message that began with that file does
    not say it twice: `F: rest` becomes `F: error: rest`, `F is ...` `F: error: it is ...`.
    """
    if file is None:
        return f"error: {message}"
    file = str(file)
    if message.startswith(f"{file}: "):
        message = message[len(file) + 2:]
    elif message.startswith(f"{file} ") and message[len(file) + 1:].split(" ", 1)[0] in (
            "is", "was", "has", "holds", "already", "does", "cannot"):
        message = "it" + message[len(file):]
    return f"{file}: error: {message}"


class Diagnostic(BaseModel):
    model_config = ConfigDict(frozen=True)

    message: str
    span: Span | None = None

    def render(self, file: str | None = None) -> str:
        """`FILE:LINE:COL: error: MESSAGE`, the line and a caret; without a place,
        `FILE: error: MESSAGE` with `file` (the file the error is about) if given."""
        if self.span is None:
            return located(file, self.message)
        s = self.span
        head = f"{s.file}:{s.line}:{s.column}: error: {self.message}"
        text = source_line(s.file, s.line)
        if not text or len(text) > MAX_QUOTED:  # an empty line quotes nothing
            return head
        end = s.end_column if s.end_line == s.line else len(text) + 1
        end = max(s.column + 1, min(end, len(text) + 1))
        # Tabs are shown as spaces; the caret counts the widths as shown. A place past
        # the line's end (where a cut-off file ends) gets its caret just after the line.
        before = len(text[:s.column - 1].expandtabs(4))
        width = max(1, len(text[:end - 1].expandtabs(4)) - before)
        return f"{head}\n    {text.expandtabs(4)}\n    {' ' * before}{'^' * width}"


class SpecError(Exception):
    """One or more mistakes in a spec, each with its location."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__(self.render())

    @classmethod
    def at(cls, span: Span | None, message: str) -> SpecError:
        return cls(Diagnostic(message=message, span=span))

    def render(self, file: str | None = None) -> str:
        """Every diagnostic (up to MAX_REPORTED); those without a place name `file`."""
        shown = [d.render(file) for d in self.diagnostics[:MAX_REPORTED]]
        hidden = len(self.diagnostics) - len(shown)
        if hidden > 0:
            shown.append(f"... and {hidden} more")
        return "\n".join(shown)

    def __str__(self) -> str:
        return self.render()


class ErrorCollector:
    """Gathers independent diagnostics so `check` can report all of them at once."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def add(self, span: Span | None, message: str) -> None:
        self.diagnostics.append(Diagnostic(message=message, span=span))

    def extend(self, error: SpecError) -> None:
        self.diagnostics.extend(error.diagnostics)

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise SpecError(self.diagnostics)


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and
    swaps of neighbours each cost 1 (so 'adma' is one step from 'adam')."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def nearest(name: str, choices: Iterable[str]) -> str | None:
    """The closest choice by edit distance (ties by similarity), if it is close enough."""
    if len(name) > MAX_HINTED:
        return None
    choices = [c for c in choices if len(c) <= MAX_HINTED]
    scored = [(edit_distance(name.lower(), c.lower()),
               -difflib.SequenceMatcher(None, name, c).ratio(), c) for c in choices]
    if not scored:
        return None
    distance, neg_ratio, best = min(scored)
    if distance <= max(1, len(name) // 3) or -neg_ratio >= 0.75:
        return best
    lowered = name.lower()
    for rule in (
        lambda c: "".join(w[0] for w in c.split("_") if w) == lowered,  # lr: learning_rate
        lambda c: c.lower().startswith(lowered),  # cosine_decay: cosine_decay_schedule
        lambda c: len(name) >= 3 and lowered in c.lower(),  # bias: use_bias
    ):
        matches = [c for c in choices if rule(c)]
        if len(matches) == 1:
            return matches[0]
    return None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A hint naming the nearest known name, or listing the few there are."""
    choices = sorted(c for c in set(choices) if len(c) <= MAX_HINTED)
    close = nearest(name, choices)
    if close:
        return f"; did you mean '{close}'?"
    if 0 < len(choices) <= 8:
        return "; expected one of " + ", ".join(f"'{c}'" for c in choices)
    return ""
