"""The work of `mlspec run specs/hill.mlspec`, hand-written as a script in the tutorial's
style (flax.linen + optax, one jitted lax.scan with train and valid metrics every step;
bench/workloads.py's W1 `hand` way): train, print the final metrics, write history.csv,
the parameters and three PNG plots (the history as `DataFrame.plot(subplots=True)`, the
decision regions and each hidden unit's half-plane as the tutorial's scatter plots of a
100 x 100 grid).

    python bench/hill_by_hand.py OUT_FOLDER [--strong] [--cache DIR]

`--strong` trains with bench/workloads.py's strongest hand-written W1 function instead of
the tutorial's: optax's integer-label loss and the train metrics from the logits of the
gradient's own forward pass (as mlspec computes them). `--cache DIR` turns on jax's
persistent compilation cache in DIR for every program (one line of jax configuration).

bench/first_command.py times it against `mlspec run` in fresh processes.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def main(out: Path, strong: bool = False, cache: str | None = None) -> None:
    import jax

    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    import jax.numpy as jnp
    import matplotlib
    import numpy as np
    import pandas as pd
    from flax import serialization

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import workloads as W

    out.mkdir(parents=True, exist_ok=True)
    setup = W.hand_setup("W1", W.FULL, **({"metrics": "aux", "labels": "integer"} if strong
                                          else {}))
    (x, y), (xv, yv) = setup.load()
    args = [jnp.asarray(a) for a in (x, y, xv, yv)]
    init_key, _, _ = W.keys(setup.seed)
    params = setup.model.init(init_key, args[0][:1])
    params, (train_h, valid_h), final = jax.jit(setup.make_train())(params, *args)
    train_h, valid_h, final = jax.device_get((train_h, valid_h, final))
    history = pd.concat([pd.DataFrame(train_h).add_prefix("train_"),
                         pd.DataFrame(valid_h).add_prefix("valid_")], axis=1)
    print(pd.Series({f"{split}_{k}": float(v) for split, row in zip(("train", "valid"), final)
                     for k, v in row.items()}))
    history.to_csv(out / "history.csv")
    (out / "params.msgpack").write_bytes(serialization.to_bytes(params))

    history.plot(subplots=True, layout=(2, 5), figsize=(15, 5))
    plt.savefig(out / "history.png")
    plt.close("all")

    grid = np.linspace(0, 1, 100)
    test_x = np.dstack(np.meshgrid(grid, grid)).reshape(-1, 2).astype(np.float32)
    test_pred = np.asarray(setup.model.apply(params, test_x).argmax(-1)) == 1
    fig, ax = plt.subplots()
    ax.scatter(test_x[test_pred, 0], test_x[test_pred, 1], color="red", s=10)
    ax.scatter(test_x[~test_pred, 0], test_x[~test_pred, 1], color="blue", s=10)
    fig.savefig(out / "decision_regions.png")
    plt.close(fig)

    dense = params["params"]["Dense_0"]
    hidden = np.asarray(test_x @ dense["kernel"] + dense["bias"]) >= 0.0
    fig, axes = plt.subplots(ncols=2, figsize=(10, 4))
    for i, ax in enumerate(axes):
        ax.scatter(test_x[hidden[:, i], 0], test_x[hidden[:, i], 1], color="red", s=10)
        ax.scatter(test_x[~hidden[:, i], 0], test_x[~hidden[:, i], 1], color="blue", s=10)
    fig.savefig(out / "hidden_units.png")
    plt.close(fig)


if __name__ == "__main__":
    flags = sys.argv[2:]
    main(Path(sys.argv[1]), strong="--strong" in flags,
         cache=flags[flags.index("--cache") + 1] if "--cache" in flags else None)
