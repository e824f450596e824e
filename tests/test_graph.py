"""Graph models (LANGUAGE.md v2, "Graph models"), built from the IR: a table of graphs
(branches, every merge, shares, graph blocks, blocks nested in chains, several inputs and
outputs) whose shapes and parameter counts are checked against literal numbers, a
hand-built flax module and the compiled module; a table of every graph mistake at its
place; a graph that is a chain trains exactly as the chain; a shared layer has one set of
weights that both uses train. (Once graphs parse, the error rows join the broken-spec
table.)"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

import mlspec
from mlspec.catalog.merges import MERGES
from mlspec.compiler.graph import example_input
from mlspec.compiler.model import build_module
from mlspec.semantics.program import Program
from mlspec.semantics.summary import input_text, model_rows
from mlspec.syntax import ir
from mlspec.syntax.errors import Span, SpecError

L = ir.LayerCall.of
N = ir.Name


def at(line: int, column: int = 1) -> Span:
    return Span(file="g.mlspec", line=line, column=column, end_line=line,
                end_column=column + 3)


def chain(start, *layers) -> ir.Chain:
    return ir.Chain(start=start, layers=layers)


def bind(name, start, *layers, line=None) -> ir.Binding:
    return ir.Binding(name=name, value=chain(start, *layers),
                      span=at(line) if line else None)


def out(name, start, *layers, line=None) -> ir.Output:
    return ir.Output(name=name, value=chain(start, *layers), span=at(line) if line else None)


def merge(kind, *names, line=None, **kwargs) -> ir.Call:
    call = ir.Call.of(kind, *(N(name=n) for n in names), **kwargs)
    return call.model_copy(update={"span": at(line)}) if line else call


def share(name, layer, line=None) -> ir.Share:
    return ir.Share(name=name, layer=layer, span=at(line) if line else None)


def floats(name, *shape) -> ir.InputDecl:
    return ir.InputDecl(name=name, type=ir.as_expr(list(shape)))


def graph_spec(statements, inputs=(), blocks=(), data=None, train=None) -> ir.Spec:
    return ir.Spec(blocks=tuple(blocks), data=data, train=train, model=ir.Model(
        name="g", inputs=tuple(inputs), graph=tuple(statements), span=at(1)))


MLP = ir.Block(name="mlp", params=(ir.BlockParam(name="w"),),
               body=(L("dense", N(name="w")), L("relu")))
INCEPTION = ir.Block(name="inception", params=(ir.BlockParam(name="f"),), graph=(
    bind("a", "in", L("dense", N(name="f"))),
    bind("b", "in", L("dense", N(name="f")), L("relu")),
    bind("out", merge("concat", "a", "b")),
))


# ------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Row:
    id: str
    spec: ir.Spec
    outputs: dict[str, tuple[int, ...]]
    params: int
    hand: Callable
    """The same network in flax, by hand: a function of the inputs, inside a compact
    module."""
    inputs: dict = field(default_factory=dict)


def _hand_concat(xs):
    a = nn.Dense(4)(xs["x"])
    b = nn.relu(nn.Dense(6)(xs["x"]))
    return nn.Dense(2)(jnp.concatenate([a, b], -1))


def _hand_three(op):
    def hand(xs):
        a, b, c = (nn.Dense(3)(xs["x"]) for _ in range(3))
        return nn.Dense(1)(op(a, b, c))
    return hand


def _hand_axis0(xs):
    a = nn.Dense(3)(xs["x"])
    y = jnp.concatenate([xs["x"], a], 1)
    return nn.Dense(1)(y.reshape(y.shape[0], -1))


def _hand_share(xs):
    enc = nn.Dense(4)
    return nn.Dense(1)(jnp.concatenate([enc(xs["x"]), enc(nn.relu(xs["x"]))], -1))


def _hand_siamese(xs):
    tower = nn.Dense(6)
    return nn.Dense(1)(nn.relu(tower(xs["x1"])) + nn.relu(tower(xs["x2"])))


def _hand_inception(xs):
    def inception(x, f):
        return jnp.concatenate([nn.Dense(f)(x), nn.relu(nn.Dense(f)(x))], -1)
    return nn.Dense(1)(inception(inception(xs["x"], 4), 2))


def _hand_nested(xs):
    h = xs["x"]
    for _ in range(2):
        h = nn.relu(nn.Dense(8)(h))
    y = jnp.concatenate([h, xs["x"]], -1)
    y = y + nn.Dense(16)(y)
    return nn.Dense(2)(y)


def _hand_two_outputs(xs):
    h = nn.relu(nn.Dense(8)(xs["x"]))
    return {"a": nn.Dense(1)(h), "b": nn.Dense(3)(h)}


def _hand_typed(xs):
    e = nn.Embed(20, 4)(xs["t"]).reshape(xs["t"].shape[0], -1)
    f = nn.Embed(7, 4)(xs["c"])
    return nn.Dense(1)(jnp.concatenate([e, f], -1))


def _three(kind):
    return [bind("a", "x", L("dense", 3)), bind("b", "x", L("dense", 3)),
            bind("c", "x", L("dense", 3)), out("y", merge(kind, "a", "b", "c"), L("dense", 1))]


_OPS = {"add": lambda a, b, c: a + b + c, "multiply": lambda a, b, c: a * b * c,
        "average": lambda a, b, c: (a + b + c) / 3,
        "maximum": lambda a, b, c: jnp.maximum(jnp.maximum(a, b), c)}

ROWS = [
    # two branches, concatenated: 8*4+4 + 8*6+6 + 10*2+2
    Row("branches-concat", graph_spec([
        bind("a", "x", L("dense", 4)), bind("b", "x", L("dense", 6), L("relu")),
        out("y", merge("concat", "a", "b"), L("dense", 2))], [floats("x", 8)]),
        {"y": (2,)}, 36 + 54 + 22, _hand_concat),
    # every elementwise merge of three values: 3 * (4*3+3) + 3+1
    *(Row(f"merge-{kind}", graph_spec(_three(kind), [floats("x", 4)]), {"y": (1,)}, 49,
          _hand_three(op)) for kind, op in _OPS.items()),
    # concat on the first axis of an example: [2, 3] and [2, 3] -> [4, 3] -> 12 -> 1
    Row("concat-axis-0", graph_spec([
        bind("a", "x", L("dense", 3)),
        out("y", merge("concat", "x", "a", axis=0), L("flatten"), L("dense", 1))],
        [floats("x", 2, 3)]), {"y": (1,)}, 12 + 13, _hand_axis0),
    # a shared layer's weights count once: 8*4+4, then 8+1
    Row("share-layer", graph_spec([
        share("enc", L("dense", 4)), bind("a", "x", L("enc")),
        bind("b", "x", L("relu"), L("enc")),
        out("y", merge("concat", "a", "b"), L("dense", 1))], [floats("x", 8)]),
        {"y": (1,)}, 36 + 9, _hand_share),
    # a shared block over two inputs (a siamese net): 5*6+6, then 6+1
    Row("share-block", graph_spec([
        share("tower", L("mlp", 6)), bind("a", "x1", L("tower")), bind("b", "x2", L("tower")),
        out("d", merge("add", "a", "b"), L("dense", 1))],
        [floats("x1", 5), floats("x2", 5)], blocks=[MLP]), {"d": (1,)}, 36 + 7,
        _hand_siamese),
    # a graph block used twice in a chain, each use its own weights: 6 -> 8 -> 4 -> 1
    Row("graph-blocks", graph_spec([
        out("y", "x", L("inception", 4), L("inception", 2), L("dense", 1))],
        [floats("x", 6)], blocks=[INCEPTION]), {"y": (1,)}, 56 + 36 + 5, _hand_inception),
    # blocks in a repeat in a chain, and a residual after a merge
    Row("nested-blocks", graph_spec([
        bind("h", "x", L("repeat", 2, body=(L("mlp", 8),))),
        out("y", merge("concat", "h", "x"), L("residual", body=(L("dense", 16),)),
            L("dense", 2))], [floats("x", 8)], blocks=[MLP]),
        {"y": (2,)}, 2 * 72 + 272 + 34, _hand_nested),
    # two outputs from one trunk: a dict of two arrays
    Row("two-outputs", graph_spec([
        bind("h", "x", L("dense", 8), L("relu")), out("a", "h", L("dense", 1)),
        out("b", "h", L("dense", 3))], [floats("x", 4)]),
        {"a": (1,), "b": (3,)}, 40 + 9 + 27, _hand_two_outputs),
    # typed inputs: token ids and one category id
    Row("typed-inputs", graph_spec([
        bind("e", "t", L("embedding", 20, 4), L("flatten")),
        bind("f", "c", L("embedding", 7, 4)),
        out("y", merge("concat", "e", "f"), L("dense", 1))],
        [ir.InputDecl(name="t", type=ir.Call.of("tokens", 5, vocab=20)),
         ir.InputDecl(name="c", type=ir.Call.of("category", vocab=7))]),
        {"y": (1,)}, 80 + 28 + 25, _hand_typed),
]


def test_the_table_holds_every_merge():
    used = {node.merge.kind for row in ROWS for node in mlspec.resolve(row.spec).model.graph.nodes
            if node.merge is not None}
    assert used == set(MERGES)


class Hand(nn.Module):
    fn: Callable

    @nn.compact
    def __call__(self, xs):
        return self.fn(xs)


def _inputs(program, rows=2):
    rng = np.random.default_rng(0)
    out = {}
    for i in program.model.inputs:
        shape = (rows, *i.shape)
        out[i.name] = jnp.asarray(rng.integers(0, i.vocab, shape), jnp.int32) if i.vocab \
            else jnp.asarray(rng.normal(size=shape), jnp.float32)
    return out


def _count(params) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_shapes_and_parameter_counts(row):
    program = mlspec.resolve(row.spec)
    model = program.model
    assert dict(model.output_shapes) == row.outputs
    assert model.graph.param_count(model.input_shapes()) == row.params
    rows = model_rows(model)
    assert sum(count for depth, _, _, count in rows if depth == 0) == row.params
    xs = _inputs(program)
    hand = Hand(row.hand).init(jax.random.PRNGKey(0), xs)
    assert _count(hand) == row.params, "the hand-built flax module"
    module = build_module(model)
    given = xs if len(xs) > 1 else next(iter(xs.values()))
    variables = module.init(jax.random.PRNGKey(0), given)
    assert _count(variables) == row.params, "the compiled module"
    y = module.apply(variables, given)
    got = {k: v.shape[1:] for k, v in y.items()} if isinstance(y, dict) \
        else {model.graph.outputs[0]: y.shape[1:]}
    assert got == row.outputs
    abstract = example_input(model, rows=3)
    assert jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x), abstract)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_graph_programs_read_back_from_json(row):
    program = mlspec.resolve(row.spec)
    text = program.model_dump_json()
    again = Program.model_validate_json(text)
    assert again == program and again.model_dump_json() == text


def test_compiled_graph_computes_what_the_hand_built_one_does():
    """The same parameters, put into the hand-built module, give the same outputs."""
    row = next(r for r in ROWS if r.id == "share-layer")
    program = mlspec.resolve(row.spec)
    module = build_module(program.model)
    x = _inputs(program)["x"]
    params = module.init(jax.random.PRNGKey(1), x)["params"]
    hand = {"params": {"Dense_0": params["shared_enc"]["Dense_0"],
                       "Dense_1": params["Dense_0"]}}
    np.testing.assert_allclose(module.apply({"params": params}, x),
                               Hand(row.hand).apply(hand, {"x": x}), rtol=1e-6)


def test_summary_lists_nodes_in_order_with_inputs_shapes_and_params():
    row = next(r for r in ROWS if r.id == "share-layer")
    model = mlspec.resolve(row.spec).model
    assert input_text(model) == "inputs x [8]"
    assert model_rows(model) == [
        (0, "input x", (8,), 0),
        (0, "a = x", (4,), 36),
        (1, "enc (shared: dense(4, use_bias=true))", (4,), 36),
        (0, "b = x", (4,), 0),
        (1, "relu", (8,), 0),
        (1, "enc (shared: dense(4, use_bias=true))", (4,), 0),
        (0, "output y = concat(a, b, axis=-1)", (1,), 9),
        (1, "dense(1, use_bias=true)", (1,), 9),
    ]
    blocks = model_rows(mlspec.resolve(next(r for r in ROWS if r.id == "graph-blocks").spec
                                       ).model)
    assert blocks[1:4] == [(0, "output y = x", (1,), 97), (1, "inception (block)", (8,), 56),
                           (2, "a = in", (4,), 28)]


def test_check_and_summary_of_a_graph_never_import_jax():
    code = ("import sys, mlspec\nfrom mlspec.syntax import ir\n"
            "from mlspec.semantics.summary import model_rows\n"
            "L = ir.LayerCall.of\n"
            "s = ir.Spec(model=ir.Model(name='g', inputs=[ir.InputDecl(name='x', "
            "type=ir.as_expr([3]))], graph=[ir.Share(name='e', layer=L('dense', 2)), "
            "ir.Binding(name='a', value=ir.Chain(start='x', layers=[L('e')])), "
            "ir.Output(name='y', value=ir.Chain(start=ir.Call.of('add', ir.Name(name='a'), "
            "ir.Name(name='a'))))]))\n"
            "model_rows(mlspec.check(s).model)\n"
            "print(sorted(m for m in ('jax', 'flax', 'optax') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.splitlines()[-1] == "[]"


# ------------------------------------------------------------------------ training


IRIS = mlspec.data(source="iris", valid=0.3, standardize=True)


def iris_train(**extra):
    return mlspec.train(loss="softmax_cross_entropy", optimizer=mlspec.sgd(
        learning_rate=0.1, momentum=0.9), steps=40, eval_every=10, metrics=["accuracy"],
        seed=3, **extra)


def assert_same_history(a, b):
    assert list(a.history.columns) == list(b.history.columns)
    for column in a.history.columns:
        np.testing.assert_allclose(a.history[column], b.history[column], rtol=1e-5,
                                   atol=1e-6, err_msg=column)


@pytest.mark.parametrize("seeds", [1, 2])
def test_a_graph_that_is_a_chain_trains_as_the_chain(seeds):
    train = iris_train(seeds=seeds)
    as_chain = mlspec.spec(mlspec.model("net", mlspec.dense(16), "relu",
                                        mlspec.dense(mlspec.classes)), data=IRIS, train=train)
    as_graph = graph_spec([out("y", "x", L("dense", 16), L("relu"),
                               L("dense", N(name="classes")))], data=IRIS, train=train)
    a, b = mlspec.run(as_chain), mlspec.run(as_graph)
    assert _count(a.params) == _count(b.params) == 4 * 16 + 16 + 16 * 3 + 3
    assert_same_history(a, b)
    assert b.history["train.loss"].iloc[-1] < b.history["train.loss"].iloc[0]


def test_a_branching_graph_with_a_share_and_a_block_trains():
    spec = graph_spec([
        share("enc", L("mlp", 8)), bind("a", "x", L("enc")),
        bind("b", "x", L("tanh"), L("enc"), L("dropout", 0.1)),
        out("y", merge("concat", "a", "b"), L("dense", N(name="classes")))],
        blocks=[MLP], data=IRIS, train=iris_train())
    result = mlspec.run(spec)
    assert _count(result.params) == (4 * 8 + 8) + (16 * 3 + 3), "the share counts once"
    assert result.history["train.loss"].iloc[-1] < 0.5 * result.history["train.loss"].iloc[0]
    assert result.history["valid.accuracy"].iloc[-1] > 0.8


def test_a_sweep_over_a_graph_trains_as_one_program_per_member():
    lr = ir.Param(name="lr", value=ir.as_expr(0.1))
    train = mlspec.train(loss="softmax_cross_entropy", optimizer=mlspec.sgd(
        learning_rate=N(name="lr"), momentum=0.9), steps=30, eval_every=10, seed=1)
    spec = graph_spec([bind("a", "x", L("dense", 8), L("leaky_relu", 0.2)),
                       bind("b", "x", L("dense", 8)),
                       out("y", merge("add", "a", "b"), L("dense", N(name="classes")))],
                      data=IRIS, train=train)
    spec = spec.model_copy(update={"params": (lr,), "sweep": ir.Section(settings=(
        ir.Setting(path="lr", value=ir.as_expr([0.05, 0.2])),))})
    result = mlspec.run(spec)
    single = mlspec.run(spec.model_copy(update={"sweep": None}), {"lr": 0.2})
    member = next(m for m in result.members if m.settings["lr"] == 0.2)
    for column in single.history.columns.drop("step"):
        np.testing.assert_allclose(member.history[column], single.history[column], rtol=1e-4,
                                   err_msg=column)


def test_a_shared_layer_has_one_set_of_weights_trained_from_both_uses():
    row = next(r for r in ROWS if r.id == "share-block")
    program = mlspec.resolve(row.spec)
    module = build_module(program.model)
    xs = _inputs(program, rows=5)
    params = module.init(jax.random.PRNGKey(0), xs)["params"]
    assert set(params) == {"shared_tower", "Dense_0"}

    def grad_of_tower(x1, x2):
        def loss(p):
            return module.apply({"params": p}, {"x1": x1, "x2": x2}).sum()
        return jax.grad(loss)(params)["shared_tower"]["mlp_0"]["Dense_0"]["kernel"]

    both = grad_of_tower(xs["x1"], xs["x2"])
    # a zero input adds nothing to the kernel's gradient (x^T g)
    first = grad_of_tower(xs["x1"], jnp.zeros_like(xs["x2"]))
    second = grad_of_tower(jnp.zeros_like(xs["x1"]), xs["x2"])
    assert float(jnp.abs(first).sum()) > 0 and float(jnp.abs(second).sum()) > 0
    np.testing.assert_allclose(both, first + second, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ mistakes


X8 = [floats("x", 8)]


def _block_spec(body_graph, statements, name="blk"):
    block = ir.Block(name=name, graph=tuple(body_graph), span=Span(
        file="g.mlspec", line=20, column=1, end_line=29, end_column=2))
    use = L(name).model_copy(update={"span": at(3, 5)})
    return graph_spec([*statements(use)], X8, blocks=[block])


ERRORS = [
    ("unbound-name", graph_spec([out("y", N(name="xx", span=at(2, 12)), L("dense", 1),
                                     line=2)], X8),
     2, 12, "undefined name 'xx'; did you mean 'x'?"),
    ("bound-twice", graph_spec([bind("a", "x", L("dense", 2), line=2),
                                bind("a", "x", L("dense", 3), line=3),
                                out("y", "a", line=4)], X8),
     3, 1, "'a' is bound twice \\(first at line 2\\)"),
    ("unused-binding", graph_spec([bind("a", "x", L("dense", 2), line=2),
                                   out("y", "x", L("dense", 1), line=3)], X8),
     2, 1, "'a' is bound but nothing uses it"),
    ("unused-input", graph_spec([out("y", "x", L("dense", 1), line=2)],
                                [*X8, floats("z", 2)]),
     1, 1, "input 'z' of model 'g' is never used"),
    ("use-before-bind", graph_spec([bind("a", N(name="b", span=at(2, 9)), L("dense", 2),
                                         line=2),
                                    bind("b", "a", L("dense", 2), line=3),
                                    out("y", "b", line=4)], X8),
     2, 9, "'b' is used before it is bound"),
    ("self-use", graph_spec([bind("a", "x", line=2),
                             out("y", merge("add", "a", "y", line=3), line=3)], X8),
     None, None, "'y' is used in its own binding"),
    ("merge-shapes", graph_spec([bind("a", "x", L("dense", 2), line=2),
                                 bind("b", "x", L("dense", 3), line=3),
                                 out("y", merge("add", "a", "b", line=4), line=4)], X8),
     4, 1, "add needs values of equal shapes: 'a' is \\[2\\] but 'b' is \\[3\\]"),
    ("concat-shapes", graph_spec([bind("a", "x", L("reshape", [2, 4]), line=2),
                                  bind("b", "x", L("reshape", [4, 2]), line=3),
                                  out("y", merge("concat", "a", "b", line=4), line=4)], X8),
     4, 1, "concat along axis -1 needs shapes equal but on that axis: 'a' is \\[2, 4\\] but "
           "'b' is \\[4, 2\\]"),
    ("concat-axis", graph_spec([out("y", merge("concat", "x", "x", axis=1, line=2), line=2)],
                               X8),
     2, 1, "concat axis 1 is not an axis of \\[8\\]"),
    ("merge-one-value", graph_spec([out("y", merge("add", "x", line=2), line=2)], X8),
     2, 1, "add merges two or more values; it is given 1"),
    ("chain-from-a-layer", graph_spec([bind("h", ir.Call.of("dense", 3).model_copy(
        update={"span": at(2, 5)}), line=2), out("y", "h")], X8),
     2, 5, "a chain starts from a value .* 'dense' is a layer: write h = NAME -> dense"),
    ("chain-from-a-bare-layer", graph_spec([bind("h", N(name="relu", span=at(2, 5)), line=2),
                                            out("y", "h")], X8),
     2, 5, "a chain starts from a value .* 'relu' is a layer"),
    ("unknown-merge", graph_spec([out("y", merge("concatt", "x", "x", line=2))], X8),
     2, 1, "unknown merge 'concatt'; did you mean 'concat'\\?"),
    ("merge-value-not-a-name", graph_spec([out("y", ir.Call.of(
        "concat", N(name="x"), 1).model_copy(update={"span": at(2, 5)}))], X8),
     2, 5, "concat merges values, named by inputs or bindings"),
    ("merge-argument", graph_spec([out("y", merge("concat", "x", "x", line=2, axis="last"))],
                                  X8),
     None, None, "argument 'axis' of merge 'concat' should be a valid integer"),
    ("share-before-its-line", graph_spec([
        bind("a", "x", L("enc").model_copy(update={"span": at(2, 9)}), line=2),
        share("enc", L("dense", 4), line=3), out("y", "a", L("enc"))], X8),
     2, 9, "shared layer 'enc' is used before its share line"),
    ("share-with-arguments", graph_spec([
        share("enc", L("dense", 4), line=2),
        out("y", "x", L("enc", 3).model_copy(update={"span": at(3, 9)}))], X8),
     3, 9, "shared layer 'enc' is used as it is"),
    ("share-unused", graph_spec([share("enc", L("dense", 4), line=2),
                                 out("y", "x", L("dense", 1))], X8),
     2, 1, "shared layer 'enc' is never used"),
    ("share-two-shapes", graph_spec([
        share("enc", L("dense", 4), line=2), bind("a", "x", L("enc")),
        bind("b", "x", L("dense", 3), L("enc").model_copy(update={"span": at(4, 20)})),
        out("y", merge("add", "a", "b"))], X8),
     4, 20, "shared layer 'enc' takes \\[8\\] at its first use.* but \\[3\\] here"),
    ("share-in-a-body", graph_spec([
        share("enc", L("dense", 8), line=2),
        out("y", "x", L("repeat", 2, body=(L("enc").model_copy(update={"span": at(3, 20)}),)),
            L("enc"))], X8),
     3, 20, "shared layer 'enc' stands directly in a chain \\(x -> enc\\), not in a body"),
    ("binding-named-as-an-input", graph_spec([bind("x", "x", L("dense", 2), line=2),
                                              out("y", "x")], X8),
     2, 1, "'x' is an input of the model; bind another name"),
    ("share-named-as-a-layer", graph_spec([share("relu", L("dense", 4), line=2),
                                           out("y", "x", L("dense", 1))], X8),
     2, 1, "shared layer 'relu' has the name of a layer"),
    ("no-output", graph_spec([bind("a", "x", L("dense", 1), line=2)], X8),
     1, 1, "graph model 'g' has no output"),
    ("no-inputs", graph_spec([out("y", "x", L("dense", 1))]),
     1, 1, "graph model 'g' needs its inputs"),
    ("input-twice", graph_spec([out("y", "x", L("dense", 1))], [
        *X8, ir.InputDecl(name="x", type=ir.as_expr([2]), span=at(3))]),
     3, 1, "input 'x' is declared twice"),
    ("input-type", graph_spec([out("y", "x", L("dense", 1))], [ir.InputDecl(
        name="x", type=ir.Call.of("tokens", 5).model_copy(update={"span": at(2, 9)}))]),
     2, 9, "input type 'tokens' needs argument 'vocab'"),
    ("classes-without-data", graph_spec([out("y", "x", L("dense", N(name="classes",
                                                                     span=at(2, 20))))], X8),
     2, 20, "'classes' is the number of classes of the data's target, and this spec has no "
            "data section"),
    ("layer-in-a-chain", graph_spec([out("y", "x", L("dens", 1).model_copy(
        update={"span": at(2, 9)}))], X8),
     2, 9, "unknown layer 'dens'; did you mean 'dense'\\?"),
    ("several-outputs-trained", graph_spec([
        bind("h", "x", L("dense", 4)), out("a", "h", L("dense", 3)), out("b", "h", L("dense", 3))],
        data=IRIS, train=iris_train()),
     1, 1, "model 'g' has 2 outputs \\(a, b\\), but the data has one target: give a target "
           "for each output"),
    ("data-has-no-such-input", graph_spec([out("y", "x", L("dense", 3))], [
        ir.InputDecl(name="q", type=ir.as_expr([4]), span=at(2))], data=IRIS),
     2, 1, "the data has no input 'q' \\(its inputs: x\\)"),
    ("data-input-shape", graph_spec([out("y", "x", L("dense", 3))], [
        ir.InputDecl(name="x", type=ir.as_expr([5]), span=at(2))], data=IRIS),
     2, 1, "input 'x' is declared \\[5\\] but the data's is \\[4\\]"),
    # inside a graph block: at the block's use, naming the place in the block
    ("block-unbound-name", _block_spec(
        [bind("out", N(name="inn", span=at(21, 11)), L("dense", 2))],
        lambda use: [out("y", "x", use)]),
     3, 5, "undefined name 'inn'; did you mean 'in'\\? \\(in block 'blk' at line 21"),
    ("block-without-out", _block_spec([bind("o", "in", L("dense", 2), line=21)],
                                      lambda use: [out("y", "x", use)]),
     3, 5, "block 'blk' has a graph body, whose value is the binding named 'out'"),
    ("block-with-output", _block_spec([ir.Output(name="out", value=chain("in"), span=at(21))],
                                      lambda use: [out("y", "x", use)]),
     3, 5, "output lines stand in a model"),
    ("block-shape", _block_spec([bind("a", "in", L("dense", 2)), bind("b", "in", L("dense", 3)),
                                 bind("out", merge("add", "a", "b"))],
                                lambda use: [out("y", "x", use)]),
     3, 5, "add needs values of equal shapes: 'a' is \\[2\\] but 'b' is \\[3\\] \\(in 'out'\\) "
           "in block 'blk'"),
]


# rows with a second mistake, as true as the first (a binding without output is unused)
TWO_MISTAKES = {"no-output", "block-without-out"}


@pytest.mark.parametrize(("spec", "line", "column", "message"),
                         [pytest.param(*row[1:], id=row[0]) for row in ERRORS])
def test_graph_mistakes_are_reported_at_their_place(spec, line, column, message, request):
    with pytest.raises(SpecError) as caught:
        mlspec.resolve(spec)
    diagnostics = caught.value.diagnostics
    found = [d for d in diagnostics if re.search(message, d.message)]
    assert found, [d.message for d in diagnostics]
    assert len(diagnostics) == 1 or request.node.callspec.id in TWO_MISTAKES, \
        [d.message for d in diagnostics]
    if line is not None:
        span = found[0].span
        assert (span.line, span.column) == (line, column)


def test_every_mistake_is_found_at_once():
    spec = graph_spec([bind("a", N(name="qqq"), L("dense", 2), line=2),
                       bind("b", "x", L("dense", 2), line=3),
                       out("y", merge("concatt", "x", "x"), line=4)], X8)
    with pytest.raises(SpecError) as caught:
        mlspec.resolve(spec)
    # (what a failed line would have used is not known, so 'b' is not called unused)
    assert [d.message for d in caught.value.diagnostics] == [
        "undefined name 'qqq'; the values bound here are 'x'",
        "unknown merge 'concatt'; did you mean 'concat'?"]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_the_resolved_spec_of_a_graph_resolves_to_the_same_network(row):
    """`check --resolved`: blocks written out (a graph block's each use a block of its
    own, without arguments), every default given; the same shapes and parameters."""
    from mlspec.semantics.canonical import resolved_spec

    model = mlspec.resolve(row.spec).model
    again = mlspec.resolve(resolved_spec(mlspec.resolve(row.spec))).model
    assert again.output_shapes == model.output_shapes and again.inputs == model.inputs
    assert again.graph.param_count(again.input_shapes()) == row.params
    if not any(b.body or b.graph for b in row.spec.blocks):
        assert again.graph == model.graph


def test_a_graph_block_in_a_chain_model_trains():
    """A v1 chain may use a graph block (narrow first layers still run features-first on
    a CPU, the block rows-first after them)."""
    spec = mlspec.spec(INCEPTION, mlspec.model("net", mlspec.dense(8), "relu",
                                               mlspec.layer(INCEPTION, 4),
                                               mlspec.dense(mlspec.classes)),
                       data=IRIS, train=iris_train())
    program = mlspec.resolve(spec)
    assert [layer.kind for layer in program.model.layers] == ["dense", "relu", "graph_block",
                                                              "dense"]
    result = mlspec.run(spec)
    assert _count(result.params) == 40 + 2 * 36 + 27
    assert result.history["train.loss"].iloc[-1] < 0.5 * result.history["train.loss"].iloc[0]


def test_an_unused_graph_block_is_checked_alone():
    block = ir.Block(name="blk", params=(ir.BlockParam(name="f"),), graph=(
        bind("out", N(name="inn", span=at(21, 11)), L("dense", N(name="f"))),),
        span=Span(file="g.mlspec", line=20, column=1, end_line=29, end_column=2))
    spec = graph_spec([out("y", "x", L("dense", 1))], X8, blocks=[block])
    with pytest.raises(SpecError) as caught:
        mlspec.resolve(spec)
    assert [(d.span.line, d.span.column, d.message) for d in caught.value.diagnostics] == [
        (21, 11, "undefined name 'inn'; did you mean 'in'?")]


def test_budget_and_optimizer_state_count_a_shared_layer_once():
    from mlspec.compiler.sizes import optimizer_state_bytes
    from mlspec.semantics.budget import program_needs

    spec = graph_spec([share("enc", L("dense", 8)), bind("a", "x", L("enc")),
                       bind("b", "x", L("tanh"), L("enc")),
                       out("y", merge("concat", "a", "b"), L("dense", N(name="classes")))],
                      data=IRIS, train=iris_train())
    program = mlspec.resolve(spec)
    count = (4 * 8 + 8) + (16 * 3 + 3)
    assert optimizer_state_bytes(program) == count * 4  # sgd with momentum: one slot
    params = program_needs(program, spec.train)[0]
    assert params.nbytes == count * 3 * 4  # the params, their gradients, the momentum


def test_traced_values_reach_each_layer_of_a_graph_in_walk_order():
    """A graph's traced fields (what members of a sweep may differ in) are fed from the
    state in the order the program lists them: shares, then each node, graph blocks
    inside; fed or constant, the outputs are the same."""
    from mlspec.catalog.traced import traced_values

    block = ir.Block(name="lb", graph=(bind("a", "in", L("leaky_relu", 0.3)),
                                       bind("out", merge("add", "a", "in"))))
    spec = graph_spec([
        share("enc", L("repeat", 1, body=(L("dense", 4), L("leaky_relu", 0.5)))),
        bind("a", "x", L("leaky_relu", 0.1), L("enc")),
        bind("b", "x", L("leaky_relu", 0.2), L("lb"), L("enc"), L("leaky_relu", 0.7)),
        out("y", merge("concat", "a", "b"), L("leaky_relu", 0.9))], X8, blocks=[block])
    program = mlspec.resolve(spec)
    values = traced_values(program)
    assert values == {"leaky_relu_slope": [0.5, 0.1, 0.2, 0.3, 0.7, 0.9]}
    module = build_module(program.model)
    x = -jnp.abs(jax.random.normal(jax.random.PRNGKey(0), (3, 8)))  # every slope counts
    variables = module.init(jax.random.PRNGKey(0), x)
    fed = module.apply(variables, x, traced={k: jnp.asarray(v) for k, v in values.items()})
    np.testing.assert_allclose(fed, module.apply(variables, x), rtol=1e-6)
    swapped = {"leaky_relu_slope": jnp.asarray(values["leaky_relu_slope"][::-1])}
    assert not np.allclose(module.apply(variables, x, traced=swapped), fed)
