"""A language server for .mlspec files, on pygls 2: diagnostics, completion and hover.

Start it with `serve()` (stdio). On every open, change and save it parses the buffer with
`mlspec.syntax.parser.parse` under the document's file path (so imports and CSV paths
resolve against the file's folder, even while the buffer is unsaved), validates it as
`mlspec check` does and publishes every mistake (`editor.diagnostics`). Completion asks
the parser what may come next and fills in the registries' names (`editor.completion`).
Hover shows a graph model's value with its shape (`editor.hover`).
Messages out of LSP's order are refused (`editor.stream`).

Nothing here imports jax: the catalogues and the resolver are jax-free, and optax's
signatures are read from its source files.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO
from urllib.parse import unquote

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from mlspec.editor import stream
from mlspec.editor.completion import Names, complete
from mlspec.editor.diagnostics import SOURCE, check_text, to_lsp_diagnostic
from mlspec.editor.hover import hover_text, value_shapes
from mlspec.semantics.imports import merge_imports
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError
from mlspec.syntax.limits import MAX_SPEC_BYTES
from mlspec.syntax.parser import parse
from mlspec.version import __version__

__all__ = ["create_server", "serve"]

logger = logging.getLogger(__name__)


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
        self.shapes: dict[str, tuple[int | None, dict]] = {}  # each document's graph shapes
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
        ls.shapes.pop(params.text_document.uri, None)
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

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: MlspecLanguageServer, params: types.HoverParams):
        uri = params.text_document.uri
        doc = _open_document(ls, uri)
        if doc is None or len(doc.source) > MAX_SPEC_BYTES:
            return None
        try:
            version, shapes = ls.shapes.get(uri, (None, None))
            if shapes is None or version != doc.version:
                shapes = value_shapes(doc.source, _document_path(uri))
                ls.shapes[uri] = (doc.version, shapes)
            text = hover_text(doc.source, doc.offset_at_position(params.position), shapes)
        except Exception:  # hover is best effort; never fail the request
            logger.exception("hover failed at %s", params.position)
            return None
        return None if text is None else types.Hover(contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value=text))

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
