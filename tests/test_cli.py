"""The command line as a user runs it: exit codes, messages, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, SPECS, iris_net

from mlspec.cli import main


def mlspec(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlspec", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT)


def test_check_accepts_every_example_spec():
    result = mlspec("check", *SPECS)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


BROKEN = {
    "syntax": ("model m {\n    dense(2\n}\n", "3:1: error: unexpected '}'"),
    "unknown name": ("model m {\n    input [2]\n    dens(2)\n}\n",
                     "3:5: error: unknown layer 'dens'; did you mean 'dense'?"),
    "argument name": ("model m {\n    input [2]\n    dense(2, bias=false)\n}\n",
                      "3:14: error: layer 'dense' has no argument 'bias'; did you mean "
                      "'use_bias'?"),
    "argument type": ('model m {\n    input [2]\n    dense("two")\n}\n',
                      "3:11: error: argument 'features' of layer 'dense' should be a valid "
                      "integer"),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_check_reports_a_broken_spec_with_a_caret(kind, write_spec):
    text, expected = BROKEN[kind]
    path = write_spec(text)
    result = mlspec("check", path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:") and first.endswith(expected) or expected in first, \
        result.stderr
    assert result.stderr.splitlines()[2].strip().startswith("^")


def test_check_reports_a_missing_file(tmp_path):
    result = mlspec("check", tmp_path / "nope.mlspec")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot read spec" in result.stderr


def test_run_hill_writes_history_and_metrics(tmp_path):
    out = tmp_path / "run"
    result = mlspec("run", "specs/hill.mlspec", "--out", out, "--set", "train.steps=300",
                    "--set", "train.eval_every=10")
    assert result.returncode == 0, result.stderr
    history = pd.read_csv(out / "history.csv")
    assert list(history["step"]) == list(range(0, 301, 10))
    assert {"train.loss", "valid.accuracy", "valid.pred_mean"} <= set(history.columns)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["accuracy"] == pytest.approx(history["valid.accuracy"].iloc[-1])
    assert metrics["steps"] == 300
    assert "valid" in result.stdout and "accuracy" in result.stdout
    assert (out / "spec.mlspec").read_text().startswith("# hill.mlspec")
    assert any((out / "state").rglob("*"))


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_run_default_folder_is_numbered_not_overwritten(tmp_path, write_spec):
    path = write_spec("model tiny { dense(1) }\ndata { train = linear(n=32) }\n"
                      "train { loss = mse optimizer = sgd(0.1) steps = 2 }\n")
    for _ in range(2):
        assert mlspec("run", path, "--quiet", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny", "tiny-2"]


def test_run_rejects_an_unknown_set_path():
    result = mlspec("run", "specs/hill.mlspec", "--set", "train.stpes=3")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown setting 'train.stpes'; did you mean 'train.steps'?" in result.stderr


def test_run_without_data_is_a_spec_error(write_spec):
    result = mlspec("run", write_spec("model m {\n    input [2]\n    dense(1)\n}\n"))
    assert result.returncode == 2 and "needs a 'data' section" in result.stderr


def test_fmt_check_and_rewrite(write_spec):
    path = write_spec("model m{dense(2)->sigmoid\ndense(1)}  # net\n")
    assert mlspec("fmt", "--check", path).returncode == 1
    assert mlspec("fmt", path).returncode == 0
    text = path.read_text()
    assert text == "model m {\n    dense(2) -> sigmoid\n    dense(1)  # net\n}\n"
    assert mlspec("fmt", "--check", path).returncode == 0


def test_summary_counts_parameters():
    result = mlspec("summary", "specs/hill.mlspec")
    assert result.returncode == 0, result.stderr
    assert "total" in result.stdout and "12 (48 bytes" in result.stdout


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_export_and_schema_are_json(tmp_path):
    exported = mlspec("export", "specs/hill.mlspec", "--json").stdout
    spec = json.loads(exported)
    assert spec["model"]["layers"][0]["name"] == "dense"
    path = tmp_path / "hill.json"
    path.write_text(exported)
    assert mlspec("check", path).returncode == 0  # JSON goes wherever .mlspec goes
    run = mlspec("run", path, "--set", "train.steps=5", "--out", tmp_path / "r", "--quiet")
    assert run.returncode == 0, run.stderr
    program = json.loads(mlspec("export", "specs/hill.mlspec", "--program").stdout)
    assert program["model"]["layers"][0] == {"kind": "dense", "features": 2, "use_bias": True}
    assert program["train"]["optimizer"]["name"] == "rmsprop"
    schema = json.loads(mlspec("schema").stdout)
    assert schema["title"] == "Spec"
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"name": 3}}')
    result = mlspec("check", bad)
    assert result.returncode == 2 and "model.name" in result.stderr
    assert "Traceback" not in result.stderr


def test_summary_can_size_the_optimizer_state():
    result = mlspec("summary", "specs/hill.mlspec", "--optimizer-state")
    assert "optimizer state (rmsprop)" in result.stdout
    assert "48 bytes" in result.stdout.split("optimizer state")[1]  # one slot per param


def test_check_resolved_fills_in_defaults():
    result = mlspec("check", "--resolved", "specs/hill.mlspec")
    assert "dense(2, use_bias=true) -> sigmoid" in result.stdout
    assert "eval_every = 1" in result.stdout
    assert "rmsprop(learning_rate=0.01, decay=0.9" in result.stdout


def test_tooling_commands_do_not_import_jax():
    code = ("import sys, contextlib, io\nfrom mlspec.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    for cmd in (['check', 'specs/hill.mlspec'], ['fmt', '--check', "
            "'specs/hill.mlspec'], ['summary', 'specs/hill.mlspec'], ['export', "
            "'specs/hill.mlspec'], ['schema']):\n"
            "        assert main(cmd) == 0, cmd\n"
            "assert 'jax' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_check_of_libraries_sweeps_and_json_specs_does_not_import_jax(tmp_path):
    """The check paths added beside the plain spec's: a library, a sweep, a JSON export."""
    (tmp_path / "lib.mlspec").write_text("param width = 4\nblock head(n) { dense(n) }\n")
    sweep = (ROOT / "specs/hill.mlspec").read_text() + \
        "sweep {\n    train.optimizer.learning_rate = [0.01, 0.03]\n}\n"
    (tmp_path / "sweep.mlspec").write_text(sweep)
    code = ("import sys, contextlib, io\nfrom mlspec.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert main(['export', '--json', 'sweep.mlspec']) == 0\n"
            "open('sweep.json', 'w').write(out.getvalue())\n"
            "for cmd in (['check', 'lib.mlspec'], ['check', 'sweep.mlspec'],\n"
            "            ['check', 'sweep.json']):\n"
            "    assert main(cmd) == 0, cmd\n"
            "assert 'jax' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("source, message", [
    ('csv("missing.csv", target="y")', "no such file"),
    ('csv("IRIS", target="specis")', "has no column 'specis'; did you mean 'species'?"),
])
def test_bad_csv_is_a_spec_error_at_the_command_line(source, message, tmp_path):
    source = source.replace("IRIS", str(ROOT / "specs" / "data" / "iris.csv"))
    path = tmp_path / "bad.mlspec"
    path.write_text(f"model m {{\n    dense(classes)\n}}\ndata {{\n    source = {source}\n"
                    "    valid = 0.2\n}\ntrain {\n    loss = softmax_cross_entropy\n"
                    "    optimizer = sgd(0.1)\n    steps = 1\n}\n")
    for command in ("check", "run"):
        extra = ["--out", tmp_path / "r"] if command == "run" else []
        result = mlspec(command, path, *extra)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert message in result.stderr and "bad.mlspec:5:14" in result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["evaluate", "NOWHERE"], 2, "NOWHERE: error: it is not a run folder"),
    (["predict", "specs", "valid"], 2, "specs: error: it is not a run folder (no manifest.json)"),
    (["run", "--resume", "NOWHERE"], 2, "NOWHERE: error: it is not a run folder"),
])
def test_a_run_folder_that_cannot_be_used_is_bad_input(args, code, message, tmp_path):
    args = [str(tmp_path / a) if a == "NOWHERE" else a for a in args]
    result = mlspec(*args)
    assert result.returncode == code and "Traceback" not in result.stderr
    assert message.replace("NOWHERE", str(tmp_path / "NOWHERE")) in result.stderr


EARLY_STOPPING = iris_net("""
    optimizer = adam(learning_rate=0.1)
    steps = 300
    early_stop = early_stop(metric=valid.loss, patience=5)
""", width=8)


@pytest.fixture(scope="module")
def early_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("early")
    (folder / "net.mlspec").write_text(EARLY_STOPPING)
    result = mlspec("run", folder / "net.mlspec", "--out", folder / "run")
    assert result.returncode == 0, result.stderr
    return folder / "run", result


def test_an_early_stopped_run_says_its_metrics_are_the_best_evaluations(early_run):
    folder, result = early_run
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["best_step"] < metrics["steps"] == metrics["stopped_at"]
    assert (f"metrics of the best evaluation, step {metrics['best_step']} of "
            f"{metrics['steps']}") in result.stdout
    assert f"early stopping at step {metrics['stopped_at']}" in result.stdout


@pytest.mark.parametrize("where, reason", [("missing/predictions.csv", "No such file"),
                                           (".", "Is a directory")])
def test_predictions_that_cannot_be_written_are_a_clear_failure(where, reason, early_run,
                                                               tmp_path, capsys):
    folder, _ = early_run
    assert main(["predict", str(folder), "valid", "--out", str(tmp_path / where)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / where}: error: cannot write the predictions: ")
    assert reason in err


@pytest.mark.parametrize("name", ["metrics.json", "history.csv"])
def test_predictions_never_overwrite_a_file_of_the_run_folder(name, early_run, capsys):
    folder, _ = early_run
    before = (folder / name).read_bytes()
    assert main(["predict", str(folder), "valid", "--out", str(folder / name)]) == 1
    assert "is a file of the run folder itself" in capsys.readouterr().err
    assert (folder / name).read_bytes() == before


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_predictions_go_to_a_device_in_the_files_place(early_run):
    folder, _ = early_run
    result = mlspec("predict", folder, "valid", "--out", "/dev/stdout")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("prediction\n")


def test_fmt_of_a_spec_it_cannot_write_is_a_clear_failure(tmp_path, monkeypatch, capsys):
    from mlspec import files

    path = tmp_path / "s.mlspec"
    path.write_text("model   m { dense(1) }\n")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "atomic_write", full)
    assert main(["fmt", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: error: cannot rewrite it: No space left on " \
                                      "device\n"


TINY_RUN = ("model tiny { dense(1) }\ndata { train = linear(n=32) }\n"
            "train { loss = mse optimizer = sgd(0.1) steps = 2 }\n")


def test_run_never_writes_over_an_earlier_run_given_as_out(tmp_path, write_spec, capsys):
    path = write_spec(TINY_RUN)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["run", str(path), "--out", str(out), "--set", "train.steps=1", "--quiet"]) == 1
    assert "already holds a run, which is never overwritten" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_run_never_writes_into_a_folder_of_the_users_files(tmp_path, write_spec, capsys):
    path = write_spec(TINY_RUN)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "history.csv").write_text("precious")
    assert main(["run", str(path), "--out", str(mine), "--quiet"]) == 1
    assert "is not empty (it holds history.csv)" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["history.csv"]
    assert (mine / "history.csv").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", str(path), "--out", str(empty), "--quiet"]) == 0


def test_output_to_a_full_disk_is_a_clear_failure():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "mlspec", "schema"], stdout=full,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr == "<stdout>: error: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("delay", [0.8, 1.4])  # after Python's own start (~0.3 s)
def test_a_signal_while_a_command_starts_stops_it_cleanly(delay, early_run):
    """Ctrl-C while jax starts up in `evaluate` stops it (exit 130), instead of being
    swallowed by jax (the command then ran to the end) or crashing it."""
    import signal
    import time

    folder, _ = early_run
    process = subprocess.Popen([sys.executable, "-m", "mlspec", "evaluate", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.endswith("interrupted\n") and out == ""
