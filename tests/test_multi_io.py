"""Graph models with several inputs and several outputs, trained end to end (LANGUAGE.md
v2, "Graph models" and "Typed data"): the numbers against a hand-written flax/optax twin
and against the same function written over one input, the data as a dict of inputs
through seeds, sweeps and minibatches, predict/evaluate/load_run on new rows, and the
mistakes of a multi-output spec at their place."""

from __future__ import annotations

import re
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
from mlspec.syntax.errors import SpecError

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


@pytest.mark.parametrize("batch", [pytest.param(None, marks=pytest.mark.slow), 64])
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


# ------------------------------------------------------------------------ several outputs

DIGITS2 = """model digits2 {
    h = x -> dense(32) -> relu
    output digit = h -> dense(classes)
    output parity = h -> dense(classes)
}
data {
    source = csv("digits_parity.csv", target=["digit", "parity"])
    valid = 0.2
    standardize = true
}
train {
    loss = softmax_cross_entropy(digit) + 0.5 * softmax_cross_entropy(parity)
    optimizer = adam(learning_rate=0.01)
    steps = 25
    metrics = [digit.accuracy, parity.accuracy]
}
"""


@pytest.fixture
def digits2(tmp_path):
    shutil.copy(DATA / "digits_parity.csv", tmp_path / "digits_parity.csv")

    def write(text: str = DIGITS2, name: str = "digits2.mlspec"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


class DigitsTwin(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(32)(x))
        return {"digit": nn.Dense(10)(h), "parity": nn.Dense(2)(h)}


@pytest.mark.slow  # a step-by-step flax twin of a whole run
def test_two_outputs_train_as_the_hand_written_flax_twin(digits2):
    result = mlspec.run(digits2())
    program = result.program
    assert [t.name for t in program.data.info.outputs] == ["digit", "parity"]
    assert dict(program.model.output_shapes) == {"digit": (10,), "parity": (2,)}
    assert list(result.history.columns) == [
        "step", "train.loss", "train.digit.accuracy", "train.parity.accuracy",
        "valid.loss", "valid.digit.accuracy", "valid.parity.accuracy"]
    dataset = load_data(program.data)
    module = DigitsTwin()
    init_key, _, _ = jax.random.split(jax.random.PRNGKey(0), 3)
    (x, y), (vx, vy) = dataset["train"], dataset["valid"]
    assert set(y) == {"digit", "parity"} and y["parity"].max() == 1
    params = module.init(init_key, x[:1])["params"]
    tx = optax.adam(0.01)
    opt = tx.init(params)

    def loss_of(p, x, y):
        out = module.apply({"params": p}, x)
        ce = optax.softmax_cross_entropy_with_integer_labels
        return ce(out["digit"], y["digit"]).mean() + 0.5 * ce(out["parity"], y["parity"]).mean()

    losses = []
    for _ in range(25):
        losses.append(float(loss_of(params, x, y)))
        grads = jax.grad(loss_of)(params, x, y)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt = tx.update(grads, opt, params)
        params = optax.apply_updates(params, updates)
    losses.append(float(loss_of(params, x, y)))
    np.testing.assert_allclose(result.history["train.loss"], losses, rtol=2e-5, atol=1e-6)
    assert result.metrics["valid.loss"] == pytest.approx(float(loss_of(params, vx, vy)),
                                                         rel=2e-5)
    out = module.apply({"params": params}, vx)
    for head in ("digit", "parity"):
        accuracy = float((out[head].argmax(-1) == vy[head]).mean())
        assert result.metrics[f"valid.{head}.accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_two_outputs_predict_and_evaluate_each_output_with_class_names(digits2, tmp_path):
    from mlspec.runtime.predict import evaluate, predictions_frame, rows_for

    spec = DIGITS2.replace("steps = 25", "steps = 150")
    result = mlspec.run(digits2(spec))
    assert result.metrics["valid.digit.accuracy"] > 0.9
    assert result.metrics["valid.parity.accuracy"] > 0.9
    loaded = mlspec.load_run(result.save(tmp_path / "run"))
    rows = pd.read_csv(DATA / "digits_parity.csv").iloc[:30]
    rows.drop(columns=["digit", "parity"]).to_csv(tmp_path / "new.csv", index=False)
    for run in (result, loaded):
        x, _ = rows_for(run, str(tmp_path / "new.csv"), need_targets=False)
        frame = predictions_frame(run, x, proba=True)
        assert list(frame.columns[:2]) == ["digit", "parity"]
        assert set(frame["parity"]) <= {"even", "odd"}
        assert (frame["parity"] == rows["parity"]).mean() > 0.85
        assert (frame["digit"].astype(int) == rows["digit"]).mean() > 0.85
        assert "proba_parity_even" in frame and "proba_digit_9" in frame
        x, y = rows_for(run, "valid", need_targets=True)
        metrics = evaluate(run, x, y)
        for key in ("loss", "digit.accuracy", "parity.accuracy"):
            assert metrics[key] == pytest.approx(result.metrics[f"valid.{key}"], abs=1e-5)


def _regression_data(folder, rows: int = 400):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    city = rng.choice(["ash", "elm", "oak"], size=rows)
    price = 2 * a - b + (city == "oak") + 0.1 * rng.normal(size=rows)
    sold = (a + b > 0).astype(int)
    frame = pd.DataFrame({"a": a, "b": b, "city": city, "price": price, "sold": sold})
    frame.to_csv(folder / "houses.csv", index=False)
    return frame


HOUSES = """model houses {
    c = city -> embedding(features=2)
    h = concat(x, c) -> dense(16) -> tanh
    output price = h -> dense(1)
    output sold = h -> dense(1)
}
data {
    source = csv("houses.csv", target=["price", "sold"], categorical=["city"])
    valid = 0.25
}
train {
    loss = mse(price) + 0.5 * sigmoid_binary_cross_entropy(sold) + 1e-4 * l2
    optimizer = adam(learning_rate=0.02)
    steps = 300
    eval_every = 10
    metrics = [price.rmse, sold.accuracy]
    early_stop = early_stop(metric=valid.price.rmse, patience=5)
}
"""


def test_a_real_and_a_binary_output_with_early_stop_on_one_of_them(tmp_path):
    frame = _regression_data(tmp_path)
    (tmp_path / "houses.mlspec").write_text(HOUSES)
    result = mlspec.run(tmp_path / "houses.mlspec")
    assert "valid.price.rmse" in result.history and "valid.sold.accuracy" in result.history
    assert result.metrics["valid.price.rmse"] < 0.5
    assert result.metrics["valid.sold.accuracy"] > 0.85
    best = result.history["valid.price.rmse"].min()
    assert result.metrics["valid.price.rmse"] == pytest.approx(best)
    assert result.program.train.early_stop.mode == "min"
    pred = result.predict(result.trainer and {"x": frame[["a", "b"]].to_numpy()[:5],
                                              "city": np.array([1, 2, 3, 1, 2])})
    assert pred["price"].shape == (5, 1) and set(np.unique(pred["sold"])) <= {0, 1}


def test_predict_proba_of_a_real_and_a_class_output_gives_the_class_outputs(tmp_path,
                                                                           capsys):
    from mlspec.cli import main

    frame = _regression_data(tmp_path)
    (tmp_path / "houses.mlspec").write_text(HOUSES)
    run = tmp_path / "run"
    assert main(["run", str(tmp_path / "houses.mlspec"), "--set", "train.steps=20",
                 "--out", str(run)]) == 0
    frame.drop(columns=["price", "sold"]).iloc[:6].to_csv(tmp_path / "new.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "new.csv"), "--proba"]) == 0
    import io

    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(out.columns) == ["price_0", "sold", "proba_sold_0", "proba_sold_1"]
    np.testing.assert_allclose(out["proba_sold_0"] + out["proba_sold_1"], 1, atol=1e-5)
    assert ((out["proba_sold_1"] > 0.5).astype(int) == out["sold"]).all()
    # no output with probabilities (a hinge loss gives scores): refused
    (tmp_path / "real.mlspec").write_text(HOUSES.replace(
        "sigmoid_binary_cross_entropy(sold)", "hinge_loss(sold)"))
    assert main(["run", str(tmp_path / "real.mlspec"), "--set", "train.steps=5",
                 "--out", str(tmp_path / "real")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "real"), str(tmp_path / "new.csv"),
                 "--proba"]) == 2
    assert "none of this run's has them (its losses are price: mse, sold: hinge_loss)" in \
        capsys.readouterr().err


def test_parquet_and_npz_name_several_targets(tmp_path):
    frame = _regression_data(tmp_path)
    pytest.importorskip("pyarrow")
    frame.to_parquet(tmp_path / "houses.parquet")
    (tmp_path / "p.mlspec").write_text(HOUSES.replace('csv("houses.csv"',
                                                      'parquet("houses.parquet"'))
    from_csv = mlspec.run(tmp_path / "p.mlspec", {"train.steps": 20})
    (tmp_path / "c.mlspec").write_text(HOUSES)
    from_parquet = mlspec.run(tmp_path / "c.mlspec", {"train.steps": 20})
    pd.testing.assert_frame_equal(from_csv.history, from_parquet.history, rtol=1e-6)
    np.savez(tmp_path / "h.npz", x=frame[["a", "b"]].to_numpy(), price=frame["price"],
             sold=frame["sold"])
    npz = HOUSES.replace('    c = city -> embedding(features=2)\n', '').replace(
        "concat(x, c)", "x").replace(
        'csv("houses.csv", target=["price", "sold"], categorical=["city"])',
        'npz("h.npz", y=["price", "sold"], task=auto)')
    (tmp_path / "n.mlspec").write_text(npz.replace("task=auto", 'task="auto"'))
    result = mlspec.run(tmp_path / "n.mlspec", {"train.steps": 20})
    info = result.program.data.info
    assert [(t.name, t.target) for t in info.outputs] == [("price", "real"), ("sold", "class")]
    assert result.history["train.loss"].iloc[-1] < result.history["train.loss"].iloc[0]


MULTI_MISTAKES = {
    "loss without output": ("mse(price) + 0.5 * sigmoid_binary_cross_entropy + 1e-4 * l2",
                            None, "has several outputs \\(price, sold\\): name the output",
                            "sigmoid_binary_cross_entropy +"),
    "unknown output in a loss": ("mse(prise) + sigmoid_binary_cross_entropy(sold)", None,
                                 "'prise' is no output of model 'houses'; did you mean "
                                 "'price'", "prise"),
    "loss that does not fit": ("mse(price) + softmax_cross_entropy(price)", None,
                               "output 'price'", "softmax_cross_entropy(price)"),
    "output without a loss": ("mse(price)", None, "output 'sold' has no loss term",
                              "loss = "),
    "metric of an unknown output": (None, "[price.rmse, sould.accuracy]",
                                    "names no output of the model; did you mean 'sold'",
                                    "sould.accuracy"),
    "metric without output": (None, "[rmse, sold.accuracy]", "write price.rmse", "rmse,"),
    "metric that does not fit": (None, "[price.accuracy]", "needs class targets, which the "
                                                           "target of output 'price'",
                                 "price.accuracy"),
}


@pytest.mark.parametrize("loss, metrics, message, at", MULTI_MISTAKES.values(),
                         ids=MULTI_MISTAKES)
def test_multi_output_mistakes_are_reported_at_their_place(tmp_path, loss, metrics, message, at):
    _regression_data(tmp_path)
    text = HOUSES.replace("    early_stop = early_stop(metric=valid.price.rmse, patience=5)\n",
                          "")
    if loss is not None:
        text = text.replace("mse(price) + 0.5 * sigmoid_binary_cross_entropy(sold) + 1e-4 * l2",
                            loss)
    if metrics is not None:
        text = text.replace("[price.rmse, sold.accuracy]", metrics)
    _assert_error_at(tmp_path, text, message, at)


def _assert_error_at(tmp_path, text, message, at):
    """The spec's error matches `message` at the first place of the text `at`."""
    (tmp_path / "bad.mlspec").write_text(text)
    with pytest.raises(SpecError) as caught:
        mlspec.check(tmp_path / "bad.mlspec")
    found = [d for d in caught.value.diagnostics if re.search(message, d.message)]
    assert found, [d.message for d in caught.value.diagnostics]
    offset = text.index(at)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    assert (found[0].span.line, found[0].span.column) == (line, column), found[0]


SPEC_MISTAKES = {
    "output without a target": (("output sold = h -> dense(1)", "output sald = h -> dense(1)"),
                                "output 'sald' has no target of its name; did you mean 'sold'",
                                "sald = h"),
    "target no output uses": (('target=["price", "sold"]', 'target=["price", "sold", "b"]'),
                              "the target 'b' is no output of model 'houses'", '"b"]'),
    "classes outside an output": (("dense(16) -> tanh", "dense(classes) -> tanh"),
                                  "'classes' needs a data with a single class target",
                                  "classes) -> tanh"),
    "a chain on several targets": (("    c = city -> embedding(features=2)\n    h = concat(x, c)"
                                    " -> dense(16) -> tanh\n    output price = h -> dense(1)\n"
                                    "    output sold = h -> dense(1)\n", "    dense(1)\n"),
                                   "the data has the targets price, sold; a chain has one "
                                   "output", "model houses"),
    "early_stop on a column not recorded": (("valid.price.rmse", "valid.price.mae"),
                                            "watches 'valid.price.mae', which is not recorded"
                                            "; did you mean 'valid.price.rmse'",
                                            "early_stop(metric"),
}


@pytest.mark.parametrize("change, message, at", SPEC_MISTAKES.values(), ids=SPEC_MISTAKES)
def test_mistakes_of_outputs_and_targets_are_reported_at_their_place(tmp_path, change,
                                                                     message, at):
    _regression_data(tmp_path)
    _assert_error_at(tmp_path, HOUSES.replace(*change), message, at)


def test_classes_in_an_output_chain_is_that_outputs_number_of_classes(digits2):
    program = mlspec.resolve(digits2())
    assert dict(program.model.output_shapes) == {"digit": (10,), "parity": (2,)}


def test_one_output_keeps_history_unprefixed_and_may_name_its_output(income):
    text = income().read_text().replace("loss = softmax_cross_entropy",
                                        "loss = softmax_cross_entropy(high)").replace(
        "metrics = [accuracy]", "metrics = [high.accuracy]")
    path = income()
    path.write_text(text)
    named = mlspec.run(path)
    plain = mlspec.run(income(name="plain.mlspec"))
    assert list(named.history.columns) == ["step", "train.loss", "train.accuracy",
                                           "valid.loss", "valid.accuracy"]
    pd.testing.assert_frame_equal(named.history, plain.history)


def test_the_resolved_spec_of_several_outputs_resolves_to_the_same_program(tmp_path):
    from mlspec.semantics.canonical import resolved_spec
    from mlspec.syntax.printer import print_spec

    _regression_data(tmp_path)
    (tmp_path / "houses.mlspec").write_text(HOUSES)
    program = mlspec.resolve(tmp_path / "houses.mlspec")
    text = print_spec(resolved_spec(program))
    assert "mse(price)" in text and "sold.accuracy" in text
    (tmp_path / "again.mlspec").write_text(text)
    again = mlspec.resolve(tmp_path / "again.mlspec")

    def terms(p):
        return [(t.weight, t.output, t.loss.kind) for t in p.train.loss]

    assert terms(again) == terms(program) and len(terms(program)) == 3
    assert [m.as_expr().name for m in again.train.metrics] == ["price.rmse", "sold.accuracy"]
    assert again.model.output_shapes == program.model.output_shapes


DATA_MISTAKES = {
    "a target twice": ('csv("houses.csv", target=["price", "price"])',
                       "the column 'price' is twice in target=\\[...\\]", '"price"]'),
    "a missing target": ('csv("houses.csv", target=["price", "sould"])',
                         "has no column 'sould'; did you mean 'sold'", 'csv('),
    "an npz input that is the target": ('npz("h.npz", inputs=["a", "y"])',
                                        "'y' is the target array", '"y"]'),
    "an npz input that is missing": ('npz("h.npz", inputs=["a", "c"])',
                                     "has no array 'c'", 'npz('),
}


@pytest.mark.parametrize("source, message, at", DATA_MISTAKES.values(), ids=DATA_MISTAKES)
def test_data_mistakes_of_several_inputs_and_targets_are_at_their_place(tmp_path, source,
                                                                        message, at):
    _regression_data(tmp_path)
    np.savez(tmp_path / "h.npz", a=np.ones((10, 2)), b=np.ones((10, 3)), y=np.arange(10) % 2)
    text = ("model m {\n    output y = a -> dense(classes)\n}\ndata {\n    source = "
            f"{source}\n    valid = 0.2\n}}\n")
    _assert_error_at(tmp_path, text, message, at)
