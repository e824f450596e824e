"""Keras 3 (JAX backend) and PyTorch (eager) versions of W1, W1b, W2 and W3.

run.py only calls these when the package can be imported (else it prints "not installed"
rows); neither is a dependency of mlspec. Measured with keras 3.15.1 and torch 2.13.0+cpu
(`pip install keras torch==2.13.0`). Neither has a separate compile step worth timing: Keras
compiles inside `fit` and PyTorch eager does not compile, so only `total_s` (wall time of
the whole run, data generation included) and `train_s` (the training loop alone) are
reported. Differences from the jax ways: Keras evaluates the train metrics on the batch
during the step and the valid metrics once per epoch (= per step for full-batch W1/W2,
per epoch for W3), and does not drop the last partial batch (391 steps per W3 epoch).
"""

from __future__ import annotations

import os
from typing import Any

from workloads import Sizes, hill_data, logit_data, mlp_data, now


def _data(workload: str, sizes: Sizes):
    if workload in ("W1", "W1b"):
        return hill_data()
    if workload == "W2":
        return logit_data()
    if workload == "W3":
        return mlp_data(sizes.mlp_n)
    raise KeyError(workload)


# ------------------------------------------------------------------------------ Keras


def way_keras(workload: str, sizes: Sizes) -> dict[str, Any]:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    t0 = now()
    (x, y), (xv, yv) = _data(workload, sizes)
    layers = keras.layers
    if workload in ("W1", "W1b"):
        model = keras.Sequential([keras.Input((2,)), layers.Dense(2, activation="sigmoid"),
                                  layers.Dense(2)])
        optimizer = keras.optimizers.RMSprop(learning_rate=0.01, rho=0.9, epsilon=1e-8)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
        epochs, batch = sizes.hill_steps, len(x)
    elif workload == "W2":
        model = keras.Sequential([keras.Input((100,)), layers.Dense(1)])
        optimizer = keras.optimizers.SGD(learning_rate=2.0)
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]
        epochs, batch = sizes.logit_steps, len(x)
    else:
        model = keras.Sequential([keras.Input((100,)), layers.Dense(256, activation="relu"),
                                  layers.Dense(256, activation="relu"), layers.Dense(1)])
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]
        epochs, batch = sizes.mlp_epochs, 256
    y_fit = y if workload in ("W1", "W1b") else y.astype("float32")
    yv_fit = yv if workload in ("W1", "W1b") else yv.astype("float32")
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=True)
    validation = None if workload == "W1b" else (xv, yv_fit)
    t1 = now()
    model.fit(x, y_fit, batch_size=batch, epochs=epochs, validation_data=validation,
              shuffle=workload == "W3", verbose=0)
    train_s = now() - t1
    total_s = now() - t0
    train_acc = model.evaluate(x, y_fit, batch_size=4096, verbose=0, return_dict=True)
    valid_acc = model.evaluate(xv, yv_fit, batch_size=4096, verbose=0, return_dict=True)
    return {"total_s": total_s, "train_s": train_s, "train_acc": train_acc["accuracy"],
            "valid_acc": valid_acc["accuracy"], "note": f"keras {keras.__version__}"}


# ---------------------------------------------------------------------------- PyTorch


def way_torch(workload: str, sizes: Sizes) -> dict[str, Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    t0 = now()
    (x, y), (xv, yv) = _data(workload, sizes)
    x, xv = torch.from_numpy(x), torch.from_numpy(xv)
    y, yv = torch.from_numpy(y).long(), torch.from_numpy(yv).long()
    if workload in ("W1", "W1b"):
        model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 2))
        optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9, eps=1e-8)
        ce = nn.CrossEntropyLoss()

        def loss_of(out, target):
            return ce(out, target)

        def predict(out):
            return out.argmax(dim=-1)
    else:
        if workload == "W2":
            model = nn.Sequential(nn.Linear(100, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
        else:
            model = nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 256),
                                  nn.ReLU(), nn.Linear(256, 1))
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        bce = nn.BCEWithLogitsLoss()

        def loss_of(out, target):
            return bce(out[:, 0], target.float())

        def predict(out):
            return (out[:, 0] >= 0).long()

    def stats(xs, target, extra):
        with torch.no_grad():
            out = model(xs)
            pred = predict(out).bool()
            t = target.bool()
            row = [loss_of(out, target), (pred == t).float().mean()]
            if extra:
                row += [(pred & ~t).float().mean(), (~pred & t).float().mean(),
                        pred.float().mean()]
            return torch.stack(row)

    def step(xs, target):
        optimizer.zero_grad()
        loss_of(model(xs), target).backward()
        optimizer.step()

    history = []
    t1 = now()
    if workload == "W3":
        per_epoch = len(x) // 256
        t = 0
        for _ in range(sizes.mlp_epochs):
            order = torch.randperm(len(x))
            for i in range(per_epoch):
                if t % 100 == 0:
                    history.append((stats(x, y, False), stats(xv, yv, False)))
                rows = order[i * 256:(i + 1) * 256]
                step(x[rows], y[rows])
                t += 1
    else:
        steps = sizes.hill_steps if workload in ("W1", "W1b") else sizes.logit_steps
        for _ in range(steps):
            if workload != "W1b":
                history.append((stats(x, y, True), stats(xv, yv, True)))
            step(x, y)
    final = (stats(x, y, False), stats(xv, yv, False))
    if history:
        torch.stack([torch.cat(h) for h in history]).numpy()
    train_s = now() - t1
    return {"total_s": now() - t0, "train_s": train_s, "train_acc": float(final[0][1]),
            "valid_acc": float(final[1][1]), "note": f"torch {torch.__version__}"}
