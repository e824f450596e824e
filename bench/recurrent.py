"""Is flax's `nn.RNN` (a `lax.scan` over time) reasonable inside mlspec's training scan?

One workload: the 8x8 digits as 8 steps of 8 pixels, `lstm(H)` or `gru(H)` then
`dense(classes)`, full-batch adam for `--steps` steps. Three ways, each timed with
bench/timing.py (compile apart from execution):

- mlspec: the spec through `mlspec.run` (nn.RNN under the trainer's scan over steps);
- scan: hand-written, the same flax module and optax in one jitted `lax.scan` over the
  steps (what mlspec does, without mlspec);
- unrolled: hand-written, the cell called once per time step in a Python loop (no scan
  over time), the same parameters.

Usage: python bench/recurrent.py [--steps 300] [--features 32] [--cell lstm]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SPEC = """model seq {{
    reshape([8, 8]) -> {cell}({features}) -> dense(classes)
}}
data {{ source = digits }}
train {{
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=0.01)
    steps      = {steps}
    eval_every = {steps}
}}
"""


def way_mlspec(cell: str, features: int, steps: int) -> float:
    import mlspec

    result = mlspec.run(mlspec.parse(SPEC.format(cell=cell, features=features, steps=steps)))
    return float(result.history["train.loss"].iloc[-1])


def way_hand(cell: str, features: int, steps: int, unrolled: bool) -> float:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = jnp.asarray(digits.data.reshape(-1, 8, 8), jnp.float32)
    y = jnp.asarray(digits.target, jnp.int32)
    Cell = nn.LSTMCell if cell == "lstm" else nn.GRUCell

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            if unrolled:
                step = Cell(features)
                carry = step.initialize_carry(jax.random.PRNGKey(0), x[:, 0].shape)
                for t in range(x.shape[1]):
                    carry, h = step(carry, x[:, t])
            else:
                h = nn.RNN(Cell(features))(x)[:, -1]
            return nn.Dense(10)(h)

    net = Net()
    params = net.init(jax.random.PRNGKey(0), x[:2])
    optimizer = optax.adam(0.01)

    def loss_of(p):
        return optax.softmax_cross_entropy_with_integer_labels(net.apply(p, x), y).mean()

    def step(state, _):
        p, opt = state
        loss, grads = jax.value_and_grad(loss_of)(p)
        updates, opt = optimizer.update(grads, opt, p)
        return (optax.apply_updates(p, updates), opt), loss

    @jax.jit
    def train(p):
        return jax.lax.scan(step, (p, optimizer.init(p)), None, length=steps)[1]

    return float(train(params)[-1])


def main(argv: list[str] | None = None) -> int:
    from timing import JitTimer

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    args = parser.parse_args(argv)
    ways = {
        "mlspec": lambda: way_mlspec(args.cell, args.features, args.steps),
        "scan": lambda: way_hand(args.cell, args.features, args.steps, unrolled=False),
        "unrolled": lambda: way_hand(args.cell, args.features, args.steps, unrolled=True),
    }
    for name, way in ways.items():
        start = time.perf_counter()
        with JitTimer() as timer:
            loss = way()
        print(json.dumps({"way": name, "cell": args.cell, "steps": args.steps,
                          "total_s": round(time.perf_counter() - start, 2),
                          "compile_s": round(timer.compile_s, 2),
                          "exec_s": round(timer.exec_s, 2),
                          "ms_per_step": round(1000 * timer.exec_s / args.steps, 2),
                          "final_loss": round(loss, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
