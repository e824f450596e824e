"""Early stopping restores the best evaluation (v2), and every report of where a run
stopped (Result, Training, metrics.json, manifest) tells the same step."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from conftest import iris_net

import mlspec
from mlspec.runtime.runner import spec_as_run
from mlspec.runtime.runs import save_run
from mlspec.runtime.training import Training
from mlspec.semantics.structure import groups
from mlspec.semantics.sweep import expand

BASE = iris_net("""
    optimizer = adam(learning_rate=0.05)
    steps = 3000
""", data="test = 0.2")

DIVERGING = """
model line {
    dense(1)
}
data {
    train = linear(n=200)
}
train {
    loss       = mse
    optimizer  = sgd(learning_rate=5.0)
    steps      = 500
    eval_every = 10
}
"""


def early_stop(patience=20, metric="valid.loss", **kwargs):
    return mlspec.Call.of("early_stop", metric=mlspec.Call(name=metric), patience=patience,
                          **kwargs)


def training(text=BASE, updates=1, **overrides) -> Training:
    """The Training of a spec (all its members, vmapped, for seeds)."""
    members = expand(mlspec.parse(text), overrides)
    (group,) = groups(members)
    return Training(group[0].program, updates=updates,
                    members=group if len(group) > 1 else None)


def assert_same_params(a, b, rtol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=rtol / 10)


def assert_metrics_of_the_params(run: Training, result):
    """The restored parameters, evaluated again, give the metrics of their row."""
    row = result.history[result.history["step"] == result.best_step].iloc[0]
    for split in ("train", "valid"):
        x, y = run.data[split]
        values = jax.jit(run.trainer.evaluate)(result.state, x, y)
        for name, value in values.items():
            assert float(value) == pytest.approx(row[f"{split}.{name}"], rel=1e-5)
            assert result.metrics[f"{split}.{name}"] == row[f"{split}.{name}"]


def shorter_run(steps, text=BASE, **overrides):
    """The same spec trained for `steps` steps without early stopping."""
    return mlspec.run(mlspec.parse(text), {**overrides, "train.steps": steps})


NORMALISED = BASE.replace("dense(16) -> relu", "dense(16) -> batch_norm -> relu\n    dropout(0.2)")
CASES = {"full batch, a row every step": (BASE, {}),
         "minibatches, a row every 5 steps": (BASE, {"train.batch": 16, "train.eval_every": 5}),
         # momentum SGD: adam turns float noise in a near-zero gradient into whole steps
         "batch_norm and dropout": (NORMALISED, {"train.batch": 32, "train.optimizer":
                                                 mlspec.Call.of("sgd", learning_rate=0.2,
                                                                momentum=0.9)})}


@pytest.mark.parametrize("text, schedule", CASES.values(), ids=CASES)
def test_early_stopping_restores_the_best_evaluation(text, schedule):
    run = training(text, **schedule, **{"train.early_stop": early_stop()})
    result = run.run()
    history = result.history
    assert result.status == "early_stopped"
    best = int(np.argmin(history["valid.loss"].to_numpy()))
    assert result.best_step == history["step"].iloc[best] < result.stopped_at
    assert history["step"].iloc[-1] == result.stopped_at  # the history runs to the stop
    assert_metrics_of_the_params(run, result)
    again = shorter_run(result.best_step, text, **schedule)
    assert_same_params(result.params, again.params)
    assert_same_params(result.state["model_state"], again.state["model_state"])
    assert jax.tree.leaves(result.state["model_state"]) or text == BASE
    # the test split is evaluated with the restored parameters
    assert result.metrics["test.loss"] == pytest.approx(again.metrics["test.loss"], rel=1e-5)


def test_restore_best_false_keeps_the_last_step():
    run = training(**{"train.early_stop": early_stop(restore_best=False)})
    result = run.run()
    assert result.status == "early_stopped" and result.best_step is None
    assert "best" not in run.state  # no copy is kept
    history = result.history
    assert result.metrics["valid.loss"] == history["valid.loss"].iloc[-1]
    assert history["valid.loss"].min() < history["valid.loss"].iloc[-1]
    assert_same_params(result.params, shorter_run(result.stopped_at).params)


def test_a_run_that_never_runs_out_of_patience_returns_its_best():
    result = mlspec.run(mlspec.parse(BASE), {"train.steps": 200,
                                             "train.early_stop": early_stop(patience=10_000)})
    history = result.history
    assert result.status == "completed" and result.stopped_at is None
    assert result.best_step == history["step"].iloc[int(np.argmin(history["valid.loss"]))]
    assert result.best_step < 200 and len(history) == 201
    assert_same_params(result.params, shorter_run(result.best_step).params)


def test_the_last_evaluation_can_be_the_best():
    overrides = {"train.steps": 20, "train.optimizer.learning_rate": 0.001}
    result = mlspec.run(mlspec.parse(BASE), {**overrides, "train.early_stop": early_stop()})
    assert result.best_step == 20 and result.status == "completed"
    assert_same_params(result.params, shorter_run(20, **overrides).params)


@pytest.mark.parametrize("arguments, mode", [
    ({}, "min"), ({"metric": "valid.accuracy"}, "max"), ({"metric": "train.accuracy"}, "max"),
    ({"metric": "train.loss"}, "min"), ({"metric": "grad_norm", "mode": "max"}, "max"),
    ({"metric": "valid.accuracy", "mode": "min"}, "min")])
def test_the_mode_defaults_to_the_metric_s_direction_and_an_explicit_one_wins(arguments, mode):
    stop = mlspec.Call.of("early_stop", **{k: mlspec.Call(name=v) for k, v in arguments.items()})
    metrics = [mlspec.Call(name="accuracy"), mlspec.Call(name="grad_norm")]
    program = mlspec.resolve(mlspec.parse(BASE), {"train.early_stop": stop,
                                                  "train.metrics": metrics})
    assert program.train.early_stop.mode == mode


def test_a_metric_without_a_direction_needs_a_mode():
    text = BASE.replace("metrics = [accuracy]", "metrics = [accuracy, pred_mean]").replace(
        "steps = 3000", "steps = 3000\n    early_stop = early_stop(metric=valid.pred_mean)")
    text = text.replace("source = iris", "source = breast_cancer")
    with pytest.raises(mlspec.SpecError) as info:
        mlspec.resolve(mlspec.parse(text, "s.mlspec"))
    (error,) = info.value.diagnostics
    assert "'valid.pred_mean' has no better direction: give mode=min or mode=max" in \
        error.message
    assert error.span.line == text.splitlines().index(
        "    early_stop = early_stop(metric=valid.pred_mean)") + 1


def test_a_maximised_metric_restores_its_first_best_row():
    """`valid.accuracy` is maximised without a `mode`: higher is better for accuracy."""
    run = training(**{"train.early_stop": early_stop(metric="valid.accuracy")})
    result = run.run()
    accuracy = result.history["valid.accuracy"].to_numpy()
    assert result.best_step == result.history["step"].iloc[int(np.argmax(accuracy))]
    assert result.metrics["valid.accuracy"] == accuracy.max()
    assert_metrics_of_the_params(run, result)


@pytest.mark.slow  # tests/test_sweep.py checks the same for the members of a sweep
def test_each_seed_restores_its_own_best_and_is_ranked_by_it():
    overrides = {"train.seeds": 2, "train.early_stop": early_stop()}
    run = training(**overrides)
    result = run.run()
    members = result.members
    assert sorted(m.settings["train.seed"] for m in members) == [0, 1]
    assert len({m.best_step for m in members}) == 2  # the seeds differ in their best step
    for member in members:
        history = member.history
        assert member.best_step == history["step"].iloc[int(np.argmin(history["valid.loss"]))]
        assert_metrics_of_the_params(run, member)
        seed = member.settings["train.seed"]
        single = mlspec.run(mlspec.parse(BASE), {"train.seed": seed,
                                                 "train.early_stop": early_stop()})
        assert (member.best_step, member.stopped_at) == (single.best_step, single.stopped_at)
        # vmapped with injected hyperparameters: float sums in another order
        assert_same_params(member.params, single.params, rtol=1e-4)
        assert member.metrics == pytest.approx(single.metrics, rel=1e-4)
    # best first, by the restored valid accuracy (then nothing else differs)
    assert members[0].metrics["valid.accuracy"] >= members[1].metrics["valid.accuracy"]
    assert (result.best_step, result.metrics) == (members[0].best_step, members[0].metrics)


# ---------------------------------------------------------------- where a run stopped


def _interrupt_after_first_chunk():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 1

    return should_stop


KINDS = {
    "completed": (BASE, {"train.steps": 30}, "completed"),
    "early stopped, restoring": (BASE, {"train.early_stop": early_stop()}, "early_stopped"),
    "early stopped, last step": (BASE, {"train.early_stop": early_stop(restore_best=False)},
                                 "early_stopped"),
    "diverged": (DIVERGING, {}, "diverged"),
    "interrupted": (BASE, {"train.steps": 30}, "interrupted"),
}


@pytest.mark.parametrize("seeds", [1, 2])
@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS)
def test_every_report_of_where_a_run_stopped_agrees(kind, seeds, tmp_path):
    text, overrides, status = kind
    run = training(text, updates=6, **overrides, **{"train.seeds": seeds})
    progress = []
    should_stop = _interrupt_after_first_chunk() if status == "interrupted" else None
    result = run.run(on_progress=lambda t: progress.append(t.steps_done),
                     should_stop=should_stop)
    members = result.members or [result]
    assert [m.status for m in members] == [status] * seeds
    for member in members:
        last_row = int(member.history["step"].iloc[-1])
        if status in ("early_stopped", "diverged"):
            assert member.steps_done == member.stopped_at == last_row < run.schedule.total
        else:
            assert member.stopped_at is None
        if status == "diverged":
            assert not np.isfinite(member.history["train.loss"].iloc[-1])
            assert np.isfinite(member.history["train.loss"].iloc[:-1]).all()
    expected = {"completed": run.schedule.total, "interrupted": run.counts[:run.chunk].sum(),
                "early_stopped": max(m.steps_done for m in members),
                "diverged": max(m.steps_done for m in members)}[status]
    assert progress[-1] == run.steps_done == expected  # what the progress bar shows
    assert result.steps_done == members[0].steps_done
    if result.members:  # saved as `mlspec run` saves them: with the spec as run
        result.run_spec = spec_as_run(mlspec.parse(text), {**overrides, "train.seeds": seeds})
    save_run(result, tmp_path, blocks_done=run.blocks_done, chunk=run.chunk, plots=False)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert summary["steps"] == manifest["steps_done"] == result.steps_done
    assert summary["stopped_at"] == manifest["stopped_at"] == result.stopped_at
    assert summary["best_step"] == manifest["best_step"] == result.best_step
    assert summary["status"] == manifest["status"] == status


def test_a_diverged_run_stops_counting_at_its_first_bad_row():
    run = training(DIVERGING, updates=5)
    result = run.run()
    step = int(result.history["step"].iloc[-1])
    assert run.steps_done == result.steps_done == result.stopped_at == step < 500
    assert int(result.state["step"]) > step  # the compiled chunk ran on past it
    assert np.isfinite(result.history["train.loss"].iloc[-2])


def test_a_diverged_member_ranks_last_whatever_its_accuracy():
    """NaN outputs still predict a class, so a diverged member has an accuracy."""
    import pandas as pd

    from mlspec.runtime.results import Result, _rank_key

    def member(status, accuracy):
        return Result(program=None, history=pd.DataFrame(), state=None, trainer=None,
                      metrics={"valid.loss": float("inf") if status == "diverged" else 0.5,
                               "valid.accuracy": accuracy}, status=status)

    ranked = sorted([member("diverged", 0.9), member("completed", 0.5)], key=_rank_key)
    assert [r.status for r in ranked] == ["completed", "diverged"]
