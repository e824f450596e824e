"""Checkpoints (`train { checkpoint_every = N }`, LANGUAGE.md v2 "The run's life"): a run
killed with SIGKILL at several moments, resumed each time with `mlspec run --resume`,
ends with the history and parameters of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from mlspec.runtime.checkpoints import FOLDER, KEEP
from mlspec.runtime.reload import load_run, resume_training
from mlspec.runtime.runs import RunFolderError
from mlspec.runtime.training import Training, _chunk_size

SPEC = """
model hill_net {
    dense(8) -> relu
    dense(2)
}
data {
    train = hill(n=200, seed=0)
    valid = hill(n=100, seed=1)
}
train {
    loss             = softmax_cross_entropy
    optimizer        = adam(learning_rate=0.05)
    steps            = 300
    batch            = 32
    eval_every       = 10
    checkpoint_every = 50
    metrics          = [accuracy]
}
"""


def _mlspec(args, pause: str | None = None, complete: int | None = None):
    """Runs `mlspec ARGS`; with `pause`, SIGKILLs it once it pauses there, after waiting
    for `complete` checkpoints on disk (orbax's commit marker) when given. The process's
    exit code and stderr."""
    env = {**os.environ, "MLSPEC_COMPILATION_CACHE": "0"}
    if pause:
        env["MLSPEC_TEST_PAUSE_AT"] = pause
    process = subprocess.Popen([sys.executable, "-m", "mlspec", *args], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in process.stderr if pause else ():
            seen.append(line)
            if f"paused at {pause}" in line:
                out = args[args.index("--out") + 1] if "--out" in args else args[-1]
                while complete and len(list((ROOT / out).glob(f"{FOLDER}/*/commit_success*"))
                                       ) < complete:
                    time.sleep(0.01)  # the process waits paused meanwhile
                process.send_signal(signal.SIGKILL)
                break
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    return process.returncode, "".join(seen) + err


@pytest.fixture(scope="module")
def uninterrupted():
    from mlspec.cli.train import PROGRESS_UPDATES
    from mlspec.runtime.runner import Run, plan
    from mlspec.syntax.parser import parse

    return Run(plan(parse(SPEC, "hill.mlspec")), updates=PROGRESS_UPDATES).train()


@pytest.mark.slow  # processes killed and resumed, as test_signals' are
def test_a_run_killed_twice_resumes_to_the_uninterrupted_history_and_parameters(
        tmp_path, uninterrupted):
    spec = tmp_path / "hill.mlspec"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    # killed once its first checkpoint (step 50) is on disk: no manifest, no state file
    code, err = _mlspec(["run", str(spec), "--out", str(out)], "checkpoint 1", complete=1)
    assert code == -signal.SIGKILL, err
    assert not (out / "manifest.json").exists()
    # resumed from it, killed again at the resumed run's second save, wherever its write is
    code, err = _mlspec(["run", "--resume", str(out)], "checkpoint 2")
    assert code == -signal.SIGKILL, err
    assert not (out / "manifest.json").exists()
    code, err = _mlspec(["run", "--resume", str(out), "--quiet"])
    assert code == 0, err
    assert "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["steps_done"] == 300
    history = pd.read_csv(out / "history.csv")
    pd.testing.assert_frame_equal(history, uninterrupted.history, check_dtype=False,
                                  rtol=1e-6)
    resumed = load_run(out)
    for got, want in zip(jax.tree.leaves(resumed.state["params"]),
                         jax.tree.leaves(uninterrupted.state["params"]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # the last KEEP of the checkpoints at 50, 100, ..., 250 (the end is the run's state)
    assert sorted(int(p.name) for p in (out / FOLDER).iterdir()) == [150, 200, 250][-KEEP:]


def test_a_folder_without_manifest_or_checkpoints_is_not_resumed(tmp_path):
    with pytest.raises(RunFolderError, match="no manifest.json, no checkpoints"):
        resume_training(tmp_path)


def test_chunks_end_at_every_checkpoint():
    # 300 blocks in about 50 chunks, a checkpoint every 8 blocks: chunks of 4
    assert _chunk_size(300, 50, 8) == 4
    assert _chunk_size(300, 50, 5) == 5 and _chunk_size(300, 1, 5) == 5
    assert _chunk_size(300, 50, 7) == 1
    assert _chunk_size(30, 50, 40) == 1  # no checkpoint falls inside the run


def test_checkpoint_every_must_be_a_multiple_of_eval_every(tmp_path):
    spec = tmp_path / "bad.mlspec"
    spec.write_text(SPEC.replace("checkpoint_every = 50", "checkpoint_every = 25"))
    done = subprocess.run([sys.executable, "-m", "mlspec", "check", str(spec)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    line = next(i for i, text in enumerate(SPEC.splitlines(), 1) if "checkpoint_every" in text)
    assert f"bad.mlspec:{line}:24: error: checkpoint_every = 25 is not a multiple of " \
           "eval_every = 10" in done.stderr
    assert "try checkpoint_every = 20" in done.stderr


def test_a_save_that_fails_leaves_the_run_training_on(tmp_path, uninterrupted, monkeypatch):
    from mlspec.runtime.checkpoints import attach

    training = Training(uninterrupted.program, updates=50)
    attach(training, tmp_path)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.checkpoints.manager, "save", full)
    result = training.run()
    assert result.status == "completed" and result.steps_done == 300
    assert training.checkpoints.error == "[Errno 28] No space left on device"
    assert training.checkpoints.saves == 0

