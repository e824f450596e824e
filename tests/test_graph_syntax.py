"""The syntax of graph models (LANGUAGE.md v2 "Graph models"): parsing to the IR, the
canonical printer's round trip, JSON, the errors of the text, and the editor on graphs.
What the names mean (resolving) is tested elsewhere."""

from __future__ import annotations

import json

import pytest
from pygments.token import Keyword, Name

from mlspec.editor.completion import complete
from mlspec.editor.diagnostics import check_text, to_lsp_diagnostic
from mlspec.editor.lexer import MlspecLexer
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError
from mlspec.syntax.json_spec import parse_json
from mlspec.syntax.lexicon import lex
from mlspec.syntax.parser import parse

INCOME = """\
model income {
    c = city -> embedding(8)              # a binding: NAME = chain
    j = job -> one_hot
    h = concat(x, c, j) -> dense(64) -> relu
    output income = h -> dense(classes)   # a named output
}
"""


def _error(text: str) -> tuple[int, int, str]:
    with pytest.raises(SpecError) as info:
        parse(text, "g.mlspec")
    (diag,) = info.value.diagnostics
    return diag.span.line, diag.span.column, diag.message


# ------------------------------------------------------------------------- parsing


def test_the_language_example_parses_to_bindings_and_an_output():
    model = parse(INCOME).model
    assert model.layers == () and model.input is None and model.inputs == ()
    c, j, h, out = model.graph
    assert c == ir.Binding(name="c", value=ir.Chain(start="city", layers=(
        ir.LayerCall.of("embedding", 8),)))
    assert j == ir.Binding(name="j", value=ir.Chain(start="job", layers=(
        ir.LayerCall.of("one_hot"),)))
    assert h.value.start == ir.Call.of("concat", ir.Name(name="x"), ir.Name(name="c"),
                                       ir.Name(name="j"))
    assert [layer.name for layer in h.value.layers] == ["dense", "relu"]
    assert out == ir.Output(name="income", value=ir.Chain(start="h", layers=(
        ir.LayerCall.of("dense", ir.Name(name="classes")),)))


def test_spans_are_at_the_names_and_the_starts():
    c, _, h, out = parse(INCOME, "g.mlspec").model.graph
    assert (c.span.line, c.span.column, c.span.end_column) == (2, 5, 6)
    assert (c.value.start.span.line, c.value.start.span.column) == (2, 9)
    assert (h.value.start.span.column, h.value.start.span.end_column) == (9, 24)
    assert (out.span.line, out.span.column, out.span.end_column) == (5, 12, 18)
    assert (out.value.span.line, out.value.span.column) == (5, 21)


def test_a_line_break_ends_a_chain_before_a_binding_and_goes_on_with_it_otherwise():
    graph = parse("model m {\n  a = x -> dense(2)\n    relu\n  b = a\n"
                  "  output y = b\n}").model.graph
    assert [layer.name for layer in graph[0].value.layers] == ["dense", "relu"]
    assert graph[1] == ir.Binding(name="b", value=ir.Chain(start="a"))


def test_typed_inputs_shares_and_graph_blocks():
    spec = parse("""
        block inception(f) { a = in -> conv(f, kernel=1)  b = in -> conv(f, kernel=3)
                             out = concat(a, b) }
        model m {
            input x [8]
            input title tokens(20, vocab=10000)
            input city category(vocab=12)
            share enc = dense(16)
            share tower = inception(4)
            output y = concat(x, title, city) -> enc -> tower
        }""")
    (block,) = spec.blocks
    assert block.body == () and [s.name for s in block.graph] == ["a", "b", "out"]
    assert block.graph[0].value.start == ir.Name(name="in")
    assert block.graph[2].value.start == ir.Call.of("concat", ir.Name(name="a"),
                                                    ir.Name(name="b"))
    model = spec.model
    assert [(i.name, i.type) for i in model.inputs] == [
        ("x", ir.ListExpr(items=(ir.Number(value=8),))),
        ("title", ir.Call.of("tokens", 20, vocab=10000)),
        ("city", ir.Call.of("category", vocab=12))]
    assert model.graph[0] == ir.Share(name="enc", layer=ir.LayerCall.of("dense", 16))
    assert model.graph[1].layer == ir.LayerCall.of("inception", 4)


def test_v1_is_unchanged_and_a_typed_input_may_start_a_v1_chain():
    model = parse("model m {\n input [8, 8, 1]\n conv(4, 3)\n relu\n}").model
    assert model.graph is None and model.input is not None and len(model.layers) == 2
    model = parse("model m {\n input review tokens(64, vocab=100)\n"
                  " embedding(features=8) -> lstm(16)\n}").model
    assert model.graph is None and model.inputs[0].name == "review"
    assert [layer.name for layer in model.layers] == ["embedding", "lstm"]


def test_reserved_words_stay_names_outside_the_model_body():
    spec = parse("param share = 2\nmodel m {\n dense(share, use_bias=true)\n}\n"
                 "train {\n    output = 1\n    share = [1]\n    metric = valid.output.loss\n"
                 "    steps = 3\n}\nsweep { train.output = [1, 2] }\n")
    assert spec.params[0].name == "share"
    assert [s.path for s in spec.train.settings] == ["output", "share", "metric", "steps"]
    assert spec.sweep.settings[0].path == "train.output"


def test_keyword_arguments_and_settings_after_calls_and_lists_stay_names():
    """BIND is only expected where a graph statement may start: a setting after a call
    or a list is a path and `=`, as before."""
    spec = parse("model m { h = concat(a, b, axis=-1) -> dense(3, use_bias=false)\n"
                 " output y = h }\n"
                 "train {\n    optimizer = adam(1e-3)\n    metrics = [accuracy]\n"
                 "    loss = mse\n    steps = 3\n}\n")
    assert [s.path for s in spec.train.settings] == ["optimizer", "metrics", "loss", "steps"]
    assert spec.model.graph[0].value.start.kwargs[0].name == "axis"


# ------------------------------------------------------------------------- printing

GRAPHS = [
    INCOME,
    "model m {\n    input x [8]\n    output y = x -> dense(1)\n}\n",
    "model m {\n    input a [4]\n    input b [4]\n    s = add(a, b)\n"
    "    output y = s -> dense(2) -> relu\n}\n",
    "model siamese {\n    input a [8]\n    input b [8]\n    share enc = dense(16)\n"
    "    ea = a -> enc\n    eb = b -> enc\n"
    "    output same = concat(ea, eb, axis=-1) -> dense(1)\n}\n",
    "block tower(w) {\n    dense(w) -> relu\n}\n\nmodel m {\n    input x [3]\n"
    "    share t = tower(8)\n    output y = x -> t\n}\n",
    "block inception(f) {\n    a = in -> conv(f, kernel=1)\n    b = in -> conv(f, kernel=3)\n"
    "    out = concat(a, b)\n}\n\nmodel m {\n    input img [8, 8, 1]\n"
    "    output y = img -> inception(4) -> flatten -> dense(10)\n}\n",
    "model m {\n    input t tokens(20, vocab=10000)\n    input c category(vocab=12)\n"
    "    e = t -> embedding(features=8) -> lstm(16)\n    k = c -> one_hot\n"
    "    output y = concat(e, k) -> dense(2)\n    output z = e -> dense(1)\n}\n",
    "model m {\n    input x [8]\n    h = x -> repeat(2) {\n        dense(8) -> relu\n"
    "    } -> dropout(0.1)\n    output y = h\n}\n",
    "model m {\n    input x [8]\n    share r = residual {\n        dense(8)\n    }\n"
    "    output y = x -> r -> r\n}\n",
    "model m {\n    input x [8]\n    h = maximum(x, x) -> dense(width * 2, use_bias=false)\n"
    "    output y = average(h, h)\n}\n",
    "model m {\n    input title tokens(64)\n    input x [2, 3]\n    output y = x\n}\n",
    "model m {\n    input review tokens(64, vocab=100)\n    embedding(features=8) -> lstm(16)\n}\n",
]


@pytest.mark.parametrize("text", GRAPHS, ids=range(len(GRAPHS)))
def test_graphs_print_back_canonically_and_read_back_equal(text):
    spec = parse(text)
    printed = spec.to_text()
    again = parse(printed)
    assert again == spec and again.to_text() == printed
    canonical = text if "#" not in text else printed
    assert printed == canonical


@pytest.mark.parametrize("text", GRAPHS, ids=range(len(GRAPHS)))
def test_graphs_built_in_python_print_and_read_back(text):
    """Without spans (built in Python, or read from JSON), the printer still gives text
    that reads back as the same spec."""
    spec = ir.Spec.model_validate_json(parse(text).model_dump_json())
    assert spec.model.span is None
    assert parse(spec.to_text()) == spec


@pytest.mark.parametrize("text", GRAPHS, ids=range(len(GRAPHS)))
def test_fmt_keeps_every_comment_of_a_graph(text):
    """A comment at the end of every line, and one on a line of its own before every
    line: each is kept, the spec is the same, and formatting again changes nothing."""
    lines = text.rstrip("\n").split("\n")
    commented = "\n".join(f"# above <{i}>\n{line}  # end <{i}>" if line.strip() else line
                          for i, line in enumerate(lines)) + "\n"
    spec = parse(commented)
    printed = spec.to_text()
    wanted = {f"# {kind} <{i}>" for i, line in enumerate(lines) if line.strip()
              for kind in ("above", "end")}
    assert {c for c in wanted if c not in printed} == set()
    again = parse(printed)
    assert again == parse(text) and again.to_text() == printed


def test_the_printer_puts_a_graph_one_statement_a_line_and_keeps_comments():
    text = ("model m {  # the model\n  input x [8]   # features\n  # a binding\n"
            "  h = x -> dense(3)   # narrow\n      relu\n  output y = h -> dense(1)\n}\n")
    printed = parse(text).to_text()
    assert printed == ("model m {  # the model\n    input x [8]  # features\n"
                       "    # a binding\n    h = x -> dense(3) -> relu  # narrow\n"
                       "    output y = h -> dense(1)\n}\n")


def test_a_graph_built_in_python_prints():
    model = ir.Model(name="m", inputs=(ir.InputDecl(name="x", type=[8]),), graph=(
        ir.Share(name="enc", layer=ir.LayerCall.of("dense", 4)),
        ir.Binding(name="h", value=ir.Chain(start="x", layers=(ir.LayerCall.of("enc"),))),
        ir.Output(name="y", value=ir.Chain(start=ir.Call.of("concat", ir.Name(name="h"),
                                                            ir.Name(name="x")))),
    ))
    assert ir.Spec(model=model).to_text() == (
        "model m {\n    input x [8]\n    share enc = dense(4)\n    h = x -> enc\n"
        "    output y = concat(h, x)\n}\n")


# ---------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("text", GRAPHS, ids=range(len(GRAPHS)))
def test_graphs_go_through_json_as_export_writes_it(text):
    spec = parse(text)
    back = parse_json(spec.model_dump_json(indent=2, exclude_none=True), "g.json")
    assert back == spec
    assert parse(back.to_text()) == spec  # (JSON keeps no comments, nor the line breaks)


def test_a_json_graph_is_placed_and_its_names_checked():
    text = parse(INCOME).model_dump_json(indent=2, exclude_none=True)
    spec = parse_json(text, "g.json")
    binding = spec.model.graph[0]
    line = text.split("\n")[binding.span.line - 1]
    assert '"name": "c"' in line
    data = json.loads(text)
    data["model"]["graph"][3]["name"] = "in come"
    with pytest.raises(SpecError) as info:
        parse_json(json.dumps(data, indent=2), "g.json")
    assert "model.graph.3.name: 'in come' is not a name" in str(info.value)


# -------------------------------------------------------------------------- errors

ERRORS = [
    # a binding's forgotten '=', among statements and as the first line
    ("model m {\n  input x [8]\n  h = x -> dense(3)\n  g h -> dense(3)\n  output y = g\n}",
     4, 3, "expected '=' after 'g': a binding is `g = chain`"),
    ("model m {\n  h x -> dense(3)\n  output y = h\n}", 2, 3, "expected '=' after 'h'"),
    ("block b(f) {\n  a in -> conv(f, kernel=1)\n  out = a\n}", 2, 3,
     "expected '=' after 'a'"),
    # an output's or a share's forgotten '=' or name
    ("model m {\n  output y h -> dense(1)\n}", 2, 10, "expected '=' after 'y': "
                                                    "`output y = chain`"),
    ("model m {\n  share enc dense(1)\n}", 2, 9, "expected '=' after 'enc': "
                                                "`share enc = layer`"),
    ("model m {\n  output = h -> dense(1)\n}", 2, 3, "'output' is a reserved word here and "
                                                    "needs a name after it"),
    ("model m {\n  share = dense(1)\n}", 2, 3, "'share' is a reserved word here"),
    ("model m {\n  output\n}", 3, 1, "expected a name after 'output'"),
    ("model m {\n  output 3 = x\n}", 2, 10, "expected a name after 'output'"),
    # a chain line among graph statements
    ("model m {\n  input x [8]\n  dense(3)\n  output y = x\n}", 3, 3,
     "this chain line stands among graph statements"),
    ("model m {\n  dense(3) -> relu\n  h = x\n}", 2, 3, "a body is either a chain"),
    # a merge left open
    ("model m {\n  h = concat(a, b\n  output y = h\n}", 3, 3,
     "unexpected 'output'; the '(' at 2:13 is not closed"),
    ("model m {\n  output y = concat(a, b\n}", 3, 1, "the '(' at 2:20 is not closed"),
    # inputs
    ("model m {\n  input [8]\n  input x [8]\n}", 3, 9, "either one `input [shape]` line"),
    ("model m {\n  input [8]\n  output y = x\n}", 2, 9, "a graph model names its inputs"),
    ("model m {\n  input x\n}", 3, 1, "unexpected '}'"),
    # statements where they cannot stand
    ("model m {\n  output y = x\n  input x [8]\n}", 3, 3, "the input lines stand first"),
    ("model m {\n  share s = dense(2) -> relu\n}", 2, 22, "unexpected '->'"),
    ("model m {\n  residual {\n    h = x\n  }\n}", 3, 7, "unexpected '='"),
    ("model m {\n  h = \n}", 3, 1, "unexpected '}'"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), ERRORS,
                         ids=[e[3][:40] for e in ERRORS])
def test_graph_mistakes_are_errors_at_their_place(text, line, column, message):
    got = _error(text)
    assert got[:2] == (line, column), got
    assert message in got[2]


# -------------------------------------------------------------------------- editor


def test_output_and_share_are_keywords_and_declare_names():
    tokens = [(t, v) for t, v in MlspecLexer().get_tokens(INCOME + "model n {\n"
                                                          "    share enc = dense(2)\n}\n")
              if v.strip()]
    kinds = dict((v, t) for t, v in reversed(tokens))
    assert kinds["output"] in Keyword and kinds["share"] in Keyword
    assert kinds["income"] in Name.Class or kinds["income"] in Name.Variable
    assert ((Name.Variable, "enc") in tokens) and ((Name.Variable, "income") in tokens)


def test_the_lexicon_splits_a_binding_into_its_name_and_its_equals():
    tokens = lex("model m {\n    h  = x\n}")
    assert [(t.type, t.value, t.start_pos) for t in tokens[3:6]] == [
        ("NAME", "h", 14), ("EQUAL", "=", 17), ("NAME", "x", 19)]


def test_completion_anywhere_in_a_graph_does_not_fail():
    text = ("block b(f) {\n    a = in -> conv(f, kernel=1)\n    out = concat(a, a)\n}\n"
            "model m {\n    input x [8]\n    input c category(vocab=3)\n"
            "    share enc = dense(16)\n    h = concat(x, c) -> dense(3)\n"
            "    output y = h -> enc\n}\n")
    for offset in range(len(text) + 1):
        complete(text, offset)
    labels = [item.label for item in complete("model m {\n    \n}", 14)]
    assert {"input", "output", "share"} <= set(labels)
    after = "model m {\n    h = x -> "
    assert "dense" in [item.label for item in complete(after + "\n}", len(after))]
    assert [i.label for i in complete("model m {\n    output \n}", 21)] == []


def _keywords(prefix: str) -> list[str]:
    return [item.label for item in complete(prefix + "\n}", len(prefix))
            if item.detail == "keyword"]


def test_keywords_offered_are_those_that_may_stand_there():
    """`output` and `share` where a graph statement may come, not after a chain of layers
    (a body does not mix them); `input` before the statements only."""
    assert _keywords("model m {\n    ") == ["input", "output", "share"]
    assert _keywords("model m {\n    input x [8]\n    ") == ["input", "output", "share"]
    assert _keywords("model m {\n    h = x\n    ") == ["output", "share"]
    assert _keywords("model m {\n    share e = dense(2)\n    output y = x -> e\n    ") == [
        "output", "share"]
    assert _keywords("model m {\n    dense(3) -> relu\n    ") == []
    assert _keywords("model m {\n    input x [8]\n    dense(3)\n    ") == []
    assert _keywords("model m {\n    residual {\n        ") == []


def test_diagnostics_show_graph_syntax_errors_at_their_place():
    text = "model m {\n  input x [8]\n  h x -> dense(3)\n  output y = h\n}\n"
    (diag,) = check_text(text, None)
    assert "expected '=' after 'h'" in diag.message
    lsp = to_lsp_diagnostic(diag, text, None)
    assert (lsp.range.start.line, lsp.range.start.character) == (2, 2)
    assert (lsp.range.end.line, lsp.range.end.character) == (2, 3)
    (diag,) = check_text("model m {\n  output y h\n}\n", None)
    assert (diag.span.line, diag.span.column) == (2, 10)
