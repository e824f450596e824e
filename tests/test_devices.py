"""Several devices give the history of one: data parallel for a single run, members
spread over the devices for seeds and sweeps."""

from __future__ import annotations

import os
import subprocess
import sys

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
from mlspec.runner import Training
from mlspec.sweep import expand
members = expand(spec, {"train.seeds": 4, "train.devices": 4})
training = Training(members[0].program, members=members)
kernel = training.state["params"]["Dense_0"]["kernel"]
assert kernel.shape[0] == 4 and kernel.sharding.spec[0] == "batch", kernel.sharding
difference = (seeds.history - spread.history).abs().max().max()
assert difference < 1e-5, difference
print("ok")
"""


def test_four_devices_give_the_same_history():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
