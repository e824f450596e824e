"""The v2 layers, one table row per layer (LANGUAGE.md, "More layers (v2)").

For every row, as for the v1 layers in test_layers.py:

- the static output shape and parameter count agree with the module the compiler builds,
  with the contract's numbers written in the row, and with a module built by hand from
  flax.linen (the row's `flax`), initialised with jax.random;
- a tiny model around the layer trains for a few steps through `mlspec.run` and its train
  loss falls (sequences are the digits' 8x8 images read as 8 steps of 8 pixels);
- the resolved canonical text resolves to the same model, and the program reads back from
  its JSON (test_program_json's table takes these rows).

Then: shape and argument mistakes as spec errors at their places, the layers whose mode
matters (attention's dropout), and the padding mask that attention, the recurrent layers
and global pooling take when built (LANGUAGE.md: they ignore padded positions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_layers import (
    HARNESSES,
    Harness,
    Row,
    assert_training_lowers_the_loss,
    flax_params,
    model_text,
    place,
    resolve,
    static_params,
    static_text,
    train_text,
)

import mlspec
from mlspec.catalog.layers import BuildContext
from mlspec.compiler.model import build_module, uses_train_mode
from mlspec.semantics.canonical import resolved_spec

HARNESSES.update({  # added to test_layers' harnesses, which its train_text reads
    # the 8x8 digits as sequences: 8 steps of 8 pixels
    "sequence": Harness("source = digits", "softmax_cross_entropy",
                        "reshape([8, 8]) -> {layer} -> flatten -> dense(classes)"),
})


@dataclass(frozen=True)
class V2Row(Row):
    flax: Callable[[Any], Any] | None = None
    """The layer built by hand from flax.linen: a function of the input batch, called
    inside a module's compact method."""


ROWS = [
    # lstm: 4 gates, each F*H + H*H + H
    V2Row("lstm", "lstm", "lstm(4)", (8, 8), (4,), 4 * (8 * 4 + 4 * 4 + 4), "sequence",
          flax=lambda x: nn.RNN(nn.LSTMCell(4))(x)[:, -1]),
    V2Row("lstm_sequences", "lstm", "lstm(3, return_sequences=true)", (5, 2), (5, 3),
          4 * (2 * 3 + 3 * 3 + 3), flax=lambda x: nn.RNN(nn.LSTMCell(3))(x)),
    # gru: 3 gates of F*H + H*H, biases on the hidden kernels and the candidate's input
    V2Row("gru", "gru", "gru(4)", (8, 8), (4,), 3 * (8 * 4 + 4 * 4) + 4 * 4, "sequence",
          flax=lambda x: nn.RNN(nn.GRUCell(4))(x)[:, -1]),
    V2Row("gru_sequences", "gru", "gru(features=3, return_sequences=true)", (5, 2), (5, 3),
          3 * (2 * 3 + 3 * 3) + 4 * 3, flax=lambda x: nn.RNN(nn.GRUCell(3))(x)),
    # bidirectional: two of the layer, outputs concatenated; the backward direction's
    # last output is at the first step
    V2Row("bidirectional", "bidirectional", "bidirectional(lstm(4))", (8, 8), (8,),
          2 * 4 * (8 * 4 + 4 * 4 + 4), "sequence",
          flax=lambda x: jnp.concatenate(
              [nn.RNN(nn.LSTMCell(4))(x)[:, -1],
               nn.RNN(nn.LSTMCell(4))(x, reverse=True, keep_order=True)[:, 0]], axis=-1)),
    V2Row("bidirectional_gru_sequences", "bidirectional",
          "bidirectional(gru(3, return_sequences=true))", (5, 2), (5, 6),
          2 * (3 * (2 * 3 + 3 * 3) + 4 * 3), "sequence",
          flax=lambda x: nn.Bidirectional(nn.RNN(nn.GRUCell(3)), nn.RNN(nn.GRUCell(3)))(x)),
    # attention: q, k, v of F*Q + Q each, out Q*F + F
    V2Row("attention", "attention", "attention(2)", (8, 8), (8, 8),
          3 * (8 * 8 + 8) + 8 * 8 + 8, "sequence",
          flax=lambda x: nn.MultiHeadDotProductAttention(num_heads=2)(x)),
    V2Row("attention_causal", "attention", "attention(2, qkv_features=4, causal=true)",
          (8, 8), (8, 8), 3 * (8 * 4 + 4) + 4 * 8 + 8, "sequence",
          flax=lambda x: nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=4)(
              x, mask=nn.make_causal_mask(x[..., 0]))),
    V2Row("attention_dropout", "attention", "attention(1, dropout=0.1)", (8, 8), (8, 8),
          3 * (8 * 8 + 8) + 8 * 8 + 8, "sequence",
          flax=lambda x: nn.MultiHeadDotProductAttention(num_heads=1, dropout_rate=0.1)(
              x, deterministic=True)),
    # position_embedding: a vector per position, max_len x F
    V2Row("position_embedding", "position_embedding", "position_embedding", (8, 8), (8, 8),
          8 * 8, "sequence", flax=lambda x: x + nn.Embed(8, 8)(jnp.arange(8))[None]),
    V2Row("position_embedding_longer", "position_embedding", "position_embedding(max_len=10)",
          (6, 3), (6, 3), 10 * 3, flax=lambda x: x + nn.Embed(10, 3)(jnp.arange(6))[None]),
    # conv_transpose: SAME multiplies by the stride; kh*kw*cin*cout + cout
    V2Row("conv_transpose", "conv_transpose", "conv_transpose(2, 3, stride=2)", (8, 8, 1),
          (16, 16, 2), 3 * 3 * 1 * 2 + 2, "image",
          flax=lambda x: nn.ConvTranspose(2, (3, 3), strides=(2, 2))(x)),
    V2Row("conv_transpose_valid", "conv_transpose",
          'conv_transpose(3, [3, 2], stride=[2, 1], padding="VALID")', (4, 5, 2), (9, 6, 3),
          3 * 2 * 2 * 3 + 3,
          flax=lambda x: nn.ConvTranspose(3, (3, 2), strides=(2, 1), padding="VALID")(x)),
    V2Row("conv_transpose_1d", "conv_transpose", "conv_transpose(2, 4, stride=3)", (5, 1),
          (15, 2), 4 * 1 * 2 + 2, flax=lambda x: nn.ConvTranspose(2, (4,), strides=(3,))(x)),
    # upsample: each spatial value repeated
    V2Row("upsample", "upsample", "upsample(2)", (8, 8, 1), (16, 16, 1), 0, "image",
          model="reshape([8, 8, 1]) -> {layer} -> conv(2, 3, stride=2) -> flatten -> "
                "dense(classes)",
          flax=lambda x: jax.image.resize(x, (x.shape[0], 16, 16, 1), "nearest")),
    V2Row("upsample_per_axis", "upsample", "upsample([3, 1])", (2, 4, 5), (6, 4, 5), 0,
          flax=lambda x: jnp.repeat(x, 3, axis=1)),
    # global pools: every axis but the batch and the last
    V2Row("global_avg_pool", "global_avg_pool", "global_avg_pool", (8, 8, 1), (1,), 0,
          "image", model="reshape([8, 8, 1]) -> conv(8, 3) -> {layer} -> dense(classes)",
          flax=lambda x: x.mean(axis=(1, 2))),
    V2Row("global_avg_pool_sequence", "global_avg_pool", "global_avg_pool", (8, 8), (8,),
          0, flax=lambda x: x.mean(axis=1)),
    V2Row("global_max_pool", "global_max_pool", "global_max_pool", (8, 8, 1), (1,), 0,
          "image", model="reshape([8, 8, 1]) -> conv(8, 3) -> {layer} -> dense(classes)",
          flax=lambda x: x.max(axis=(1, 2))),
    V2Row("global_max_pool_3d", "global_max_pool", "global_max_pool", (2, 3, 4, 5), (5,), 0,
          flax=lambda x: x.max(axis=(1, 2, 3))),
    # group_norm and rms_norm: a scale (and for group_norm a bias) per channel
    V2Row("group_norm", "group_norm", "group_norm(4)", (8, 8, 8), (8, 8, 8), 2 * 8, "image",
          model="reshape([8, 8, 1]) -> conv(8, 3) -> {layer} -> flatten -> dense(classes)",
          flax=lambda x: nn.GroupNorm(num_groups=4, epsilon=1e-6)(x)),
    V2Row("group_norm_default", "group_norm", "group_norm(epsilon=1e-5)", (4, 64), (4, 64),
          2 * 64, flax=lambda x: nn.GroupNorm(num_groups=32, epsilon=1e-5)(x)),
    V2Row("rms_norm", "rms_norm", "rms_norm", (8,), (8,), 8, "vector",
          flax=lambda x: nn.RMSNorm(epsilon=1e-6)(x)),
    V2Row("rms_norm_3d", "rms_norm", "rms_norm(epsilon=1e-5)", (4, 3), (4, 3), 3,
          flax=lambda x: nn.RMSNorm(epsilon=1e-5)(x)),
    # one_hot: integer ids to vectors of n; digits' pixels are the ids 0..16
    V2Row("one_hot", "one_hot", "one_hot(17)", (64,), (64, 17), 0, "tokens", integer=True,
          flax=lambda x: jax.nn.one_hot(x, 17)),
    V2Row("one_hot_into_lstm", "one_hot", "one_hot(n=17)", (8,), (8, 17), 0, "tokens",
          integer=True, model="{layer} -> lstm(8) -> dense(classes)",
          flax=lambda x: jax.nn.one_hot(x, 17)),
]
TRAINED = [row for row in ROWS if row.harness is not None]
KINDS = {row.kind for row in ROWS}

assert len({row.id for row in ROWS}) == len(ROWS), "row ids must be unique"


def ids(rows):
    return [row.id for row in rows]


class Hand(nn.Module):
    """A function of the input that builds flax modules, as a module."""

    make: Callable[[Any], Any]

    @nn.compact
    def __call__(self, x):
        return self.make(x)


def example(row: Row, batch: int = 2):
    if row.integer:
        return jax.random.randint(jax.random.PRNGKey(1), (batch, *row.input), 0, 17)
    return jax.random.normal(jax.random.PRNGKey(1), (batch, *row.input), jnp.float32)


# ------------------------------------------------------------------------ the table


V2 = {"lstm", "gru", "bidirectional", "attention", "position_embedding", "conv_transpose",
      "upsample", "global_avg_pool", "global_max_pool", "group_norm", "rms_norm", "one_hot"}


def test_every_v2_layer_has_a_trained_row():
    """test_layers.py checks that the two tables together hold every layer."""
    from test_layers import ROWS as V1_ROWS

    from mlspec.catalog.layers import attention, entries, recurrent

    assert KINDS == V2 == {row.kind for row in TRAINED}
    assert {cls.entry_name() for cls in entries(attention) + entries(recurrent)} <= V2
    assert V2.isdisjoint(row.kind for row in V1_ROWS)
    assert all(row.flax is not None for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=ids(ROWS))
def test_static_shape_and_params_match_flax(row: V2Row):
    program = resolve(static_text(row))
    model = program.model
    assert model.layers[0].kind == row.kind
    assert model.output_shape == row.shape
    assert static_params(model.layers, row.input) == row.params

    x = example(row)
    module = build_module(model)
    variables = module.init(jax.random.PRNGKey(0), x, train=False)
    out = module.apply(variables, x, train=False)
    assert out.shape == (2, *row.shape)
    assert flax_params(variables) == row.params
    assert uses_train_mode(model.layers) == (row.id == "attention_dropout")

    hand = Hand(row.flax)
    hand_variables = hand.init(jax.random.PRNGKey(0), x)
    expected = hand.apply(hand_variables, x)
    assert expected.shape == out.shape
    assert flax_params(hand_variables) == row.params
    # the same parameter tree, so the same numbers from the same parameters
    assert [leaf.shape for leaf in jax.tree.leaves(hand_variables)] == \
        [leaf.shape for leaf in jax.tree.leaves(variables)]
    np.testing.assert_allclose(module.apply(jax.tree.unflatten(
        jax.tree.structure(variables), jax.tree.leaves(hand_variables)), x, train=False),
        expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("row", TRAINED, ids=ids(TRAINED))
def test_training_lowers_the_loss(row: V2Row):
    assert_training_lowers_the_loss(train_text(row))


@pytest.mark.parametrize("row", ROWS, ids=ids(ROWS))
def test_resolved_text_resolves_to_the_same_model(row: V2Row):
    program = resolve(static_text(row))
    text = resolved_spec(program).to_text()
    again = resolve(text)
    assert again.model.output_shape == program.model.output_shape
    assert static_params(again.model.layers, row.input) == row.params
    assert resolved_spec(again).to_text() == text


def test_bidirectional_takes_its_layer_from_a_block_argument():
    """A recurrent layer is a value like any other: a block's argument may give it."""
    prelude = "block encoder(cell) {\n    bidirectional(cell) -> dense(2)\n}\n"
    program = resolve(model_text("encoder(gru(3))", input=(5, 2), prelude=prelude))
    (use,) = program.model.layers
    assert use.body[0].layer.kind == "gru" and program.model.output_shape == (2,)
    assert static_params(program.model.layers, (5, 2)) == 2 * (3 * (2 * 3 + 3 * 3) + 12) \
        + 6 * 2 + 2
    assert "bidirectional(gru(3, return_sequences=false))" in \
        resolved_spec(program).to_text()


@pytest.mark.parametrize("layer", ["bidirectional(lstm(width))", "bidirectional(cell)"])
def test_a_library_block_with_bidirectional_is_checked_as_far_as_it_can_be(layer):
    """In a library, a block's arguments are not known: what depends on them is left to
    the block's use, the rest is checked."""
    block = f"block enc(width, cell) {{\n    {layer} -> dense(2)\n}}\n"
    mlspec.check(mlspec.parse(block))
    with pytest.raises(mlspec.SpecError, match="should be greater than 0"):
        mlspec.check(mlspec.parse(block.replace("dense(2)", "dense(0)")))
    with pytest.raises(mlspec.SpecError, match="of layer 'lstm' should be"):
        mlspec.check(mlspec.parse(block.replace("(width)", "(width, return_sequences=2)")
                                  .replace("(cell)", "(lstm(0))")))


# ------------------------------------------------------------------------ spec errors


@dataclass(frozen=True)
class Mistake:
    id: str
    layers: str
    input: tuple[int, ...]
    at: str
    says: tuple[str, ...]


MISTAKES = [
    Mistake("lstm_rank_1", "lstm(4)", (8,), "lstm",
            ("lstm needs [time, features] input; this input is [8]",)),
    Mistake("gru_on_image", "gru(4)", (8, 8, 1), "gru",
            ("gru needs [time, features] input; this input is [8, 8, 1]",)),
    Mistake("bidirectional_rank_3", "bidirectional(lstm(4))", (2, 3, 4), "bidirectional",
            ("bidirectional needs [time, features] input",)),
    Mistake("bidirectional_of_dense", "bidirectional(dense(3))", (5, 2), "dense",
            ("bidirectional takes a recurrent layer (lstm or gru), not 'dense'",)),
    Mistake("bidirectional_of_lstm_without_features", "bidirectional(lstm)", (5, 2), "lstm",
            ("layer 'lstm' needs argument 'features'",)),
    Mistake("bidirectional_of_lstm_zero", "bidirectional(lstm(0))", (5, 2), "0",
            ("argument 'features' of layer 'lstm' should be greater than 0",)),
    Mistake("bidirectional_of_bare_name", "bidirectional(relu)", (5, 2), "relu",
            ("'relu' is a layer, which cannot stand here",)),
    Mistake("bidirectional_of_a_number", "bidirectional(3)", (5, 2), "3",
            ("argument 'layer' of layer 'bidirectional' should be a recurrent layer, such "
             "as lstm(32) or gru(32) (got an integer 3)",)),
    Mistake("bidirectional_of_misspelt", "bidirectional(lstn(3))", (5, 2), "lstn",
            ("not 'lstn'",)),
    Mistake("attention_heads", "attention(3)", (5, 8), "attention",
            ("qkv_features (8) must be divisible by its heads (3)",)),
    Mistake("attention_rank_1", "attention(2)", (8,), "attention",
            ("attention needs [time, features] input; this input is [8]",)),
    Mistake("attention_dropout", "attention(2, dropout=1.0)", (5, 8), "1.0",
            ("'dropout'", "less than 1")),
    Mistake("position_embedding_too_long", "position_embedding(max_len=4)", (6, 3),
            "position_embedding", ("holds 4 positions", "this input has 6")),
    Mistake("group_norm_groups", "group_norm", (8, 8, 12), "group_norm",
            ("group_norm's 32 groups do not divide the 12 channels", "[8, 8, 12]")),
    Mistake("global_pool_rank_1", "global_avg_pool", (8,), "global_avg_pool",
            ("global_avg_pool needs an input with spatial axes", "[8]")),
    Mistake("upsample_factor_rank", "upsample([2, 2])", (8, 1), "upsample",
            ("factor has 2 entries", "1 spatial")),
    Mistake("conv_transpose_after_flatten", "flatten -> conv_transpose(2, 3)", (4, 4, 1),
            "conv_transpose", ("conv_transpose needs an input with spatial axes",)),
    Mistake("one_hot_without_n", "one_hot", (8,), "one_hot",
            ("one_hot needs n=... here: only on a categorical or text input",)),
]


@pytest.mark.parametrize("mistake", MISTAKES, ids=ids(MISTAKES))
def test_mistakes_are_spec_errors_at_their_place(mistake: Mistake):
    text = model_text(mistake.layers, input=mistake.input)
    with pytest.raises(mlspec.SpecError) as info:
        resolve(text)
    (diagnostic,) = info.value.diagnostics
    line, column = place(text, mistake.at)
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)
    for words in mistake.says:
        assert words in diagnostic.message
    assert str(info.value).startswith(f"<spec>:{line}:{column}: error: ")


# ------------------------------------------------------------- train and evaluation


def test_attention_dropout_acts_in_training_only():
    (layer,) = resolve(model_text("attention(1, dropout=0.5)", input=(6, 4))).model.layers
    assert uses_train_mode((layer,))
    assert not uses_train_mode(resolve(model_text("attention(1)", input=(6, 4))).model.layers)
    module = build_module(resolve(model_text("attention(1, dropout=0.5)",
                                             input=(6, 4))).model)
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 6, 4), jnp.float32)
    variables = module.init(jax.random.PRNGKey(0), x, train=False)
    evaluation = module.apply(variables, x, train=False)
    np.testing.assert_array_equal(evaluation, module.apply(
        variables, x, train=False, rngs={"dropout": jax.random.PRNGKey(2)}))
    one = module.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    two = module.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(3)})
    assert not np.allclose(one, evaluation) and not np.allclose(one, two)


def test_causal_attention_does_not_see_later_steps():
    module = build_module(resolve(model_text("attention(2, causal=true)",
                                             input=(6, 4))).model)
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 6, 4), jnp.float32)
    variables = module.init(jax.random.PRNGKey(0), x, train=False)
    changed = x.at[:, 3:].set(5.0)
    out, again = (module.apply(variables, v, train=False) for v in (x, changed))
    np.testing.assert_allclose(out[:, :3], again[:, :3], rtol=1e-6)
    assert not np.allclose(out[:, 3:], again[:, 3:])


# ------------------------------------------------------------------ the padding seam


class Masked(nn.Module):
    """A catalogue layer built as the compiler builds it, applied with a padding mask."""

    layer: Any

    @nn.compact
    def __call__(self, x, mask=None):
        built = self.layer.build(BuildContext(nn=nn, train=False, stack=None))
        return built(x) if mask is None else built(x, mask=mask)


@pytest.mark.parametrize("layer", [
    "lstm(3)", "gru(3, return_sequences=true)", "bidirectional(lstm(3))",
    "bidirectional(gru(2, return_sequences=true))", "attention(2)",
    "attention(2, causal=true)", "global_avg_pool", "global_max_pool"])
def test_a_padding_mask_leaves_out_the_padded_steps(layer):
    """Each sequence padded at its end gives, at its own steps, what it gives alone: the
    seam that typed text's mask will use."""
    (entry,) = resolve(model_text(layer, input=(6, 4))).model.layers
    module = Masked(entry)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 4), jnp.float32)
    variables = module.init(jax.random.PRNGKey(0), x)
    length = 4
    mask = jnp.arange(6)[None, :] < jnp.asarray([[6], [length]])
    padded = module.apply(variables, x, mask=mask)
    alone = module.apply(variables, x[1:, :length])
    np.testing.assert_allclose(padded[0], module.apply(variables, x[:1])[0], rtol=1e-5,
                               atol=1e-6)
    got = padded[1:, :length] if padded.ndim == 3 else padded[1:]
    np.testing.assert_allclose(got, alone, rtol=1e-5, atol=1e-6)
