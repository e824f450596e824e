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
from conftest import ROOT, iris_net

import mlspec
from mlspec.runtime.reload import load_run
from mlspec.runtime.runs import RunFolderError

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
    assert {"history.csv", "metrics.json", "spec.mlspec", "manifest.json", "state",
            "tensorboard", "history.png", "decision_regions.png", "hidden_units.png"} <= names
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    as_msgpack_folder(copy)
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (copy / "state.msgpack").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(RunFolderError, match="changed or damaged after the run"):
        load_run(copy)
    _rehash(copy, "state.msgpack")  # past the hash check, the reader refuses it too
    with pytest.raises(RunFolderError, match="not an mlspec state"):
        load_run(copy)
    result = cli("evaluate", copy)
    assert result.returncode == 2 and "not an mlspec state" in result.stderr
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
    as_msgpack_folder(copy)  # written before the state moved to orbax, too
    state = serialization.msgpack_restore((copy / "state.msgpack").read_bytes())
    del state["train"]["dropout_keep"]
    (copy / "state.msgpack").write_bytes(serialization.msgpack_serialize(state))
    _rehash(copy, "state.msgpack")
    result = cli("evaluate", copy, "valid", "--json")
    assert result.returncode == 0, result.stderr
    final = json.loads((hill_run / "metrics.json").read_text())["valid"]
    assert json.loads(result.stdout) == pytest.approx(final, rel=1e-5)


@pytest.mark.slow
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
    from mlspec.cli import stop as stops
    from mlspec.runtime.training import Training

    stopper = stops.Stop(quiet=True)
    stop = stopper.signals
    monkeypatch.setattr(stops, "signals_caught",
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


EARLY = iris_net("""
    optimizer = adam(learning_rate=0.05)
    steps = 3000
    early_stop = early_stop(metric=valid.loss, patience=20)
""")


def _early_training(updates=60):
    from mlspec.runtime.training import Training

    return Training(mlspec.check(mlspec.parse(EARLY)), updates=updates)


def _interrupted_early_run(folder):
    """An early-stopping run (best row at step 43, stop at 63) interrupted after its first
    chunk of 50 steps, written to `folder`."""
    from mlspec.runtime.runs import save_run

    training = _early_training()
    calls = []
    result = training.run(should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert result.status == "interrupted" and training.steps_done == 50
    save_run(result, folder, blocks_done=training.blocks_done, chunk=training.chunk,
             plots=False)
    return training


def jax_leaves(tree):
    import jax

    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


@pytest.mark.slow
def test_a_restoring_run_folder_names_its_best_step_and_loads_its_best_model(tmp_path):
    from mlspec.runtime.runs import save_run

    result = _early_training(updates=1).run()
    assert result.status == "early_stopped" and result.best_step < result.stopped_at
    out = save_run(result, tmp_path / "run", plots=False)
    summary = json.loads((out / "metrics.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["best_step"] == manifest["best_step"] == result.best_step
    assert summary["steps"] == manifest["steps_done"] == result.stopped_at
    history = pd.read_csv(out / "history.csv")
    best_row = history[history["step"] == result.best_step].iloc[0]
    assert summary["valid"] == pytest.approx({"loss": best_row["valid.loss"],
                                              "accuracy": best_row["valid.accuracy"]})
    loaded = load_run(out)
    assert loaded.best_step == result.best_step
    assert loaded.metrics == pytest.approx(result.metrics)
    x = np.random.default_rng(0).normal(size=(50, 4))
    np.testing.assert_allclose(loaded.outputs(x), result.outputs(x), rtol=1e-6)
    evaluated = cli("evaluate", out, "valid", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout) == pytest.approx(summary["valid"], rel=1e-5)


def test_resuming_an_early_stopping_run_keeps_its_best_copy(tmp_path):
    from mlspec.runtime.reload import resume_training

    whole = _early_training().run()
    interrupted = _interrupted_early_run(tmp_path / "run")
    # the best row (43) came before the interruption (50), the stop (63) after it
    assert int(interrupted.state["best"]["step"]) == whole.best_step < 50 < whole.stopped_at
    resumed = resume_training(tmp_path / "run").run()
    pd.testing.assert_frame_equal(resumed.history, whole.history, rtol=1e-5)
    assert (resumed.status, resumed.stopped_at, resumed.best_step) == \
        (whole.status, whole.stopped_at, whole.best_step)
    assert resumed.metrics == pytest.approx(whole.metrics, rel=1e-5)
    for a, b in zip(jax_leaves(resumed.params), jax_leaves(whole.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_state_saved_without_the_best_copy_still_loads_and_resumes(tmp_path):
    """Folders written before early stopping kept the best model load; resumed, the run
    keeps the best of the evaluations after the resume."""
    from flax import serialization

    from mlspec.runtime.reload import resume_training

    folder = tmp_path / "run"
    _interrupted_early_run(folder)
    as_msgpack_folder(folder)
    state = serialization.msgpack_restore((folder / "state.msgpack").read_bytes())
    del state["train"]["best"]
    (folder / "state.msgpack").write_bytes(serialization.msgpack_serialize(state))
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["file_sha256"]  # older versions wrote no file hashes either
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert load_run(folder).params is not None
    resumed = resume_training(folder).run()
    history = resumed.history
    after = history[history["step"] >= 50]
    assert resumed.status == "early_stopped"
    assert resumed.best_step == after["step"].iloc[int(np.argmin(after["valid.loss"]))]
    assert resumed.metrics["valid.loss"] == after["valid.loss"].min()


# ---------------------------------------------------------------- unusable run folders

TINY = """
model tiny {
    dense(4) -> sigmoid
    dense(1)
}
data {
    train = linear(n=200)
    valid = linear(n=50, seed=1)
}
train {
    loss       = mse
    optimizer  = adam(learning_rate=0.05)
    steps      = 40
    batch      = 32
    eval_every = 10
}
"""


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A small run stopped after two of its four blocks, as Ctrl-C leaves it."""
    from mlspec.runtime.runs import save_run
    from mlspec.runtime.training import Training

    folder = tmp_path_factory.mktemp("interrupted")
    spec = folder / "tiny.mlspec"
    spec.write_text(TINY)
    training = Training(mlspec.resolve(mlspec.load(spec)), updates=4)
    training.advance()
    training.advance()
    return save_run(training.result(), folder / "run", blocks_done=training.blocks_done,
                    chunk=training.chunk)


def as_msgpack_folder(folder):
    """The run folder as mlspec wrote it before the state moved to orbax: `state.msgpack`
    (flax msgpack) in place of `state/`."""
    import hashlib
    import shutil

    from flax import serialization

    from mlspec.runtime.reading import read_state

    data = serialization.msgpack_serialize(read_state(folder / "state"))
    shutil.rmtree(folder / "state")
    (folder / "state.msgpack").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    hashes = manifest.get("file_sha256", {})
    hashes.pop("state", None)
    hashes["state.msgpack"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_folder_with_the_older_msgpack_state_predicts_evaluates_and_loads(hill_run,
                                                                           tmp_path):
    copy = _copy(hill_run, tmp_path)
    as_msgpack_folder(copy)
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_array_equal(load_run(copy).predict(x), load_run(hill_run).predict(x))
    result = cli("evaluate", copy, "valid", "--json")
    assert result.returncode == 0, result.stderr
    final = json.loads((hill_run / "metrics.json").read_text())["valid"]
    assert json.loads(result.stdout) == pytest.approx(final, rel=1e-5)


def _copy(folder, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


RUN_FILES = ["history.csv", "spec.mlspec", "manifest.json", "state", "metrics.json"]


def _damaged(path):
    """The file to damage for `path`: itself, or in the state's orbax folder, the JSON
    layout of its arrays."""
    return path / "layout" / "metadata" if path.is_dir() else path


def _corrupt(path, how):
    import shutil

    if path.is_dir():
        if how in ("missing", "directory"):  # the state folder gone, or a file in its place
            shutil.rmtree(path)
            if how == "directory":
                path.write_bytes(b"not a folder")
            return
        path = _damaged(path)
    data = path.read_bytes()
    path.unlink()
    if how == "directory":
        path.mkdir()
    elif how != "missing":
        path.write_bytes({
            "empty": b"",
            "truncated": data[:len(data) // 2],
            "garbage": bytes(range(256)) * 3,
            "non_utf8": b"\xff\xfe" + data[2:],
            "wrong_json_shape": b'[1, "two", {"three": 3}]\n',
        }[how])


def _main(*args):
    import mlspec.cli

    return mlspec.cli.main([str(a) for a in args])


COMMANDS = {
    "predict": lambda d: _main("predict", d, "valid"),
    "evaluate": lambda d: _main("evaluate", d, "valid", "--json"),
    "plot": lambda d: _main("plot", d),
    "resume": lambda d: _main("run", "--resume", d, "--quiet"),
}
CORRUPTIONS = ["missing", "empty", "truncated", "garbage", "non_utf8", "wrong_json_shape",
               "directory"]


@pytest.mark.parametrize("command", [*COMMANDS, "load_run"])
@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("name", RUN_FILES)
def test_a_damaged_run_folder_is_a_clear_error_naming_the_file(name, how, command,
                                                              interrupted, tmp_path, capsys):
    copy = _copy(interrupted, tmp_path)
    _corrupt(copy / name, how)
    if command == "load_run":
        with pytest.raises(RunFolderError, match=name.replace(".", r"\.")):
            load_run(copy)
        return
    code = COMMANDS[command](copy)
    err = capsys.readouterr().err
    if command == "resume" and name == "metrics.json":  # not read: resuming rewrites it
        if how == "directory":  # which it cannot: a failure, found before training
            assert code == 1 and "a folder is in its place" in err, err
            return
        assert code == 0, err
        assert load_run(copy).steps_done == 40
        return
    assert code == 2, err
    assert name in err and err.startswith(f"{copy}: error: ")


def _rehash(folder, name):
    """The manifest's hash of `name` set to the file's, so that a damaged file reaches the
    readers behind the hash check."""
    import hashlib

    if name == "manifest.json":  # nothing to rehash: it is the file that holds the hashes
        return
    from mlspec.runtime.checkpoints import tree_sha256

    manifest = json.loads((folder / "manifest.json").read_text())
    path = folder / name
    digest = tree_sha256(path) if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    if name == "spec.mlspec":
        manifest["spec_sha256"] = digest
    else:
        manifest["file_sha256"][name] = digest
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_fuzzed_run_folders_give_only_mlspecs_own_errors(interrupted, tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from mlspec.syntax.errors import SpecError

    x = np.random.default_rng(0).normal(size=(5, 1)).astype(np.float32)

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(name=st.sampled_from(RUN_FILES), rehash=st.booleans(), data=st.data())
    def mutate_and_load(name, rehash, data):
        copy = _copy(interrupted, tmp_path_factory.mktemp("fuzz"))
        path = _damaged(copy / name)
        raw = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
            kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
            if kind == "flip" and raw:
                raw[at] = data.draw(st.integers(0, 255))
            elif kind == "cut":
                del raw[at:]
            elif kind == "insert":
                raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
            else:
                del raw[at:at + data.draw(st.integers(1, 16))]
        path.write_bytes(bytes(raw))
        if rehash:
            _rehash(copy, name)
        try:
            loaded = load_run(copy)
        except (RunFolderError, SpecError):
            return
        assert loaded.predict(x).shape == (5, 1)

    mutate_and_load()


@pytest.mark.parametrize("edit, message", [
    (("spec.mlspec", "learning_rate=0.05", "learning_rate=0.5"),
     "spec.mlspec is not the spec that was run"),
    (("spec.mlspec", "dense(4)", "dense(16)"), "spec.mlspec is not the spec that was run"),
    (("spec.mlspec", "dense(4)", "dense(16)", "rehash"),
     "state does not fit the spec's model: "),
    (("manifest.json", '"blocks_done": 2', '"blocks_done": 99'),
     "manifest.json: blocks_done 99 is past the run's 4 blocks"),
    (("manifest.json", '"blocks_done": 2', '"blocks_done": 3'),
     "manifest.json: steps_done 20 does not match blocks_done 3"),
    (("manifest.json", '"blocks_done": 2', '"blocks_done": "2"'),
     "manifest.json is not an mlspec manifest (blocks_done: Input should be a valid integer"),
    (("manifest.json", '"blocks_done": 2', '"blocks_done": -1'),
     "manifest (blocks_done: Input should be greater than or equal to 0)"),
    (("manifest.json", '"chunk": 1,', ""), "manifest (chunk: Field required)"),
    (("manifest.json", '"status": "interrupted"', '"status": "completed"'),
     "is completed; only an interrupted run can be resumed"),
    (("manifest.json", '"status": "interrupted"', '"status": "done"'),
     "manifest (status: Input should be"),
])
def test_resume_refuses_a_folder_that_does_not_fit(edit, message, interrupted, tmp_path,
                                                   monkeypatch, capsys):
    from mlspec.runtime.training import Training

    copy = _copy(interrupted, tmp_path)
    name, old, new, *rehash = edit
    text = (copy / name).read_text()
    assert old in text
    (copy / name).write_text(text.replace(old, new))
    if rehash:
        _rehash(copy, name)
    monkeypatch.setattr(Training, "run", lambda *a, **k: pytest.fail("trained"))
    assert _main("run", "--resume", copy) == 2
    err = capsys.readouterr().err
    assert message in err
    if rehash:
        assert "Dense_0/bias is float32[4]; the spec's model has float32[16]" in err


def test_resume_into_an_unwritable_folder_fails_before_training(interrupted, tmp_path,
                                                                monkeypatch, capsys):
    import errno

    from mlspec import files
    from mlspec.runtime.training import Training

    copy = _copy(interrupted, tmp_path)
    original = files.atomic_write

    def full(path, data):
        if path.parent == copy:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, data)

    monkeypatch.setattr(files, "atomic_write", full)
    monkeypatch.setattr(Training, "run", lambda *a, **k: pytest.fail("trained"))
    assert _main("run", "--resume", copy) == 1
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_metrics_json_is_strict_json_and_reads_back(tmp_path, capsys):
    spec = tmp_path / "nan.mlspec"
    spec.write_text("model line {\n    dense(1)\n}\ndata {\n    train = linear(n=200)\n"
                    "    valid = linear(n=50, seed=1)\n}\ntrain {\n    loss = mse\n"
                    "    optimizer = sgd(learning_rate=5.0)\n    steps = 500\n}\n")
    out = tmp_path / "nan"
    assert _main("run", spec, "--out", out, "--quiet") == 1

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["train"]["loss"] is None
    nulls = json.loads((out / "manifest.json").read_text())["null_metrics"]
    assert nulls["train.loss"] in ("NaN", "Infinity")
    with pytest.raises(mlspec.DivergedError) as info:
        mlspec.run(spec)
    in_memory = info.value.result.metrics
    loaded = load_run(out).metrics
    assert set(loaded) == set(in_memory)
    for key, value in in_memory.items():
        np.testing.assert_equal(loaded[key], value)  # NaN and infinities as they were
    capsys.readouterr()
    assert _main("evaluate", out, "valid", "--json") == 0
    json.loads(capsys.readouterr().out, parse_constant=refuse)


@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_is_refused(tmp_path):
    import os

    spec = tmp_path / "tiny.mlspec"
    spec.write_text(TINY)
    out = tmp_path / "busy"
    env = {**os.environ, "MLSPEC_TEST_PAUSE_AT": "loaded", "MLSPEC_COMPILATION_CACHE": "0"}
    first = subprocess.Popen([sys.executable, "-m", "mlspec", "run", spec, "--out", out],
                             stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env=env)
    try:
        for line in first.stderr:  # holds the folder, paused before training
            if "paused at loaded" in line:
                break
        second = cli("run", spec, "--out", out, "--quiet")
        assert second.returncode == 1, second.stderr
        assert "another mlspec process" in second.stderr and str(first.pid) in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    assert _main("run", spec, "--out", out, "--quiet") == 0  # free again, no stale lock


# ------------------------------------------- `evaluate` of any folder and its metrics.json

FOLDER_BASE = iris_net("""
    optimizer = adam(learning_rate=lr)
    steps = 40
    eval_every = 10
""", data="test = 0.2")
FOLDER_BASE = "param lr = 0.05\n" + FOLDER_BASE
FOLDER_EARLY = FOLDER_BASE.replace("steps = 40\n    eval_every = 10", "steps = 3000")
FOLDER_DIVERGING = """
model line {
    dense(1)
}
data {
    train = linear(n=200)
    valid = linear(n=50, seed=1)
}
train {
    loss       = mse
    optimizer  = sgd(learning_rate=5.0)
    steps      = 500
    eval_every = 10
}
"""


def _stop_after_first_chunk(training):
    return {"should_stop": lambda: training.blocks_done >= 1}


def _drop_second_chunk(training):
    return {"stop_now": lambda: training.blocks_done >= 1}


def _early(restore_best=True):
    return {"train.early_stop": mlspec.Call.of(
        "early_stop", metric=mlspec.Call(name="valid.loss"), patience=20,
        restore_best=restore_best)}


# name: (spec, overrides, how it is stopped, its status, whether evaluate adds a note)
FOLDER_KINDS = {
    "completed": (FOLDER_BASE, {}, None, "completed", False),
    "early stopped, best restored": (FOLDER_EARLY, _early(), None, "early_stopped", False),
    "early stopped, last step": (FOLDER_EARLY, _early(False), None, "early_stopped", False),
    "interrupted": (FOLDER_BASE, {}, _stop_after_first_chunk, "interrupted", False),
    # the parameters saved ran on past the metrics' step: evaluate says so
    "interrupted, chunk dropped": (FOLDER_BASE, {}, _drop_second_chunk, "interrupted", True),
    "diverged": (FOLDER_DIVERGING, {}, None, "diverged", True),
    "seeds, best restored": (FOLDER_EARLY, {**_early(), "train.seeds": 2}, None,
                             "early_stopped", False),
    "sweep, interrupted": (FOLDER_BASE + "sweep {\n    lr = [0.05, 0.01]\n}\n", {},
                           _stop_after_first_chunk, "interrupted", False),
}


def _folder_of(kind, folder):
    from mlspec.runtime.results import combine
    from mlspec.runtime.runner import spec_as_run
    from mlspec.runtime.runs import save_run
    from mlspec.runtime.training import Training
    from mlspec.semantics.structure import groups
    from mlspec.semantics.sweep import expand

    text, overrides, stopping, status, _ = kind
    spec = mlspec.parse(text)
    members = expand(spec, overrides)
    (group,) = groups(members)
    training = Training(group[0].program, updates=4, members=group if len(group) > 1 else None)
    result = training.run(**(stopping(training) if stopping else {}))
    if len(members) > 1:
        result = combine(training.member_results(), spec_as_run(spec, overrides))
    assert result.status == status
    save_run(result, folder, blocks_done=training.blocks_done, chunk=training.chunk,
             plots=False)
    return result


@pytest.mark.parametrize("kind", FOLDER_KINDS.values(), ids=FOLDER_KINDS)
def test_evaluate_of_any_run_folder_gives_its_metrics_json(kind, tmp_path, capsys):
    """`mlspec evaluate RUN SPLIT` measures the parameters saved; metrics.json holds their
    metrics (`evaluated_at` is their step), or evaluate says which step each is of."""
    noted = kind[-1]
    folder = tmp_path / "run"
    result = _folder_of(kind, folder)
    summary = json.loads((folder / "metrics.json").read_text())
    entries = summary["members"] if result.members else [summary]
    for k, entry in enumerate(entries):
        loaded = load_run(folder, member=k)
        splits = [s for s in ("train", "valid", "test") if s in entry]
        assert splits[:2] == ["train", "valid"]
        for split in splits:
            capsys.readouterr()
            assert _main("evaluate", folder, split, "--json", "--member", k) == 0
            out, err = capsys.readouterr()
            if noted:
                assert (f"of step {loaded.params_step};\nits metrics.json holds those of "
                        f"step {entry.get('evaluated_at')}") in err
                continue
            assert err == ""
            assert json.loads(out) == pytest.approx(entry[split], rel=1e-5, abs=1e-6), \
                (k, split)
        assert entry["evaluated_at"] == loaded.evaluated_at
        if noted:  # the metrics are the last history row's
            assert entry["evaluated_at"] == loaded.history["step"].iloc[-1] < loaded.params_step
        else:
            assert entry["evaluated_at"] == loaded.params_step
