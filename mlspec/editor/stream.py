"""The language server's message loop: LSP's Content-Length framing read with bounded
memory, and every message checked before pygls sees it.

pygls's own loop trusts the stream: a header `Content-Length: 99999999999` makes it
allocate the body (MemoryError, and the server dies), and a body that is not JSON, not an
object or of the wrong field types is logged with a traceback and never answered. Here a
body longer than `MAX_MESSAGE_BYTES` is skipped a chunk at a time (a request in it is
answered with an error, a document in it gets a diagnostic), a header line found inside
it starts the next message (so a lying length loses only its own message), and a bad
message is answered with the JSON-RPC error for it, logged on one line. Messages out of
LSP's order (before `initialize`, after `shutdown`) are refused as LSP says, unread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from cattrs import ClassValidationError, transform_error
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    ResponseErrorMessage,
)

from mlspec.syntax.limits import MAX_SPEC_BYTES

__all__ = ["MAX_MESSAGE_BYTES", "read_messages"]

logger = logging.getLogger(__name__)

# A message holds at most one document: a spec of MAX_SPEC_BYTES, which JSON writes in at
# most 6 bytes a byte (`\u0001`), and a few fields around it.
MAX_MESSAGE_BYTES = 6 * MAX_SPEC_BYTES + 2**16
_LINE = 2**12  # header lines are short; a longer one is not a header
_CHUNK = 2**16
_HEAD = 2**12  # what is kept of a skipped body, to find its id
_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?\n\Z", re.I)
_HEADER = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+[ \t]*:[^\r\n]*\r?\n\Z")
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\\r\n]|\\.){0,256}")')
_METHOD = re.compile(rb'"method"\s*:\s*("(?:[^"\\\r\n]|\\.){0,256}")')
_IS_REQUEST = re.compile(rb'"method"\s*:')
_URI = re.compile(rb'"uri"\s*:\s*("(?:[^"\\\r\n]|\\.){1,4096}")')

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
SERVER_NOT_INITIALIZED = -32002


class StreamReader:
    """Blocking reads of a binary stream, run in an executor."""

    def __init__(self, stream: BinaryIO, executor) -> None:
        self.stream = stream
        self.executor = executor

    def _run(self, fn: Callable[[int], bytes], n: int) -> Awaitable[bytes]:
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, n)

    def readline(self, limit: int) -> Awaitable[bytes]:
        return self._run(self.stream.readline, limit)

    def read(self, n: int) -> Awaitable[bytes]:
        return self._run(self.stream.read, n)


async def read_messages(server, reader: StreamReader) -> None:
    """Reads, checks and dispatches messages until the stream ends or the server stops."""
    length: int | None = None
    headers = False  # a header line of the coming message was read
    carry = b""  # the end of a line cut at _LINE bytes, where a header may start
    warned = False  # one warning for a run of garbage
    while not server._stop_event.is_set():
        line = await reader.readline(_LINE)
        if not line:
            return
        if line in (b"\r\n", b"\n") and not carry:
            if length is None:
                if headers:
                    logger.warning("a message without a Content-Length header: skipped")
                headers = False
                continue
            size, length, headers, warned = length, None, False, False
            if size > MAX_MESSAGE_BYTES:
                ended, length = await _skip(server, reader, size)
                if ended:
                    return
                headers = length is not None
                continue
            body = await reader.read(size)
            if len(body) < size:
                logger.warning("the stream ended inside a message")
                return
            handle_body(server, body)
            continue
        found = _CONTENT_LENGTH.search(carry + line)
        if found:
            length, headers = _length(found), True
        elif _HEADER.match(line):
            headers = True  # Content-Type, or one that LSP may add
        elif not warned:
            logger.warning("bytes that are not an LSP header: skipped up to the next one")
            warned = True
        carry = b"" if line.endswith(b"\n") else line[-64:]


def _length(found: re.Match) -> int:
    digits = found.group(1)
    return int(digits) if len(digits) <= 18 else sys.maxsize  # any length past the cap


async def _skip(server, reader: StreamReader, size: int) -> tuple[bool, int | None]:
    """Reads past a body too long to hold, a chunk at a time. Returns whether the stream
    ended, and the length of the next message when its header turned up inside."""
    logger.warning("a message of %s bytes, more than the server reads (%s): skipped",
                   f"{size:,}", f"{MAX_MESSAGE_BYTES:,}")
    head, tail, left, following = b"", b"", size, None
    while left > 0:
        chunk = await reader.readline(min(_CHUNK, left))
        if not chunk:
            break
        left -= len(chunk)
        # JSON holds no raw line break inside a string, so a header line here means the
        # length was a lie and the next message starts
        found = _CONTENT_LENGTH.search(tail + chunk)
        if found:
            head += chunk[: max(found.start() - len(tail), 0)][: _HEAD - len(head)]
            following = _length(found)
            break
        head += chunk[: _HEAD - len(head)]
        tail = chunk[-64:]
    _answer_skipped(server, head, size)
    return left > 0 and following is None, following


def _answer_skipped(server, head: bytes, size: int) -> None:
    """A request in a skipped body gets an error; a document in it gets a diagnostic
    (and the server forgets its copy, which no longer matches the client's)."""
    method = _found(_METHOD.search(head))
    reason = (f"the message holds {size:,} bytes, more than the mlspec language server "
              f"reads ({MAX_MESSAGE_BYTES:,})")
    msg_id = _request_id(head)
    if msg_id is not None:
        send_error(server.protocol, msg_id, INVALID_REQUEST, reason)
    if method in ("textDocument/didOpen", "textDocument/didChange"):
        uri = _found(_URI.search(head))
        if isinstance(uri, str):
            server.forget_document(uri, f"the document is too large to check: {reason}")


def _request_id(head: bytes):
    """The id of the request that `head` (the start of a body that cannot be read)
    begins, if it shows one before its params; None for anything else."""
    if _IS_REQUEST.search(head) is None:
        return None  # a response: never answered
    params = head.find(b'"params"')
    return _found(_ID.search(head, 0, params if params >= 0 else len(head)))


def _found(found: re.Match | None):
    """The JSON value (a string or a number) that a pattern matched, or None."""
    try:
        return None if found is None else json.loads(found.group(1))
    except ValueError:
        return None


def handle_body(server, body: bytes) -> None:
    """Checks one message's body and hands it to pygls. A bad one is logged on one line,
    without quoting it, and answered as JSON-RPC says: a request with its id; a body
    whose id cannot be known with a null id (or the id that its text shows)."""
    protocol = server.protocol
    try:
        data = json.loads(body)
    except RecursionError:
        return _fail(protocol, PARSE_ERROR, "the message is nested too deeply", True,
                     _request_id(body[:_HEAD]))
    except UnicodeDecodeError:
        return _fail(protocol, PARSE_ERROR, "the message is not UTF-8 text", True,
                     _request_id(body[:_HEAD]))
    except ValueError as exc:  # json.JSONDecodeError, and ints of over 4300 digits
        reason = (f"the message is not JSON: {exc.msg} (line {exc.lineno}, column "
                  f"{exc.colno})" if isinstance(exc, json.JSONDecodeError)
                  else "the message holds a number too long to read")
        return _fail(protocol, PARSE_ERROR, reason, True, _request_id(body[:_HEAD]))
    if not isinstance(data, dict):
        return _fail(protocol, INVALID_REQUEST,
                     f"a message must be a JSON object, not {_json_type(data)}", True)
    msg_id, method = data.get("id"), data.get("method")
    if "id" in data and (isinstance(msg_id, bool) or not isinstance(msg_id, (int, str))):
        if msg_id is None and "method" not in data:  # the client answers a null id
            return _fail(protocol, INVALID_REQUEST, "a response without an id", False)
        return _fail(protocol, INVALID_REQUEST, "a message's id must be a number or a "
                     f"string, not {_json_type(msg_id)}", True)
    request = "id" in data and "method" in data  # only requests are answered
    if "method" not in data and "id" not in data:
        return _fail(protocol, INVALID_REQUEST, "a message must have a method (a request "
                     "or notification) or an id (a response)", True)
    if data.get("jsonrpc") != "2.0":
        return _fail(protocol, INVALID_REQUEST, 'a message must say "jsonrpc": "2.0"',
                     request, msg_id)
    if "method" in data and not isinstance(method, str):
        return _fail(protocol, INVALID_REQUEST, "a message's method must be a string, not "
                     f"{_json_type(method)}", request, msg_id)
    if _out_of_order(server, method, request, msg_id):
        return None
    what = method or "a response"
    try:
        message = _structure(protocol, data)
    except (ClassValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        problems = "; ".join(transform_error(exc)[:3]) \
            if isinstance(exc, ClassValidationError) else type(exc).__name__
        reason = f"{what}: the message does not fit the protocol: {problems}"
        uri = _get(data, "params", "textDocument", "uri")
        if method in ("textDocument/didOpen", "textDocument/didChange") and \
                isinstance(uri, str):  # the client thinks the server holds its text
            server.forget_document(uri, "the language server could not take this "
                                        f"document's text: {reason}")
        return _fail(protocol, INVALID_PARAMS, reason, request, msg_id)
    try:
        protocol.handle_message(message)
    except Exception:  # a bug in mlspec or pygls: keep serving the next message
        logger.exception("the language server failed on %s", what)
    return None


def _out_of_order(server, method: str | None, request: bool, msg_id) -> bool:
    """Refuses a message that LSP's order forbids (answering a request, dropping a
    notification), before its params are read: before `initialize` only `initialize` and
    `exit` are taken (a request gets ServerNotInitialized), after `shutdown` only `exit`
    (a request gets InvalidRequest), and `initialize` is taken once."""
    if method is None or method == "exit":  # a response, or the end: always taken
        return False
    if server.shut_down:
        reason, code = f"{method} after shutdown", INVALID_REQUEST
    elif not server.initialized:
        if method == "initialize" and request:
            return False
        reason, code = f"{method} before initialize", SERVER_NOT_INITIALIZED
    elif method == "initialize":
        reason, code = "initialize again: the server is initialized", INVALID_REQUEST
    else:
        return False
    _fail(server.protocol, code, reason, request, msg_id)
    return True


def _structure(protocol, data: dict[str, Any]):
    """The message as pygls's types (pygls's structure_message, without its traceback)."""
    converter = protocol._converter
    if "id" in data:
        if "error" in data:
            return converter.structure(data, ResponseErrorMessage)
        if "method" in data:
            kind = protocol.get_message_type(data["method"]) or JsonRPCRequestMessage
            return converter.structure(data, kind)
        kind = protocol._result_types.pop(data["id"], None) or JsonRPCResponseMessage
        return converter.structure(data, kind)
    kind = protocol.get_message_type(data["method"]) or JsonRPCNotification
    return converter.structure(data, kind)


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _fail(protocol, code: int, reason: str, answer: bool, msg_id=None) -> None:
    logger.warning("%s%s", reason, ": answered with an error" if answer else ": ignored")
    if answer:
        send_error(protocol, msg_id, code, reason)


def send_error(protocol, msg_id, code: int, message: str) -> None:
    protocol._send_data({"jsonrpc": "2.0", "id": msg_id,
                         "error": {"code": code, "message": message}})
