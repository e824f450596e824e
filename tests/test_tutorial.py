"""The tutorial's experiments, as the specs in specs/, give the tutorial's results."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import mlspec


def run(name: str, **overrides):
    return mlspec.run(ROOT / "specs" / f"{name}.mlspec", overrides=overrides)


def test_linear_recovers_intercept_and_slope():
    result = run("linear")
    assert result.metrics["train.mse"] == pytest.approx(0.25, abs=0.02)
    dense = result.params["Dense_0"]
    assert float(dense["kernel"][0, 0]) == pytest.approx(2.0, abs=0.05)
    assert float(dense["bias"][0]) == pytest.approx(3.0, abs=0.05)
    assert result.metrics["valid.r2"] > 0.9


def test_logit_fits_the_hyperplane():
    result = run("logit", **{"train.eval_every": 50})
    assert 0.94 <= result.metrics["train.accuracy"] <= 0.975
    assert 0.93 <= result.metrics["valid.accuracy"] <= 0.975
    assert result.metrics["weight_mean"] == pytest.approx(1.0, abs=0.25)
    # the loss falls along the way
    loss = result.history["train.loss"].to_numpy()
    assert loss[-1] < loss[0] / 4


def test_radial_defeats_a_hyperplane():
    result = run("radial")
    assert result.metrics["valid.accuracy"] < 0.6


def test_hill_gradient_descent_learns_the_hill():
    result = run("hill_gd", **{"train.eval_every": 20})
    assert result.metrics["valid.accuracy"] > 0.9


@pytest.mark.parametrize("name", ["hill_rmsprop", "hill"])
def test_hill_with_rmsprop_reaches_the_tutorial_accuracy(name):
    result = run(name, **{"train.eval_every": 20})
    assert result.metrics["valid.accuracy"] >= 0.97
    history = result.history
    assert list(history["step"])[-1] == 4000 and len(history) == 4000 // 20 + 1
    assert history["train.loss"].iloc[-1] < history["train.loss"].iloc[0]
    assert np.isfinite(history.drop(columns="step").to_numpy()).all()
