"""Graph models built from Python: bindings, outputs, shared layers, merges, named inputs
and graph blocks equal their parsed text, print as it and check as it; mistakes are
errors when built."""

from __future__ import annotations

import doctest
import inspect

import pytest

import mlspec
from mlspec.catalog.merges import MERGES
from mlspec.semantics import builders, graph_build

m = mlspec

TEXT = """\
block tower(f) {
    a = in -> dense(f) -> relu
    b = in -> dense(f)
    out = concat(a, b, axis=-1)
}

model two {
    input x [4]
    input title tokens(6, vocab=50)
    input city category(vocab=12)
    share enc = dense(8)
    c = city -> embedding(3)
    t = title -> embedding(4) -> global_avg_pool
    h = concat(x, c, t) -> tower(8) -> enc
    k = x -> dense(16) -> enc
    output y = add(h, k) -> dense(2)
}
"""


def built() -> mlspec.Spec:
    f = m.arg("f")
    a = m.binding("a", "in", m.dense(f), "relu")
    b = m.binding("b", "in", m.dense(f))
    tower = m.block("tower", [f], a, b, m.binding("out", m.concat(a, b, axis=-1)))
    enc = m.share("enc", m.dense(8))
    c = m.binding("c", "city", m.embedding(3))
    t = m.binding("t", "title", m.embedding(4), m.global_avg_pool)
    h = m.binding("h", m.concat("x", c, t), m.layer(tower, 8), enc)
    k = m.binding("k", "x", m.dense(16), enc)
    model = m.model("two", enc, c, t, h, k, m.output("y", m.add(h, k), m.dense(2)),
                    inputs={"x": [4], "title": m.tokens(6, vocab=50),
                            "city": m.category(vocab=12)})
    return m.spec(tower, model)


def test_a_built_graph_equals_its_parsed_text_and_prints_as_it():
    spec = built()
    assert spec == mlspec.parse(TEXT)
    assert spec.to_text() == TEXT
    program = mlspec.check(spec)
    assert program.model.output_shapes == (("y", (2,)),)
    assert program.model == mlspec.check(mlspec.parse(TEXT)).model


def test_the_merges_are_functions_made_from_their_registry():
    for name, cls in MERGES.items():
        function = getattr(mlspec, name)
        assert function is graph_build.merge_function(name) and function.__name__ == name
        assert name in dir(mlspec) and function.__doc__.startswith(f"The merge `{name}(")
        assert list(inspect.signature(function).parameters) == ["values",
                                                                *cls.argument_names()]
    assert str(inspect.signature(m.concat)) == "(*values, axis=-1)"
    assert m.add("a", "b") == mlspec.parse(
        "model g {\n    h = add(a, b)\n}\n").model.graph[0].value.start
    # no merge hides a catalogue function or the API, nor the reverse
    assert not set(MERGES) & (set(builders.catalogue_names()) | set(mlspec.__all__))


@pytest.mark.parametrize("make, message", [
    (lambda: m.binding("output", "x"), "'output' cannot name a binding"),
    (lambda: m.binding("h", 3), "an int cannot be a value of a graph"),
    (lambda: m.binding("h", "x", "dens"), "unknown layer 'dens'; did you mean 'dense'?"),
    (lambda: m.concat("a", 3), "an int cannot be a value of a graph"),
    (lambda: m.concat("a", "b", axs=0), "merge 'concat' has no argument 'axs'; did you "
                                        "mean 'axis'?"),
    (lambda: m.concat("a", "b", axis=1.5), "should be a valid integer"),
    (lambda: m.model("g", m.dense(2), m.output("y", "x")), "a LayerCall among graph "
                                                          "statements"),
    (lambda: m.model("g", m.output("y", "x"), inputs=[4]), "a model's inputs are a dict"),
    (lambda: m.model("g", m.output("y", "x"), inputs={"x": [0]}),
     "a list of positive integers"),
    (lambda: m.share("2enc", m.dense(2)), "'2enc' cannot name a shared layer"),
])
def test_graph_mistakes_are_errors_when_built(make, message):
    with pytest.raises(mlspec.SpecError) as info:
        make()
    assert message in str(info.value)


def test_a_built_graph_s_mistakes_are_check_s_at_its_statements():
    spec = m.spec(m.model("g", m.binding("h", m.add("a", "b")), m.output("y", "h"),
                          inputs={"a": [4], "b": [3]}))
    with pytest.raises(mlspec.SpecError, match=r"add needs values of equal shapes: 'a' is "
                                               r"\[4\] but 'b' is \[3\]"):
        mlspec.check(spec)


def test_graph_build_docstring_examples_run():
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = doctest.DocTestFinder().find(graph_build, globs={"mlspec": mlspec})
    for test in tests:
        runner.run(test)
    assert runner.failures == 0 and sum(len(t.examples) for t in tests) >= 5
