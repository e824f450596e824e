"""The benchmark's workloads and the ways of running them.

Every way is a function `way(workload, sizes) -> dict` that trains one workload once, in
the current process, and reports `total_s` (the whole run as a user would write it, from
the spec file (mlspec) or from the data generator (hand-written) to the history on the
host: data generation, device transfer, init, trace + lower + compile, training, fetching
the history) and the final `train_acc` and `valid_acc` (to check that the ways did the
same work). run.py times compilation and execution inside that run (bench/timing.py).
A way may also return `_pieces`, a function that repeats the run with compilation
(`jax.jit(f).lower(*args).compile()`) and execution timed apart, for `--crosscheck`.

The hand-written ways follow the tutorial (shared/seed/000_*.txt, "Getting Fancy:
Modules"): a `flax.linen` module, `optax`, one jitted `lax.scan` over the steps, the data
passed as arguments, and the metrics from a separate `model.apply` on train and valid at
every step. They use mlspec's data generators and mlspec's PRNG key layout (init key =
split(PRNGKey(seed), 3)[0], shuffle key = [2]) so that both train the same model from the
same start on the same arrays, and their final metrics can be compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPECS = {
    "hill": ROOT / "specs" / "hill.mlspec",
    "logit": HERE / "specs" / "logit.mlspec",
    "logit_lbfgs": HERE / "specs" / "logit_lbfgs.mlspec",
    "mlp256": HERE / "specs" / "mlp256.mlspec",
}


@dataclass(frozen=True)
class Sizes:
    """Run lengths; `QUICK` is the smoke-run version."""

    hill_steps: int = 4000
    logit_steps: int = 5000
    lbfgs_steps: int = 30
    mlp_n: int = 100_000
    mlp_epochs: int = 2


FULL = Sizes()
QUICK = Sizes(hill_steps=400, logit_steps=500, lbfgs_steps=10, mlp_n=20_000, mlp_epochs=1)


def now() -> float:
    return time.perf_counter()


# ------------------------------------------------------------------------------- data


def hill_data():
    from mlspec.catalog.sources import Hill

    return Hill(n=10000, seed=0).load(Path(".")), Hill(n=1000, seed=1).load(Path("."))


def logit_data():
    from mlspec.catalog.sources import Hyperplane

    return (Hyperplane(n=10000, dim=100, seed=0).load(Path(".")),
            Hyperplane(n=10000, dim=100, seed=1).load(Path(".")))


def mlp_data(n: int):
    from mlspec.catalog.sources import Hyperplane

    return (Hyperplane(n=n, dim=100, seed=0).load(Path(".")),
            Hyperplane(n=10000, dim=100, seed=1).load(Path(".")))


def keys(seed: int):
    """mlspec's key layout: (init, dropout, shuffle) = split(PRNGKey(seed), 3)."""
    import jax

    return jax.random.split(jax.random.PRNGKey(seed), 3)


# ----------------------------------------------------------------------------- mlspec


def mlspec_overrides(workload: str, sizes: Sizes) -> tuple[Path, dict[str, Any]]:
    if workload == "W1":
        return SPECS["hill"], {"train.steps": sizes.hill_steps}
    if workload == "W1b":
        return SPECS["hill"], {"train.steps": sizes.hill_steps,
                               "train.eval_every": sizes.hill_steps}
    if workload == "W2":
        return SPECS["logit"], {"train.steps": sizes.logit_steps}
    if workload == "W2L":
        return SPECS["logit_lbfgs"], {"train.steps": sizes.lbfgs_steps}
    if workload == "W3":
        return SPECS["mlp256"], {"data.train.n": sizes.mlp_n,
                                 "train.epochs": sizes.mlp_epochs}
    raise KeyError(workload)


def mlspec_pieces(path: Path, overrides: dict[str, Any]) -> dict[str, float]:
    """What `mlspec.run` does with the default `updates=1` (the whole run as one
    `Trainer.run_all` call), through its Trainer, with compilation (`lower().compile()`)
    and execution timed apart."""
    import jax
    import jax.numpy as jnp

    from mlspec.compiler.trainer import Trainer
    from mlspec.runtime.loading import load_data
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.reader import load

    program = resolve(load(path), overrides)
    dataset = load_data(program.data)
    trainer = Trainer(program, len(dataset["train"][0]))
    data = {split: (jnp.asarray(x), jnp.asarray(y)) for split, (x, y) in
            dataset.splits.items() if split in ("train", "valid")}
    state = trainer.init(program.train.seed, data["train"][0], jit=True)
    counts = trainer.schedule.counts()
    jax.block_until_ready((state, data))

    t0 = now()
    run_all = jax.jit(trainer.run_all).lower(state, data, counts).compile()
    compile_s = now() - t0
    t0 = now()
    state, rows = jax.block_until_ready(run_all(state, data, counts))
    train_s = now() - t0
    return {"compile2_s": compile_s, "train2_s": train_s,
            "check_valid_acc": float(jax.device_get(rows["valid.accuracy"][-1]))}


def way_mlspec(workload: str, sizes: Sizes) -> dict[str, Any]:
    import mlspec

    path, overrides = mlspec_overrides(workload, sizes)
    t0 = now()
    result = mlspec.run(path, overrides)
    total_s = now() - t0
    out = {"total_s": total_s, "train_acc": result.metrics["train.accuracy"],
           "valid_acc": result.metrics.get("valid.accuracy"),
           "_pieces": lambda: mlspec_pieces(path, overrides)}
    return out


# ------------------------------------------------------------------- hand-written: models


def hand_modules():
    import flax.linen as nn

    class HillNet(nn.Module):
        """The tutorial's `Neural(2)`: 2 sigmoid hidden units, 2 logits."""

        @nn.compact
        def __call__(self, x):
            x = nn.sigmoid(nn.Dense(2)(x))
            return nn.Dense(2)(x)

    class Logit(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(x)

    class MLP(nn.Module):
        width: int = 256

        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(self.width)(x))
            x = nn.relu(nn.Dense(self.width)(x))
            return nn.Dense(1)(x)

    return HillNet, Logit, MLP


# ---------------------------------------------------------- hand-written: losses, stats


def softmax_task(labels: str = "onehot"):
    """Two logits. `onehot`: the tutorial's form, `optax.softmax_cross_entropy` against
    one-hot targets made once before the loop; `integer`: optax's integer-label form,
    `softmax_cross_entropy_with_integer_labels` (cheaper on the CPU)."""
    import jax
    import jax.numpy as jnp
    import optax

    def predict(logits):
        return jnp.argmax(logits, axis=-1)

    if labels == "onehot":
        def encode(y):
            return jax.nn.one_hot(y.astype(jnp.int32), 2)

        def loss_of(logits, target):
            return optax.softmax_cross_entropy(logits, target).mean()

        return loss_of, predict, encode

    def loss_of(logits, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return loss_of, predict, identity


def identity(y):
    return y


def sigmoid_task():
    import optax

    def loss_of(logits, y):
        return optax.sigmoid_binary_cross_entropy(logits[:, 0], y.astype(logits.dtype)).mean()

    def predict(logits):
        return logits[:, 0] >= 0.0

    return loss_of, predict, identity


def make_stats(loss_of, predict, extra: bool):
    """The tutorial's `fancy_stats` (plus the loss): metrics of logits against labels."""
    import jax.numpy as jnp

    def stats(logits, y, encoded=None):
        pred = predict(logits).astype(bool)
        target = y.astype(bool)
        out = {"loss": loss_of(logits, y if encoded is None else encoded),
               "accuracy": jnp.mean(pred == target)}
        if extra:
            out |= {"false_pos": jnp.mean(pred & ~target),
                    "false_neg": jnp.mean(~pred & target),
                    "pred_mean": jnp.mean(pred)}
        return out

    return stats


# ------------------------------------------------- hand-written: full-batch (W1, W1b, W2)


def make_full_batch(model, tx, task, steps: int, metrics: str):
    """A full-batch training run as one jitted scan, tutorial style: `task` is (loss_of,
    predict, encode), the labels encoded once before the scan (one-hot, as the tutorial).

    metrics: "apply": train and valid metrics every step from a separate `model.apply`
    (the tutorial); "aux": the train metrics from the logits of the gradient's own forward
    pass (`has_aux`), valid from `model.apply` (what mlspec does); "none": no metrics in
    the scan. All three evaluate the final params on train and valid after the scan."""
    import jax
    import optax
    from jax import lax

    loss_of, predict, encode = task
    stats = make_stats(loss_of, predict, extra=True)

    def objective(params, x, target):
        logits = model.apply(params, x)
        return loss_of(logits, target), logits

    grad_fn = jax.value_and_grad(objective, has_aux=True)

    def evaluate(params, x, y, target):
        return stats(model.apply(params, x), y, target)

    def train(params, train_x, train_y, valid_x, valid_y):
        train_t, valid_t = encode(train_y), encode(valid_y)

        def update(carry, _):
            params, opt_state = carry
            (_, logits), grads = grad_fn(params, train_x, train_t)
            updates, opt_state = tx.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            if metrics == "none":
                return (new_params, opt_state), None
            if metrics == "aux":
                train_stats = stats(logits, train_y, train_t)
            else:
                train_stats = evaluate(params, train_x, train_y, train_t)
            valid_stats = evaluate(params, valid_x, valid_y, valid_t)
            return (new_params, opt_state), (train_stats, valid_stats)

        (params, _), history = lax.scan(update, (params, tx.init(params)), None,
                                        length=steps)
        final = (evaluate(params, train_x, train_y, train_t),
                 evaluate(params, valid_x, valid_y, valid_t))
        return params, history, final

    return train


# ------------------------------------------------------------- hand-written: minibatch W3


def make_minibatch(model, tx, task, epochs: int, batch: int, eval_every: int):
    """Minibatches of `batch` rows, reshuffled every epoch (the permutations drawn once,
    before the scan), `epochs * (n // batch)` steps as one scan; loss and accuracy on the
    full train and valid sets every `eval_every` steps (`lax.cond`) and at the end."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    loss_of, predict, _ = task
    stats = make_stats(loss_of, predict, extra=False)

    def loss_fn(params, x, y):
        return loss_of(model.apply(params, x), y)

    def evaluate_both(params, train_x, train_y, valid_x, valid_y):
        return (stats(model.apply(params, train_x), train_y),
                stats(model.apply(params, valid_x), valid_y))

    def train(params, shuffle_key, train_x, train_y, valid_x, valid_y):
        n = train_x.shape[0]
        per_epoch = n // batch
        perms = jax.vmap(lambda e: jax.random.permutation(
            jax.random.fold_in(shuffle_key, e), n))(jnp.arange(epochs))
        both = (train_x, train_y, valid_x, valid_y)
        shapes = jax.eval_shape(evaluate_both, params, *both)

        def no_eval(params):
            return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def update(carry, t):
            params, opt_state = carry
            rows = lax.dynamic_slice_in_dim(perms[t // per_epoch], (t % per_epoch) * batch,
                                            batch)
            grads = jax.grad(loss_fn)(params, train_x[rows], train_y[rows])
            updates, opt_state = tx.update(grads, opt_state, params)
            row = lax.cond(t % eval_every == 0, lambda p: evaluate_both(p, *both), no_eval,
                           params)
            return (optax.apply_updates(params, updates), opt_state), row

        (params, _), history = lax.scan(update, (params, tx.init(params)),
                                        jnp.arange(epochs * per_epoch))
        history = jax.tree.map(lambda h: h[::eval_every], history)
        return params, history, evaluate_both(params, *both)

    return train


# ------------------------------------------------------------ hand-written: lbfgs (W2L)


def make_lbfgs(model, task, steps: int):
    """optax's documented L-BFGS loop (value_and_grad_from_state reuses the line search's
    value and gradient), with the train accuracy recorded every step like mlspec."""
    import optax
    from jax import lax

    loss_of, predict, _ = task
    stats = make_stats(loss_of, predict, extra=False)
    tx = optax.lbfgs()

    def train(params, train_x, train_y, valid_x, valid_y):
        def loss_fn(p):
            return loss_of(model.apply(p, train_x), train_y)

        value_and_grad = optax.value_and_grad_from_state(loss_fn)

        def update(carry, _):
            params, state = carry
            row = stats(model.apply(params, train_x), train_y)
            value, grad = value_and_grad(params, state=state)
            updates, state = tx.update(grad, state, params, value=value, grad=grad,
                                       value_fn=loss_fn)
            return (optax.apply_updates(params, updates), state), row

        (params, _), history = lax.scan(update, (params, tx.init(params)), None,
                                        length=steps)
        final = (stats(model.apply(params, train_x), train_y),
                 stats(model.apply(params, valid_x), valid_y))
        return params, history, final

    return train


# ------------------------------------------------------------------ hand-written: ways


@dataclass
class HandSetup:
    """What a hand-written way needs: a data loader, the model and a factory for the
    training function (called anew for each jit, so no trace is reused)."""

    load: Callable[[], Any]
    model: Any
    seed: int
    make_train: Callable[[], Callable]
    minibatch: bool = False


def hand_setup(workload: str, sizes: Sizes, metrics: str = "apply",
               labels: str = "onehot") -> HandSetup:
    import optax

    HillNet, Logit, MLP = hand_modules()
    if workload in ("W1", "W1b"):
        model = HillNet()
        return HandSetup(hill_data, model, 42, lambda: make_full_batch(
            model, optax.rmsprop(learning_rate=0.01), softmax_task(labels), sizes.hill_steps,
            "none" if workload == "W1b" else metrics))
    if workload == "W2":
        model = Logit()
        return HandSetup(logit_data, model, 0, lambda: make_full_batch(
            model, optax.sgd(learning_rate=2.0), sigmoid_task(), sizes.logit_steps, metrics))
    if workload == "W2L":
        model = Logit()
        return HandSetup(logit_data, model, 0, lambda: make_lbfgs(
            model, sigmoid_task(), sizes.lbfgs_steps))
    if workload == "W3":
        model = MLP()
        return HandSetup(lambda: mlp_data(sizes.mlp_n), model, 0, lambda: make_minibatch(
            model, optax.adam(learning_rate=1e-3), sigmoid_task(), sizes.mlp_epochs, 256,
            100), minibatch=True)
    raise KeyError(workload)


def way_hand(workload: str, sizes: Sizes, metrics: str = "apply",
             labels: str = "onehot") -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import pandas as pd

    setup = hand_setup(workload, sizes, metrics, labels)

    def prepare():
        (x, y), (xv, yv) = setup.load()
        args = [jnp.asarray(x), jnp.asarray(y), jnp.asarray(xv), jnp.asarray(yv)]
        init_key, _, shuffle_key = keys(setup.seed)
        params = setup.model.init(init_key, args[0][:1])
        return [params, shuffle_key, *args] if setup.minibatch else [params, *args]

    t0 = now()
    args = prepare()
    _, history, final = jax.jit(setup.make_train())(*args)
    history, final = jax.device_get((history, final))
    if history is not None:  # the tutorial's DataFrame of the history
        train_h, valid_h = history if isinstance(history, tuple) else (history, {})
        pd.DataFrame({**{f"train.{k}": v for k, v in train_h.items()},
                      **{f"valid.{k}": v for k, v in valid_h.items()}})
    total_s = now() - t0
    out = {"total_s": total_s, "train_acc": float(final[0]["accuracy"]),
           "valid_acc": float(final[1]["accuracy"])}

    def pieces():
        args = prepare()
        jax.block_until_ready(args)
        t0 = now()
        compiled = jax.jit(setup.make_train()).lower(*args).compile()
        compile_s = now() - t0
        t0 = now()
        result = jax.block_until_ready(compiled(*args))
        train_s = now() - t0
        return {"compile2_s": compile_s, "train2_s": train_s,
                "check_valid_acc": float(result[2][1]["accuracy"])}

    return out | {"_pieces": pieces}


# ----------------------------------------------------------------------- scikit-learn


def way_sklearn(workload: str, sizes: Sizes) -> dict[str, Any]:
    """LogisticRegression(solver="lbfgs") with its defaults (C=1.0: a light L2 penalty,
    negligible at 10,000 rows), max_iter raised so that it converges."""
    from sklearn.linear_model import LogisticRegression

    assert workload == "W2L"
    t0 = now()
    (x, y), (xv, yv) = logit_data()
    t1 = now()
    clf = LogisticRegression(solver="lbfgs", max_iter=1000).fit(x, y)
    train_s = now() - t1
    out = {"total_s": now() - t0, "train_s": train_s,
           "train_acc": float(clf.score(x, y)), "valid_acc": float(clf.score(xv, yv)),
           "note": f"n_iter={int(clf.n_iter_[0])}"}
    return out


WAYS: dict[str, Callable[[str, Sizes], dict[str, Any]]] = {
    "mlspec": way_mlspec,
    "hand": way_hand,
    "hand_aux": lambda w, s: way_hand(w, s, metrics="aux"),
    "hand_int": lambda w, s: way_hand(w, s, labels="integer"),
    "sklearn": way_sklearn,
}
