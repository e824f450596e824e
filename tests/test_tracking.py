"""TensorBoard event files in every run folder and `mlspec run --mlflow URI`
(LANGUAGE.md v2 "The run's life"), read back with TensorBoard's own event reader and
MLflow's client."""

from __future__ import annotations

import sys

import numpy as np
import optax
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from mlspec.runtime.runner import Run, plan
from mlspec.runtime.runs import save_run
from mlspec.runtime.tracking import TENSORBOARD, log_mlflow, mlflow_client
from mlspec.syntax.parser import parse

SPEC = """
model hill_net {
    dense(4) -> relu
    dense(2)
}
data {
    train = hill(n=100, seed=0)
    valid = hill(n=50, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=cosine_decay_schedule(init_value=0.1, decay_steps=30))
    steps      = 30
    eval_every = 5
    metrics    = [accuracy]
    SEEDS
}
"""


def _saved(tmp_path_factory, seeds: str):
    spec = parse(SPEC.replace("SEEDS", seeds), "hill.mlspec")
    result = Run(plan(spec), updates=1).train()
    return result, save_run(result, tmp_path_factory.mktemp("run") / "run", plots=False)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return _saved(tmp_path_factory, "")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return _saved(tmp_path_factory, "seeds = 2")


def _scalars(folder) -> dict[str, list]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def _check_history(scalars: dict, history) -> None:
    for column in history.columns.drop("step"):
        got = scalars[column.replace(".", "/")]
        assert [e.step for e in got] == history["step"].tolist()
        np.testing.assert_allclose([e.value for e in got], history[column], rtol=1e-6)
    schedule = optax.cosine_decay_schedule(init_value=0.1, decay_steps=30)
    rates = scalars["learning_rate"]
    np.testing.assert_allclose([e.value for e in rates],
                               [float(schedule(e.step)) for e in rates], rtol=1e-6)


def test_every_history_column_and_the_learning_rate_are_tensorboard_scalars(single):
    result, out = single
    scalars = _scalars(out / TENSORBOARD)
    _check_history(scalars, result.history)
    assert {"train/loss", "valid/loss", "train/accuracy", "valid/accuracy",
            "learning_rate"} <= set(scalars)


def test_an_evaluation_is_one_event_and_the_hyperparameters_are_written(single):
    result, out = single
    events = [e for path in sorted((out / TENSORBOARD).glob("events.*"))
              for e in EventFileLoader(str(path)).Load() if e.HasField("summary")]
    rows = [e for e in events if e.summary.value[0].tag == "train/loss"]
    assert len(rows) == len(result.history)
    assert all(len(e.summary.value) == 5 for e in rows)  # 4 history columns and the rate
    plugins = {v.metadata.plugin_data.plugin_name for e in events for v in e.summary.value}
    assert {"hparams", "text"} <= plugins
    spec = next(v for e in events for v in e.summary.value if v.tag.startswith("spec"))
    assert b"cosine_decay_schedule" in spec.tensor.string_val[0]


def test_each_member_has_its_own_tensorboard_folder(seeds):
    result, out = seeds
    folders = sorted(p.name for p in (out / TENSORBOARD).iterdir())
    assert folders == ["member-0", "member-1"]
    for i, member in enumerate(result.members):
        _check_history(_scalars(out / TENSORBOARD / f"member-{i}"), member.history)


def test_mlflow_gets_params_metrics_per_step_and_the_run_folder(seeds, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it
    result, out = seeds
    client = mlflow_client(f"file:{tmp_path / 'mlruns'}")
    parent_id = log_mlflow(client, result, out)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent_id)}
    assert {"history.csv", "metrics.json", "spec.mlspec", "manifest.json",
            TENSORBOARD} <= artifacts and ".lock" not in artifacts
    experiment = parent.info.experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert len(children) == 2
    for child in children:
        member = result.members[int(child.info.run_name.removeprefix("member-"))]
        assert child.data.params["train.steps"] == "30"
        assert child.data.params["train.seed"] == str(member.program.train.seed)
        history = client.get_metric_history(child.info.run_id, "valid.accuracy")
        assert [m.step for m in history] == member.history["step"].tolist()
        np.testing.assert_allclose([m.value for m in history],
                                   member.history["valid.accuracy"], rtol=1e-6)
        assert "learning_rate" in child.data.metrics


def test_mlflow_missing_is_a_clear_error_before_training(tmp_path, monkeypatch, capsys):
    from mlspec.cli import main

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    spec = tmp_path / "hill.mlspec"
    spec.write_text(SPEC.replace("SEEDS", ""))
    code = main(["run", str(spec), "--out", str(tmp_path / "run"), "--mlflow", "file:x"])
    assert code == 2
    assert "--mlflow needs the optional extra 'mlflow'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_event_records_checksums_are_tensorboards():
    from tensorboardX.record_writer import masked_crc32c

    from mlspec.runtime.tracking import _masked_crc32c

    rng = np.random.default_rng(0)
    data = [rng.bytes(int(n)) for n in rng.integers(0, 700, 200)] + [b"", b"123456789"]
    assert _masked_crc32c(data).tolist() == [masked_crc32c(d) for d in data]
