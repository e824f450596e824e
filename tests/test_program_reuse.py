"""A second `mlspec.run` of the same spec shapes in one process calls the program compiled
for the first (no trace, no compile), and its results are bit for bit those of a run that
compiles afresh; what is baked into a program (the learning rate) is never shared."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import mlspec
from mlspec.compiler.trainer import clear_programs

SPEC = """
model hill_net {
    dense(4) -> sigmoid
    dense(2)
}
data {
    train = hill(n=300, seed=0)
    valid = hill(n=100, seed=1)
    test  = hill(n=100, seed=2)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = rmsprop(learning_rate=0.02)
    steps      = 60
    eval_every = 10
    seed       = 3
    metrics    = [accuracy]
}
"""

_counting: list[list[str]] = []


def _listener(event: str, duration: float, **_kwargs) -> None:
    for events in _counting:
        events.append(event)


jax.monitoring.register_event_duration_secs_listener(_listener)


def run_counted(spec, overrides=None, **kwargs):
    """The run's result and the jax compile events (traces, lowerings, XLA compiles) it
    caused."""
    events: list[str] = []
    _counting.append(events)
    try:
        result = mlspec.run(spec, overrides, **kwargs)
    finally:
        _counting.remove(events)
    return result, [e for e in events if e.startswith("/jax/core/compile/")]


def fresh(spec, overrides=None, **kwargs):
    """A run that traces and compiles every program anew."""
    clear_programs()
    return mlspec.run(spec, overrides, **kwargs)


def assert_identical(a, b):
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
    assert a.metrics == b.metrics
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture
def spec():
    return mlspec.parse(SPEC)


@pytest.mark.parametrize("updates", [1, 3])
def test_a_second_run_compiles_nothing_and_gives_the_same_numbers(spec, updates):
    first = fresh(spec, updates=updates)
    second, events = run_counted(spec, updates=updates)
    assert events == []
    assert_identical(first, second)
    assert "test.accuracy" in second.metrics  # the test split's program is kept too


def test_another_seed_reuses_the_program_with_its_own_numbers(spec):
    fresh(spec)
    other, events = run_counted(spec, {"train.seed": 11})
    assert events == [], "the seed is an argument of the programs, not a constant"
    assert_identical(other, fresh(spec, {"train.seed": 11}))
    assert not other.history.equals(fresh(spec).history)


def test_a_baked_in_learning_rate_gets_its_own_program(spec):
    fresh(spec)
    faster, events = run_counted(spec, {"train.optimizer": mlspec.Call.of(
        "rmsprop", learning_rate=0.2)})
    assert "/jax/core/compile/backend_compile_duration" in events
    assert_identical(faster, fresh(spec, {"train.optimizer": mlspec.Call.of(
        "rmsprop", learning_rate=0.2)}))


def test_seeds_reuse_their_vmapped_program(spec):
    seeds = {"train.seeds": 3}
    first = fresh(spec, seeds)
    second, events = run_counted(spec, seeds)
    assert events == []
    assert_identical(first, second)
    for a, b in zip(first.members, second.members, strict=True):
        assert_identical(a, b)


TRACED_SPEC = SPEC.replace("dense(4) -> sigmoid", "dense(4) -> leaky_relu(slope)\n"
                           "    dropout(rate)").replace(
    "model hill_net", "param rate = 0.1\nparam slope = 0.1\nparam w = 0.001\n"
    "model hill_net").replace("softmax_cross_entropy", "softmax_cross_entropy + w * l2")
HUBER_SPEC = """
param delta = 1.0
model line { dense(4) -> tanh
    dense(1) }
data { train = linear(n=200, seed=0)
    valid = linear(n=50, seed=1) }
train { loss = huber(delta)
    optimizer = sgd(learning_rate=0.05)
    steps = 30
    eval_every = 10 }
"""


@pytest.mark.parametrize(("text", "overrides"), [
    (TRACED_SPEC, {"rate": 0.3}), (TRACED_SPEC, {"w": 0.01}),
    (TRACED_SPEC, {"slope": 0.3}), (HUBER_SPEC, {"delta": 0.2}),
], ids=["dropout rate", "loss weight", "leaky_relu slope", "huber delta"])
def test_another_traced_value_reuses_the_program_with_its_own_numbers(text, overrides):
    """A field marked Traced is fed to the programs (from the state), never baked in."""
    spec = mlspec.parse(text)
    first = fresh(spec)
    other, events = run_counted(spec, overrides)
    assert events == []
    assert_identical(other, fresh(spec, overrides))
    assert not other.history.equals(first.history)


def test_a_sweep_of_other_traced_values_reuses_its_vmapped_program():
    def swept(slopes, rates):
        return mlspec.parse(TRACED_SPEC + f"sweep {{\n    slope = {slopes}\n"
                                          f"    rate = {rates}\n}}\n")

    fresh(swept([0.1, 0.2], [0.1, 0.3]))
    other, events = run_counted(swept([0.05, 0.4], [0.2, 0.4]))
    assert events == []
    expected = fresh(swept([0.05, 0.4], [0.2, 0.4]))
    assert_identical(other, expected)
    for a, b in zip(other.members, expected.members, strict=True):
        assert_identical(a, b)
