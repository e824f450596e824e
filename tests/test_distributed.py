"""Several processes train as one (`mlspec run --distributed`): two processes of two
devices each, coordinated by jax.distributed on this machine (CPU collectives through
gloo), give the history of one process with four devices; only process 0 writes and
prints. Bad options and a coordinator nobody reaches end with a clear error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from mlspec.cli import main
from mlspec.cli.stop import PAUSE_VARIABLE as PAUSE

SPEC = """\
model net {
    dense(16) -> relu
    dense(classes)
}
data {
    train = hill(n=400, seed=0)
    valid = hill(n=102, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=0.01)
    steps      = 40
    batch      = 40
    eval_every = 10
    devices    = all
    metrics    = [accuracy]
}
"""
# 400 train rows split over 4 devices; valid's 102 rows do not divide by 4, so they are
# kept whole on every device, as on one machine.

API = """
import sys, jax
jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                           process_id=int(sys.argv[2]), initialization_timeout=120)
import mlspec
result = mlspec.run(mlspec.load(sys.argv[3]), {"train.seeds": 4})
assert jax.device_count() == 4 and jax.local_device_count() == 2
result.history.to_csv(f"seeds-{jax.process_index()}.csv", index=False)
"""

TIMEOUT = 240  # seconds for each group of processes: far more than they need


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], devices: int, cwd, **variables: str) -> subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), **variables}
    for name in [n for n in env if n.startswith(("SLURM_", "OMPI_"))]:
        del env[name]  # the explicit options, not a cluster this test may run inside
    return subprocess.Popen([sys.executable, *command], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _distributed(address: str, i: int) -> list[str]:
    return ["--coordinator", address, "--num-processes", "2", "--process-id", str(i),
            "--distributed-timeout", "60"]


def _finish(processes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """Every process's (exit status, stdout, stderr); all are killed if one is late."""
    deadline = time.monotonic() + TIMEOUT
    done = []
    try:
        for p in processes:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            done.append((p.returncode, out, err))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return done


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One process of four devices, two processes of two devices (the command line),
    then two more (`mlspec.run` after `jax.distributed.initialize()`, seeds = 4)."""
    folder = tmp_path_factory.mktemp("distributed")
    (folder / "spec.mlspec").write_text(SPEC)
    run = ["-m", "mlspec", "run", "spec.mlspec"]
    address = f"127.0.0.1:{_free_port()}"
    started = time.perf_counter()
    one = _start([*run, "--out", "one", "--quiet"], 4, folder)
    # each process is told its own --out: only process 0's may be written
    pair = [_start([*run, "--out", f"two-{i}", *_distributed(address, i)], 2, folder)
            for i in (0, 1)]
    cli = _finish([one, *pair])
    address = f"127.0.0.1:{_free_port()}"
    (folder / "api.py").write_text(API)
    api = _finish([_start(["api.py", address, str(i), "spec.mlspec"], 2, folder)
                   for i in (0, 1)])
    for code, _, err in cli + api:
        assert code == 0, err[-3000:]
    seconds = time.perf_counter() - started
    return folder, cli, api, seconds


@pytest.mark.slow  # processes of forced devices, as test_devices; CI runs it
def test_two_processes_train_as_one_process_with_as_many_devices(trained):
    folder, _, _, _ = trained
    one = pd.read_csv(folder / "one" / "history.csv")
    two = pd.read_csv(folder / "two-0" / "history.csv")
    assert list(two.columns) == list(one.columns) and len(two) == len(one) == 5
    np.testing.assert_allclose(two.to_numpy(), one.to_numpy(), rtol=1e-5, atol=1e-7)
    assert two["train.loss"].iloc[-1] < two["train.loss"].iloc[0]  # it did train
    metrics = [json.loads((folder / run / "metrics.json").read_text()) for run in
               ("one", "two-0")]
    np.testing.assert_allclose(metrics[1]["valid"]["loss"], metrics[0]["valid"]["loss"],
                               rtol=1e-5)
    manifest = json.loads((folder / "two-0" / "manifest.json").read_text())
    assert manifest["device"].endswith("x4") and manifest["status"] == "completed"


@pytest.mark.slow  # processes of forced devices, as test_devices; CI runs it
def test_only_process_0_writes_the_run_folder_and_prints(trained):
    folder, cli, _, _ = trained
    (_, first_out, first_err), (_, second_out, second_err) = cli[1:]
    assert not (folder / "two-1").exists() and not (folder / "runs").exists()
    assert "final metrics after 40 steps" in first_out and "wrote two-0/" in first_out
    assert "Gloo" not in first_out  # gloo's notices on descriptor 1 are not the output
    assert second_out == ""
    assert "step" not in second_err and "Traceback" not in second_err  # no progress


@pytest.mark.slow  # processes of forced devices, as test_devices; CI runs it
def test_seeds_spread_over_every_process_s_devices_in_python(trained):
    """Each seed is the single run with that seed: seed 0's rows are the one-process run's."""
    folder, _, _, _ = trained
    history = pd.read_csv(folder / "seeds-0.csv")
    assert sorted(history["seed"].unique()) == [0, 1, 2, 3]
    # every process gets the whole result (gathered from the devices of both)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "seeds-1.csv"), history)
    one = pd.read_csv(folder / "one" / "history.csv")
    seed0 = history[history["seed"] == 0].drop(columns="seed").reset_index(drop=True)
    np.testing.assert_allclose(seed0.to_numpy(), one.to_numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("flags", "message"), [
    (["--coordinator", "127.0.0.1:1"], "--coordinator needs --num-processes and --process-id"),
    (["--distributed", "--num-processes", "2", "--process-id", "0"],
     "--num-processes, --process-id needs --coordinator"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"],
     "expected HOST:PORT"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
     "--process-id 2: expected 0 to 1"),
    (["--distributed", "--distributed-timeout", "0"], "expected seconds above 0"),
])
def test_options_that_do_not_go_together_are_a_usage_error(flags, message, write_spec,
                                                           capsys):
    spec = write_spec(SPEC)
    assert main(["run", str(spec), "--out", str(spec.parent / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlspec run: error: ") and message in err, err
    assert not (spec.parent / "out").exists()


def test_a_coordinator_nobody_reaches_is_a_clear_error_in_bounded_time(write_spec):
    spec = write_spec(SPEC)
    command = ["-m", "mlspec", "run", str(spec), "--out", str(spec.parent / "out"),
               "--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2",
               "--process-id", "1", "--distributed-timeout", "2"]
    [(code, out, err)] = _finish([_start(command, 1, spec.parent)])
    assert code == 2 and out == ""
    assert err.startswith("error: process 1 of 2: the distributed run did not start within "
                          "2 s: not every process reached the coordinator 127.0.0.1:"), err
    assert "Traceback" not in err and "Check failure" not in err
    assert not (spec.parent / "out").exists()


def test_devices_n_takes_as_many_of_every_process_s_devices():
    from types import SimpleNamespace

    from mlspec.runtime.device import choose

    devices = [SimpleNamespace(id=i, process_index=p) for p, i in
               [(1, 3), (0, 0), (1, 2), (0, 1), (1, 5), (0, 4)]]  # 2 processes, 3 each
    assert [d.id for d in choose(devices, 2, 6)] == [0, 1, 4, 2, 3, 5]
    assert [d.id for d in choose(devices, 2, 4)] == [0, 1, 2, 3]
    assert [d.id for d in choose(devices, 2, 2)] == [0, 2]
    assert choose(devices, 2, 3) == ("but over 2 processes it must be a multiple of 2 (each "
                                     "process training on as many of its devices), or all")
    assert choose(devices, 2, 8) == "but the 2 processes have 6 device(s) in all"
    uneven = devices[:5]  # process 1 has two
    assert choose(uneven, 2, 4) == [devices[1], devices[3], devices[2], devices[0]]
    assert choose(uneven, 2, 6) == "but the 2 processes have 5 device(s) in all"
    assert choose(devices[:4] + devices[5:], 2, 6) == \
        "but the 2 processes have 5 device(s) in all"
    lopsided = [devices[1], devices[3], devices[5], devices[0]]  # 3 and 1
    assert choose(lopsided, 2, 4) == \
        "but some of the 2 processes have fewer than 2 device(s)"
    # one process: its first devices, as they come
    assert choose(devices, 1, 2) == devices[:2]
    assert choose(devices, 1, 7) == "but this machine has 6 local device(s)"


@pytest.mark.slow  # processes of forced devices, as test_devices; CI runs it
def test_a_signal_to_one_process_stops_them_all_at_the_end_of_the_chunk(tmp_path):
    """Process 1 alone is signalled, after its first chunk: both stop there together
    (alone, process 0 would wait for it in the next chunk forever); process 0 writes the
    interrupted run, which `--resume` continues."""
    import signal
    import threading

    (tmp_path / "spec.mlspec").write_text(SPEC)
    address = f"127.0.0.1:{_free_port()}"
    run = ["-m", "mlspec", "run", "spec.mlspec"]
    pair = [_start([*run, "--out", "run-0", *_distributed(address, 0)], 2, tmp_path),
            # it says so and waits for a signal after its first chunk
            _start([*run, "--out", "run-1", *_distributed(address, 1)], 2, tmp_path,
                   **{PAUSE: "training"})]
    late = threading.Timer(TIMEOUT, lambda: [p.kill() for p in pair])
    late.start()
    try:
        seen = ""
        while "paused at training" not in seen:
            line = pair[1].stderr.readline()
            assert line, seen
            seen += line
        pair[1].send_signal(signal.SIGINT)
    finally:
        late.cancel()
        done = _finish(pair)
    (code0, out0, err0), (code1, out1, err1) = done
    assert (code0, code1) == (130, 130), (err0[-2000:], err1[-2000:])
    assert "interrupted at step 10; wrote run-0/" in err0 and out0 == "" and out1 == ""
    manifest = json.loads((tmp_path / "run-0" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["steps_done"] == 10
    assert not (tmp_path / "run-1").exists()
