"""Diagnostics for the language server: a buffer's mistakes as `mlspec check` finds them,
placed as LSP wants (0-based lines, positions in the client's code units)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types

from mlspec.semantics.sweep import check_spec
from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, SpecError
from mlspec.syntax.limits import MAX_SPEC_BYTES
from mlspec.syntax.parser import parse

__all__ = ["SOURCE", "check_text", "to_lsp_diagnostic"]

logger = logging.getLogger(__name__)

SOURCE = "mlspec"


def check_text(text: str, path: str | None) -> list[Diagnostic]:
    """Every mistake in a spec's text, as mlspec diagnostics (empty when valid).

    `path` is the spec's file (it need not hold `text`): imports and data paths resolve
    against its folder. Without one they resolve against the working directory.
    """
    file = path or "<buffer>"
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SPEC_BYTES:  # as for a file: the parser would take seconds and more
        return [Diagnostic(message=f"{file}: the document holds {size:,} bytes, more than a "
                                   f"spec may ({MAX_SPEC_BYTES:,})")]
    try:
        spec = parse(text, file)
        spec = spec.model_copy(update={"path": path})
        check_spec(spec)  # as `mlspec check` does
    except SpecError as exc:
        return list(exc.diagnostics)
    except Exception as exc:  # a bug in mlspec: say so rather than go silent
        logger.exception("mlspec failed on %s", file)
        return [Diagnostic(message=f"internal error in mlspec: {type(exc).__name__}: {exc}")]
    return []


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _client_position(lines: Sequence[str], line: int, column: int, units=_utf16_units):
    """A 1-based (line, code point column) -> an LSP position (0-based, client units)."""
    row = max(line - 1, 0)
    col = max(column - 1, 0)
    text = lines[row] if row < len(lines) else ""
    return types.Position(line=row, character=units(text[:col]))


def to_lsp_diagnostic(diag: Diagnostic, text: str, path: str | None,
                      imports: Sequence[ir.Import] = (), units=_utf16_units) -> types.Diagnostic:
    """An mlspec diagnostic -> an LSP one. Spans are 1-based with the end exclusive; LSP
    positions are 0-based (and so exclusive at the end too). A diagnostic in another file
    (an imported one) is shown at the import that brings it in, naming its place."""
    lines = text.split("\n")  # lark counts lines by "\n" only
    span = diag.span
    message = diag.message
    if span is not None and path is not None and span.file != path:
        message = f"{span.file}:{span.line}:{span.column}: {message}"
        span = _import_span(span.file, imports, path)
    if span is None:
        start = end = types.Position(line=0, character=0)
    else:
        start = _client_position(lines, span.line, span.column, units)
        end = _client_position(lines, span.end_line, span.end_column, units)
    return types.Diagnostic(
        range=types.Range(start=start, end=end), message=message,
        severity=types.DiagnosticSeverity.Error, source=SOURCE,
    )


def _import_span(file: str, imports: Sequence[ir.Import], path: str):
    # realpath, not Path.resolve, which raises on a symlink loop
    folder = Path(path).parent
    target = os.path.realpath(file)
    for imp in imports:
        if imp.span is not None and os.path.realpath(folder / imp.path) == target:
            return imp.span
    return next((imp.span for imp in imports if imp.span is not None), None)
