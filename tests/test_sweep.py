"""Many runs in one program: `seeds = N` and the sweep grid."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import mlspec
from mlspec.dsl.errors import SpecError
from mlspec.sweep import expand, groups

BASE = """
param lr = 0.5
param hidden = 4
model net {
    dense(hidden) -> sigmoid
    dense(2)
}
data {
    train = hill(n=500, seed=0)
    valid = hill(n=200, seed=1)
}
train {
    loss       = softmax_cross_entropy + 1e-3 * l2
    optimizer  = sgd(learning_rate=lr, momentum=0.9)
    steps      = 60
    eval_every = 20
    metrics    = [accuracy]
}
"""


def assert_same_history(member, single):
    """Equal to float tolerance: vmapping may reorder float sums (by about 1e-7); with
    plain momentum SGD that stays small. (Adaptive optimizers divide by small gradient
    averages and can grow it to 1e-4 in a few dozen steps on this task.)"""
    assert list(member.history["step"]) == list(single.history["step"])
    for column in single.history.columns.drop("step"):
        tolerance = {"rtol": 1e-5} if column.endswith("loss") else {"atol": 0.006}
        np.testing.assert_allclose(member.history[column], single.history[column],
                                   **tolerance, err_msg=column)


def test_seeds_train_together_and_match_single_runs():
    spec = mlspec.parse(BASE.replace("    steps      = 60", "    steps      = 60\n"
                                     "    seeds      = 8\n    seed       = 3"))
    members = expand(spec)
    assert [m.settings for m in members] == [{"train.seed": s} for s in range(3, 11)]
    assert len(groups(members)) == 1, "seeds share one compiled program"
    result = mlspec.run(spec)
    assert sorted(result.history["seed"].unique()) == list(range(3, 11))
    assert len(result.history) == 8 * 4
    for member in result.members[:3]:
        single = mlspec.run(spec, {"train.seeds": 1,
                                   "train.seed": member.settings["train.seed"]})
        assert_same_history(member, single)


def test_a_3x3_sweep_is_one_program_and_member_equals_single_run():
    spec = mlspec.parse(BASE + "sweep {\n    lr = [0.1, 0.3, 1.0]\n"
                               "    train.seed = [0, 1, 2]\n}\n")
    members = expand(spec)
    assert len(members) == 9 and len(groups(members)) == 1
    result = mlspec.run(spec)
    assert {"lr", "seed"} <= set(result.history.columns)
    accuracies = [m.metrics["valid.accuracy"] for m in result.members]
    assert accuracies == sorted(accuracies, reverse=True), "best first"
    base = spec.model_copy(update={"sweep": None})
    for member in (result.members[0], result.members[-1]):
        single = mlspec.run(base, {"lr": member.settings["lr"],
                                   "train.seed": member.settings["train.seed"]})
        assert_same_history(member, single)


def test_loss_weights_sweep_in_one_program():
    spec = mlspec.parse(BASE.replace("1e-3 * l2", "w * l2").replace(
        "param lr = 0.5", "param lr = 0.5\nparam w = 0.0") + "sweep {\n    w = [0.0, 0.1]\n}\n")
    members = expand(spec)
    assert len(groups(members)) == 1
    result = mlspec.run(spec)
    single = mlspec.run(spec.model_copy(update={"sweep": None}), {"w": 0.1})
    member = next(m for m in result.members if m.settings["w"] == 0.1)
    assert_same_history(member, single)


def test_dropout_rates_sweep_in_one_program():
    text = BASE.replace("dense(hidden) -> sigmoid", "dense(hidden) -> sigmoid\n"
                        "    repeat(2) { dense(hidden) -> dropout(rate) }").replace(
        "param lr = 0.5", "param lr = 0.1\nparam rate = 0.1")  # 0.5 diverges with dropout
    spec = mlspec.parse(text + "sweep {\n    rate = [0.0, 0.2, 0.5]\n}\n")
    members = expand(spec)
    assert len(groups(members)) == 1, "dropout rates share one compiled program"
    result = mlspec.run(spec)
    base = spec.model_copy(update={"sweep": None})
    losses = []
    for member in result.members:
        single = mlspec.run(base, {"rate": member.settings["rate"]})
        assert_same_history(member, single)
        losses.append(single.history["train.loss"].iloc[-1])
    assert len(set(losses)) == 3, "each member trained with its own rate"


def test_widths_compile_one_program_each():
    spec = mlspec.parse(BASE + "sweep {\n    hidden = [2, 4, 8]\n    lr = [0.1, 0.3]\n}\n")
    members = expand(spec)
    assert len(members) == 6
    assert [len(g) for g in groups(members)] == [2, 2, 2]
    result = mlspec.run(spec)
    assert sorted(result.history["hidden"].unique()) == [2, 4, 8]


def test_unknown_sweep_key_is_reported_at_its_place():
    spec = mlspec.parse(BASE + "sweep {\n    lrr = [0.1]\n}\n", "s.mlspec")
    with pytest.raises(SpecError) as info:
        mlspec.check(spec)
    diagnostic = info.value.diagnostics[0]
    assert "did you mean 'lr'?" in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (20, 5)


def test_each_member_stops_early_on_its_own():
    spec = mlspec.parse(BASE.replace("    steps      = 60", "    steps      = 2000\n"
                                     "    early_stop = early_stop(metric=valid.loss, "
                                     "patience=5)").replace("eval_every = 20", "eval_every = 10")
                        + "sweep {\n    lr = [0.5, 5.0]\n}\n")
    result = mlspec.run(spec)
    base = spec.model_copy(update={"sweep": None})
    for member in result.members:
        single = mlspec.run(base, {"lr": member.settings["lr"]})
        assert member.status == single.status == "early_stopped"
        assert member.stopped_at == single.stopped_at == member.steps_done
        assert member.history["step"].iloc[-1] == member.stopped_at
        # each member returns its own best evaluation (restore_best, the default)
        history = member.history
        assert member.best_step == single.best_step \
            == history["step"].iloc[int(np.argmin(history["valid.loss"]))]
        assert member.metrics == pytest.approx(single.metrics, rel=1e-5)
        for a, b in zip(jax.tree.leaves(member.params), jax.tree.leaves(single.params),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert result.metrics == result.members[0].metrics
    assert result.members[0].metrics["valid.accuracy"] >= \
        result.members[1].metrics["valid.accuracy"]  # ranked by the restored metrics
