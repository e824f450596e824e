"""Editor support: the Pygments lexer and the language server (spoken to over stdio)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from mlspec.editor.completion import complete
from mlspec.editor.diagnostics import check_text, to_lsp_diagnostic
from mlspec.editor.lexer import MlspecLexer

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.mlspec"))
TIMEOUT = 30.0

# ------------------------------------------------------------------------------ lexer


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_lexer_has_no_error_tokens(path):
    text = path.read_text()
    tokens = list(MlspecLexer(stripnl=False).get_tokens(text))
    errors = [value for token, value in tokens if token in Error]
    assert errors == []
    assert "".join(value for _, value in tokens).rstrip("\n") == text.rstrip("\n")


def _significant(text: str) -> list[tuple[object, str]]:
    return [(t, v) for t, v in MlspecLexer().get_tokens(text) if v.strip()]


def test_lexer_marks_the_parts_of_a_spec():
    text = (
        '# a comment\n'
        'import "common/blocks.mlspec"\n'
        'param lr = 1e-3\n'
        'model net {\n'
        '    dense(2, use_bias=false) -> relu\n'
        '}\n'
        'train {\n'
        '    loss = mse + 0.5 * l2\n'
        '    optimizer = adam(learning_rate=lr)\n'
        '    steps = 100\n'
        '}\n'
        'sweep { train.seed = [0, 1] }\n'
    )
    tokens = _significant(text)
    kinds = dict((v, t) for t, v in reversed(tokens))  # first occurrence of each text
    assert kinds["# a comment"] in Comment
    assert kinds["import"] in Keyword and kinds["param"] in Keyword
    assert kinds["model"] in Keyword and kinds["train"] in Keyword
    assert kinds["sweep"] in Keyword and kinds["false"] in Keyword.Constant
    assert kinds["lr"] in Name.Variable and kinds["net"] in Name.Class
    assert kinds["1e-3"] in Number.Float and kinds["2"] in Number.Integer
    assert kinds["100"] in Number.Integer and kinds["0.5"] in Number.Float
    assert kinds["->"] in Operator and kinds["+"] in Operator and kinds["="] in Operator
    assert kinds["dense"] in Name.Function and kinds["adam"] in Name.Function
    assert kinds["use_bias"] in Name.Attribute and kinds["learning_rate"] in Name.Attribute
    assert kinds["loss"] in Name.Property and kinds["train.seed"] in Name.Property
    assert kinds["common/blocks.mlspec"] in String
    assert kinds["relu"] is Name


def test_lexer_is_found_by_pygments_name_and_keeps_keywords_in_paths():
    from pygments.lexers import get_lexer_by_name

    try:
        lexer = get_lexer_by_name("mlspec")
    except Exception:  # the entry point is not installed in this environment yet
        lexer = MlspecLexer()
    tokens = _significant("train { early_stop = early_stop(metric=train.loss) }")
    assert isinstance(lexer, MlspecLexer)
    assert (Keyword, "train") == tokens[0]
    assert (Name, "train") in tokens  # in `train.loss` it is a path, not the keyword


# --------------------------------------------------------------------------- completion


def _labels(text: str) -> list[str]:
    offset = text.index("|")
    return [item.label for item in complete(text.replace("|", "", 1), offset)]


def test_completion_by_context():
    head = "param width = 8\nblock mlp(n, act=relu) {\n    dense(n) -> |\n}\n"
    assert {"dense", "relu", "mlp", "act"} <= set(_labels(head))
    model = "block mlp(n, act=relu) { dense(n) }\nmodel m {\n    dense(2) -> re|\n}\n"
    assert {"relu", "residual", "mlp"} <= set(_labels(model))
    assert "adam" not in _labels(model)
    assert _labels("model m {\n    dense(|\n}")[:2] == ["features=", "use_bias="]
    assert "use_bias=" in _labels("model m {\n    dense(2, |)\n}")
    assert "features=" not in _labels("model m {\n    dense(features=2, |)\n}")
    assert {"true", "false"} <= set(_labels("model m { dense(2, use_bias=|) }"))
    assert {"n=", "act="} <= set(_labels("block mlp(n, act=relu) { dense(n) }\n"
                                         "model m { mlp(|) }"))
    assert {"learning_rate=", "b1=", "b2="} <= set(_labels("train { optimizer = adam(|) }"))
    assert "cosine_decay_schedule" in _labels("train { optimizer = adam(learning_rate=|) }")
    assert "adam" in _labels("train {\n    optimizer = |\n}")
    assert "softmax_cross_entropy" in _labels("train {\n    loss = |\n}")
    assert "l2" in _labels("train {\n    loss = mse +\n        |\n}")
    assert "accuracy" in _labels("train {\n    metrics = [loss, |]\n}")
    assert "epochs" in _labels("train {\n    loss = mse\n    |\n}")
    assert "valid.loss" in _labels("train { early_stop = early_stop(metric=|) }")
    assert "hill" in _labels("data {\n    train = |\n}")
    assert _labels("data {\n    train = hill(|)\n}") == ["n=", "seed="]
    assert "standardize" in _labels("data {\n    |\n}")
    assert "model" in _labels("|") and "model" in _labels("model m { relu }\n|")
    assert _labels("model m { # dense(|\n}") == []
    assert _labels('data { source = csv("a(|") }') == []


def test_completion_follows_the_grammar_and_the_types():
    """Where a name stands comes from the parser: a value that goes on over lines, a
    setting after a whole one, a keyword only where a statement may start; the constants
    offered come from the setting's or the argument's type."""
    assert "standardize" in _labels("data {\n    source = csv(\n        \"a.csv\")\n    |\n}")
    assert "hill" in _labels("data {\n    train =\n        |\n}")
    assert "model" not in _labels("train {\n    |\n}")
    assert "input" in _labels("model m {\n    |\n}")
    assert "input" not in _labels("model m {\n    dense(2)\n    |\n}")
    assert _labels("train { devices = | }") == ["all"]
    assert _labels("train { early_stop = early_stop(mode=|) }") == ["min", "max"]
    assert {'"SAME"', '"VALID"'} <= set(_labels("model m { conv(4, 3, padding=|) }"))
    # a Literal that is no symbol is a string: bare, `task=class` is an undefined name
    assert _labels('data { train = csv("a.csv", task=|) }') == ['"auto"', '"class"', '"real"']
    # a broken statement before the cursor: completion goes on from the statement it is in
    assert _labels("param x = 1 @ 2\nmodel m {\n    dense(|\n}")[:2] == ["features=",
                                                                            "use_bias="]
    assert {"data.source", "train.seed", "x"} <= set(_labels("param x = 1\nsweep {\n    |\n}"))


def test_diagnostic_positions_are_zero_based_utf16():
    # "😀" is one code point (one column for the parser) but two UTF-16 code units
    text = 'model m {\n    input [2]\n    conv(2, 3, padding="é😀") -> dens(2)\n}\n'
    (diag,) = [d for d in check_text(text, None) if "'dens'" in d.message]
    assert (diag.span.line, diag.span.column) == (3, 33)
    lsp = to_lsp_diagnostic(diag, text, None)
    assert (lsp.range.start.line, lsp.range.start.character) == (2, 33)
    assert (lsp.range.end.line, lsp.range.end.character) == (2, 37)
    assert lsp.severity == 1 and lsp.source == "mlspec"


def test_diagnostic_in_an_imported_file_is_shown_at_the_import(tmp_path):
    (tmp_path / "common.mlspec").write_text("param width = \n")
    path = tmp_path / "main.mlspec"
    text = 'param lr = 0.1\nimport "common.mlspec"\nmodel m { input [2] dense(2) }\n'
    from mlspec.syntax.parser import parse

    imports = parse(text, str(path)).imports
    (diag,) = check_text(text, str(path))
    lsp = to_lsp_diagnostic(diag, text, str(path), imports)
    assert lsp.range.start.line == 1 and lsp.range.start.character == 0
    assert "common.mlspec:1:13: " in lsp.message and "unexpected end of file" in lsp.message


LIBRARY = "param width = 3\nblock head(n, act=relu) {\n    dense(n) -> act\n}\n"
SWEPT = """param hidden = 4
model net {
    input [2]
    dense(hidden) -> relu
    dense(2)
}
data { train = hill(n=20, seed=0) }
train {
    loss = softmax_cross_entropy
    optimizer = sgd(learning_rate=0.1)
    steps = 2
}
sweep {
    hidden = [2, 0]
}
"""


@pytest.mark.parametrize("name,text", [
    ("library.mlspec", LIBRARY),
    ("wrong_library.mlspec", LIBRARY.replace("dense(n)", "dens(n)") + "block b() { x }\n"),
    ("library_of_a_wrong_import.mlspec", 'import "wrong_library.mlspec"\n'),
    ("swept.mlspec", SWEPT),  # a member of the grid is wrong: check says so at its place
], ids=["library", "wrong_library", "imports_a_wrong_library", "wrong_sweep_member"])
def test_diagnostics_are_those_of_mlspec_check(name, text, tmp_path, capsys):
    from mlspec.cli import main

    (tmp_path / "wrong_library.mlspec").write_text(
        LIBRARY.replace("dense(n)", "dens(n)") + "block b() { x }\n")
    path = tmp_path / name
    path.write_text(text)
    found = check_text(text, str(path))
    capsys.readouterr()
    status = main(["check", str(path)])
    shown = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert [f"{d.span.file}:{d.span.line}:{d.span.column}: error: {d.message}"
            for d in found] == shown
    assert status == (2 if shown else 0)
    if name == "library.mlspec":
        assert found == []
    else:  # each at its place: no "the spec has no model" without one
        assert found and all(d.span is not None for d in found)


# ----------------------------------------------------------------------- the server


class LspClient:
    """Speaks JSON-RPC with Content-Length framing to a server process."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.messages: queue.Queue = queue.Queue()
        self.notifications: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        try:
            while True:
                headers = {}
                while True:
                    line = stream.readline()
                    if not line:
                        return
                    line = line.decode("ascii").strip()
                    if not line:
                        break
                    key, _, value = line.partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = stream.read(int(headers["content-length"]))
                self.messages.put(json.loads(body))
        finally:
            self.messages.put(None)

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict | None = None) -> None:
        self.send({"method": method, "params": params or {}})

    def _next(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the language server did not answer in time")
        try:
            message = self.messages.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError("the language server did not answer in time") from None
        if message is None:
            raise EOFError("the language server closed its output")
        return message

    def send_bytes(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def request(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params or {}})
        answer, _ = self.answer(self.next_id)
        assert "error" not in answer, answer
        return answer.get("result")

    def answer(self, msg_id) -> tuple[dict, list[dict]]:
        """The response to request `msg_id`, and the other responses before it."""
        deadline = time.monotonic() + TIMEOUT
        others = []
        while True:
            message = self._next(deadline)
            if "method" in message:
                self.notifications.append(message)
            elif message.get("id") == msg_id:
                return message, others
            else:
                others.append(message)

    def start(self, folder: Path) -> None:
        self.request("initialize", {"processId": None, "rootUri": folder.as_uri(),
                                    "capabilities": {}})
        self.notify("initialized")

    def stop(self) -> None:
        assert self.request("shutdown") is None
        self.notify("exit")
        assert self.process.wait(timeout=TIMEOUT) == 0

    def wait_for(self, method: str, uri: str, version: int | None = None) -> dict:
        """The first (not yet seen) notification `method` for `uri`."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for note in self.notifications:
                params = note.get("params", {})
                if note["method"] == method and params.get("uri") == uri and (
                        version is None or params.get("version") == version):
                    self.notifications.remove(note)
                    return params
            message = self._next(deadline)
            if "method" in message:
                self.notifications.append(message)


BROKEN = """\
# broken.mlspec: an unknown layer on line 3
model net {
    dens(2)
}

block head(width, act=relu) {
    dense(width) -> act
}

data {
    source = csv("points.csv", target="label")
    valid  = 0.5
}

train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    steps     = 10
}
"""


@pytest.fixture
def server(tmp_path):
    log = (tmp_path / "server.log").open("w+b")
    process = subprocess.Popen(
        [sys.executable, "-c", "from mlspec.editor.lsp import serve; serve()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=ROOT,
    )
    client = LspClient(process)
    try:
        yield client
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
        process.stdin.close()
        process.stdout.close()
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace"))
        log.close()


def test_language_server_over_stdio(server, tmp_path):
    # the spec is never saved: its CSV path resolves against the folder in its URI
    (tmp_path / "points.csv").write_text("x0,x1,label\n0,1,a\n1,0,b\n0.5,0.5,a\n1,1,b\n")
    uri = (tmp_path / "broken.mlspec").as_uri()
    result = server.request("initialize", {
        "processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {},
    })
    capabilities = result["capabilities"]
    assert capabilities["completionProvider"] is not None
    assert result["serverInfo"]["name"] == "mlspec"
    server.notify("initialized")

    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "mlspec", "version": 1, "text": BROKEN}})
    published = server.wait_for("textDocument/publishDiagnostics", uri)
    (diag,) = published["diagnostics"]  # the CSV was found: nothing else is wrong
    assert diag["range"] == {"start": {"line": 2, "character": 4},
                             "end": {"line": 2, "character": 8}}
    assert "did you mean 'dense'" in diag["message"]
    assert diag["severity"] == 1 and diag["source"] == "mlspec"

    fixed = BROKEN.replace("dens(2)", "dense(2)")
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]})
    assert server.wait_for("textDocument/publishDiagnostics", uri, 2)["diagnostics"] == []

    # an incremental edit: a new, empty line in the model body, then `dense(` on it
    edit = {"range": {"start": {"line": 2, "character": 12},
                      "end": {"line": 2, "character": 12}}, "text": "\n    "}
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 3}, "contentChanges": [edit]})
    server.wait_for("textDocument/publishDiagnostics", uri, 3)
    items = server.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": 3, "character": 4}})["items"]
    labels = {item["label"] for item in items}
    assert {"dense", "relu", "conv", "residual", "head"} <= labels
    assert "adam" not in labels and "hill" not in labels

    edit = {"range": {"start": {"line": 3, "character": 4},
                      "end": {"line": 3, "character": 4}}, "text": "dense("}
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 4}, "contentChanges": [edit]})
    published = server.wait_for("textDocument/publishDiagnostics", uri, 4)
    assert published["diagnostics"], "the unclosed call is a syntax error"
    items = server.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": 3, "character": 10}})["items"]
    labels = [item["label"] for item in items]
    assert labels[:2] == ["features=", "use_bias="]
    assert items[0]["insertText"] == "features="

    line = fixed.splitlines().index("    optimizer = adam(learning_rate=0.01)") + 1
    items = server.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": 21}})["items"]
    assert {"learning_rate=", "b1=", "b2=", "eps="} <= {item["label"] for item in items}

    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert server.wait_for("textDocument/publishDiagnostics", uri)["diagnostics"] == []

    assert server.request("shutdown") is None
    server.notify("exit")
    assert server.process.wait(timeout=TIMEOUT) == 0


# ---------------------------------------------------------------------------- no jax


def test_editor_support_does_not_import_jax(tmp_path):
    code = (
        "import sys\n"
        "import mlspec.editor.lsp as lsp, mlspec.editor.lexer as lexer\n"
        "from mlspec.editor import completion, diagnostics\n"
        "lsp.create_server()\n"
        "diagnostics.check_text(open(sys.argv[1]).read(), sys.argv[1])\n"
        "completion.complete('train { optimizer = adam(', 25)\n"
        "list(lexer.MlspecLexer().get_tokens('model m { dense(2) }'))\n"
        "heavy = sorted(m for m in ('jax', 'jaxlib', 'flax', 'optax') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "hill.mlspec")],
                   check=True, timeout=120)


def _nested_repeats() -> str:
    body = "dense(4) -> relu"
    for _ in range(3):
        body = f"repeat(1000) {{\n{body}\n}}"
    return f"model m {{\n    input [4]\n{body}\n}}\n"


IMPORT_MODEL = 'import "common.mlspec"\nmodel m {\n    input [2]\n    dense(1)\n}\n'


def _latin1_import(folder: Path) -> str:
    (folder / "common.mlspec").write_bytes(b"# caf\xe9\nparam width = 2\n")
    return IMPORT_MODEL


def _symlink_loop_import(folder: Path) -> str:
    (folder / "other.mlspec").symlink_to(folder / "common.mlspec")
    (folder / "common.mlspec").symlink_to(folder / "other.mlspec")
    return IMPORT_MODEL


def _binary_import(folder: Path) -> str:
    (folder / "common.mlspec").write_bytes(b"\x00\x01\x02\xff" * 64)
    return IMPORT_MODEL


# name -> (the document, given its folder; words of its diagnostic; its line)
BOUNDED = {
    "nested repeat(1000) three deep": (lambda folder: _nested_repeats(),
                                       "2,000,000,000 layers", 2),
    "an import that is not UTF-8": (_latin1_import, "common.mlspec:1:6: byte 0xe9 is not UTF-8",
                                    0),
    "an import that is a symlink loop": (_symlink_loop_import, "symlink loop", 0),
    "an import that is binary": (_binary_import, "NUL byte", 0),
    "a document of 2 MB": (lambda folder: "model m {\n" + "    relu\n" * 200_000 + "}\n",
                           "more than a spec may", 0),
}


@pytest.mark.parametrize("case", BOUNDED, ids=str)
def test_diagnostics_come_back_in_bounded_time(case, server, tmp_path):
    make, words, line = BOUNDED[case]
    text = make(tmp_path)
    uri = (tmp_path / "doc.mlspec").as_uri()
    server.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(),
                                  "capabilities": {}})
    server.notify("initialized")
    started = time.monotonic()
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "mlspec", "version": 1, "text": text}})
    (diag,) = server.wait_for("textDocument/publishDiagnostics", uri)["diagnostics"]
    assert time.monotonic() - started < 10
    assert words in diag["message"] and diag["range"]["start"]["line"] == line
    assert server.request("shutdown") is None
    server.notify("exit")
    assert server.process.wait(timeout=TIMEOUT) == 0


# ------------------------------------------------------------------- what a client sends


def _framed(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _completion(msg_id: int, uri: str, position: object = None) -> bytes:
    position = {"line": 0, "character": 0} if position is None else position
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/completion",
                       "params": {"textDocument": {"uri": uri}, "position": position}}
                      ).encode()


def _log_lines(folder: Path) -> list[str]:
    return (folder / "server.log").read_text(errors="replace").splitlines()


def _assert_log_is_lines(folder: Path) -> None:
    lines = _log_lines(folder)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert all(line.startswith("mlspec-lsp ") for line in lines), "\n".join(lines)


URI = "file:///nowhere/doc.mlspec"

# name -> (the bytes sent; the id and code of the error that answers them, None for
# a notification or response, which is not answered)
BAD_MESSAGES = {
    "not JSON": (_framed(b"not json"), (None, -32700)),
    "JSON cut short, its id readable": (_framed(_completion(41, URI)[:60]), (41, -32700)),
    "bytes that are not UTF-8": (_framed(b"\xff\xfe\x00\x01"), (None, -32700)),
    "nested too deeply": (_framed(b"[" * 100_000), (None, -32700)),
    "an array": (_framed(b"[1, 2]"), (None, -32600)),
    "a string": (_framed(b'"shutdown"'), (None, -32600)),
    "an object as id": (_framed(b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "shutdown"}'),
                        (None, -32600)),
    "a number as method": (_framed(b'{"jsonrpc": "2.0", "id": 42, "method": 5}'),
                           (42, -32600)),
    "JSON-RPC 1.0": (_framed(b'{"jsonrpc": "1.0", "id": 43, "method": "shutdown"}'),
                     (43, -32600)),
    "neither method nor id": (_framed(b'{"jsonrpc": "2.0", "params": {}}'), (None, -32600)),
    "a position of the wrong type": (_framed(_completion(44, URI, "x")), (44, -32602)),
    "a notification of the wrong type": (_framed(
        b'{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": 5}'), None),
    "a length of no message": (b"Content-Length: 0\r\n\r\n", (None, -32700)),
    "a header without a length": (b"Content-Type: application/json\r\n\r\n", None),
    "garbage between messages": (b"GET / HTTP/1.1\r\nHost: x\r\n", None),
    "a length that lies (99999999999)":
        (b"Content-Length: 99999999999\r\n\r\n" + _completion(45, URI), (45, -32600)),
    "a length of 30 digits, no body":
        (b"Content-Length: " + b"9" * 30 + b"\r\n\r\n", None),
}


def test_bad_messages_are_answered_and_the_server_goes_on(server, tmp_path):
    server.start(tmp_path)
    uri = (tmp_path / "open.mlspec").as_uri()
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "mlspec", "version": 1, "text": ""}})
    marker = 1000
    for case, (data, expected) in BAD_MESSAGES.items():
        server.send_bytes(data)
        marker += 1  # the next message must be served: a completion of the keywords
        server.send_bytes(_framed(_completion(marker, uri)))
        answer, before = server.answer(marker)
        assert "model" in [i["label"] for i in answer["result"]["items"]], (case, answer)
        errors = [(m.get("id"), m["error"]["code"]) for m in before if "error" in m]
        assert errors == ([expected] if expected else []), case
        assert all(m.get("error", {}).get("message") for m in before), case
    server.stop()
    _assert_log_is_lines(tmp_path)
    assert len(_log_lines(tmp_path)) <= 2 * len(BAD_MESSAGES)


def test_a_document_too_large_to_read_is_skipped_and_said_so(server, tmp_path):
    from mlspec.editor.stream import MAX_MESSAGE_BYTES

    server.start(tmp_path)
    uri = (tmp_path / "huge.mlspec").as_uri()
    text = "# " + "x" * MAX_MESSAGE_BYTES + "\n"
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "mlspec", "version": 1, "text": text}})
    (diag,) = server.wait_for("textDocument/publishDiagnostics", uri)["diagnostics"]
    assert "too large" in diag["message"] and f"{MAX_MESSAGE_BYTES:,}" in diag["message"]
    # the document is not held: a change or a completion on it finds nothing
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"range": {"start": {"line": 0, "character": 0},
                                      "end": {"line": 0, "character": 0}}, "text": "y"}]})
    result = server.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})
    assert result == {"isIncomplete": False, "items": []}
    server.stop()
    _assert_log_is_lines(tmp_path)


def test_a_document_that_is_not_open_gets_no_traceback(server, tmp_path):
    server.start(tmp_path)
    missing = (tmp_path / "missing.mlspec").as_uri()
    on_disk = tmp_path / "on_disk.mlspec"
    on_disk.write_text("param secret = 1\nmodel m {\n    input [2]\n    dense(1)\n}\n")
    for uri in (missing, on_disk.as_uri()):
        server.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        server.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": "x"}]})
        for position in ({"line": 0, "character": 0}, {"line": 9, "character": 9}):
            result = server.request("textDocument/completion", {
                "textDocument": {"uri": uri}, "position": position})
            assert result == {"isIncomplete": False, "items": []}
    server.stop()
    assert not [n for n in server.notifications
                if n["method"] in ("window/showMessage", "textDocument/publishDiagnostics")]
    _assert_log_is_lines(tmp_path)


def _message(method: str, params: object = None, msg_id: int | None = None) -> bytes:
    message = {"jsonrpc": "2.0", "method": method}
    if msg_id is not None:
        message["id"] = msg_id
    if params is not None:
        message["params"] = params
    return _framed(json.dumps(message).encode())


_DOC = {"uri": URI, "version": 1, "text": "model m { dens(2) }\n"}
_AT = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}}
_CHANGE = {"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": "x"}]}
_INIT = {"processId": None, "capabilities": {}}

# (when, name) -> (the bytes sent; the id and code of the error that answers them, None
# for a notification, which is not answered). LSP: before `initialize` a request is
# answered ServerNotInitialized (-32002) and a notification dropped; after `shutdown` a
# request is answered InvalidRequest (-32600) and a notification dropped.
OUT_OF_ORDER = {
    ("before", "didOpen without languageId"):
        (_message("textDocument/didOpen", {"textDocument": _DOC}), None),
    ("before", "didOpen"): (_message("textDocument/didOpen", {"textDocument": {
        **_DOC, "languageId": "mlspec"}}), None),
    ("before", "didChange"): (_message("textDocument/didChange", _CHANGE), None),
    ("before", "didSave"): (_message("textDocument/didSave", {"textDocument": {
        "uri": URI}}), None),
    ("before", "didClose"): (_message("textDocument/didClose", {"textDocument": {
        "uri": URI}}), None),
    ("before", "didClose without params"): (_message("textDocument/didClose"), None),
    ("before", "initialized"): (_message("initialized", {}), None),
    ("before", "initialize as a notification"): (_message("initialize", _INIT), None),
    ("before", "cancelRequest"): (_message("$/cancelRequest", {"id": 1}), None),
    ("before", "completion"): (_message("textDocument/completion", _AT, 51), (51, -32002)),
    ("before", "completion without params"):
        (_message("textDocument/completion", None, 52), (52, -32002)),
    ("before", "hover"): (_message("textDocument/hover", _AT, 53), (53, -32002)),
    ("before", "shutdown"): (_message("shutdown", None, 54), (54, -32002)),
    ("after initialize", "initialize again"): (_message("initialize", _INIT, 61),
                                               (61, -32600)),
    ("after initialize", "definition (not served)"):
        (_message("textDocument/definition", _AT, 62), (62, -32601)),
    ("after initialize", "completion without params"):
        (_message("textDocument/completion", None, 63), (63, -32602)),
    ("after initialize", "didClose without textDocument"):
        (_message("textDocument/didClose", {}), None),
    ("after initialize", "didChange of a document not open"):
        (_message("textDocument/didChange", _CHANGE), None),
    ("after shutdown", "completion"): (_message("textDocument/completion", _AT, 71),
                                       (71, -32600)),
    ("after shutdown", "shutdown again"): (_message("shutdown", None, 72), (72, -32600)),
    ("after shutdown", "didOpen"): (_message("textDocument/didOpen", {"textDocument": {
        **_DOC, "languageId": "mlspec"}}), None),
}


def test_messages_out_of_order_are_refused_as_lsp_says(server, tmp_path):
    library = (tmp_path / "library.mlspec")
    library.write_text(LIBRARY)
    marker = 1000

    def send(when: str) -> None:
        nonlocal marker
        for (phase, case), (data, expected) in OUT_OF_ORDER.items():
            if phase != when:
                continue
            server.send_bytes(data)
            marker += 1  # the next message is served as in this phase
            server.send_bytes(_message("textDocument/completion", _AT, marker))
            answer, before = server.answer(marker)
            errors = [(m.get("id"), m["error"]["code"]) for m in before if "error" in m]
            assert errors == ([expected] if expected else []), case
            if when == "after initialize":  # the document opened too early is not held
                assert answer["result"] == {"isIncomplete": False, "items": []}, case
            else:
                assert answer["error"]["code"] == (-32002 if when == "before" else -32600)

    send("before")
    server.start(tmp_path)
    send("after initialize")
    # a library (params and blocks only) is checked as `mlspec check` does: no error
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": library.as_uri(), "languageId": "mlspec", "version": 1, "text": LIBRARY}})
    published = server.wait_for("textDocument/publishDiagnostics", library.as_uri())
    assert published["diagnostics"] == []
    assert server.request("shutdown") is None
    send("after shutdown")
    server.notify("exit")
    assert server.process.wait(timeout=TIMEOUT) == 0
    assert not [n for n in server.notifications if n["method"] == "window/showMessage"]
    assert not [n for n in server.notifications if n["method"] ==
                "textDocument/publishDiagnostics" and n["params"]["uri"] == URI]
    _assert_log_is_lines(tmp_path)


@pytest.mark.parametrize("initialize", [False, True], ids=["uninitialized", "initialized"])
def test_exit_without_shutdown_exits_with_1(initialize, server, tmp_path):
    if initialize:
        server.start(tmp_path)
    server.notify("exit")
    assert server.process.wait(timeout=TIMEOUT) == 1
    _assert_log_is_lines(tmp_path)
