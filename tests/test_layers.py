"""The layer catalogue, one table row per layer (LANGUAGE.md, "Layer catalogue (v1)").

For every row the spec text around the layer is parsed and resolved, and:

- the static output shape and parameter count (the layers' own shape functions, which
  `check` and `summary` use) agree with the flax module that the compiler builds, and
  both agree with the shape and count that the contract gives, written in the row;
- a tiny model around the layer trains for a few steps and its train loss falls;
- the resolved canonical text (`mlspec check --resolved`) resolves to the same model.

Then: a test that every registered layer has a row, spec errors for shape and argument
mistakes with their places, and the train/eval behaviour of dropout and batch_norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlspec
from mlspec.catalog.layers import LAYERS
from mlspec.compiler.model import build_module, uses_train_mode
from mlspec.semantics.canonical import resolved_spec

BLOCK = """block mlp(width, act=relu) {
    dense(width) -> act
}
"""


@dataclass(frozen=True)
class Harness:
    """A tiny training run around a layer: data, loss, and the model with `{layer}`."""

    data: str
    loss: str
    model: str


HARNESSES = {
    # 8x8 digit images (1,797 rows, bundled with scikit-learn), 10 classes
    "image": Harness("source = digits", "softmax_cross_entropy",
                     "reshape([8, 8, 1]) -> {layer} -> flatten -> dense(classes)"),
    # digits' pixels are the integers 0..16: token ids for an embedding
    "tokens": Harness("source = digits", "softmax_cross_entropy",
                      "{layer} -> flatten -> dense(classes)"),
    # 2-D points, two classes
    "vector": Harness("train = hill(n=64, seed=0)", "softmax_cross_entropy",
                      "dense(8) -> {layer} -> dense(2)"),
    # 1-D regression
    "regression": Harness("train = linear(n=64, seed=0)", "mse",
                          "dense(4) -> {layer} -> dense(1)"),
}


@dataclass(frozen=True)
class Row:
    id: str
    kind: str
    """The `kind` of the first resolved layer (a LAYERS name, or `block`)."""
    layer: str
    input: tuple[int, ...]
    shape: tuple[int, ...]
    """Output shape per example that the contract gives for `input`."""
    params: int
    """Parameter count that the contract (flax's layer) gives for `input`."""
    harness: str | None = None
    """How to train it; None for a shape-only variant of a layer trained in another row."""
    model: str | None = None
    """A training model other than the harness's, with `{layer}`."""
    prelude: str = ""
    integer: bool = False
    """Integer inputs (embedding)."""


ROWS = [
    # dense: in*out + out
    Row("dense", "dense", "dense(3)", (8,), (3,), 8 * 3 + 3, "vector"),
    Row("dense_no_bias_3d", "dense", "dense(3, use_bias=false)", (4, 4, 2), (4, 4, 3), 2 * 3),
    # conv: padding SAME keeps the spatial size; kh*kw*cin*cout + cout
    Row("conv", "conv", "conv(4, 3)", (8, 8, 1), (8, 8, 4), 3 * 3 * 1 * 4 + 4, "image"),
    Row("conv_valid_strided", "conv", 'conv(4, [3, 2], stride=2, padding="VALID")', (8, 8, 2),
        (3, 4, 4), 3 * 2 * 2 * 4 + 4),
    Row("conv_1d", "conv", "conv(2, 3)", (8, 1), (8, 2), 3 * 1 * 2 + 2),
    # pools: stride defaults to the window, padding to VALID
    Row("max_pool", "max_pool", "max_pool(2)", (8, 8, 1), (4, 4, 1), 0, "image"),
    Row("max_pool_same", "max_pool", 'max_pool(3, stride=2, padding="SAME")', (8, 8, 3),
        (4, 4, 3), 0),
    Row("avg_pool", "avg_pool", "avg_pool(2)", (8, 8, 1), (4, 4, 1), 0, "image"),
    Row("avg_pool_stride_1", "avg_pool", "avg_pool(3, stride=1)", (7, 7, 2), (5, 5, 2), 0),
    Row("flatten", "flatten", "flatten", (8, 8, 1), (64,), 0, "image",
        model="reshape([8, 8, 1]) -> {layer} -> dense(classes)"),
    Row("reshape", "reshape", "reshape([8, 8, 1])", (64,), (8, 8, 1), 0, "image",
        model="{layer} -> conv(2, 3) -> flatten -> dense(classes)"),
    Row("dropout", "dropout", "dropout(0.5)", (8,), (8,), 0, "vector"),
    # batch_norm and layer_norm: a scale and a bias per feature
    Row("batch_norm", "batch_norm", "batch_norm", (8, 8, 1), (8, 8, 1), 2, "image"),
    Row("batch_norm_vector", "batch_norm", "batch_norm(momentum=0.9)", (8,), (8,), 16),
    Row("layer_norm", "layer_norm", "layer_norm", (8,), (8,), 16, "vector"),
    Row("layer_norm_3d", "layer_norm", "layer_norm(epsilon=1e-5)", (4, 3), (4, 3), 6),
    Row("embedding", "embedding", "embedding(17, 2)", (4,), (4, 2), 17 * 2, "tokens",
        integer=True),
    *(Row(name, name, name, (8,), (8,), 0, "vector")
      for name in ("relu", "sigmoid", "gelu", "silu", "softmax", "log_softmax")),
    *(Row(name, name, name, (8,), (8,), 0, "regression")
      for name in ("tanh", "softplus", "elu")),
    Row("leaky_relu", "leaky_relu", "leaky_relu(0.2)", (8,), (8,), 0, "regression"),
    Row("relu_image", "relu", "relu", (4, 4, 2), (4, 4, 2), 0),
    # repeat: each copy its own weights, the second copy sees the first one's output
    Row("repeat", "repeat", "repeat(2) { dense(4) -> relu }", (8,), (4,),
        (8 * 4 + 4) + (4 * 4 + 4), "vector"),
    Row("repeat_conv", "repeat", "repeat(times=2) { conv(2, 3) -> max_pool(2) }", (8, 8, 1),
        (2, 2, 2), (3 * 3 * 1 * 2 + 2) + (3 * 3 * 2 * 2 + 2)),
    Row("residual", "residual", "residual { dense(8) -> relu }", (8,), (8,), 8 * 8 + 8,
        "vector"),
    Row("residual_in_repeat", "repeat", "repeat(times=2) { residual { dense(8) } }", (8,),
        (8,), 2 * (8 * 8 + 8)),
    # a user-defined block, used like a layer
    Row("block", "block", "mlp(4, act=tanh)", (8,), (4,), 8 * 4 + 4, "vector", prelude=BLOCK),
    Row("block_twice", "residual", "residual { mlp(8) } -> mlp(4, act=leaky_relu(0.2))", (8,),
        (4,), (8 * 8 + 8) + (8 * 4 + 4), prelude=BLOCK),
]
TRAINED = [row for row in ROWS if row.harness is not None]

assert len({row.id for row in ROWS}) == len(ROWS), "row ids must be unique"


def ids(rows):
    return [row.id for row in rows]


def model_text(layers: str, *, input: tuple[int, ...] | None = None, prelude: str = "") -> str:
    first = f"    input {list(input)}\n" if input is not None else ""
    return f"{prelude}model m {{\n{first}    {layers}\n}}\n"


def static_text(row: Row) -> str:
    return model_text(row.layer, input=row.input, prelude=row.prelude)


def train_text(row: Row, steps: int = 10) -> str:
    harness = HARNESSES[row.harness]
    model = (row.model or harness.model).format(layer=row.layer)
    return model_text(model, prelude=row.prelude) + f"""
data {{
    {harness.data}
}}

train {{
    loss       = {harness.loss}
    optimizer  = adam(learning_rate=0.05)
    steps      = {steps}
    eval_every = {steps}
}}
"""


def resolve(text: str) -> mlspec.Program:
    return mlspec.resolve(mlspec.parse(text))


def static_params(layers, shape) -> int:
    """The parameter count by the layers' own shape functions, threading the shape."""
    total = 0
    for layer in layers:
        total += layer.param_count(shape)
        shape = layer.output_shape(shape)
    return total


def flax_params(variables) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(variables.get("params", {})))


# ------------------------------------------------------------------------ the table


def test_every_layer_has_a_trained_row():
    """Adding a layer to the catalogue without a row here (or, for a v2 layer, in
    test_layers_v2.py) fails."""
    from test_layers_v2 import TRAINED as V2_TRAINED

    assert set(LAYERS) - {row.kind for row in [*ROWS, *V2_TRAINED]} == set()
    assert set(LAYERS) - {row.kind for row in [*TRAINED, *V2_TRAINED]} == set()
    assert "block" in {row.kind for row in TRAINED}


@pytest.mark.parametrize("row", ROWS, ids=ids(ROWS))
def test_static_shape_and_params_match_flax(row: Row):
    program = resolve(static_text(row))
    model = program.model
    assert model.layers[0].kind == row.kind
    assert model.input_shape == row.input
    assert model.output_shape == row.shape
    assert static_params(model.layers, row.input) == row.params

    module = build_module(model)
    x = jnp.zeros((2, *row.input), jnp.int32 if row.integer else jnp.float32)
    variables = module.init(jax.random.PRNGKey(0), x, train=False)
    abstract = jax.eval_shape(lambda v, x: module.apply(v, x, train=False), variables, x)
    out = module.apply(variables, x, train=False)
    assert abstract.shape == out.shape == (2, *row.shape)
    assert flax_params(variables) == row.params
    assert uses_train_mode(model.layers) == (row.kind in ("dropout", "batch_norm"))


@pytest.mark.parametrize("row", TRAINED, ids=ids(TRAINED))
def test_training_lowers_the_loss(row: Row):
    assert_training_lowers_the_loss(train_text(row))


def assert_training_lowers_the_loss(text: str) -> None:
    """Ten steps of the spec `text` lower its train loss; the run's parameters are as many
    as the model's shape functions say."""
    result = mlspec.run(mlspec.parse(text))
    loss = result.history["train.loss"].to_numpy()
    assert list(result.history["step"]) == [0, 10]
    assert np.isfinite(loss).all()
    assert loss[-1] < loss[0], f"train loss did not fall: {loss}"
    model = result.program.model
    assert flax_params({"params": result.params}) == static_params(model.layers,
                                                                   model.input_shape)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_resolved_text_resolves_to_the_same_model(row: Row):
    """`mlspec check --resolved` prints every default filled in; that text is a spec too."""
    program = resolve(static_text(row))
    text = resolved_spec(program).to_text()
    again = resolve(text)
    assert again.model.output_shape == program.model.output_shape
    assert static_params(again.model.layers, row.input) == row.params
    assert resolved_spec(again).to_text() == text


def test_repeat_takes_times_positionally():
    """LANGUAGE.md: `repeat(N) { ... }`; `body` is no argument, so N binds to `times`."""
    program = resolve(model_text("repeat(3) { dense(4) -> relu }", input=(8,)))
    assert program.model.output_shape == (4,)
    assert program.model.layers[0].times == 3
    assert LAYERS.get("repeat").argument_names() == ["times"]
    assert LAYERS.get("residual").argument_names() == []


# ------------------------------------------------------------------------ spec errors


@dataclass(frozen=True)
class Mistake:
    id: str
    layers: str
    input: tuple[int, ...]
    at: str
    """The offending token: its first occurrence in the spec text is the error's place."""
    says: tuple[str, ...]
    offset: int = 0
    """Where in `at` the place is."""


MISTAKES = [
    Mistake("residual_changes_width", "dense(8)\n    residual { dense(4) }", (8,), "residual",
            ("residual body changes the shape", "[8]", "[4]")),
    Mistake("conv_after_flatten", "flatten -> conv(4, 3)", (8, 8, 1), "conv",
            ("conv needs an input with spatial axes", "[64]")),
    Mistake("reshape_wrong_size", "reshape([8, 8, 2])", (64,), "reshape",
            ("cannot reshape", "64 values", "128 values")),
    Mistake("dense_zero", "dense(0)", (8,), "dense(0)", ("'features'", "greater than 0"),
            offset=len("dense(")),
    Mistake("unknown_layer", "dens(3)", (8,), "dens", ("unknown layer 'dens'",
                                                       "did you mean 'dense'")),
    Mistake("residual_without_body", "dense(8)\n    residual", (8,), "residual",
            ("'residual' needs a body",)),
    Mistake("repeat_without_body", "repeat(times=2)", (8,), "repeat",
            ("'repeat' needs a body",)),
    Mistake("dropout_rate", "dropout(rate=1.5)", (8,), "1.5", ("'rate'", "less than 1")),
    Mistake("error_in_repeat_body", "repeat(times=2) {\n        conv(4, 3)\n    }", (8,),
            "conv", ("conv needs an input with spatial axes", "[8]")),
    Mistake("pool_window_too_large", "max_pool(8)", (4, 4, 1), "max_pool",
            ("window [8, 8] is larger", "[4, 4]")),
    Mistake("kernel_rank", "conv(2, [3, 3])", (8, 1), "conv",
            ("kernel has 2 entries", "1 spatial")),
    Mistake("body_on_plain_layer", "dense(3) { relu }", (8,), "dense", ("takes no body",)),
]


def place(text: str, token: str, offset: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the first occurrence of `token` in `text`."""
    index = text.index(token) + offset
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


@pytest.mark.parametrize("mistake", MISTAKES, ids=ids(MISTAKES))
def test_mistakes_are_spec_errors_at_their_place(mistake: Mistake):
    text = model_text(mistake.layers, input=mistake.input)
    with pytest.raises(mlspec.SpecError) as info:
        resolve(text)
    (diagnostic,) = info.value.diagnostics
    line, column = place(text, mistake.at, mistake.offset)
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)
    for words in mistake.says:
        assert words in diagnostic.message
    assert str(info.value).startswith(f"<spec>:{line}:{column}: error: ")


@pytest.mark.parametrize("mistake", [m for m in MISTAKES if m.id in (
    "conv_after_flatten", "reshape_wrong_size", "pool_window_too_large")],
    ids=lambda m: m.id)
def test_shape_error_span_covers_the_layer_name(mistake: Mistake):
    with pytest.raises(mlspec.SpecError) as info:
        resolve(model_text(mistake.layers, input=mistake.input))
    span = info.value.diagnostics[0].span
    assert span.end_line == span.line
    assert span.end_column - span.column == len(mistake.at)


# ------------------------------------------------------------- dropout and batch_norm


def test_dropout_is_active_in_training_only():
    with_dropout = build_module(resolve(model_text(
        "dense(64) -> dropout(0.5) -> dense(3)", input=(4,))).model)
    without = build_module(resolve(model_text("dense(64) -> dense(3)", input=(4,))).model)
    x = jnp.ones((16, 4))
    variables = with_dropout.init(jax.random.PRNGKey(0), x, train=False)
    # dropout owns no parameters: both models have the same parameter tree
    assert jax.tree.structure(variables) == jax.tree.structure(
        without.init(jax.random.PRNGKey(0), x, train=False))

    evaluation = with_dropout.apply(variables, x, train=False)
    np.testing.assert_array_equal(evaluation, without.apply(variables, x, train=False))
    np.testing.assert_array_equal(evaluation, with_dropout.apply(
        variables, x, train=False, rngs={"dropout": jax.random.PRNGKey(1)}))

    one = with_dropout.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    two = with_dropout.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    assert one.shape == evaluation.shape
    assert not np.allclose(one, evaluation)
    assert not np.allclose(one, two)
    np.testing.assert_array_equal(one, with_dropout.apply(
        variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)}))


def test_dropout_zeroes_a_share_rate_and_rescales():
    module = build_module(resolve(model_text("dropout(0.25)", input=(4000,))).model)
    x = jnp.ones((1, 4000))
    variables = module.init(jax.random.PRNGKey(0), x, train=False)
    out = np.asarray(module.apply(variables, x, train=True,
                                  rngs={"dropout": jax.random.PRNGKey(3)}))
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.03


def test_batch_norm_keeps_running_statistics():
    module = build_module(resolve(model_text("batch_norm(momentum=0.9)", input=(3,))).model)
    x = jnp.arange(24.0).reshape(8, 3)
    variables = module.init(jax.random.PRNGKey(0), x, train=False)
    assert set(variables) == {"params", "batch_stats"}
    (stats,) = variables["batch_stats"].values()  # the batch_norm layer's own entry
    np.testing.assert_array_equal(stats["mean"], np.zeros(3))
    np.testing.assert_array_equal(stats["var"], np.ones(3))
    assert flax_params(variables) == 6

    # evaluation uses the running statistics (here still 0 and 1) and updates nothing
    out = module.apply(variables, x, train=False)
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-5), rtol=1e-6)
    # training normalises with the batch's statistics and moves the running ones
    out, updated = module.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    (moved,) = updated["batch_stats"].values()
    np.testing.assert_allclose(moved["mean"], 0.1 * x.mean(axis=0),
                               rtol=1e-6)


def test_batch_norm_training_updates_running_statistics_each_step():
    from mlspec.runtime.loading import load_data

    row = Row("bn", "batch_norm", "batch_norm(momentum=0.9)", (8, 8, 1), (8, 8, 1), 2, "image")
    result = mlspec.run(mlspec.parse(train_text(row, steps=10)))
    history = result.history
    assert np.isfinite(history.drop(columns="step").to_numpy()).all()
    assert history["train.loss"].iloc[-1] < history["train.loss"].iloc[0]

    stats = result.state["model_state"]["batch_stats"]
    (inner,) = stats.values()  # the batch_norm layer's own entry
    x = load_data(result.program.data)["train"][0]
    # full-batch steps: 10 updates of running = 0.9 * running + 0.1 * batch statistic
    kept = 0.9**10
    np.testing.assert_allclose(inner["mean"], (1 - kept) * x.mean(), rtol=1e-4)
    np.testing.assert_allclose(inner["var"], kept + (1 - kept) * x.var(), rtol=1e-3)


@pytest.mark.parametrize("layer", ["avg_pool(2)", "avg_pool(3, stride=1)",
                                   'avg_pool([3, 2], stride=2, padding="SAME")'])
def test_avg_pool_gives_flaxs_numbers(layer):
    """avg_pool divides the window's sum itself (flax's own divides by a NumPy integer,
    which strict dtype promotion refuses): the same values as flax.linen.avg_pool."""
    import flax.linen as nn

    (pool,) = resolve(model_text(layer, input=(7, 7, 2))).model.layers
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 7, 7, 2)), jnp.float32)
    window, stride = pool._geometry(2)
    with jax.numpy_dtype_promotion("standard"):
        expected = nn.avg_pool(x, window, strides=stride, padding=pool.padding)
    np.testing.assert_array_equal(pool.pool(nn, x, window, stride), expected)
