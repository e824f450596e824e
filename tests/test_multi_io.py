"""Graph models with several inputs and several outputs, trained end to end (LANGUAGE.md
v2, "Graph models" and "Typed data"): the numbers against a hand-written flax/optax twin
and against the same function written over one input, the data as a dict of inputs
through seeds, sweeps and minibatches, predict/evaluate/load_run on new rows, and the
mistakes of a multi-output spec at their place."""

from __future__ import annotations

import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from conftest import ROOT

import mlspec
from mlspec.catalog.sources import DataError
from mlspec.runtime.loading import load_data

DATA = ROOT / "specs" / "data"

INCOME_MODEL = """model income {
    c = city -> embedding(features=4)
    j = job -> embedding(features=3)
    h = concat(x, c, j) -> dense(16) -> relu
    output high = h -> dense(classes)
}
"""


def income_spec(train: str = "", data: str = "") -> str:
    return INCOME_MODEL + f"""data {{
    source = csv("income.csv", target="high", categorical=["city", "job"])
    valid = 0.25
    standardize = true
{data}}}
train {{
    loss = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    metrics = [accuracy]
    seed = 3
    {train}
}}
"""


@pytest.fixture
def income(tmp_path):
    shutil.copy(DATA / "income.csv", tmp_path / "income.csv")

    def write(train: str = "steps = 40", data: str = "", name: str = "income.mlspec"):
        path = tmp_path / name
        path.write_text(income_spec(train, data))
        return path

    return write


class IncomeTwin(nn.Module):
    """The income graph written by hand in flax: the same layers in the same order, so
    the same parameter names and initial values."""

    city_vocab: int
    job_vocab: int
    classes: int

    @nn.compact
    def __call__(self, inputs):
        c = nn.Embed(self.city_vocab, 4)(inputs["city"])
        j = nn.Embed(self.job_vocab, 3)(inputs["job"])
        h = nn.relu(nn.Dense(16)(jnp.concatenate([inputs["x"], c, j], axis=-1)))
        return nn.Dense(self.classes)(h)


def _twin_history(program, steps: int, batch: int | None = None):
    """The hand-written run: init from the seed's first key, adam, full-batch or
    minibatches of each epoch's permutation; the train loss before each step."""
    dataset = load_data(program.data)
    x, y = dataset["train"]
    x = jax.tree.map(jnp.asarray, x)
    y = jnp.asarray(y)
    info = {i.name: i for i in program.data.info.inputs}
    module = IncomeTwin(info["city"].vocab, info["job"].vocab, program.data.info.classes)
    init_key, _, shuffle_key = jax.random.split(jax.random.PRNGKey(program.train.seed), 3)
    params = module.init(init_key, jax.tree.map(lambda a: a[:1], x))["params"]
    tx = optax.adam(0.01)
    opt = tx.init(params)

    def loss_of(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(module.apply(
            {"params": p}, xb), yb).mean()

    n = len(y)
    losses = []
    for step in range(steps):
        losses.append(float(loss_of(params, x, y)))
        if batch is None:
            xb, yb = x, y
        else:
            per_epoch = n // batch
            order = jax.random.permutation(jax.random.fold_in(shuffle_key, step // per_epoch), n)
            rows = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
            xb, yb = jax.tree.map(lambda a: a[rows], x), y[rows]
        grads = jax.grad(loss_of)(params, xb, yb)
        with jax.numpy_dtype_promotion("standard"):  # as optax is written for
            updates, opt = tx.update(grads, opt, params)
        params = optax.apply_updates(params, updates)
    losses.append(float(loss_of(params, x, y)))
    return np.array(losses), params


@pytest.mark.parametrize("batch", [None, 64])
def test_two_typed_inputs_train_as_the_hand_written_flax_twin(income, batch):
    path = income("steps = 30" + (f"\n    batch = {batch}" if batch else ""))
    result = mlspec.run(path)
    expected, params = _twin_history(result.program, 30, batch)
    np.testing.assert_allclose(result.history["train.loss"], expected, rtol=2e-5, atol=1e-6)
    for ours, theirs in zip(jax.tree.leaves(result.params), jax.tree.leaves(params),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert result.history["train.loss"].iloc[-1] < 0.7 * result.history["train.loss"].iloc[0]


def test_a_graph_over_two_arrays_is_the_chain_over_their_concatenation(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(300, 2))
    y = (a[:, 0] + b[:, 1] > 0).astype(np.int32)
    np.savez(tmp_path / "two.npz", a=a, b=b, x=np.concatenate([a, b], axis=1), y=y)
    train = """train {
    loss = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    steps = 30
    batch = 32
    metrics = [accuracy]
}
"""
    graph = tmp_path / "graph.mlspec"
    graph.write_text('model two {\n    output y = concat(a, b) -> dense(8) -> tanh -> '
                     'dense(classes)\n}\ndata {\n    source = npz("two.npz", inputs=["a", '
                     '"b"])\n    valid = 0.2\n}\n' + train)
    chain = tmp_path / "chain.mlspec"
    chain.write_text('model two {\n    dense(8) -> tanh -> dense(classes)\n}\ndata {\n'
                     '    source = npz("two.npz")\n    valid = 0.2\n}\n' + train)
    program = mlspec.resolve(graph)
    assert [(i.name, i.shape) for i in program.model.inputs] == [("a", (3,)), ("b", (2,))]
    g, c = mlspec.run(graph), mlspec.run(chain)
    pd.testing.assert_frame_equal(g.history, c.history, rtol=1e-6)


def test_seeds_and_a_sweep_over_several_inputs_are_their_single_runs(income):
    path = income("steps = 20\n    eval_every = 5\n    seeds = 2\n    batch = 100")
    text = path.read_text() + "sweep {\n    train.optimizer.learning_rate = [0.01, 0.003]\n}\n"
    path.write_text(text)
    result = mlspec.run(path)
    assert len(result.members) == 4
    single = mlspec.run(income("steps = 20\n    eval_every = 5\n    batch = 100",
                               name="one.mlspec"),
                        {"train.optimizer.learning_rate": 0.003, "train.seed": 4})
    member = next(m for m in result.members if m.settings == {
        "train.optimizer.learning_rate": 0.003, "train.seed": 4})
    for column in single.history.columns.drop("step"):
        np.testing.assert_allclose(member.history[column], single.history[column],
                                   rtol=1e-4, atol=1e-6, err_msg=column)


def test_predict_evaluate_and_load_run_take_new_rows_of_several_inputs(income, tmp_path):
    from mlspec.runtime.predict import evaluate, predictions_frame, rows_for

    result = mlspec.run(income("steps = 60"))
    folder = result.save(tmp_path / "run")
    loaded = mlspec.load_run(folder)
    rows = pd.read_csv(DATA / "income.csv").iloc[:40]
    rows.loc[0, "city"] = "nowhere"  # unseen in training: id 0, still a prediction
    rows.to_csv(tmp_path / "new.csv", index=False)
    for run in (result, loaded):
        x, _ = rows_for(run, str(tmp_path / "new.csv"), need_targets=False)
        assert set(x) == {"x", "city", "job"} and x["city"][0] == 0
        frame = predictions_frame(run, x, proba=True)
        assert set(frame["prediction"]) <= {"yes", "no"} and len(frame) == 40
        accuracy = (frame["prediction"] == rows["high"]).mean()
        assert accuracy > 0.8
        x, y = rows_for(run, "valid", need_targets=True)
        metrics = evaluate(run, x, y)
        assert metrics["accuracy"] == pytest.approx(result.metrics["valid.accuracy"], abs=1e-6)
    np.testing.assert_allclose(loaded.outputs(x), result.outputs(x), rtol=1e-6)
    with pytest.raises(DataError, match="lack city"):
        result.outputs({"x": x["x"], "job": x["job"]})


DEVICES_SCRIPT = """
import sys, jax, mlspec
assert jax.device_count() == 4, jax.devices()
path = sys.argv[1]
one = mlspec.run(path)
many = mlspec.run(path, {"train.devices": 4})
assert len(many.params["Dense_0"]["kernel"].sharding.device_set) == 4
difference = (one.history - many.history).abs().max().max()
assert difference < 1e-5, difference
print("ok")
"""


@pytest.mark.slow  # a subprocess with four host devices
def test_several_inputs_train_data_parallel_over_devices_as_on_one(income):
    import os
    import subprocess
    import sys

    path = income("steps = 12\n    batch = 100\n    eval_every = 4")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT, str(path)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
