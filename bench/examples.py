"""Hand-written flax/optax equivalents of the v2 examples in specs/.

Each `hand_*` function returns the flax module that the example's spec compiles to, written
by hand from flax.linen (no mlspec), so that its parameter count can be compared with
mlspec's (tests/test_examples.py) and its training timed against mlspec's
(bench/sequence.py). `hand_training` is the training loop of the reviews examples as one
would write it: optax adam, minibatches of 64 reshuffled every epoch (permutations drawn
before the scan, mlspec's key layout), one jitted `lax.scan` over the steps, loss and
accuracy on train and valid every `eval_every` steps (`lax.cond`) and at the end.

The data are mlspec's own arrays (token ids, class ids), read once with its loader, so
that both ways train on the same numbers.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def hand_reviews_lstm(vocab: int):
    import flax.linen as nn

    class ReviewsLstm(nn.Module):
        @nn.compact
        def __call__(self, ids):
            h = nn.Embed(vocab, 16)(ids)
            carry, _ = nn.RNN(nn.LSTMCell(32), return_carry=True)(h)
            return nn.Dense(2)(carry[1])  # the LSTM's last output

    return ReviewsLstm()


def hand_reviews_attention(vocab: int):
    import flax.linen as nn
    import jax.numpy as jnp

    class ReviewsAttention(nn.Module):
        @nn.compact
        def __call__(self, ids):
            h = nn.Embed(vocab, 32)(ids)
            time = ids.shape[1]
            h = h + nn.Embed(time, 32)(jnp.arange(time))[None]
            h = nn.MultiHeadDotProductAttention(num_heads=2)(h)
            return nn.Dense(2)(h.mean(axis=1))

    return ReviewsAttention()


def hand_reviews_bag(vocab: int):
    import flax.linen as nn

    class ReviewsBag(nn.Module):
        @nn.compact
        def __call__(self, ids):
            h = nn.Embed(vocab, 32)(ids).mean(axis=1)
            return nn.Dense(2)(nn.relu(nn.Dense(32)(h)))

    return ReviewsBag()


def hand_digits_inception():
    import flax.linen as nn
    import jax.numpy as jnp

    def inception(x, f):
        a = nn.relu(nn.Conv(f, (1, 1))(x))
        b = nn.relu(nn.Conv(f, (3, 3))(nn.relu(nn.Conv(f, (1, 1))(x))))
        c = nn.max_pool(x, (3, 3), strides=(1, 1), padding="SAME")
        c = nn.relu(nn.Conv(f, (1, 1))(c))
        return jnp.concatenate([a, b, c], axis=-1)

    class DigitsInception(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(-1, 8, 8, 1)
            x = nn.max_pool(inception(x, 8), (2, 2), strides=(2, 2))
            x = inception(x, 16).mean(axis=(1, 2))
            return nn.Dense(10)(x)

    return DigitsInception()


def hand_digits_autoencoder():
    import flax.linen as nn
    import jax

    class DigitsAutoencoder(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.max_pool(nn.relu(nn.Conv(16, (3, 3))(x)), (2, 2), strides=(2, 2))
            x = nn.relu(nn.Conv(4, (3, 3))(x))
            n, h, w, c = x.shape
            x = jax.image.resize(x, (n, 2 * h, 2 * w, c), "nearest")
            x = nn.relu(nn.ConvTranspose(16, (3, 3))(x))
            x = nn.sigmoid(nn.ConvTranspose(1, (3, 3))(x))
            return x.reshape(n, -1)

    return DigitsAutoencoder()


def hand_income(city_vocab: int, job_vocab: int):
    """Inputs as a dict: `x` (rows, 2) standardized numbers, `city` and `job` (rows,)
    class ids (id 0 is a category unseen in training)."""
    import flax.linen as nn
    import jax.numpy as jnp

    class Income(nn.Module):
        @nn.compact
        def __call__(self, inputs):
            c = nn.Embed(city_vocab, 4)(inputs["city"])
            j = nn.Embed(job_vocab, 3)(inputs["job"])
            h = nn.relu(nn.Dense(16)(jnp.concatenate([inputs["x"], c, j], axis=-1)))
            return nn.Dense(2)(h)

    return Income()


def hand_digits_two_outputs():
    import flax.linen as nn

    class DigitsTwoOutputs(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.relu(nn.Dense(64)(x))
            return {"digit": nn.Dense(10)(h), "parity": nn.Dense(2)(h)}

    return DigitsTwoOutputs()


def hand_digits_siamese():
    """Inputs as a dict of two images `a` and `b`, (rows, 64) each."""
    import flax.linen as nn
    import jax.numpy as jnp

    class DigitsSiamese(nn.Module):
        @nn.compact
        def __call__(self, inputs):
            tower = nn.Dense(32)  # one module called twice: one set of weights
            ta, tb = nn.relu(tower(inputs["a"])), nn.relu(tower(inputs["b"]))
            h = nn.relu(nn.Dense(32)(jnp.concatenate([ta, tb, ta * tb], axis=-1)))
            return nn.Dense(2)(h)

    return DigitsSiamese()


def param_count(module, example) -> int:
    import jax

    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), example)
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


# ---------------------------------------------------------------------------- training


def reviews_arrays(spec: Path):
    """The train and valid splits of a reviews spec as mlspec reads them: token ids
    (rows, seq_len) int32 and class ids (rows,) int32, and the vocabulary size."""
    from mlspec.runtime.loading import load_data
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.reader import load

    program = resolve(load(spec), {})
    dataset = load_data(program.data)
    (vocab,) = [i.vocab for i in program.data.info.inputs]
    return dataset["train"], dataset["valid"], vocab


def hand_training(model, epochs: int, batch: int, eval_every: int,
                  learning_rate: float = 0.01):
    """`train(params, shuffle_key, train_x, train_y, valid_x, valid_y) -> (params,
    history, final)`: softmax cross-entropy on integer labels, adam."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    tx = optax.adam(learning_rate)

    def stats(params, x, y):
        logits = model.apply(params, x)
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
                "accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}

    def loss_fn(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, x),
                                                               y).mean()

    def train(params, shuffle_key, train_x, train_y, valid_x, valid_y):
        n = train_x.shape[0]
        per_epoch = n // batch
        perms = jax.vmap(lambda e: jax.random.permutation(
            jax.random.fold_in(shuffle_key, e), n))(jnp.arange(epochs))

        def both(p):
            return stats(p, train_x, train_y), stats(p, valid_x, valid_y)

        shapes = jax.eval_shape(both, params)

        def no_eval(p):
            return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def update(carry, t):
            params, opt_state = carry
            rows = lax.dynamic_slice_in_dim(perms[t // per_epoch], (t % per_epoch) * batch,
                                            batch)
            grads = jax.grad(loss_fn)(params, train_x[rows], train_y[rows])
            updates, opt_state = tx.update(grads, opt_state, params)
            row = lax.cond(t % eval_every == 0, both, no_eval, params)
            return (optax.apply_updates(params, updates), opt_state), row

        (params, _), history = lax.scan(update, (params, tx.init(params)),
                                        jnp.arange(epochs * per_epoch))
        history = jax.tree.map(lambda h: h[::eval_every], history)
        return params, history, both(params)

    return train


def keys(seed: int = 0):
    """mlspec's key layout: (init, dropout, shuffle) = split(PRNGKey(seed), 3)."""
    import jax

    return jax.random.split(jax.random.PRNGKey(seed), 3)
