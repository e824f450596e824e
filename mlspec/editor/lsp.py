"""A language server for .mlspec files, on pygls 2: diagnostics and completion.

Start it with `serve()` (stdio). On every open, change and save it parses the buffer with
`mlspec.syntax.parser.parse` under the document's file path (so imports and CSV paths resolve
against the file's folder, even while the buffer is unsaved), validates it as `mlspec check`
does (a library of params and blocks as one, a sweep member by member) and publishes
every mistake as an Error diagnostic with source "mlspec". Completion offers catalogue
names by context (layers and the blocks defined in the file in a model or block body; data
sources, setting names, losses, optimizers, schedules and metrics in the sections) and
argument names inside a call's parentheses (`dense(` -> `features=`, `use_bias=`;
`adam(` -> optax's argument names). Messages out of LSP's order are refused (`stream`).

Nothing here imports jax: the catalogues and the resolver are jax-free, and optax's
signatures are read from its source files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from mlspec.catalog.layers import LAYERS
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS
from mlspec.catalog.optimizers import OptaxFunction, optax_catalogue
from mlspec.catalog.sources import SOURCES
from mlspec.editor import stream
from mlspec.semantics.imports import merge_imports
from mlspec.semantics.sections import SECTIONS
from mlspec.semantics.sweep import check_spec
from mlspec.semantics.train import EarlyStop
from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, SpecError
from mlspec.syntax.limits import MAX_SPEC_BYTES
from mlspec.syntax.parser import comment_start, parse
from mlspec.version import __version__

__all__ = ["check_text", "complete", "create_server", "serve"]

logger = logging.getLogger(__name__)

SOURCE = "mlspec"
DATA_KEYS = SECTIONS["data"].setting_names()
TRAIN_KEYS = SECTIONS["train"].setting_names()
TOP_KEYWORDS = ("import", "param", "block", "model", "data", "train", "sweep")
SECTIONS = ("model", "block", "data", "train", "sweep")
# optax arguments that a spec cannot set (see catalog.optimizers._check_value)
_UNSETTABLE = ("GradientTransformation", "Callable", "MaskOrFn")

# ------------------------------------------------------------------------ diagnostics


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


# ------------------------------------------------------------------------- completion


@dataclass(frozen=True)
class Item:
    """One completion: `label` as shown, `insert` as inserted, `kind` an LSP kind."""

    label: str
    kind: types.CompletionItemKind
    detail: str
    doc: str = ""
    insert: str | None = None

    def to_lsp(self) -> types.CompletionItem:
        return types.CompletionItem(
            label=self.label, kind=self.kind, detail=self.detail,
            documentation=self.doc or None, insert_text=self.insert,
            filter_text=self.insert.rstrip("=") if self.insert else None,
        )


@dataclass
class Names:
    """What the document (and its imports) define: params and blocks with their
    parameter names."""

    params: list[str] = field(default_factory=list)
    blocks: dict[str, list[str]] = field(default_factory=dict)
    imported_params: list[str] = field(default_factory=list)
    imported_blocks: dict[str, list[str]] = field(default_factory=dict)


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+) | (?P<nl>\n) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*("|$)) | (?P<arrow>->)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*) | (?P<punct>.)
""", re.VERBOSE | re.DOTALL)


@dataclass
class Tok:
    kind: str  # name, number, string, punct (incl. "->"), nl
    text: str
    end: int


def _tokens(text: str) -> list[Tok]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        out.append(Tok("punct" if kind == "arrow" else kind, m.group(), m.end()))
    return out


@dataclass
class Frame:
    """An open bracket before the cursor."""

    bracket: str  # "{", "(" or "["
    section: str | None  # model, block, data, train, sweep (None at the top level)
    call: str | None = None  # the name before "(" (None for a grouping paren)
    block_def: bool = False  # the parameter list of `block NAME(...)`
    start: int = 0  # index of the first token inside


def document_names(text: str) -> Names:
    """Params and blocks that the text defines, found without parsing (the text being
    edited is often broken)."""
    names = Names()
    toks = [t for t in _tokens(text) if t.kind != "nl"]
    depth = 0
    for i, tok in enumerate(toks):
        if tok.text in "({[":
            depth += 1
        elif tok.text in ")}]":
            depth = max(depth - 1, 0)
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if depth or tok.kind != "name" or nxt is None or nxt.kind != "name":
            continue
        if tok.text == "param":
            names.params.append(nxt.text)
        elif tok.text == "block":
            names.blocks[nxt.text] = _block_params(toks, i + 2)
    return names


def _block_params(toks: list[Tok], i: int) -> list[str]:
    if i >= len(toks) or toks[i].text != "(":
        return []
    params, depth, expect = [], 0, True
    for tok in toks[i:]:
        if tok.text in "([{":
            depth += 1
        elif tok.text in ")]}":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and tok.text == ",":
            expect = True
        elif depth == 1 and expect and tok.kind == "name":
            params.append(tok.text)
            expect = False
    return params


def _context(tokens: list[Tok]) -> tuple[list[Frame], str | None]:
    """The brackets open before the cursor, and the keyword of the top-level statement
    the cursor is in."""
    stack: list[Frame] = []
    statement: str | None = None
    prev: Tok | None = None
    for i, tok in enumerate(tokens):
        if tok.kind == "nl":
            continue
        section = stack[-1].section if stack else statement
        if not stack and tok.kind == "name" and tok.text in TOP_KEYWORDS and (
                prev is None or prev.text in ("}",) or statement in (None, "import", "param")):
            statement = tok.text
        elif tok.text == "{":
            stack.append(Frame("{", section if stack else statement, start=i + 1))
        elif tok.text == "(":
            call = prev.text if prev is not None and prev.kind == "name" else None
            block_def = not stack and statement == "block"
            stack.append(Frame("(", section, call, block_def, start=i + 1))
        elif tok.text == "[":
            stack.append(Frame("[", section, start=i + 1))
        elif tok.text in ")}]" and stack:
            stack.pop()
            if not stack and tok.text == "}":
                statement = None
        prev = tok
    return stack, statement


def _significant(tokens: Iterable[Tok]) -> list[Tok]:
    return [t for t in tokens if t.kind != "nl"]


def _setting_key(tokens: list[Tok], start: int) -> tuple[str | None, bool]:
    """In a section's body (tokens from `start`), the setting whose value the cursor is
    in, and whether the cursor is at a key instead (the start of a new setting)."""
    body = tokens[start:]
    # split into lines at this depth: a setting starts on a new line with `path =`
    depth, key, lines = 0, None, [[]]
    for tok in body:
        if tok.text in "([{":
            depth += 1
        elif tok.text in ")]}":
            depth -= 1
        if tok.kind == "nl" and depth == 0:
            lines.append([])
        elif tok.kind != "nl":
            lines[-1].append(tok)
    for line in lines[:-1]:
        if "=" in [t.text for t in line]:
            key = "".join(t.text for t in line[: [t.text for t in line].index("=")])
    current = lines[-1]
    texts = [t.text for t in current]
    if "=" in texts:
        return "".join(texts[: texts.index("=")]), False
    previous = next((line for line in reversed(lines[:-1]) if line), [])
    if previous and previous[-1].text in ("=", "+", "-", "*", "/", ","):
        return key, False  # `loss = mse +` continued on this line
    return None, True


def complete(text: str, offset: int, names: Names | None = None) -> list[Item]:
    """Completions at `offset` (a code point index into `text`)."""
    prefix = text[:offset]
    tokens = _tokens(prefix)
    if tokens and tokens[-1].end == len(prefix):
        last = tokens[-1]
        if last.kind == "string" or (last.kind == "number") or _in_comment(prefix):
            return []
        if last.kind == "name":
            tokens = tokens[:-1]  # the word being typed
    if _in_comment(prefix):
        return []
    names = names or Names()
    local = document_names(text)
    params = _unique([*local.params, *names.imported_params])
    blocks = {**names.imported_blocks, **local.blocks}
    stack, statement = _context(tokens)
    sig = _significant(tokens)
    before = sig[-1].text if sig else None
    if not stack:
        if before in ("=", "+", "-", "*", "/", "("):
            return _param_items(params)
        return [Item(k, types.CompletionItemKind.Keyword, "keyword") for k in TOP_KEYWORDS]
    frame = stack[-1]
    section = frame.section
    inner = _significant(tokens[frame.start:])
    if frame.bracket == "(":
        if frame.block_def:
            at_value = len(inner) >= 1 and inner[-1].text == "="
            return _layer_items(blocks) if at_value else []
        return _call_items(frame, inner, section, stack, tokens, params, blocks)
    if frame.bracket == "[":
        key = _enclosing_key(stack, tokens)
        if section == "train" and key == "metrics":
            return _metric_items()
        return _param_items(params)
    # a brace
    if section in ("model", "block"):
        items = _layer_items(blocks)
        if section == "block":
            block_name = _current_block_name(tokens)
            items += _param_items(blocks.get(block_name, []), "block parameter")
        if section == "model" and len(stack) == 1 and not inner:
            items.append(Item("input", types.CompletionItemKind.Keyword, "keyword",
                              "the input shape: input [28, 28, 1]"))
        return items
    if len(stack) == 1 and section in ("data", "train", "sweep"):
        key, at_key = _setting_key(tokens, frame.start)
        if at_key:
            return _setting_items(section, params)
        return _value_items(section, key, params)
    return []


def _in_comment(prefix: str) -> bool:
    return comment_start(prefix.rsplit("\n", 1)[-1]) is not None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _current_block_name(tokens: list[Tok]) -> str | None:
    stack, _ = _context(tokens)
    sig = _significant(tokens[: stack[0].start - 1]) if stack else []
    for i in range(len(sig) - 1, 0, -1):
        if sig[i - 1].text == "block" and sig[i].kind == "name":
            return sig[i].text
    return None


def _enclosing_key(stack: list[Frame], tokens: list[Tok]) -> str | None:
    """The setting that the outermost section frame is at (for `metrics = [...]`)."""
    if not stack or stack[0].bracket != "{":
        return None
    key, _ = _setting_key(tokens, stack[0].start)
    return key


def _call_items(frame: Frame, inner: list[Tok], section, stack, tokens, params, blocks):
    depth0 = _top_level(inner)  # this call's own tokens, nested brackets left out
    before = depth0[-1].text if depth0 else "("
    argument = None
    if before == "=" and len(depth0) >= 2 and depth0[-2].kind == "name":
        argument = depth0[-2].text
    elif before not in ("(", ","):
        return []
    if frame.call is None:  # a grouping paren: a value
        key = _enclosing_key(stack, tokens) if section in ("data", "train") else None
        return _value_items(section, key, params) if section in ("data", "train") \
            else _param_items(params)
    arguments, what = _arguments(frame.call, section, blocks)
    if argument is not None:
        return _argument_value_items(frame.call, argument, what, section, params, blocks)
    given = {depth0[i - 1].text for i in range(1, len(depth0))
             if depth0[i].text == "=" and depth0[i - 1].kind == "name"}
    items = [Item(f"{name}=", types.CompletionItemKind.Field, f"argument of {what}",
                  insert=f"{name}=") for name in arguments if name not in given]
    return items + _positional_value_items(frame.call, what, section, params, blocks)


def _top_level(tokens: list[Tok]) -> list[Tok]:
    """The tokens outside any bracket that opens among them (closing brackets kept)."""
    out, depth = [], 0
    for tok in tokens:
        if tok.text in "([{":
            depth += 1
        elif tok.text in ")]}":
            depth -= 1
        if depth == 0:
            out.append(tok)
    return out


def _arguments(call: str, section: str | None, blocks: dict[str, list[str]]):
    """The argument names of a call, and what it is ("layer 'dense'")."""
    optax = optax_catalogue()
    lookups = {
        "layer": lambda: LAYERS.get(call) and LAYERS.get(call).argument_names(),
        "block": lambda: blocks.get(call),
        "data source": lambda: SOURCES.get(call) and SOURCES.get(call).argument_names(),
        "loss": lambda: LOSSES.get(call) and LOSSES.get(call).argument_names(),
        "optax": lambda: call in optax and _optax_arguments(optax[call]),
        "setting": lambda: call == "early_stop" and EarlyStop.argument_names(),
    }
    order = {"model": ("block", "layer"), "block": ("block", "layer"),
             "data": ("data source",), "train": ("optax", "loss", "setting")}.get(section, ())
    for what in (*order, *lookups):
        found = lookups[what]()
        if found is not None and found is not False:
            if what == "optax":
                what = optax[call].kind
            return list(found), f"{what} '{call}'"
    return [], f"'{call}'"


def _optax_arguments(fn: OptaxFunction) -> list[str]:
    return [a.name for a in fn.arguments if not any(t in a.annotation for t in _UNSETTABLE)]


def _argument_value_items(call, argument, what, section, params, blocks) -> list[Item]:
    items = _param_items(params)
    if what.startswith(("optimizer", "schedule")):
        fn = optax_catalogue().get(call)
        arg = fn.argument(argument) if fn else None
        if arg is not None and "Schedule" in arg.annotation:
            items += _optax_items("schedule")
        if arg is not None and arg.annotation.replace("Optional[", "").startswith("bool"):
            items += _constant_items(("true", "false"))
    elif what.startswith("setting 'early_stop'"):
        if argument == "metric":
            items += [Item(m, types.CompletionItemKind.EnumMember, "recorded metric")
                      for m in _recorded_metrics()]
        elif argument == "mode":
            items += _constant_items(("min", "max"))
    elif what.startswith("block"):
        items += _layer_items(blocks)
    elif what.startswith("layer") and section in ("model", "block"):
        cls = LAYERS.get(call)
        annotation = cls.model_fields[argument].annotation if cls and \
            argument in cls.model_fields else None
        if annotation is bool:
            items += _constant_items(("true", "false"))
        if argument == "padding":
            items += _constant_items(('"SAME"', '"VALID"'))
    if section in ("model", "block") and "classes" not in params:
        items.append(Item("classes", types.CompletionItemKind.Constant,
                          "the number of classes in the data"))
    return items


def _positional_value_items(call, what, section, params, blocks) -> list[Item]:
    items = _param_items(params)
    if section in ("model", "block"):
        items.append(Item("classes", types.CompletionItemKind.Constant,
                          "the number of classes in the data"))
        if what.startswith("block"):
            items += _layer_items(blocks)
    if what.startswith("optimizer"):
        items += _optax_items("schedule")
    return items


def _recorded_metrics() -> list[str]:
    out = []
    for name, metric in METRICS.items():
        if metric.scope == "split":
            out += [f"train.{name}", f"valid.{name}"]
        else:
            out.append(name)
    return out


def _constant_items(values: Iterable[str]) -> list[Item]:
    return [Item(v, types.CompletionItemKind.Constant, "value") for v in values]


def _param_items(params: Iterable[str], detail: str = "param") -> list[Item]:
    return [Item(p, types.CompletionItemKind.Variable, detail) for p in params]


def _entry_signature(name: str, cls) -> str:
    parts = []
    for arg in cls.argument_names():
        f = cls.model_fields[arg]
        parts.append(arg if f.is_required() else f"{arg}={_format_default(f.default)}")
    return f"{name}({', '.join(parts)})" if parts else name


def _format_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_format_default(v) for v in value) + "]"
    return "none" if value is None else str(value)


def _entry_doc(name: str, cls) -> str:
    return f"{_entry_signature(name, cls)}\n\n{(cls.__doc__ or '').strip()}".strip()


def _layer_items(blocks: dict[str, list[str]]) -> list[Item]:
    items = [Item(name, types.CompletionItemKind.Class, "layer", _entry_doc(name, cls))
             for name, cls in LAYERS.items()]
    items += [Item(name, types.CompletionItemKind.Module, "block",
                   f"block {name}({', '.join(ps)})") for name, ps in blocks.items()]
    return items


def _catalogue_items(registry, detail: str, kind) -> list[Item]:
    return [Item(name, kind, detail, _entry_doc(name, cls)) for name, cls in registry.items()]


def _metric_items() -> list[Item]:
    return [Item(name, types.CompletionItemKind.EnumMember,
                 "metric" if m.scope == "split" else "training metric", m.doc.strip())
            for name, m in METRICS.items()]


def _optax_items(kind: str) -> list[Item]:
    items = []
    for name, fn in sorted(optax_catalogue().items()):
        if fn.kind != kind:
            continue
        args = ", ".join(a.name if a.required else f"{a.name}={a.default}"
                         for a in fn.arguments)
        items.append(Item(name, types.CompletionItemKind.Function, f"{kind} (optax)",
                          f"optax.{name}({args})\n\n{fn.summary}".strip()))
    return items


def _setting_items(section: str, params: list[str]) -> list[Item]:
    kind = types.CompletionItemKind.Property
    if section == "data":
        return [Item(k, kind, "data setting") for k in DATA_KEYS]
    if section == "train":
        return [Item(k, kind, "train setting") for k in TRAIN_KEYS]
    # sweep: params, and settings by path
    return _param_items(params) + [Item(f"train.{k}", kind, "train setting")
                                   for k in TRAIN_KEYS if k not in ("loss", "optimizer")]


def _value_items(section: str | None, key: str | None, params: list[str]) -> list[Item]:
    items = _param_items(params)
    if section == "data":
        if key in ("train", "valid", "test", "source"):
            items += _catalogue_items(SOURCES, "data source",
                                      types.CompletionItemKind.Constructor)
        elif key == "standardize":
            items += _constant_items(("true", "false"))
    elif section == "train":
        if key == "loss":
            items += _catalogue_items(LOSSES, "loss", types.CompletionItemKind.Function)
        elif key == "optimizer":
            items += _optax_items("optimizer")
        elif key == "metrics":
            items += _metric_items()
        elif key == "early_stop":
            items.append(Item("early_stop", types.CompletionItemKind.Function, "setting",
                              _entry_doc("early_stop", EarlyStop)))
        elif key == "devices":
            items += _constant_items(("all",))
    return items


# ----------------------------------------------------------------------------- server


class _Protocol(LanguageServerProtocol):
    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        # pygls raises KeyError on a change to a document that is not open (one never
        # opened, or one forgotten as too large): there is no text to change
        if _open_document(self._server, params.text_document.uri) is None:
            logger.warning("a change to a document that is not open: ignored")
            return
        yield from super().lsp_text_document__did_change(params)


class MlspecLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("mlspec", __version__, protocol_cls=_Protocol)
        self.names: dict[str, Names] = {}  # imported names of each document's last parse
        # where the session is, for `stream` to refuse what LSP's order forbids
        self.initialized = False
        self.shut_down = False

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
        """Serves stdin/stdout with mlspec's message loop (`stream`), which bounds what
        it reads and answers bad messages, where pygls's dies or logs tracebacks. Returns
        the exit status: 1 for an `exit` without `shutdown` before it, as LSP says."""
        code = 0
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        reader = stream.StreamReader(stdin or sys.stdin.buffer, self.thread_pool)
        try:
            asyncio.run(stream.read_messages(self, reader))
        except BrokenPipeError:
            logger.error("the connection to the client is lost: stopping")
        except KeyboardInterrupt:
            pass
        except SystemExit as exc:  # pygls's `exit`
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            self.shutdown()
        return code

    def forget_document(self, uri: str, message: str) -> None:
        """Drops a document whose text the server could not take (the client's copy and
        the server's no longer match) and says why on it."""
        if not self.initialized or self.shut_down:  # no documents are held
            return
        self.workspace.remove_text_document(uri)
        self.names.pop(uri, None)
        origin = types.Position(line=0, character=0)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=[types.Diagnostic(
                range=types.Range(start=origin, end=origin), message=message,
                severity=types.DiagnosticSeverity.Error, source=SOURCE)]))


def _open_document(server: LanguageServer, uri: str) -> TextDocument | None:
    """The document the client opened at `uri`; None for any other (pygls would read
    the file from disk, or fail when there is none)."""
    return server.workspace.text_documents.get(unquote(uri))


def _document_path(uri: str) -> str | None:
    if not uri.startswith("file:"):
        return None
    return to_fs_path(uri)


def _imported_names(text: str, path: str | None) -> tuple[Names, Sequence[ir.Import]] | None:
    if len(text) > MAX_SPEC_BYTES:  # check_text says why
        return None
    try:
        spec = parse(text, path or "<buffer>").model_copy(update={"path": path})
    except SpecError:
        return None
    names = Names()
    try:
        merged = merge_imports(spec)
    except SpecError:
        return names, spec.imports
    except Exception:  # a bug in mlspec: the diagnostics (check_text) still go out
        logger.exception("mlspec failed on the imports of %s", path)
        return names, spec.imports
    local = {p.name for p in spec.params} | {b.name for b in spec.blocks}
    names.imported_params = [p.name for p in merged.params if p.name not in local]
    names.imported_blocks = {b.name: [p.name for p in b.params] for b in merged.blocks
                             if b.name not in local}
    return names, spec.imports


def validate(server: MlspecLanguageServer, uri: str) -> None:
    doc = _open_document(server, uri)
    if doc is None:  # saved without being open, or forgotten: nothing to check
        return
    text, path = doc.source, _document_path(uri)
    found = _imported_names(text, path)
    imports: Sequence[ir.Import] = ()
    if found is not None:
        server.names[uri], imports = found
    units = doc.position_codec.client_num_units
    diagnostics = [to_lsp_diagnostic(d, text, path, imports, units)
                   for d in check_text(text, path)]
    server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, version=doc.version, diagnostics=diagnostics))


def create_server() -> MlspecLanguageServer:
    server = MlspecLanguageServer()

    # pygls runs these after its own handling: the workspace exists, or the server stops
    @server.feature(types.INITIALIZE)
    def initialize(ls: MlspecLanguageServer, params: types.InitializeParams):
        ls.initialized = True

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: MlspecLanguageServer, params: Any):
        ls.shut_down = True

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: MlspecLanguageServer, params: types.DidOpenTextDocumentParams):
        validate(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: MlspecLanguageServer, params: types.DidChangeTextDocumentParams):
        validate(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: MlspecLanguageServer, params: types.DidSaveTextDocumentParams):
        validate(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: MlspecLanguageServer, params: types.DidCloseTextDocumentParams):
        ls.names.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=["(", ",", "=", "[", ">"]))
    def completion(ls: MlspecLanguageServer, params: types.CompletionParams):
        doc = _open_document(ls, params.text_document.uri)
        if doc is None:  # nothing is known of a document that is not open
            return types.CompletionList(is_incomplete=False, items=[])
        try:
            offset = doc.offset_at_position(params.position)
            items = complete(doc.source, offset, ls.names.get(params.text_document.uri))
        except Exception:  # completion is best effort; never fail the request
            logger.exception("completion failed at %s", params.position)
            items = []
        return types.CompletionList(is_incomplete=False, items=[i.to_lsp() for i in items])

    return server


def serve() -> None:
    """Runs the language server on stdin/stdout until the client says exit."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="mlspec-lsp %(levelname)s %(name)s: %(message)s")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol stream
    code = create_server().start_io(stdin, stdout)
    if code:
        sys.exit(code)
