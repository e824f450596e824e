"""The trainer: minibatches, epochs, evaluation rows, early stopping, test evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlspec

BASE = """
model net {
    dense(16) -> relu
    dense(classes)
}
data {
    source = iris
    valid  = 0.3
    standardize = true
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    steps     = 30
    metrics   = [accuracy]
}
"""


def run(text=BASE, **overrides):
    return mlspec.run(mlspec.parse(text), overrides=overrides)


def test_minibatch_runs_are_reproducible():
    a = run(**{"train.batch": 16, "train.seed": 3})
    b = run(**{"train.batch": 16, "train.seed": 3})
    pd.testing.assert_frame_equal(a.history, b.history)
    c = run(**{"train.batch": 16, "train.seed": 4})
    assert not a.history.equals(c.history)


def test_epochs_count_whole_batches():
    result = run(**{"train.steps": None, "train.epochs": 3, "train.batch": 20,
                    "train.eval_every": 5})
    per_epoch = 105 // 20  # 150 rows, 30% valid
    assert result.history["step"].iloc[-1] == 3 * per_epoch


def test_rows_fall_every_eval_every_steps_and_at_the_end():
    result = run(**{"train.steps": 10, "train.eval_every": 3})
    assert list(result.history["step"]) == [0, 3, 6, 9, 10]


def test_first_row_is_the_untrained_model():
    result = run(**{"train.steps": 5})
    first = result.history.iloc[0]
    again = run(**{"train.steps": 1}).history.iloc[0]
    assert first["train.loss"] == pytest.approx(again["train.loss"])
    assert first["train.loss"] > result.history["train.loss"].iloc[-1]


def test_early_stopping_stops_when_the_metric_stalls():
    result = run(**{"train.steps": 3000, "train.optimizer.learning_rate": 0.05,
                    "train.early_stop": mlspec.Call.of("early_stop", metric=mlspec.Call(
                        name="valid.loss"), patience=20)})
    history = result.history
    assert result.stopped_at is not None and result.stopped_at < 3000
    assert history["step"].iloc[-1] == result.stopped_at
    best = int(np.argmin(history["valid.loss"].to_numpy()))
    assert best == len(history) - 1 - 20
    # the run returns its best evaluation (v2; tests/test_early_stop.py checks its params)
    assert result.best_step == history["step"].iloc[best]
    assert result.metrics["valid.loss"] == history["valid.loss"].iloc[best]


def test_early_stopping_on_a_maximised_metric():
    result = run(**{"train.steps": 2000, "train.early_stop": mlspec.Call.of(
        "early_stop", metric=mlspec.Call(name="valid.accuracy"), patience=10, mode="max")})
    assert result.stopped_at is not None


def test_test_split_is_evaluated_at_the_end():
    text = BASE.replace("valid  = 0.3", "valid  = 0.2\n    test = 0.2")
    result = run(text)
    assert {"test.loss", "test.accuracy"} <= set(result.metrics)
    assert "test.loss" not in result.history.columns


def test_predict_gives_class_ids():
    result = run(**{"train.steps": 100})
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    pred = result.predict(x)
    assert pred.shape == (7,) and pred.dtype == np.int32 and set(pred) <= {0, 1, 2}


def test_clipping_limits_the_first_update():
    free = run(**{"train.steps": 1, "train.optimizer": mlspec.Call.of("sgd", 1.0)})
    clipped = run(**{"train.steps": 1, "train.optimizer": mlspec.Call.of("sgd", 1.0),
                     "train.clip_by_global_norm": 1e-3})
    moved = [abs(r.history["train.loss"].iloc[1] - r.history["train.loss"].iloc[0])
             for r in (free, clipped)]
    assert moved[1] < moved[0] / 10


def test_dropout_and_batch_norm_train():
    text = BASE.replace("dense(16) -> relu", "dense(16) -> batch_norm -> relu\n    dropout(0.3)")
    result = run(text, **{"train.steps": 60, "train.batch": 32})
    loss = result.history["train.loss"]
    assert np.isfinite(loss).all() and loss.iloc[-1] < loss.iloc[0]


def test_compiled_pieces_reproduce_run():
    compiled = mlspec.compile(mlspec.parse(BASE), {"train.steps": 12, "train.eval_every": 4})
    assert type(compiled.module).__name__ == "Stack"
    state, rows = compiled.train(compiled.init())
    assert int(state["step"]) == 12 and len(rows["train.loss"]) == 4
    result = run(**{"train.steps": 12, "train.eval_every": 4})
    np.testing.assert_allclose(rows["valid.loss"], result.history["valid.loss"], rtol=1e-6)
    x = np.zeros((3, 4), np.float32)
    out = compiled.module.apply({"params": state["params"]}, x)
    assert out.shape == (3, 3)
