"""The compiler's layout choice: narrow layers run features-first, with the same results."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlspec
import mlspec.compiler.layout as layout
from mlspec.compiler.layout import Transpose, features_first, features_first_layers
from mlspec.compiler.model import Stack, build_module
from mlspec.compiler.trainer import Trainer
from mlspec.runtime.runner import train_program


def program(model: str, dim: int = 2, train: str = "steps = 40",
            optimizer: str = "rmsprop(learning_rate=0.01)"):
    text = f"""
{model}
data {{
    train = hyperplane(n=300, dim={dim}, seed=0)
    valid = hyperplane(n=200, dim={dim}, seed=1)
}}
train {{
    loss      = sigmoid_binary_cross_entropy
    optimizer = {optimizer}
    {train}
    metrics   = [accuracy, grad_norm]
}}
"""
    return mlspec.resolve(mlspec.parse(text))


MIXED = """
block narrow(width) { dense(width) -> leaky_relu(slope=0.1) }
model m {
    dense(8) -> tanh
    residual { dense(8) -> gelu }
    repeat(2) { narrow(6) }
    dense(64) -> relu
    dense(1)
}"""


@pytest.mark.parametrize(("model", "dim", "expected"), [
    ("model m { dense(2) -> sigmoid\n dense(1) }", 2, 3),   # the hill net: all of it
    ("model m { dense(1) }", 100, 1),                         # logistic regression
    ("model m { dense(64) -> relu\n dense(1) }", 2, 0),       # wide from the start
    ("model m { dense(32) -> relu\n dense(1) }", 2, 3),       # 32 is still narrow
    ("model m { dense(33) -> relu\n dense(1) }", 2, 0),
    ("model m { dense(4) -> dropout(0.1)\n dense(1) }", 2, 1),  # dropout draws by shape
    ("model m { dense(4) -> softmax\n dense(1) }", 2, 1),     # over an axis
    ("model m { relu\n dense(1) }", 100, 0),                  # 100 wide activations
    (MIXED, 2, 4),                                           # up to dense(64)
])
def test_which_layers_run_features_first(model, dim, expected):
    assert features_first_layers(program(model, dim).model) == expected


def test_images_never_run_features_first():
    text = """
model m { reshape([8, 8, 1])
    conv(4, kernel=3) -> relu
    flatten
    dense(classes) }
data { source = digits
    valid = 0.2 }
train { loss = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    steps = 1 }
"""
    assert features_first_layers(mlspec.resolve(mlspec.parse(text)).model) == 0


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
@pytest.mark.parametrize("dim", [2, 30])
def test_features_first_has_the_same_parameters_outputs_and_gradients(dim):
    layers = tuple(program(MIXED, dim).model.layers)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(9, dim)), jnp.float32)
    rows, features = Stack(layers), Stack(features_first(layers, 4))
    v_rows = rows.init(jax.random.PRNGKey(3), x)
    v_features = features.init(jax.random.PRNGKey(3), x)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), v_rows, v_features))
    np.testing.assert_allclose(features.apply(v_features, x), rows.apply(v_rows, x),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features.apply(v_features, x.T, transposed=True),
                               rows.apply(v_rows, x), rtol=1e-5, atol=1e-6)

    def loss(module, v):
        return jnp.sum(module.apply(v, x) ** 2)

    grads = [jax.grad(lambda v, m=m: loss(m, v))(v) for m, v in
             ((rows, v_rows), (features, v_features))]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), *grads)


@pytest.mark.parametrize("train", ["steps = 40", "steps = 40\n    batch = 64"])
def test_training_features_first_matches_rows_first(monkeypatch, train):
    # sgd: rmsprop's first steps divide by tiny gradients and magnify float rounding
    prog = program("model m { dense(4) -> tanh\n dense(1) }", 3, train, "sgd(learning_rate=0.5)")
    features = train_program(prog)
    trainer = Trainer(prog, 300)
    assert trainer.transposed == ("batch" not in train)  # full-batch data go transposed
    monkeypatch.setattr(layout, "FEATURES_FIRST_MAX_WIDTH", 0)
    assert features_first_layers(prog.model) == 0
    rows = train_program(prog)
    assert list(features.history.columns) == list(rows.history.columns)
    np.testing.assert_allclose(features.history.to_numpy(), rows.history.to_numpy(),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_dropout_masks_as_flax_does(rate):
    """The compiler's dropout (its keep probability may be traced, for sweeps) draws the
    same mask from the same key as flax.linen.Dropout, and scales the same way."""
    import flax.linen as nn

    from mlspec.catalog.layers.regularization import dropout_module

    Dropout = dropout_module()
    x = jnp.asarray(np.random.default_rng(1).normal(size=(50, 7)), jnp.float32)
    rngs = {"dropout": jax.random.PRNGKey(5)}
    expected = nn.Dropout(rate, deterministic=False).apply({}, x, rngs=rngs)
    ours = Dropout(1.0 - rate).apply({}, x, rngs=rngs)
    traced = jax.jit(lambda keep: Dropout(keep).apply({}, x, rngs=rngs))(
        jnp.float32(1.0 - rate))
    np.testing.assert_array_equal(ours, expected)
    # the same mask; the scaling may differ in the last bit (XLA may multiply by the
    # reciprocal of a constant keep probability but must divide by a traced one)
    np.testing.assert_array_equal(traced == 0, expected == 0)
    np.testing.assert_allclose(traced, expected, rtol=1e-6)
    np.testing.assert_array_equal(Dropout(1.0 - rate, deterministic=True).apply({}, x), x)


def test_the_layout_is_a_pass_over_the_layer_list():
    """Features-first is a rewrite of the layers before building (no catalogue entry
    knows about layouts): the leading narrow layers between two transposes, each dense
    among them, composites' bodies included, the compiler's features-first dense."""
    model = program(MIXED, 2).model
    laid = features_first(model.layers, features_first_layers(model))
    assert [layer.kind for layer in laid] == [
        "transpose", "features_first_dense", "tanh", "residual", "repeat", "transpose",
        "dense", "relu", "dense"]
    assert [inner.kind for inner in laid[3].body] == ["features_first_dense", "gelu"]
    (block,) = laid[4].body  # repeat(2) { narrow(6) }: the block's body rewritten too
    assert [inner.kind for inner in block.body] == ["features_first_dense", "leaky_relu"]
    assert laid[6:] == model.layers[4:]
    assert model.layers[0].kind == "dense"  # the program itself is as it was
    assert all(not isinstance(layer, Transpose) for layer in features_first(model.layers, 0))
    if jax.default_backend() == "cpu":
        assert build_module(model).layers == laid
    else:  # measured on CPUs only: other backends keep flax's layout
        assert build_module(model).layers == model.layers
