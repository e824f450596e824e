"""The padding mask of text inputs (LANGUAGE.md, "More layers (v2)"): the mask comes from
a text input's ids (0 is padding), follows the values through the layers that keep the
time axis and act per step, is used by attention, the recurrent layers and the global
pools, and ends at any other layer.

Every check runs the module the compiler builds for a spec (`build_module` with the
program's `token_inputs`, as the trainer does): a v1 chain on a csv's single text column,
or a graph from an `input t tokens(...)` line. A padded batch, its rows of different
lengths, must give at each row's real positions what the row gives alone without padding;
the same module built without the mask must not (so each check can fail).
"""

from __future__ import annotations

import json

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import mlspec
from mlspec.catalog.layers import LAYERS
from mlspec.cli import main
from mlspec.compiler.model import build_module, token_inputs

SEQ = 6
WORDS = [f"w{i}" for i in range(10)]
VOCAB = len(WORDS) + 2  # padding 0, unknown 1, then the words
LENGTHS = (6, 4, 1, 3)  # one batch, each row its own padding


def _csv(folder) -> None:
    rng = np.random.default_rng(0)
    notes = [" ".join(rng.choice(WORDS, rng.integers(1, SEQ + 1))) for _ in range(40)]
    notes[0] = " ".join(WORDS)  # every word seen
    pd.DataFrame({"note": notes, "y": rng.integers(0, 2, 40)}).to_csv(
        folder / "d.csv", index=False)


def chain_program(folder, layers: str):
    """A v1 chain of `layers` (written with `->`) on a csv's single text column."""
    _csv(folder)
    path = folder / "chain.mlspec"
    path.write_text(f"model m {{\n    {layers}\n}}\ndata {{\n    source = csv(\"d.csv\", "
                    f"target=\"y\", text=[\"note\"], seq_len={SEQ})\n}}\n")
    program = mlspec.resolve(mlspec.load(path))
    assert program.data.info.inputs[0].vocab == VOCAB
    return program


def graph_program(folder, body: str, inputs=("t",), blocks: str = ""):
    """A graph model of `body` over inputs of token ids declared by `input` lines."""
    lines = "".join(f"    input {name} tokens({SEQ}, vocab={VOCAB})\n" for name in inputs)
    path = folder / "graph.mlspec"
    path.write_text(f"{blocks}model m {{\n{lines}{body}\n}}\n")
    return mlspec.resolve(mlspec.load(path))


def padded_ids(seed: int = 0, lengths=LENGTHS) -> np.ndarray:
    """Rows of word ids, each `lengths[i]` real ids then padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, VOCAB, (len(lengths), SEQ)).astype(np.int32)
    ids[np.arange(SEQ)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return ids


def modules(program):
    """The compiled module (masked) and the same model built without the mask."""
    tokens = token_inputs(program)
    assert tokens, "the program should have an input of token ids"
    return build_module(program.model, tokens), build_module(program.model)


def outputs(program, seed: int = 0, alone: bool = True):
    """The masked module's outputs on a padded batch, each row's alone (unless not
    `alone`), and the unmasked module's on the padded batch: (padded, [alone per row],
    unmasked)."""
    ids = padded_ids(seed)
    masked, plain = modules(program)
    variables = masked.init(jax.random.PRNGKey(1), jnp.asarray(ids))
    padded = np.asarray(masked.apply(variables, jnp.asarray(ids)))
    rows = [np.asarray(masked.apply(variables, jnp.asarray(ids[i:i + 1, :n])))[0]
            for i, n in enumerate(LENGTHS)] if alone else []
    return padded, rows, np.asarray(plain.apply(variables, jnp.asarray(ids)))


def real(out, per_step: bool) -> list[np.ndarray]:
    """Each row's output at its real positions (or its one output)."""
    return [out[i, :n] if per_step else out[i] for i, n in enumerate(LENGTHS)]


def assert_as_alone(padded, alone, unmasked, per_step: bool, matters: bool = True):
    """Each padded row gives what it gives alone; unmasked, the padding would have changed
    some row (unless the layers only look back: `matters=False`)."""
    for got, want in zip(real(padded, per_step), alone):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    differs = [not np.allclose(got, want, atol=1e-4)
               for got, want in zip(real(unmasked, per_step), alone)]
    assert any(differs) is matters, "padding should have mattered" if matters else differs


# (layers after the embedding, whether the output is per step, whether the padding
# changes the real positions' outputs unmasked: not where each step sees only earlier ones)
CONSUMERS = {
    "attention": ("attention(2)", True, True),
    "attention_causal": ("attention(2, causal=true)", True, False),
    "lstm": ("lstm(3)", False, True),
    "lstm_sequences": ("lstm(3, return_sequences=true)", True, False),
    "gru": ("gru(3)", False, True),
    "gru_sequences": ("gru(3, return_sequences=true)", True, False),
    "bidirectional_lstm": ("bidirectional(lstm(3))", False, True),
    "bidirectional_gru_sequences": ("bidirectional(gru(2, return_sequences=true))", True,
                                    True),
    "global_avg_pool": ("global_avg_pool", False, True),
    "global_max_pool": ("global_max_pool", False, True),
}


@pytest.mark.parametrize("name", CONSUMERS)
def test_a_v1_chain_on_text_ignores_padding(name, tmp_path):
    layers, per_step, matters = CONSUMERS[name]
    program = chain_program(tmp_path, f"embedding(features=4) -> {layers}")
    assert_as_alone(*outputs(program), per_step=per_step, matters=matters)


@pytest.mark.parametrize("name", CONSUMERS)
def test_a_graph_from_a_text_input_ignores_padding(name, tmp_path):
    layers, per_step, matters = CONSUMERS[name]
    program = graph_program(tmp_path, f"    output y = t -> embedding({VOCAB}, 4) -> {layers}")
    assert_as_alone(*outputs(program), per_step=per_step, matters=matters)


def test_the_recurrent_state_is_that_after_the_last_real_step(tmp_path):
    """flax's seq_lengths semantics: the final state of a padded row is the state after
    its own last id, and the backward direction starts from that id."""
    program = chain_program(tmp_path, "embedding(features=4) -> bidirectional(lstm(3, "
                                      "return_sequences=true))")
    padded, alone, _ = outputs(program)
    for i, n in enumerate(LENGTHS):  # the backward half at step 0 read the whole row
        np.testing.assert_allclose(padded[i, 0, 3:], alone[i][0, 3:], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("pool, reduce", [("global_avg_pool", np.mean),
                                          ("global_max_pool", np.max)])
def test_global_pools_reduce_over_the_real_positions(pool, reduce, tmp_path):
    program = chain_program(tmp_path, f"embedding(features=4) -> {pool}")
    masked, _ = modules(program)
    ids = padded_ids(3)
    variables = masked.init(jax.random.PRNGKey(2), jnp.asarray(ids))
    table = np.asarray(variables["params"]["Embed_0"]["embedding"])
    got = np.asarray(masked.apply(variables, jnp.asarray(ids)))
    for i, n in enumerate(LENGTHS):
        np.testing.assert_allclose(got[i], reduce(table[ids[i, :n]], axis=0), rtol=1e-6)


@pytest.mark.parametrize("layers", ["global_avg_pool", "global_max_pool", "lstm(3)",
                                    "bidirectional(gru(3))",
                                    "attention(2) -> global_max_pool"])
def test_a_row_of_padding_only_gives_zeros(layers, tmp_path):
    """An empty text: pools of no positions, and a recurrent state before any step, are
    zeros, and their gradients finite."""
    program = chain_program(tmp_path, f"embedding(features=4) -> {layers} -> dense(2)")
    masked, _ = modules(program)
    ids = np.zeros((2, SEQ), np.int32)
    ids[1, :2] = 3
    variables = masked.init(jax.random.PRNGKey(0), jnp.asarray(ids))
    out = np.asarray(masked.apply(variables, jnp.asarray(ids)))
    np.testing.assert_allclose(out[0], variables["params"]["Dense_0"]["bias"])
    grads = jax.grad(lambda v: masked.apply(v, jnp.asarray(ids)).sum())(variables)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))


# ------------------------------------------------------------------ where the mask goes

KEEPERS = ("dense(5) -> relu -> tanh -> softmax -> leaky_relu(0.2) -> layer_norm -> "
           "rms_norm -> dropout(0.3) -> position_embedding(max_len=6) -> gelu")


@pytest.mark.parametrize("consumer", [pytest.param("attention(1)", marks=pytest.mark.slow),
                                      "lstm(4)", "global_avg_pool"])
def test_the_mask_follows_the_per_step_layers(consumer, tmp_path):
    program = chain_program(tmp_path, f"embedding(features=4) -> {KEEPERS} -> {consumer}")
    assert_as_alone(*outputs(program), per_step=consumer.startswith("attention"))


@pytest.mark.parametrize("layers", [
    "repeat(2) { dense(4) -> relu -> attention(2) }",
    "residual { attention(2) -> dense(4) }",
    "repeat(2) { lstm(4, return_sequences=true) }",
    "tower(4)",
    "inception(3)",
])
def test_the_mask_goes_through_blocks_and_composites(layers, tmp_path):
    blocks = ("block tower(f) {\n    dense(f) -> attention(1)\n}\n"
              "block inception(f) {\n    a = in -> dense(f)\n    b = in -> attention(1) "
              "-> dense(f)\n    out = concat(a, b)\n}\n")
    body = f"    output y = t -> embedding({VOCAB}, 4) -> {layers} -> global_max_pool"
    assert_as_alone(*outputs(graph_program(tmp_path, body, blocks=blocks)), per_step=False)


@pytest.mark.parametrize("layers", [
    "conv(4, 3) -> global_avg_pool",               # conv mixes neighbouring steps
    "flatten -> reshape([6, 4]) -> global_avg_pool",
    "batch_norm -> global_avg_pool",
    "repeat(2) { conv(4, 1) -> attention(1) }",  # each copy's attention after a conv
])
def test_the_mask_ends_at_a_layer_that_does_not_keep_it(layers, tmp_path):
    """After such a layer every position counts: the masked module's outputs are the
    unmasked module's."""
    program = chain_program(tmp_path, f"embedding(features=4) -> {layers}")
    padded, _, unmasked = outputs(program, alone=False)
    np.testing.assert_allclose(padded, unmasked, rtol=1e-6)


def test_one_hot_ends_the_mask(tmp_path):
    """Not in the contract's list (LANGUAGE.md): one_hot of the ids ends the mask."""
    padded, _, unmasked = outputs(chain_program(tmp_path, f"one_hot({VOCAB}) -> global_avg_pool"),
                                  alone=False)
    np.testing.assert_allclose(padded, unmasked, rtol=1e-6)


def test_a_merge_of_one_mask_keeps_it(tmp_path):
    body = (f"    e = t -> embedding({VOCAB}, 4)\n    a = e -> dense(4)\n"
            "    b = e -> attention(1)\n    c = concat(a, b)\n    d = add(e, b)\n"
            "    output y = concat(c, d) -> global_avg_pool")
    assert_as_alone(*outputs(graph_program(tmp_path, body)), per_step=False)


@pytest.mark.parametrize("body, inputs", [
    # two text inputs: two masks, so their merge carries neither
    (f"    a = t -> embedding({VOCAB}, 4)\n    b = u -> embedding({VOCAB}, 4)\n"
     "    output y = add(a, b) -> global_avg_pool", ("t", "u")),
    # along the time axis: the positions are no longer the input's
    (f"    a = t -> embedding({VOCAB}, 4)\n    output y = concat(a, a, axis=0) -> "
     "global_avg_pool", ("t",)),
])
def test_a_merge_of_different_masks_or_along_time_ends_it(body, inputs, tmp_path):
    program = graph_program(tmp_path, body, inputs=inputs)
    masked, plain = modules(program)
    ids = {"t": jnp.asarray(padded_ids(0)), "u": jnp.asarray(padded_ids(1, LENGTHS[::-1]))}
    ids = ids["t"] if len(inputs) == 1 else ids
    variables = masked.init(jax.random.PRNGKey(0), ids)
    np.testing.assert_allclose(masked.apply(variables, ids), plain.apply(variables, ids),
                               rtol=1e-6)


def test_a_merge_of_two_inputs_masks_each_before_it(tmp_path):
    body = (f"    share enc = embedding({VOCAB}, 4)\n    a = t -> enc -> global_avg_pool\n"
            "    b = u -> enc -> lstm(3)\n    output y = concat(a, b)")
    program = graph_program(tmp_path, body, inputs=("t", "u"))
    masked, _ = modules(program)
    t, u = padded_ids(0), padded_ids(1, LENGTHS[::-1])
    variables = masked.init(jax.random.PRNGKey(0), {"t": jnp.asarray(t), "u": jnp.asarray(u)})
    both = np.asarray(masked.apply(variables, {"t": jnp.asarray(t), "u": jnp.asarray(u)}))
    for i, (n, m) in enumerate(zip(LENGTHS, LENGTHS[::-1])):
        alone = masked.apply(variables, {"t": jnp.asarray(t[i:i + 1, :n]),
                                         "u": jnp.asarray(u[i:i + 1, :m])})
        np.testing.assert_allclose(both[i], np.asarray(alone)[0], rtol=2e-5, atol=2e-6)


# ------------------------------------------------------------------ the table

KEEPS = {"dense", "embedding", "position_embedding", "attention", "layer_norm", "rms_norm",
         "dropout", "relu", "sigmoid", "tanh", "gelu", "silu", "softplus", "elu", "softmax",
         "log_softmax", "leaky_relu"}
USES = {"attention", "lstm", "gru", "bidirectional", "global_avg_pool", "global_max_pool",
        "repeat", "residual", "block", "graph_block"}
OVER_LAST_AXIS = {"dense", "layer_norm", "rms_norm", "softmax", "log_softmax"}


def test_which_layers_keep_the_mask():
    """LANGUAGE.md's list: the layers that keep the time axis and act per step keep the
    mask (the last-axis ones only where time is not the last axis), the recurrent ones with
    return_sequences; the composites as their bodies do; every other layer ends it."""
    names = {name for name, _ in LAYERS.items()}
    assert KEEPS | USES <= names | {"block", "graph_block"}
    for name, cls in LAYERS.items():
        if name in ("lstm", "gru", "bidirectional") or cls.composite:
            continue
        assert cls.keeps_mask is (name in KEEPS), name
        assert cls.uses_mask is (name in USES), name
        assert cls.over_last_axis is (name in OVER_LAST_AXIS), name
    for name, cls in LAYERS.items():
        if name in KEEPS:
            layer = cls.model_construct()
            assert layer.mask_after((SEQ, 4)), name
            assert layer.mask_after((SEQ,)) is (name not in OVER_LAST_AXIS), name
    lstm, gru, bidirectional = (LAYERS.get(n) for n in ("lstm", "gru", "bidirectional"))
    for return_sequences in (False, True):
        rnn = [lstm(features=3, return_sequences=return_sequences),
               gru(features=3, return_sequences=return_sequences)]
        for layer in [*rnn, bidirectional(layer=rnn[0])]:
            assert layer.uses_mask
            assert layer.mask_after((SEQ, 4)) is return_sequences


def test_composites_keep_the_mask_as_their_bodies_do(tmp_path):
    program = chain_program(tmp_path, "embedding(features=4) -> repeat(2) { dense(4) } -> "
                                      "residual { conv(4, 1) } -> dense(2)")
    embed, repeat, residual, _ = program.model.layers
    assert repeat.mask_after((SEQ, 4)) and not residual.mask_after((SEQ, 4))


# ------------------------------------------------------------------ numeric models

def _primitives(jaxpr) -> set[str]:
    found = set()
    for eqn in jaxpr.eqns:
        found.add(eqn.primitive.name)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found |= _primitives(sub)
    return found


def test_a_numeric_model_has_no_mask(tmp_path):
    """No tokens input, no mask: the module is the one built without it, and its program
    compares nothing with 0."""
    path = tmp_path / "n.mlspec"
    path.write_text("model m {\n    dense(8) -> relu -> dense(classes)\n}\n"
                    "data {\n    source = digits\n}\n")
    program = mlspec.resolve(mlspec.load(path))
    assert token_inputs(program) == ()
    module = build_module(program.model, token_inputs(program))
    assert module == build_module(program.model)
    x = jnp.zeros((3, 64))
    variables = module.init(jax.random.PRNGKey(0), x)
    jaxpr = jax.make_jaxpr(lambda v, x: module.apply(v, x))(variables, x).jaxpr
    assert "ne" not in _primitives(jaxpr)
    text = chain_program(tmp_path, "embedding(features=4) -> global_avg_pool")
    masked, _ = modules(text)
    ids = jnp.asarray(padded_ids())
    variables = masked.init(jax.random.PRNGKey(0), ids)
    assert "ne" in _primitives(jax.make_jaxpr(lambda v, x: masked.apply(v, x))(
        variables, ids).jaxpr)


# ------------------------------------------------------------------ a run, end to end

def _lengths_task(n: int, seed: int) -> pd.DataFrame:
    """Label: whether most of a note's words are 'good' (its length varies 2 to 12, so
    the padding's share varies too: an unmasked mean sees fewer good words in a short
    note)."""
    rng = np.random.default_rng(seed)
    notes, labels = [], []
    for _ in range(n):
        length = int(rng.integers(2, 13))
        good = int(rng.integers(0, length + 1))
        if 2 * good == length:
            good += 1
        words = ["good"] * good + ["bad"] * (length - good)
        rng.shuffle(words)
        notes.append(" ".join(words))
        labels.append("yes" if 2 * good > length else "no")
    return pd.DataFrame({"note": notes, "label": labels})


SPEC = """
model m {
    embedding(features=4)
    global_avg_pool
    dense(classes)
}
data {
    source = csv("notes.csv", target="label", text=["note"], seq_len=16)
    valid  = 0.25
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.05)
    steps     = 300
    metrics   = [accuracy]
}
"""


def test_a_text_classifier_with_masked_pooling_trains_end_to_end(tmp_path, capsys):
    _lengths_task(240, 0).to_csv(tmp_path / "notes.csv", index=False)
    (tmp_path / "t.mlspec").write_text(SPEC)
    run = tmp_path / "run"
    assert main(["run", str(tmp_path / "t.mlspec"), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "valid", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] >= 0.95
    # the run's model on a padded note is the model on the note alone
    result = mlspec.load_run(run)
    module = build_module(result.program.model, token_inputs(result.program))
    ids = np.zeros((1, 16), np.int32)
    ids[0, :3] = [2, 3, 2]
    variables = {"params": result.state["params"]}
    np.testing.assert_allclose(module.apply(variables, jnp.asarray(ids)),
                               module.apply(variables, jnp.asarray(ids[:, :3])), rtol=1e-6)
