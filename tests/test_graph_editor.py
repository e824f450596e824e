"""The editor in graph models: completion offers a graph's values where a chain starts or
a merge takes them, merges at a chain's start, shared layers among a chain's layers, and
the recurrent layers inside `bidirectional(`; hover shows a value's shape."""

from __future__ import annotations

from test_editor import server  # noqa: F401 - the language server fixture

from mlspec.editor.completion import complete
from mlspec.editor.hover import hover_text, value_shapes

MERGES = ["concat", "add", "multiply", "average", "maximum"]
HEAD = "model m {\n    input a [4]\n    input t tokens(6, vocab=50)\n"


def _labels(text: str) -> list[str]:
    offset = text.index("|")
    return [item.label for item in complete(text.replace("|", "", 1), offset)]


def test_a_chain_starts_from_a_value_or_a_merge():
    text = HEAD + "    e = t -> embedding(4) -> global_avg_pool\n    h = |\n}\n"
    assert _labels(text) == ["a", "t", "e", *MERGES]
    assert _labels(text.replace("h = |", "output y = |")) == ["a", "t", "e", *MERGES]
    # the line's own name, and names bound after it, are no values yet
    later = HEAD + "    h = |\n    e = t -> embedding(4)\n}\n"
    assert _labels(later) == ["a", "t", *MERGES]
    assert "dense" not in _labels(text)  # a chain from a layer is an error


def test_a_merge_takes_values_and_its_named_arguments():
    text = HEAD + "    e = t -> embedding(4) -> global_avg_pool\n    h = concat(a, |)\n}\n"
    assert _labels(text) == ["a", "t", "e", "axis="]
    assert _labels(text.replace("concat(a, |)", "concat(a, e, axis=-1, |)")) == ["a", "t", "e"]
    assert _labels(text.replace("concat(a, |)", "add(|)")) == ["a", "t", "e"]
    assert "classes" not in _labels(text)


def test_a_chain_s_layers_include_the_shared_layers_declared_before():
    text = HEAD + "    share enc = dense(3)\n    h = a -> |\n}\n"
    labels = _labels(text)
    assert {"dense", "lstm", "enc"} <= set(labels) and "a" not in labels
    assert "enc" not in _labels(HEAD + "    h = a -> |\n    share enc = dense(3)\n}\n")
    assert "enc" not in _labels("model m {\n    input [4]\n    dense(2) -> |\n}\n")


def test_a_graph_block_s_input_is_in():
    text = "block tower(f) {\n    p = in -> dense(f)\n    out = |\n}\n"
    assert _labels(text) == ["in", "p", *MERGES]


def test_the_data_names_a_model_s_inputs():
    data = ('data {\n    source = csv("d.csv", target="y", categorical=["city", "job-title"],'
            ' text=["note"])\n}\n')
    text = "model m {\n    h = |\n}\n" + data
    assert _labels(text) == ["x", "city", "job_title", "note", *MERGES]
    assert _labels(text.replace('target="y"', 'target="y", features=[]'))[:3] == [
        "city", "job_title", "note"]


def test_bidirectional_offers_the_recurrent_layers():
    assert _labels("model m {\n    bidirectional(|\n}") == ["layer=", "classes", "lstm", "gru"]
    assert _labels("model m {\n    bidirectional(layer=|)\n}")[:2] == ["lstm", "gru"]
    assert "lstm" not in _labels("model m {\n    dense(|\n}")


GRAPH = HEAD + """    e = t -> embedding(4) -> global_avg_pool
    h = concat(a, e) -> dense(16)
    output y = h -> dense(2)
}
"""


def test_hover_shows_a_value_s_shape():
    shapes = value_shapes(GRAPH, None)
    at = {word: hover_text(GRAPH, GRAPH.index(word) + 1, shapes)
          for word in ("e =", "h =", "y =", "t tokens", "concat(a")}
    assert at == {"e =": "value `e`: [4]", "h =": "value `h`: [16]",
                  "y =": "output `y`: [2]", "t tokens": "input `t`: [6]",
                  "concat(a": None}
    assert hover_text(GRAPH, GRAPH.index("concat(a") + 7, shapes) == "input `a`: [4]"
    assert value_shapes(GRAPH.replace("dense(16)", "dens(16)"), None) == {}  # a mistake
    assert value_shapes("model m {\n    input [4]\n    dense(2)\n}\n", None) == {}


def test_hover_over_the_language_server(server, tmp_path):  # noqa: F811
    uri = (tmp_path / "graph.mlspec").as_uri()
    server.start(tmp_path)
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "mlspec", "version": 1, "text": GRAPH}})
    assert server.wait_for("textDocument/publishDiagnostics", uri)["diagnostics"] == []
    line = GRAPH.splitlines().index("    h = concat(a, e) -> dense(16)")
    answer = server.request("textDocument/hover", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": 4}})
    assert answer["contents"] == {"kind": "markdown", "value": "value `h`: [16]"}
    assert server.request("textDocument/hover", {
        "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}) is None
    assert server.request("textDocument/hover", {  # a document that is not open
        "textDocument": {"uri": (tmp_path / "other.mlspec").as_uri()},
        "position": {"line": 0, "character": 0}}) is None
    server.stop()
