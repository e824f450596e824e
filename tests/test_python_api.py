"""Specs built from Python: every spec in specs/ written with the builder equals its
parsed text and prints as it; names are checked at build time; the catalogue functions
are the registries' own; `check` and `resolve` take paths as `run` does; `import mlspec`
and building never import jax."""

from __future__ import annotations

import doctest
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS
from python_forms_v2 import BUILT_V2

import mlspec
from mlspec.catalog.layers import LAYERS
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.optimizers import optax_catalogue
from mlspec.catalog.sources import SOURCES
from mlspec.semantics import build, builders
from mlspec.syntax import ir

m = mlspec  # the builder code below reads as a user writes it


def hill_net(last: int, loss: str, optimizer, steps: int, seed: int, metrics: list[str]):
    return m.spec(
        m.model("hill_net", m.dense(2), "sigmoid", m.dense(last)),
        data=m.data(train=m.hill(n=10000, seed=0), valid=m.hill(n=1000, seed=1)),
        train=m.train(loss=loss, optimizer=optimizer, steps=steps, seed=seed, metrics=metrics))


def two_splits(name: str, source, loss: str, optimizer, steps: int, metrics: list[str]):
    return m.spec(m.model(name, m.dense(1)),
                  data=m.data(train=source(n=10000, seed=0), valid=source(
                      n=1000 if source is m.linear else 10000, seed=1)),
                  train=m.train(loss=loss, optimizer=optimizer, steps=steps, metrics=metrics))


def digits(model, loss="softmax_cross_entropy", optimizer=None, **train):
    return m.spec(*model, data=m.data(source="digits", valid=0.2, standardize=True),
                  train=m.train(loss=loss, optimizer=optimizer, **train))


def residual_mlp():
    width = m.param("width", 64)
    w, act = m.arg("width"), m.arg("act", default=m.gelu)
    res_block = m.block("res_block", [w, act],
                        m.residual(m.layer_norm, m.dense(w), act, m.dense(w)))
    schedule = m.warmup_cosine_decay_schedule(init_value=0.0, peak_value=0.003,
                                              warmup_steps=50, decay_steps=600)
    return digits([width, res_block, m.model(
        "residual_mlp", m.dense(width), m.repeat(3, m.layer(res_block, width)),
        "layer_norm", m.dense(m.classes))],
        loss={"softmax_cross_entropy": 1, "l2": 1e-5},
        optimizer=m.adamw(learning_rate=schedule, weight_decay=1e-4),
        epochs=25, batch=64, eval_every=20, metrics=["accuracy"])


def digits_mlp():
    hidden = m.param("hidden", 128)
    return digits([hidden, m.model("digits_mlp", m.dense(hidden), "relu", m.dropout(0.2),
                                   m.dense(hidden), "relu", m.dense(m.classes))],
                  optimizer=m.adam(learning_rate=0.001), epochs=40, batch=64, eval_every=20,
                  metrics=["accuracy"])


def digits_cnn():
    return digits([m.model("digits_cnn", m.reshape([8, 8, 1]), m.conv(16, 3), "relu",
                           m.conv(32, 3), "relu", m.max_pool(2), "flatten", m.dense(64),
                           "relu", m.dense(m.classes))],
                  optimizer=m.adam(learning_rate=0.001), epochs=30, batch=64, eval_every=20,
                  metrics=["accuracy"])


BUILT = {
    "hill": lambda: hill_net(2, "softmax_cross_entropy", m.rmsprop(learning_rate=0.01), 4000,
                             42, ["accuracy", "false_pos", "false_neg", "pred_mean"]),
    "hill_gd": lambda: hill_net(1, "sigmoid_binary_cross_entropy", m.sgd(learning_rate=2.0),
                                2000, 0, ["accuracy", "false_pos", "false_neg"]),
    "hill_rmsprop": lambda: hill_net(1, "sigmoid_binary_cross_entropy",
                                     m.rmsprop(learning_rate=0.01), 4000, 0,
                                     ["accuracy", "false_pos", "false_neg"]),
    "linear": lambda: two_splits("line", m.linear, "mse", m.sgd(learning_rate=0.01), 500,
                                 ["mse", "r2"]),
    "logit": lambda: m.spec(
        m.model("logit", m.dense(1)),
        data=m.data(train=m.hyperplane(n=10000, dim=100, seed=0),
                    valid=m.hyperplane(n=10000, dim=100, seed=1)),
        train=m.train(loss="sigmoid_binary_cross_entropy", optimizer=m.sgd(learning_rate=2.0),
                      steps=5000, metrics=["accuracy", "false_pos", "false_neg", "pred_mean",
                                           "weight_mean", "weight_std"])),
    "radial": lambda: m.spec(
        m.model("logit", m.dense(1)),
        data={"train": m.radial(n=10000, dim=100, seed=0),
              "valid": m.radial(n=10000, dim=100, seed=1)},
        train={"loss": "sigmoid_binary_cross_entropy", "optimizer": m.sgd(learning_rate=2.0),
               "steps": 100, "metrics": ["accuracy", "false_pos", "false_neg", "pred_mean",
                                         "weight_mean", "weight_std"]}),
    "breast_cancer": lambda: m.spec(
        m.model("logistic", m.dense(1)),
        data=m.data(source="breast_cancer", valid=0.2, standardize=True),
        train=m.train(loss={"sigmoid_binary_cross_entropy": 1, "l2": 0.001},
                      optimizer=m.adam(learning_rate=0.01), steps=500, eval_every=10,
                      metrics=["accuracy", "precision", "recall", "f1"])),
    "diabetes_csv": lambda: m.spec(
        m.model("ols", m.dense(1)),
        data=m.data(source=m.csv("data/diabetes.csv", target="progression"), valid=0.2,
                    standardize=True),
        train=m.train(loss="mse", optimizer="lbfgs", steps=50, metrics=["r2", "rmse", "mae"])),
    "iris_csv": lambda: m.spec(
        m.model("iris_net", m.dense(16), "relu", m.dense(m.classes)),
        data=m.data(source=m.csv("data/iris.csv", target="species"), valid=0.2,
                    standardize=True),
        train=m.train(loss="softmax_cross_entropy", optimizer=m.adam(learning_rate=0.01),
                      steps=300, eval_every=10, metrics=["accuracy"])),
    "digits_mlp": digits_mlp,
    "digits_cnn": digits_cnn,
    "residual_mlp": residual_mlp,
    **BUILT_V2,
}


def test_every_spec_of_specs_has_its_python_form():
    assert set(BUILT) == {path.stem for path in SPECS}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_built_spec_equals_the_parsed_file_and_prints_as_it(path):
    built, parsed = BUILT[path.stem](), mlspec.load(path)
    assert built == parsed
    # printed as the parsed spec prints where no layout of its own is kept (its spans
    # and comments, which JSON leaves out), and read back the same
    assert built.to_text() == ir.Spec.model_validate_json(parsed.model_dump_json()).to_text()
    assert mlspec.parse(built.to_text()) == built
    assert mlspec.check(built.model_copy(update={"path": str(path)})) == mlspec.check(parsed)


SWEEP_TEXT = """\
param hidden = 8
param lr     = 0.01

model net {
    dense(hidden) -> relu
    dense(classes)
}

data {
    source = iris
    valid  = 0.3
}

train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=lr)
    steps     = 20
}

sweep {
    hidden     = [4, 8]
    lr         = [0.001, 0.01]
    train.seed = [0, 1]
    train.loss = [softmax_cross_entropy, softmax_cross_entropy + 0.001 * l2]
}
"""


def test_a_sweep_built_equals_its_text_and_checks():
    hidden, lr = m.param("hidden", 8), m.param("lr", 0.01)
    spec = m.spec(
        hidden, lr, m.model("net", m.dense(hidden), "relu", m.dense(m.classes)),
        data=m.data(source="iris", valid=0.3),
        train=m.train(loss="softmax_cross_entropy", optimizer=m.adam(learning_rate=lr),
                      steps=20),
        sweep=m.sweep({hidden: [4, 8], "lr": [0.001, 0.01], "train.seed": [0, 1],
                       "train.loss": ["softmax_cross_entropy",
                                      {"softmax_cross_entropy": 1, "l2": 0.001}]}))
    assert spec == mlspec.parse(SWEEP_TEXT)
    assert spec.to_text() == SWEEP_TEXT
    assert mlspec.check(spec).model.output_shape == (3,)
    assert m.sweep(hidden=[4, 8]) == m.sweep({"hidden": [4, 8]}) == m.sweep({hidden: [4, 8]})


def test_values_names_and_layers_from_python():
    width, act = m.arg("width"), m.arg("act", default=m.relu)
    mlp = m.block("mlp", [width, act, "extra"], m.dense(width), act)
    assert mlp == mlspec.parse("block mlp(width, act=relu, extra) { dense(width) -> act }"
                               ).blocks[0]
    # a layer is a name, an uncalled function, a call, or a list of these
    assert m.model("n", "relu", m.relu, m.relu(), [m.tanh, ["gelu"]]).layers == tuple(
        ir.LayerCall(name=n) for n in ("relu", "relu", "relu", "tanh", "gelu"))
    assert m.model("n", m.call("dense", 2)).layers == (m.dense(2),)
    assert m.model("n", m.layer(mlp, 4), m.layer("imported_block", 2)).layers == \
        mlspec.parse("model n { mlp(4) -> imported_block(2) }").model.layers
    assert m.model("n", mlp).layers == (ir.LayerCall(name="mlp"),)
    # values: a dict is a list of pairs, a layer a call, a name a name
    schedule = m.piecewise_constant_schedule(init_value=0.1,
                                             boundaries_and_scales={100: 0.1, 200: 0.5})
    assert schedule == mlspec.parse(
        "model m { dense(1) }\ntrain { optimizer = piecewise_constant_schedule(init_value=0.1,"
        " boundaries_and_scales=[[100, 0.1], [200, 0.5]]) }").train.settings[0].value
    assert m.param("p", m.leaky_relu(0.2)).value == ir.Call.of("leaky_relu", 0.2)
    assert m.early_stop(metric=m.name("valid.accuracy"), mode=m.name("max")) == \
        mlspec.parse("model m { dense(1) }\ntrain { early_stop = early_stop("
                     "metric=valid.accuracy, mode=max) }").train.settings[0].value
    assert m.train(devices="all").settings[0].value == m.name("all")
    assert m.model("m", m.dense(1), input=[8, 8, 1]) == mlspec.parse(
        "model m { input [8, 8, 1]\n dense(1) }").model
    assert m.spec(imports=["lib.mlspec"]).imports == (ir.Import(path="lib.mlspec"),)
    loss = m.train(loss={"mse": 1, "l1": m.param("w", 0.1), m.huber(delta=2.0): 0.5})
    assert loss.settings[0].value == mlspec.parse(
        "model m { dense(1) }\ntrain { loss = mse + w * l1 + 0.5 * huber(delta=2.0) }"
    ).train.settings[0].value


BUILD_ERRORS = [
    (lambda: m.model("m", "sigmod"), "unknown layer 'sigmod'; did you mean 'sigmoid'?"),
    (lambda: m.model("m", "hill"), "'hill' is a data source, not a layer"),
    (lambda: m.model("m", m.adam), "'adam' is an optimizer, not a layer"),
    (lambda: m.model("m", "dense"), "layer 'dense' needs argument 'features'"),
    (lambda: m.model("m", 3), "an int cannot be a layer"),
    (lambda: m.model("m", m.hill(n=10)), "'hill' is a data source, not a layer"),
    (lambda: m.dense(float("nan")), "nan is no spec number"),
    (lambda: m.param("seed", 2**64), "18446744073709551616 is no spec number"),
    (lambda: m.dense(2, use_bais=False), "layer 'dense' has no argument 'use_bais'; did "
                                         "you mean 'use_bias'?"),
    (lambda: m.dense(2, True, 3), "layer 'dense' takes at most 2 positional arguments"),
    (lambda: m.dense(0), "argument 'features' of layer 'dense' should be greater than 0"),
    (lambda: m.dropout(1.5), "argument 'rate' of layer 'dropout' should be less than 1"),
    (lambda: m.conv(4, 3, padding="same"), "argument 'padding' of layer 'conv' should be "
                                           "'SAME' or 'VALID'"),
    (lambda: m.hill(), "data source 'hill' needs argument 'n'"),
    (lambda: m.huber(delta=-1.0), "argument 'delta' of loss 'huber' should be greater"),
    (lambda: m.adam(learnig_rate=0.1), "optimizer 'adam' has no argument 'learnig_rate'; "
                                       "did you mean 'learning_rate'?"),
    (lambda: m.adam(0.1, learning_rate=0.2), "argument 'learning_rate' of optimizer 'adam' "
                                             "is given twice"),
    (lambda: m.sgd(learning_rate=-1.0), "'learning_rate' of optimizer 'sgd' should be greater"),
    (lambda: m.data(trian=m.hill(n=10)), "data has no setting 'trian'; did you mean 'train'?"),
    (lambda: m.data(source="irsi"), "unknown data source 'irsi'; did you mean 'iris'?"),
    (lambda: m.train(loss="mse2"), "unknown loss 'mse2'; did you mean 'mse'?"),
    (lambda: m.train(loss={"mse": 1, "l3": 0.1}), "unknown loss 'l3'; did you mean"),
    (lambda: m.train(optimizer="adma"), "unknown optimizer 'adma'; did you mean 'adam'?"),
    (lambda: m.train(metrics=["acuracy"]), "unknown metric 'acuracy'; did you mean "
                                           "'accuracy'?"),
    (lambda: m.train(metrics=["digit.acuracy"]), "unknown metric 'acuracy'; did you mean "
                                                 "'accuracy'?"),
    (lambda: m.spec(trian={}), "a spec has no section 'trian'; did you mean 'train'?"),
    (lambda: m.spec(m.model("a"), m.model("b")), "a spec has one model, not 'a' and 'b'"),
    (lambda: m.name("not a name"), "'not a name' is not a name"),
    (lambda: m.dense(object()), "an object cannot be a spec value"),
    (lambda: m.model("m", m.dense(1), input=4), "a model's input is a list of positive "
                                                "integers"),
    (lambda: m.model("m", m.dense(1), input=[4, 0]), "a model's input is a list of positive"),
    (lambda: m.param("1x", 3), "'1x' cannot name a param"),
    (lambda: m.param("model", 3), "'model' cannot name a param"),
    (lambda: m.block("my-block", ["w"]), "'my-block' cannot name a block"),
    (lambda: m.block("b", ["1w"]), "'1w' cannot name a block argument"),
    (lambda: m.arg("a b"), "'a b' cannot name a block argument"),
    (lambda: m.model("my net"), "'my net' cannot name a model"),
    (lambda: m.layer(3), "an int cannot name a layer"),
]


@pytest.mark.parametrize("make, message", BUILD_ERRORS,
                         ids=[message[:40] for _, message in BUILD_ERRORS])
def test_mistakes_are_errors_when_built(make, message):
    with pytest.raises(mlspec.SpecError) as caught:
        make()
    assert message in str(caught.value)


def test_a_block_or_layer_without_arguments_is_a_layer_call():
    block = m.block("b", [m.arg("w", default=2)], m.dense(m.arg("w")))
    assert m.layer("b") == m.layer(block) == ir.LayerCall(name="b")
    spec = m.spec(block, m.model("net", m.layer(block), m.dense(1)), data={
        "train": m.linear(n=10)}, train={"loss": "mse", "optimizer": m.sgd(0.1), "steps": 1})
    assert mlspec.parse(spec.to_text()) == spec
    assert [layer.kind for layer in mlspec.check(spec).model.layers] == ["block", "dense"]


def test_arguments_that_are_names_are_left_to_check():
    hidden = m.param("hidden", -3)
    spec = m.spec(hidden, m.model("m", m.dense(hidden), input=[2]))  # built: a name
    with pytest.raises(mlspec.SpecError, match="'features' of layer 'dense' should be "
                                               "greater than 0"):
        mlspec.check(spec)


# ------------------------------------------------------------------------ the catalogue


def _functions():
    for registry in (LAYERS, LOSSES, SOURCES):
        for name, cls in registry.items():
            yield name, [n for n in cls.argument_names()]
    for name, fn in optax_catalogue().items():
        yield name, [a.name for a in fn.arguments]
    yield "early_stop", ["metric", "patience", "mode", "restore_best"]


@pytest.mark.parametrize("name, arguments", list(_functions()), ids=lambda x: str(x))
def test_every_catalogue_entry_is_a_function_with_its_signature(name, arguments):
    function = getattr(mlspec, name)
    assert function is builders.catalogue_function(name) and function.__name__ == name
    parameters = inspect.signature(function).parameters
    assert [p for p in parameters if p != "body"] == arguments
    assert function.__module__ == "mlspec" and "Returns:" in function.__doc__
    assert ("Args:" in function.__doc__) == bool(parameters)
    assert name in dir(mlspec)


def test_signatures_show_types_defaults_and_bodies():
    assert str(inspect.signature(m.dense)) == \
        "(features: int, use_bias: bool = True) -> LayerCall"
    assert str(inspect.signature(m.repeat)) == "(times: int, *body: layer) -> LayerCall"
    assert str(inspect.signature(m.residual)) == "(*body: layer) -> LayerCall"
    assert str(inspect.signature(m.hill)) == "(n: int, seed: int = 0) -> Call"
    assert "features: int, > 0; required." in m.dense.__doc__
    assert '`conv(features, kernel, stride=1, padding="SAME")`' in m.conv.__doc__
    assert "rate: float, < 1, >= 0; required." in m.dropout.__doc__
    assert m.repeat(2, m.dense(4), "relu") == mlspec.parse(
        "model m { repeat(2) { dense(4) -> relu } }").model.layers[0]
    assert m.residual([m.dense(4)]).body == (m.dense(4),)


def test_catalogue_names_do_not_hide_the_api_or_one_another():
    api = set(mlspec.__all__) | {p.name for p in Path(mlspec.__file__).parent.iterdir()}
    names = builders.catalogue_names()
    assert not api & set(names), api & set(names)
    # a layer and a call of another catalogue under one name would need two functions
    calls = set(LOSSES) | set(SOURCES) | set(optax_catalogue())
    assert not set(LAYERS) & calls
    with pytest.raises(AttributeError, match="no attribute 'densse'"):
        _ = mlspec.densse


# ------------------------------------------------------------------------ paths, imports


@pytest.mark.parametrize("as_path", [str, Path], ids=["str", "Path"])
def test_check_and_resolve_take_paths_as_run_does(as_path):
    path = as_path(ROOT / "specs" / "hill.mlspec")
    assert mlspec.check(path) == mlspec.check(mlspec.load(path))
    assert mlspec.resolve(path, {"train.steps": 5}).train.steps == 5


def test_a_missing_file_is_the_same_error_for_check_resolve_and_run(tmp_path):
    missing = tmp_path / "nope.mlspec"
    messages = set()
    for function in (mlspec.check, mlspec.resolve, mlspec.run, mlspec.load):
        with pytest.raises(mlspec.SpecError) as caught:
            function(missing)
        messages.add(str(caught.value))
    assert messages == {f"error: cannot read spec '{missing}': No such file or directory"}
    with pytest.raises(TypeError, match="a Spec or the path of a spec file, got int"):
        mlspec.check(3)


def test_import_and_building_never_import_jax():
    code = ("import sys, mlspec\n"
            "s = mlspec.spec(mlspec.model('m', mlspec.dense(2), 'relu', "
            "mlspec.dense(mlspec.classes)), data=mlspec.data(source='iris', valid=0.2), "
            "train=mlspec.train(loss="
            "'softmax_cross_entropy', optimizer=mlspec.adam(0.01), steps=5))\n"
            "mlspec.check(s); dir(mlspec); help(mlspec.conv)\n"
            "print(sorted(m for m in ('jax', 'flax', 'optax') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.splitlines()[-1] == "[]"


@pytest.mark.parametrize("module", [mlspec, build, builders], ids=lambda m: m.__name__)
def test_docstring_examples_run(module, monkeypatch):
    monkeypatch.chdir(ROOT)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(module, globs={"mlspec": mlspec})
    for test in tests:
        runner.run(test)
    assert runner.failures == 0 and sum(len(t.examples) for t in tests) >= 5
