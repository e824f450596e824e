"""The run experience: the run folder, plots, predict and evaluate, and faults."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

import mlspec
from mlspec.runs import RunFolderError, load_run

LONG = """
model hill_net {
    dense(8) -> sigmoid
    dense(2)
}
data {
    train = hill(n=4000, seed=0)
    valid = hill(n=500, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=0.01)
    steps      = 8000
    batch      = 64
    eval_every = 100
    metrics    = [accuracy]
}
"""


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "mlspec", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def hill_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "hill"
    result = cli("run", "specs/hill.mlspec", "--out", out, "--set", "train.steps=1500")
    assert result.returncode == 0, result.stderr
    return out


def test_run_folder_holds_everything(hill_run):
    names = {p.name for p in hill_run.iterdir()}
    assert {"history.csv", "metrics.json", "spec.mlspec", "manifest.json", "state.msgpack",
            "history.png", "decision_regions.png", "hidden_units.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    manifest = json.loads((hill_run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["steps_done"] == 1500
    assert set(manifest["versions"]) >= {"jax", "flax", "optax", "mlspec"}
    assert len(manifest["spec_sha256"]) == 64
    assert "steps     = 1500" in (hill_run / "spec.mlspec").read_text()


def test_plots_are_real_pictures(hill_run):
    from PIL import Image

    for name in ("history.png", "decision_regions.png", "hidden_units.png"):
        with Image.open(hill_run / name) as image:
            width, height = image.size
            assert width > 300 and height > 200
            pixels = np.asarray(image.convert("L"))
            assert len(np.unique(pixels)) > 10  # not a blank canvas


def test_plot_command_redraws(hill_run):
    (hill_run / "history.png").unlink()
    assert cli("plot", hill_run).returncode == 0
    assert (hill_run / "history.png").stat().st_size > 1000


def test_evaluate_reproduces_the_final_valid_metrics(hill_run):
    result = cli("evaluate", hill_run, "valid", "--json")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout)
    final = json.loads((hill_run / "metrics.json").read_text())["valid"]
    assert evaluated == pytest.approx(final, rel=1e-5)


def test_predict_on_a_csv_matches_python(tmp_path):
    out = tmp_path / "iris"
    assert cli("run", "specs/iris_csv.mlspec", "--out", out, "--quiet").returncode == 0
    predicted = cli("predict", out, "specs/data/iris.csv", "--out", tmp_path / "p.csv")
    assert predicted.returncode == 0, predicted.stderr
    from_cli = pd.read_csv(tmp_path / "p.csv")["prediction"]
    result = mlspec.run(ROOT / "specs" / "iris_csv.mlspec")
    frame = pd.read_csv(ROOT / "specs" / "data" / "iris.csv")
    ids = result.predict(frame.drop(columns="species").to_numpy())
    names = result.program.data.info.class_names
    assert list(from_cli) == [names[i] for i in ids]
    assert set(from_cli) <= {"setosa", "versicolor", "virginica"}
    loaded = load_run(out)
    np.testing.assert_array_equal(loaded.predict(frame.drop(columns="species").to_numpy()),
                                  ids)


def test_sigint_writes_an_interrupted_folder_and_resume_matches(tmp_path):
    spec = tmp_path / "long.mlspec"
    spec.write_text(LONG)
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "mlspec", "run", spec, "--out",
                                interrupted], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=ROOT)
    deadline = time.time() + 120
    for line in process.stderr:  # wait for the first chunk to be reported
        if "step " in line or time.time() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    manifest = json.loads((interrupted / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and 0 < manifest["steps_done"] < 8000
    history = pd.read_csv(interrupted / "history.csv")
    assert len(history) > 0 and np.isfinite(history.drop(columns="step").to_numpy()).all()
    json.loads((interrupted / "metrics.json").read_text())
    assert load_run(interrupted).params is not None
    resumed = cli("run", "--resume", interrupted, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / "whole"
    assert cli("run", spec, "--out", whole, "--quiet").returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(interrupted / "history.csv"),
                                  pd.read_csv(whole / "history.csv"))
    assert json.loads((interrupted / "manifest.json").read_text())["status"] == "completed"


def test_a_diverging_loss_stops_with_a_message(tmp_path):
    spec = tmp_path / "nan.mlspec"
    spec.write_text("model line {\n    dense(1)\n}\ndata {\n    train = linear(n=200)\n}\n"
                    "train {\n    loss = mse\n    optimizer = sgd(learning_rate=5.0)\n"
                    "    steps = 500\n}\n")
    out = tmp_path / "nan"
    result = cli("run", spec, "--out", out, "--quiet")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "lower learning rate" in result.stderr
    step = int(result.stderr.split(" at step ")[1].split(";")[0])
    history = pd.read_csv(out / "history.csv")
    assert history["step"].iloc[-1] == step
    assert not np.isfinite(history["train.loss"].iloc[-1])
    assert np.isfinite(history["train.loss"].iloc[:-1]).all()
    with pytest.raises(mlspec.DivergedError) as info:
        mlspec.run(spec)
    assert info.value.result.stopped_at == step


def test_a_pickle_in_place_of_the_state_is_refused(hill_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(hill_run, copy)
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (copy / "state.msgpack").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(RunFolderError, match="not an mlspec state file"):
        load_run(copy)
    result = cli("evaluate", copy)
    assert result.returncode == 2 and "not an mlspec state file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_unwritable_output_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("run", "specs/hill.mlspec", "--out", blocker / "run")
    assert result.returncode == 1 and "cannot write to the output folder" in result.stderr


def test_a_state_saved_without_spec_decided_entries_still_loads(hill_run, tmp_path):
    """Folders written before the state carried dropout keep probabilities (which the spec
    alone decides) load with those taken from the spec."""
    import shutil

    from flax import serialization

    copy = tmp_path / "older"
    shutil.copytree(hill_run, copy)
    state = serialization.msgpack_restore((copy / "state.msgpack").read_bytes())
    del state["train"]["dropout_keep"]
    (copy / "state.msgpack").write_bytes(serialization.msgpack_serialize(state))
    result = cli("evaluate", copy, "valid", "--json")
    assert result.returncode == 0, result.stderr
    final = json.loads((hill_run / "metrics.json").read_text())["valid"]
    assert json.loads(result.stdout) == pytest.approx(final, rel=1e-5)


def test_sigint_during_a_sweep_writes_the_members_so_far(tmp_path):
    spec = tmp_path / "sweep.mlspec"
    spec.write_text(LONG.replace("dense(8)", "dense(width)").replace(
        "model hill_net", "param width = 8\nmodel hill_net")
        + "sweep {\n    width = [4, 8]\n    train.seed = [0, 1]\n}\n")
    out = tmp_path / "sweep"
    process = subprocess.Popen([sys.executable, "-m", "mlspec", "run", spec, "--out", out],
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=ROOT)
    deadline = time.time() + 120
    for line in process.stderr:  # wait for the first program's first chunk
        if "step " in line or time.time() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "cannot be resumed" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["members"] == 2
    history = pd.read_csv(out / "history.csv")
    assert set(history["width"]) == {4} and set(history["seed"]) == {0, 1}
    assert 0 < history["step"].max() < 8000
    resumed = cli("run", "--resume", out)
    assert resumed.returncode == 2 and "cannot be resumed" in resumed.stderr
    assert "Traceback" not in resumed.stderr


SMALL_SWEEP = LONG.replace("dense(8)", "dense(width)").replace(
    "model hill_net", "param width = 8\nmodel hill_net").replace(
    "steps      = 8000", "steps      = 40").replace("eval_every = 100", "eval_every = 10") \
    + "sweep {\n    width = [4, 8]\n}\n"


def _sweep_stopped_when(monkeypatch, tmp_path, when, text=SMALL_SWEEP):
    """Runs a sweep in process with a Ctrl-C simulated `when` ("after" each program's
    training, or "before" the second program's first step)."""
    import contextlib

    import mlspec.cli
    from mlspec.runner import Training

    stopper = mlspec.cli._Stop(quiet=True)
    stop = stopper.signals
    monkeypatch.setattr(mlspec.cli, "_signals_caught",
                        contextlib.contextmanager(lambda quiet: (yield stopper)))
    original = Training.run
    calls = []

    def run(self, *args, **kwargs):
        calls.append(1)
        if when == "before" and len(calls) == 2:
            stop.append(2)
        result = original(self, *args, **kwargs)
        if when == "after":
            stop.append(2)
        return result

    monkeypatch.setattr(Training, "run", run)
    spec = tmp_path / "sweep.mlspec"
    spec.write_text(text)
    out = tmp_path / "out"
    code = mlspec.cli.main(["run", str(spec), "--out", str(out), "--quiet"])
    return code, out


def test_a_stop_in_a_sweeps_last_chunk_leaves_finished_runs(monkeypatch, tmp_path):
    code, out = _sweep_stopped_when(monkeypatch, tmp_path, "after")
    # the first program finished; the second was never started and is left out
    assert code == 130
    history = pd.read_csv(out / "history.csv")
    assert set(history["width"]) == {4} and history["step"].max() == 40
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"


def test_a_program_stopped_before_its_first_step_is_left_out(monkeypatch, tmp_path):
    code, out = _sweep_stopped_when(monkeypatch, tmp_path, "before")
    assert code == 130
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["settings"] for m in metrics["members"]] == [{"width": 4}]
    assert metrics["members"][0]["status"] == "completed"


def test_a_stop_after_every_run_finished_is_not_an_interruption(monkeypatch, tmp_path):
    one_program = SMALL_SWEEP.replace("width = [4, 8]", "train.seed = [0, 1]")
    code, out = _sweep_stopped_when(monkeypatch, tmp_path, "after", one_program)
    assert code == 0
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"
