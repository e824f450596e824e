"""Spec files -> spec IR: a file's bytes read within the limits a spec has, decoded as
UTF-8 (a mistake placed at its byte), then parsed as text or as JSON."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError, remember_source
from mlspec.syntax.json_spec import parse_json
from mlspec.syntax.limits import MAX_SPEC_BYTES
from mlspec.syntax.parser import parse

# Spec files are small (the examples hold a few kB): a bigger one is no spec, is not read
# whole, and would take the parser seconds.
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def load(path: str | Path, span: Span | None = None, failure: str | None = None) -> ir.Spec:
    """Reads a .mlspec file, or a spec in JSON (as `mlspec export --json` writes it).

    A file that cannot be read is an error at `span` (an import's place), starting with
    `failure` ("cannot import 'x'"); its bytes must be UTF-8 (see `read_spec_text`)."""
    path = Path(path)
    text = read_spec_text(path, span, failure or f"cannot read spec '{path}'")
    if path.suffix.lower() == ".json":
        return parse_json(text, str(path))
    return parse(text, str(path))


def read_spec_text(path: Path, span: Span | None, failure: str) -> str:
    """A spec file's text: UTF-8, a leading byte order mark dropped. A file that is not
    a readable regular file, or whose bytes are not UTF-8 text, is a SpecError; its
    contents are never quoted (it may be no spec at all)."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError.at(span, f"{failure}: it is a directory, not a spec file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError.at(span, f"{failure}: it is not a regular file")
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecError.at(span, f"{failure}: it holds {info.st_size:,} bytes, more "
                                     f"than a spec may ({MAX_SPEC_BYTES:,})")
        with open(path, "rb") as file:
            data = file.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ELOOP:
            reason += " (a symlink loop)"
        raise SpecError.at(span, f"{failure}: {reason}") from None
    return decode_spec_bytes(data, str(path))


def decode_spec_bytes(data: bytes, file: str) -> str:
    """Spec bytes -> text; a mistake is reported at the first bad byte's line and column."""
    remember_source(file, "")  # an error here quotes nothing of the file
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    if data.startswith(_UTF16_BOMS) or _looks_utf16(data):
        raise SpecError.at(_byte_span(data, 0, file), "the file is UTF-16 text; a spec must "
                                                      "be UTF-8 (save it as UTF-8)")
    nul = data.find(b"\0")
    end = nul if nul >= 0 else len(data)
    try:
        text = data[:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError.at(_byte_span(data, exc.start, file), f"byte 0x{data[exc.start]:02x} "
                           "is not UTF-8; a spec file must be UTF-8 text") from None
    if nul >= 0:
        raise SpecError.at(_byte_span(data, nul, file), "a NUL byte: this is a binary file, "
                                                        "not spec text (which must be UTF-8)")
    return text


def _looks_utf16(data: bytes) -> bool:
    """UTF-16 without a byte order mark: ASCII text with a NUL in every other byte."""
    head = data[:64]
    if len(head) < 4:
        return False
    return any(head[i::2].count(0) == len(head[i::2]) and head[1 - i::2].count(0) == 0
               for i in (0, 1))


def _byte_span(data: bytes, offset: int, file: str) -> Span:
    before = data[:offset].decode("utf-8", errors="replace")
    before = before.replace("\r\n", "\n").replace("\r", "\n")  # as `parse` counts lines
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return Span(file=file, line=line, column=column, end_line=line, end_column=column + 1)
