"""`embedding` and `one_hot` on a categorical or text input take its vocabulary (LANGUAGE.md
v2, "More layers"), in a v1 chain and in a graph alike: `embedding(8)` there is
`embedding(features=8)`, while `embedding(vocab, features)` keeps its v1 meaning."""

from __future__ import annotations

import pandas as pd
import pytest

import mlspec
from mlspec.catalog.layers.core import Embedding, OneHot
from mlspec.semantics.summary import model_rows
from mlspec.syntax.errors import SpecError

TRAIN = "train {\n    loss = softmax_cross_entropy\n    optimizer = adam(0.01)\n    steps = 2\n}\n"


@pytest.fixture
def folder(tmp_path):
    pd.DataFrame({"city": ["a", "b", "c", "a", "b", "c"], "job": ["x", "y"] * 3,
                  "n": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "y": [0, 1, 0, 1, 0, 1]}
                 ).to_csv(tmp_path / "d.csv", index=False)
    return tmp_path


def _resolve(folder, model: str, source: str):
    path = folder / "t.mlspec"
    path.write_text(f"{model}data {{\n    train = csv(\"d.csv\", target=\"y\", {source})\n}}\n"
                    + TRAIN)
    return mlspec.resolve(mlspec.load(path))


def _params(program) -> int:
    """The model's parameter count, as `summary` totals it."""
    return sum(row[3] for row in model_rows(program.model) if row[0] == 0)


def _nodes(program):
    return {node.name: node for node in program.model.graph.nodes}


def test_one_argument_is_features_on_a_typed_input_in_a_chain_and_a_graph(folder):
    chain = _resolve(folder, "model m {\n    embedding(8)\n    dense(classes)\n}\n",
                     'categorical=["city"], features=[]')
    (embed, _) = chain.model.layers
    assert embed == Embedding(vocab=4, features=8, span=embed.span)  # a, b, c and unseen
    graph = _resolve(folder, "model m {\n    c = city -> embedding(8)\n"
                             "    output y = c -> dense(classes)\n}\n",
                     'categorical=["city"], features=[]')
    (embed, ) = _nodes(graph)["c"].layers
    assert (embed.vocab, embed.features) == (4, 8)
    assert _params(chain) == _params(graph) == 4 * 8 + 8 * 2 + 2
    # the short form and the keyword are the same layer
    keyword = _resolve(folder, "model m {\n    embedding(features=8)\n    dense(classes)\n}\n",
                       'categorical=["city"], features=[]')
    assert keyword.model.layers == chain.model.layers


def test_two_arguments_are_vocab_and_features_as_in_v1(folder):
    program = mlspec.resolve(mlspec.parse(
        "model m {\n    input [3]\n    embedding(17, 2)\n    flatten\n    dense(1)\n}\n"))
    assert (program.model.layers[0].vocab, program.model.layers[0].features) == (17, 2)
    graph = _resolve(folder, "model m {\n    c = city -> embedding(9, 8)\n"
                             "    output y = c -> dense(classes)\n}\n",
                     'categorical=["city"], features=[]')
    assert _nodes(graph)["c"].layers[0].vocab == 9  # more than the input's: kept as given


def test_one_argument_on_floats_asks_for_the_vocabulary(folder):
    with pytest.raises(SpecError) as info:
        _resolve(folder, "model m {\n    embedding(8)\n    dense(classes)\n}\n",
                 'features=["n"]')
    (error,) = info.value.diagnostics
    assert (error.span.line, error.span.column) == (2, 5)
    assert error.message.startswith("embedding needs vocab=... here, as in "
                                    "embedding(vocab, features)")


def test_a_graph_takes_each_inputs_vocabulary_and_one_hot_too(folder):
    program = _resolve(folder, "model m {\n    c = city -> embedding(3)\n"
                               "    j = job -> one_hot\n    k = city\n"
                               "    e = k -> repeat(1) { one_hot }\n"
                               "    output y = concat(x, c, j, e) -> dense(classes)\n}\n",
                       'categorical=["city", "job"]')
    nodes = _nodes(program)
    assert nodes["c"].layers[0].vocab == 4 and nodes["j"].layers[0] == OneHot(
        n=3, span=nodes["j"].layers[0].span)
    assert nodes["e"].layers[0].body[0].n == 4  # through a name for the input, in a body
    assert program.model.output_shapes == (("y", (2,)),)
    assert _params(program) == (1 + 3 + 3 + 4) * 2 + 2 + 4 * 3


def test_a_shared_embedding_takes_the_largest_vocabulary_of_its_uses(folder):
    program = _resolve(folder, "model m {\n    share emb = embedding(4)\n"
                               "    c = city -> emb\n    j = job -> emb\n"
                               "    output y = add(c, j) -> dense(classes)\n}\n",
                       'categorical=["city", "job"], features=[]')
    (share,) = program.model.graph.shares
    assert (share.layer.vocab, share.layer.features) == (4, 4)


@pytest.mark.parametrize("model, words, column", [
    ("    c = city -> embedding(2, 8)\n", "embedding has vocab=2, but the input 'city' takes "
     "4 ids (0 to 3); leave vocab out to take the input's", 17),
    ("    c = city -> one_hot(3)\n", "one_hot has n=3, but the input 'city' takes 4 ids "
     "(0 to 3); leave n out to take the input's", 17),
])
def test_a_vocabulary_too_small_for_the_input_is_an_error_at_the_layer(folder, model, words,
                                                                        column):
    with pytest.raises(SpecError) as info:
        _resolve(folder, f"model m {{\n{model}    output y = c -> dense(classes)\n}}\n",
                 'categorical=["city"], features=[]')
    (error,) = info.value.diagnostics
    assert error.message == words and (error.span.line, error.span.column) == (2, column)


def test_declared_typed_inputs_give_their_vocabulary():
    program = mlspec.resolve(mlspec.parse(
        "model m {\n    input city category(vocab=12)\n    input title tokens(5, vocab=30)\n"
        "    c = city -> embedding(4)\n    t = title -> embedding(4) -> global_avg_pool\n"
        "    output y = concat(c, t) -> dense(2)\n}\n"))
    nodes = _nodes(program)
    assert (nodes["c"].layers[0].vocab, nodes["t"].layers[0].vocab) == (12, 30)
    assert _params(program) == 12 * 4 + 30 * 4 + 8 * 2 + 2


def test_the_python_builder_takes_the_short_form_as_the_text_does():
    assert mlspec.embedding(8) == mlspec.parse("model m { embedding(8) }").model.layers[0]
    with pytest.raises(SpecError, match="at most 2 positional"):
        mlspec.embedding(8, 3, 2)
