"""Signals to `mlspec run` at each moment of a run, sent to a real process.

The run pauses at a named moment (MLSPEC_TEST_PAUSE_AT) and says so, so that the signal
arrives exactly there: during the imports (before jax), with the data loaded and nothing
trained, after the first chunk of training, after the last step (before the folder is
written), and between plots. One status, as LANGUAGE.md v2 "The run's life" says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, SPECS

import mlspec

SPEC = """
model hill_net {
    dense(4) -> sigmoid
    dense(2)
}
data {
    train = hill(n=300, seed=0)
    valid = hill(n=100, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=0.05)
    steps      = 40
    batch      = 32
    eval_every = 10
    metrics    = [accuracy]
}
"""
PLOTS = ["history.png", "decision_regions.png", "hidden_units.png"]


def _run_with_signals(tmp_path, moment: str, cues, timeout: float = 120):
    """Runs the spec with the pause hook at `moment`; for each (text, signum) of `cues`
    in turn, sends signum once a line of stderr holds its text; (exit code, stderr, run
    folder)."""
    spec = tmp_path / "hill.mlspec"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    env = {**os.environ, "MLSPEC_TEST_PAUSE_AT": moment, "MLSPEC_COMPILATION_CACHE": "0"}
    process = subprocess.Popen([sys.executable, "-m", "mlspec", "run", str(spec), "--out",
                                str(out)], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=ROOT, env=env)
    seen, waiting = [], list(cues)
    try:
        for line in process.stderr:
            seen.append(line)
            if waiting[0][0] in line:
                process.send_signal(waiting.pop(0)[1])
                if not waiting:
                    break
        _, err = process.communicate(timeout=timeout)
    finally:
        process.kill()
    return process.returncode, "".join(seen) + err, out


def run_signalled(tmp_path, moment: str, signum: int, timeout: float = 120):
    """Runs the spec, sends `signum` when the run pauses at `moment`."""
    return _run_with_signals(tmp_path, moment, [(f"paused at {moment}", signum)], timeout)


@pytest.mark.parametrize("moment, signum", [
    ("start", signal.SIGINT), ("start", signal.SIGTERM), ("loaded", signal.SIGINT),
    pytest.param("loaded", signal.SIGTERM, marks=pytest.mark.slow),
])
def test_a_signal_before_training_stops_with_a_message_and_writes_nothing(moment, signum,
                                                                          tmp_path):
    code, err, out = run_signalled(tmp_path, moment, signum)
    assert code == 130, err
    assert "interrupted before any training; nothing was written" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_a_signal_during_training_leaves_an_interrupted_folder(tmp_path):
    code, err, out = run_signalled(tmp_path, "training", signal.SIGTERM)
    assert code == 130, err
    assert "interrupted at step 10" in err and "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["steps_done"] == 10
    assert manifest["plots_missing"] == PLOTS
    # the metrics are those of the parameters saved, evaluated at the interruption
    assert json.loads((out / "metrics.json").read_text())["evaluated_at"] == 10


@pytest.mark.parametrize("moment, drawn", [
    pytest.param("trained", [], marks=pytest.mark.slow), ("plots", ["history.png"]),
])
@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_a_signal_after_the_last_step_leaves_the_run_completed(moment, drawn, tmp_path):
    code, err, out = run_signalled(tmp_path, moment, signal.SIGINT)
    assert code == 0, err
    assert "its plots were not drawn" in err and f"mlspec plot {out}" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["steps_done"] == 40
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"
    assert manifest["plots_missing"] == [p for p in PLOTS if p not in drawn]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(drawn)
    plotted = subprocess.run([sys.executable, "-m", "mlspec", "plot", str(out)],
                             capture_output=True, text=True, cwd=ROOT)
    assert plotted.returncode == 0, plotted.stderr
    assert json.loads((out / "manifest.json").read_text())["plots_missing"] == []
    assert sorted(p.name for p in out.glob("*.png")) == sorted(PLOTS)


def run_signalled_twice(tmp_path, moment: str, signals=(signal.SIGINT, signal.SIGTERM),
                        timeout: float = 120):
    """Runs the spec; when it pauses at `moment` (a chunk computing), sends the first
    signal, and the second once the run has said how to stop sooner."""
    return _run_with_signals(tmp_path, moment, [(f"paused at {moment}", signals[0]),
                                                ("press Ctrl-C again", signals[1])], timeout)


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_a_second_signal_stops_without_the_chunk_in_progress(tmp_path):
    """The first signal asks for the end of the chunk; the second drops the chunk that
    computes and writes the chunks done: a folder that loads and resumes."""
    code, err, out = run_signalled_twice(tmp_path, "chunk")
    assert code == 130, err
    assert "stopping now, without the chunk in progress" in err
    assert "interrupted at step 10" in err and "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["steps_done"] == 10
    assert manifest["blocks_done"] == 1
    # no evaluation of step 10 queues behind the dropped chunk: the metrics say their step
    assert json.loads((out / "metrics.json").read_text())["evaluated_at"] == 0
    assert "its metrics.json holds the last evaluation, of step 0" in err
    # the row of each block's start: step 10's comes with the chunk that was dropped
    history = (out / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0"]
    resumed = subprocess.run([sys.executable, "-m", "mlspec", "run", "--resume", str(out)],
                             capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["steps_done"] == 40


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_a_second_signal_in_the_first_chunk_writes_nothing(tmp_path):
    code, err, out = run_signalled_twice(tmp_path, "first_chunk", (signal.SIGINT,) * 2)
    assert code == 130, err
    assert "interrupted before any training; nothing was written" in err
    # every notice says so: none promises a run folder
    assert "nothing will be written" in err and "will be written with" not in err
    assert "keeping the chunks done" not in err
    assert "Traceback" not in err and not out.exists()


def notices(capsys, kept: bool, signals: int, phase: str = "training") -> list[str]:
    """What `mlspec run` says to each of `signals` signals in `phase`, line by line."""
    from mlspec.cli.stop import Stop

    stop = Stop(quiet=False)
    stop.phase, stop.kept = phase, lambda: kept
    capsys.readouterr()
    for _ in range(signals):
        stop.handle(signal.SIGINT, None)
    return capsys.readouterr().err.splitlines()


def test_the_notices_of_a_signal_in_the_first_chunk_promise_no_folder(capsys):
    said = "\n".join(notices(capsys, kept=False, signals=3))
    assert "no chunk has finished" in said and "nothing will be written" in said
    assert "run folder will be written with" not in said
    assert "keeping the chunks done" not in said
    said = "\n".join(notices(capsys, kept=True, signals=3))
    assert "the run folder will be written with the steps done so far" in said
    assert "nothing" not in said


@pytest.mark.parametrize("phase", ["starting", "training", "saving", "writing"])
@pytest.mark.parametrize("kept", [False, True])
def test_every_signal_notice_line_is_under_100_characters(phase, kept, capsys):
    lines = notices(capsys, kept=kept, signals=1 if phase == "starting" else 3, phase=phase)
    assert lines and all(len(line) < 100 for line in lines), lines


def test_the_interrupted_reports_are_lines_under_100_characters(capsys, tmp_path):
    from types import SimpleNamespace

    from mlspec.cli.train import report

    out = tmp_path / "runs" / "hill_net-12"
    members = [SimpleNamespace(status=s) for s in ["completed"] * 4 + ["interrupted"] * 4]
    sweep = SimpleNamespace(status="interrupted", members=members)
    single = SimpleNamespace(status="interrupted", members=[], steps_done=1_000_000,
                             evaluated_at=990_000)
    capsys.readouterr()
    assert report(sweep, out, None, None, members) == 130
    assert report(single, out, None, None, None) == 130
    err = capsys.readouterr().err
    assert "4 of 8 runs finished" in err and "a sweep cannot be resumed" in err
    assert "continue with: mlspec run --resume" in err
    assert "of step 990000: the chunk in progress" in err
    lines = err.replace(str(tmp_path), "/tmp/x").splitlines()
    assert len(lines) == 6 and all(len(line) < 100 for line in lines), lines


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("after", [0.0, 0.1, 0.3])
def test_a_signal_while_the_command_imports_ends_it_with_one_line(signum, after):
    """From the first line of `python -m mlspec` on (Python's own start, ~0.05 s, comes
    before it): no KeyboardInterrupt traceback, no silent death by SIGTERM."""
    import time

    env = {**os.environ, "MLSPEC_TEST_PAUSE_AT": "import"}
    process = subprocess.Popen([sys.executable, "-m", "mlspec", "check",
                                *map(str, SPECS)], stderr=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert process.stderr.readline() == "importing\n"
        time.sleep(after)
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    if after and process.returncode == 0:  # it finished first
        assert err == ""
        return
    assert (process.returncode, err, out) == (130, "interrupted\n", "")


def test_a_stop_during_a_chunk_keeps_the_state_of_the_chunks_done():
    """In process: `stop_now` while the second chunk computes leaves the run after the
    first, as if it had stopped there, and it goes on from there as if never stopped."""
    from mlspec.runtime.training import Training

    program = mlspec.resolve(mlspec.parse(SPEC))
    whole = Training(program, updates=4).run()
    stopped = Training(program, updates=4)
    result = stopped.run(stop_now=lambda: stopped.blocks_done >= 1)
    assert result.status == "interrupted" and stopped.blocks_done == 1
    assert result.steps_done == 10 and list(result.history["step"]) == [0]
    assert result.evaluated_at == 0 and result.params_step == 10
    pd.testing.assert_frame_equal(result.history, whole.history.iloc[:1])
    stopped.status = None  # go on, as --resume does from the folder
    again = stopped.run()
    assert again.status == "completed" and again.evaluated_at == 40
    pd.testing.assert_frame_equal(again.history, whole.history)


def test_metrics_are_of_the_last_stop_of_a_run_stopped_twice():
    """A run stopped between chunks evaluates the state it keeps; gone on and then stopped
    during a chunk, its metrics are the last history row's, not the first stop's."""
    from mlspec.runtime.training import Training

    training = Training(mlspec.resolve(mlspec.parse(SPEC)), updates=4)
    first = training.run(should_stop=lambda: training.blocks_done >= 1)
    assert first.evaluated_at == first.params_step == 10
    training.status = None
    second = training.run(stop_now=lambda: training.blocks_done >= 2)
    assert second.params_step == 20 and list(second.history["step"]) == [0, 10]
    assert second.evaluated_at == 10
    assert second.metrics == {k: v for k, v in second.history.iloc[-1].items() if k != "step"}
    # the state of the first stop, evaluated then, is the row at step 10
    assert first.metrics == pytest.approx(second.metrics, rel=1e-5)
