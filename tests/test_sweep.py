"""Many runs in one program: `seeds = N` and the sweep grid."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import mlspec
from mlspec.semantics.structure import groups
from mlspec.semantics.sweep import expand
from mlspec.syntax.errors import SpecError

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


# --------------------------------------------------------------- checking a sweep
# `check` validates every member without resolving each (semantics.sweep_check.validate): each
# axis value on its own, and together only the values that can meet. These tests hold it
# to resolving every member one by one, the slow way that cannot miss.

TRAIN = """
data {
    train = hill(n=100)
    valid = hill(n=50, seed=1)
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=lr)
    steps     = 10
}
"""


def every_member_resolves(spec) -> bool:
    """The slow way: each member of the grid resolved on its own."""
    import itertools

    from mlspec.semantics.resolve import resolve

    base = spec.model_copy(update={"sweep": None})
    axes = [(s.path, s.value.items) for s in spec.sweep.settings]
    for combo in itertools.product(*(values for _, values in axes)):
        try:
            resolve(base, {"train.seeds": 1, **dict(zip([p for p, _ in axes], combo))})
        except SpecError:
            return False
    return True


# name -> (params, model body, sweep, words of the error or None when every member is valid)
MEETINGS = {
    "widths that meet in one layer": (
        "param a = 4\nparam b = 1", "dense(a - b) -> relu\n    dense(2)",
        "a = [2, 4]\n    b = [1, 2]", "with a = 2, b = 2: argument 'features'"),
    "the same widths, never zero": (
        "param a = 4\nparam b = 1", "dense(a - b) -> relu\n    dense(2)",
        "a = [3, 4]\n    b = [1, 2]", None),
    "dropout rates that meet through a block": (
        "param s = 0.5\nparam r = 1.0\nblock drop(k) {\n    dropout(k * s)\n}",
        "dense(4) -> drop(r)\n    dense(2)", "s = [0.5, 0.9]\n    r = [1.0, 1.5]",
        "with s = 0.9, r = 1.5: argument 'rate'"),
    "rates that meet through a param": (
        "param s = 0.5\nparam q = 1.0\nparam rate = s * q", "dense(4) -> dropout(rate)\n"
        "    dense(2)", "s = [0.5, 0.9]\n    q = [1.0, 1.5]", "with s = 0.9, q = 1.5"),
    "a learning rate written with another swept param": (
        "param x = 0.1", "dense(2)",
        "x = [0.1, -0.001]\n    train.optimizer.learning_rate = [0.01, x * 10]",
        "argument 'learning_rate'"),
    "a rate that reads the data's classes": (
        "param s = 0.5", "dense(4) -> dropout(s * classes / 3)\n    dense(classes)",
        "s = [0.5, 1.2]\n    data.source = [hill(n=100), iris]",
        "with s = 1.2, data.source = iris: argument 'rate'"),
    "widths too big only together": (
        "param a = 10\nparam b = 10", "dense(a) -> relu\n    dense(b) -> relu\n    dense(2)",
        "a = [10, 3000]\n    b = [10, 3000]", "with a = 3000, b = 3000: this run needs"),
    "independent axes, all valid": (
        "param w = 4\nparam p = 0.1", "dense(w) -> dropout(p)\n    dense(2)",
        "w = [2, 4, 8]\n    p = [0.1, 0.5]\n    lr = [0.1, 0.01]\n    train.seed = [0, 1, 2]",
        None),
}


@pytest.mark.parametrize("case", MEETINGS, ids=str)
def test_check_finds_what_any_member_would_find(case, monkeypatch):
    params, body, sweep, words = MEETINGS[case]
    monkeypatch.setenv("MLSPEC_MEMORY_LIMIT", "50000000")  # 3000 x 3000 floats: 36 MB
    train = TRAIN if "data." not in sweep else TRAIN.replace(
        "train = hill(n=100)\n    valid = hill(n=50, seed=1)", "source = hill(n=100)\n"
        "    valid = 0.2")
    text = (f"param lr = 0.1\n{params}\nmodel m {{\n    {body}\n}}\n{train}"
            f"sweep {{\n    {sweep}\n}}\n")
    spec = mlspec.parse(text, "meet.mlspec")
    valid = every_member_resolves(spec)
    assert valid == (words is None)
    if valid:
        mlspec.check(spec)
        assert len(expand(spec)) == math.prod(len(s.value.items) for s in spec.sweep.settings)
        return
    with pytest.raises(SpecError) as info:
        mlspec.check(spec)
    assert words in str(info.value)
    with pytest.raises(SpecError):  # a run finds the same before training
        expand(spec)


def test_a_wrong_value_is_reported_at_its_place_in_the_sweep():
    text = (f"param lr = 0.1\nparam hidden = 4\nmodel m {{\n    dense(hidden) -> relu\n"
            f"    dense(2)\n}}\n{TRAIN}sweep {{\n    hidden = [2, -1, 8]\n"
            "    lr = [0.1, -0.5]\n    train.optimizer.b1 = [0.9, \"x\"]\n}\n")
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text, "s.mlspec"))
    found = [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics]
    # one error per wrong value (not one per member), each at the value, saying where
    # the value went wrong
    assert [(line, column) for line, column, _ in found] == [(18, 18), (19, 16), (20, 32)]
    assert found[0][2].startswith("hidden = -1: argument 'features' of layer 'dense'")
    assert found[0][2].endswith("(at line 4, column 11)")
    assert found[1][2].startswith("lr = -0.5: argument 'learning_rate'")
    assert found[2][2].startswith('train.optimizer.b1 = "x": argument \'b1\'')


def test_an_integer_and_a_float_of_one_value_are_checked_apart():
    """IR equality has 1 == 1.0; a width must be an integer."""
    text = (f"param lr = 0.1\nparam w = 2\nmodel m {{\n    dense(w)\n}}\n{TRAIN}"
            "sweep {\n    w = [2, 2.0]\n}\n")
    with pytest.raises(SpecError, match=r"w = 2\.0: argument 'features'"):
        mlspec.check(mlspec.parse(text))


def test_check_resolves_each_value_not_each_member(monkeypatch):
    """10,000 members of 4 independent axes: a few dozen resolutions, not 10,000."""
    import mlspec.semantics.grid

    values = "[" + ", ".join(str(v) for v in range(1, 11)) + "]"
    text = (f"param lr = 0.1\nparam w = 2\nparam p = 0.1\nmodel m {{\n    dense(w) -> relu\n"
            f"    dropout(p)\n    dense(2)\n}}\n{TRAIN}sweep {{\n    w = {values}\n"
            f"    p = [{', '.join(str(v / 20) for v in range(10))}]\n"
            f"    lr = [{', '.join(str(v / 100) for v in range(1, 11))}]\n"
            f"    train.seed = {values}\n}}\n")
    calls = []
    original = mlspec.semantics.grid.resolve
    monkeypatch.setattr(mlspec.semantics.grid, "resolve",
                        lambda *a: calls.append(1) or original(*a))
    mlspec.check(mlspec.parse(text))
    assert 0 < len(calls) < 60


def ten(first, step):
    return "[" + ", ".join(f"{first + step * i:g}" for i in range(10)) + "]"


OPTIMIZER_SWEEP = f"""param h = 4
param lr = 0.01
model m {{
    dense(h) -> relu
    dense(classes)
}}
data {{
    source = iris
}}
train {{
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=lr)
    steps     = 10
}}
sweep {{
    lr = {ten(0.001, 0.001)}
    train.seed = {ten(0, 1)}
    train.optimizer.b1 = {ten(0.8, 0.01)}
    train.optimizer.b2 = {ten(0.99, 0.001)}
    h = {ten(2, 2)}
}}
"""


def test_optimizer_arguments_are_checked_each_on_its_own(monkeypatch):
    """100,000 members, of which only `h` changes shapes: each value of each axis is
    resolved once (lr, b1 and b2 set arguments of one optimizer call, which optax's
    checks read one by one), and the memory limit is worked out once, not per member."""
    import os

    import mlspec.semantics.grid

    calls, sysconf = [], []
    original = mlspec.semantics.grid.resolve
    monkeypatch.setattr(mlspec.semantics.grid, "resolve",
                        lambda *a: calls.append(1) or original(*a))
    real_sysconf = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: sysconf.append(name) or real_sysconf(name))
    mlspec.check(mlspec.parse(OPTIMIZER_SWEEP))
    assert 0 < len(calls) <= 1 + 1 + 5 * 10
    assert len(sysconf) <= 2


@pytest.mark.parametrize(("sweep", "message"), [
    ("train.optimizer.b1 = [0.9, true]", r"train.optimizer.b1 = true: argument 'b1'"),
    ("lr = [0.1, -1]\n    train.optimizer.b2 = [0.9, 0.99]",
     r"lr = -1: argument 'learning_rate' of optimizer 'adam' should be greater than 0"),
    ("lr = [0.1]\n    train.optimizer = [sgd(learning_rate=0.1), adam(learning_rate=lr, "
     "b1=true)]", r"argument 'b1'"),
])
def test_a_wrong_optimizer_argument_in_a_sweep_is_found(sweep, message):
    text = f"param lr = 0.1\nmodel m {{\n    dense(2)\n}}\n{TRAIN}sweep {{\n    {sweep}\n}}\n"
    with pytest.raises(SpecError, match=message):
        mlspec.check(mlspec.parse(text))


def test_the_seeds_of_a_large_seeds_count_are_checked_by_their_ends(monkeypatch):
    import mlspec.semantics.grid

    text = (f"param lr = 0.1\nmodel m {{\n    dense(2)\n}}\n{TRAIN}").replace(
        "steps     = 10", "steps     = 10\n    seeds     = 5000")
    calls = []
    original = mlspec.semantics.grid.resolve
    monkeypatch.setattr(mlspec.semantics.grid, "resolve",
                        lambda *a: calls.append(1) or original(*a))
    mlspec.check(mlspec.parse(text))
    assert len(calls) < 10


def test_one_member_is_found_without_resolving_the_others():
    from mlspec.semantics.sweep import find_member

    spec = mlspec.parse(BASE + "sweep {\n    hidden = [2, 4]\n    lr = [0.1, 0.3]\n}\n")
    for member in expand(spec):
        found = find_member(spec, member.settings)
        assert found.settings == member.settings and found.program == member.program
    assert find_member(spec, {"hidden": 3, "lr": 0.1}) is None
    assert find_member(spec, {"hidden": 2}) is None


POOLS = {  # values of each param, valid and not, alone or together
    "a": [1, 2, 3, 0], "b": [0, 1, 2, 3], "c": [0.2, 0.6, 1.2, -0.1], "d": [0.5, 1.0, 2.0],
    "lr": [0.1, -0.1, 1.0],
}
TEMPLATE = ("param lr = 0.1\nparam a = 3\nparam b = 1\nparam c = 0.2\nparam d = 1.0\n"
            "model m {\n    dense(a - b) -> relu\n    dropout(c * d)\n    dense(2)\n}\n"
            + TRAIN.replace("learning_rate=lr", "learning_rate=lr * d"))


@settings(max_examples=25, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    name: st.lists(st.sampled_from(pool), min_size=1, max_size=3) for name, pool in POOLS.items()
}).filter(bool))
@example({"c": [0.6], "d": [2.0]})  # a rate above 1 only together
@example({"a": [2], "b": [2]})  # a width of 0 only together
@example({"c": [1.2], "d": [0.5]})  # a rate above 1 at the spec's d, below 1 with the swept
def test_check_agrees_with_resolving_every_member(axes):
    sweep = "".join(f"    {name} = [{', '.join(map(str, values))}]\n"
                    for name, values in axes.items())
    spec = mlspec.parse(f"{TEMPLATE}sweep {{\n{sweep}}}\n")
    try:
        mlspec.check(spec)
        passed = True
    except SpecError:
        passed = False
    assert passed == every_member_resolves(spec)



def test_a_key_swept_twice_is_an_error_at_the_second():
    spec = mlspec.parse(BASE + "sweep {\n    lr = [0.1, 0.2]\n    lr = [0.3]\n}\n", "s.mlspec")
    with pytest.raises(SpecError) as caught:
        mlspec.check(spec)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message == "'lr' is swept twice; give all its values in one list"
    assert (diagnostic.span.line, diagnostic.span.column) == (21, 5)  # the second `lr`


def test_a_block_with_two_parameters_of_one_name_is_an_error():
    spec = mlspec.parse("block b(w, w) { dense(w) }\nmodel m {\n    input [2]\n    b(1, 2)\n}\n")
    with pytest.raises(SpecError, match="block 'b' has two parameters named 'w'"):
        mlspec.check(spec)


def test_swept_settings_have_history_columns_of_their_own():
    from mlspec.semantics.sweep import setting_column

    assert [setting_column(k) for k in ("lr", "train.seed", "step", "seed", "train.loss",
                                        "train.optimizer")] == \
        ["lr", "seed", "sweep.step", "sweep.seed", "sweep.train.loss", "train.optimizer"]
