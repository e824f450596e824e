"""Several devices give the history of one: data parallel for a single run, members
spread over the devices for seeds and sweeps."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPT = """
import jax, mlspec
assert jax.device_count() == 4, jax.devices()
spec = mlspec.parse('''
model net {
    dense(16) -> relu
    dense(classes)
}
data {
    train = hill(n=2000, seed=0)
    valid = hill(n=402, seed=1)
}
train {
    loss       = softmax_cross_entropy + 1e-4 * l2
    optimizer  = adam(learning_rate=0.01)
    steps      = 60
    batch      = 200
    eval_every = 10
    metrics    = [accuracy, weight_mean, grad_norm]
}
''')
one = mlspec.run(spec)
for devices in (4, "all"):
    many = mlspec.run(spec, {"train.devices": devices})
    assert len(many.params["Dense_0"]["kernel"].sharding.device_set) == 4
    difference = (one.history - many.history).abs().max().max()
    assert difference < 1e-5, difference
# a sweep spreads its members over the devices instead
seeds = mlspec.run(spec, {"train.seeds": 4})
spread = mlspec.run(spec, {"train.seeds": 4, "train.devices": 4})
from mlspec.runtime.training import Training
from mlspec.semantics.sweep import expand
members = expand(spec, {"train.seeds": 4, "train.devices": 4})
training = Training(members[0].program, members=members)
kernel = training.state["params"]["Dense_0"]["kernel"]
assert kernel.shape[0] == 4 and kernel.sharding.spec[0] == "batch", kernel.sharding
difference = (seeds.history - spread.history).abs().max().max()
assert difference < 1e-5, difference
print("ok")
"""


@pytest.mark.slow  # seconds of training or subprocesses; CI runs it
def test_four_devices_give_the_same_history():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


DEVICES_SPEC = """\
model net {
    dense(classes)
}
data {
    train = hill(n=100)
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    steps     = 2
    devices   = 1000
}
"""


def test_more_devices_than_the_machine_has_is_an_error_at_the_setting(tmp_path):
    import pytest

    import mlspec
    from mlspec.semantics.overrides import parse_override

    path = tmp_path / "s.mlspec"
    path.write_text(DEVICES_SPEC)
    with pytest.raises(mlspec.SpecError, match="devices = 1000, but this machine has") as info:
        mlspec.run(mlspec.load(path))
    head, line, caret = info.value.render().splitlines()
    assert head.startswith(f"{path}:11:17: error: ") and line == "        devices   = 1000"
    assert caret == "    " + " " * 16 + "^^^^"
    # given by --set, it is shown in the override's text
    path.write_text(DEVICES_SPEC.replace("    devices   = 1000\n", ""))
    key, value = parse_override("train.devices=1000")
    with pytest.raises(mlspec.SpecError) as info:
        mlspec.run(mlspec.load(path), {key: value})
    assert info.value.render().startswith("--set train.devices:1:1: error: devices = 1000")
