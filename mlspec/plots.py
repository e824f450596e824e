"""PNG plots of a run: the history (one panel per metric, train and valid together), and
for 2-D inputs the decision regions of the model and of each first-layer hidden unit, as
the tutorial draws them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .files import atomic_write

GRID = 200


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write(path, buffer.getvalue())
    return path


LINE_STYLES = {"train": "--", "valid": "-", "test": ":"}


def plot_history(history, path: Path, member_columns=()) -> Path | None:
    """One panel per metric; train, valid (and test) share a panel. For seeds or a sweep
    (`member_columns` tell the members apart) a line per member and split: a colour per
    member, a line style per split."""
    plt = _pyplot()
    member_columns = list(member_columns)
    metrics = [c for c in history.columns if c != "step" and c not in member_columns]
    names = list(dict.fromkeys(c.rpartition(".")[2] for c in metrics))
    if not names or len(history) < 1:
        return None
    members = list(history.groupby(member_columns, sort=False)) if member_columns \
        else [((), history)]
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, names):
        lines = 0
        for i, (values, rows_of) in enumerate(members):
            values = values if isinstance(values, tuple) else (values,)
            who = " ".join(f"{k}={v}" for k, v in zip(member_columns, values))
            for column in metrics:
                if column.rpartition(".")[2] != name:
                    continue
                split = column.rpartition(".")[0]
                label = " ".join(x for x in (split, who) if x) or name
                style = {"color": colours[i % len(colours)]} if member_columns else {}
                ax.plot(rows_of["step"], rows_of[column], label=label,
                        linestyle=LINE_STYLES.get(split, "-") if member_columns else "-",
                        **style)
                lines += 1
        ax.set_title(name)
        ax.set_xlabel("step")
        if 0 < lines <= 12:
            ax.legend(fontsize="x-small" if member_columns else "small")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def _grid(x: np.ndarray):
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.02 * (hi - lo)
    a = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID)
    b = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID)
    aa, bb = np.meshgrid(a, b)
    return aa, bb, np.c_[aa.ravel(), bb.ravel()].astype(np.float32)


def plot_regions(result, x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    """The model's predictions over the inputs' box, the data on top."""
    plt = _pyplot()
    aa, bb, points = _grid(x)
    pred = result.predict(points).reshape(aa.shape)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.contourf(aa, bb, pred, alpha=0.35, cmap="coolwarm",
                levels=np.arange(pred.max() + 2) - 0.5 if pred.dtype.kind == "i" else 20)
    shown = slice(None, 2000)
    ax.scatter(x[shown, 0], x[shown, 1], c=y[shown].ravel(), s=6, cmap="coolwarm",
               edgecolors="none")
    ax.set_title(f"{result.program.name}: decision regions")
    out = _save(fig, path)
    plt.close(fig)
    return out


def _first_dense(result):
    import jax

    flat = jax.tree_util.tree_flatten_with_path(result.params)[0]
    kernels = [(p, leaf) for p, leaf in flat if getattr(p[-1], "key", None) == "kernel"
               and np.ndim(leaf) == 2]
    if not kernels:
        return None
    path, kernel = kernels[0]
    parent = result.params
    for key in path[:-1]:
        parent = parent[key.key]
    return np.asarray(kernel), np.asarray(parent.get("bias", np.zeros(kernel.shape[1])))


def plot_hidden_units(result, x: np.ndarray, path: Path) -> Path | None:
    """For each unit of the first dense layer, where its pre-activation is positive."""
    first = _first_dense(result)
    if first is None:
        return None
    kernel, bias = first
    plt = _pyplot()
    aa, bb, points = _grid(x)
    if result.normalizer is not None:
        points = (points - result.normalizer[0]) / result.normalizer[1]
    units = min(kernel.shape[1], 8)
    fig, axes = plt.subplots(1, units, figsize=(3.2 * units, 3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        on = (points @ kernel[:, i] + bias[i] >= 0).reshape(aa.shape)
        ax.contourf(aa, bb, on.astype(float), levels=[-0.5, 0.5, 1.5], cmap="coolwarm",
                    alpha=0.6)
        ax.set_title(f"hidden unit {i}")
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_names(result) -> list[str]:
    """The plots that fit the run, in the order they are drawn."""
    names = ["history.png"]
    if tuple(result.program.model.input_shape) == (2,):
        names.append("decision_regions.png")
        if _first_dense(result) is not None:
            names.append("hidden_units.png")
    return names


def _member_columns(result) -> list[str]:
    from .runner import _setting_column

    return [_setting_column(k) for k in result.members[0].settings] if result.members else []


def draw_all(result, out: Path, *, history=None, member_columns=None, suffix: str = "",
             should_stop=None) -> tuple[list[Path], list[str]]:
    """Every plot that fits the run (the history of all members; the regions of `result`,
    the best member of seeds or a sweep), each while `should_stop()` is false. Returns
    the files written and the names of the plots not drawn. `suffix` goes before `.png`
    (plots of a member other than the best)."""
    history = result.history if history is None else history
    member_columns = _member_columns(result) if member_columns is None else member_columns
    names = plot_names(result)
    data = None
    written = []
    for i, name in enumerate(names):
        if should_stop is not None and should_stop():
            return written, names[i:]
        path = out / name.replace(".png", f"{suffix}.png")
        if name == "history.png":
            written.append(plot_history(history, out / name, member_columns))
            continue
        if data is None:
            data = _training_rows(result)
        if name == "decision_regions.png":
            written.append(plot_regions(result, *data, path))
        else:
            written.append(plot_hidden_units(result, data[0], path))
    return [w for w in written if w is not None], []


def _training_rows(result):
    from .data.loading import load_data

    x, y = load_data(result.program.data)["train"]
    if result.normalizer is not None:  # plot in the data's own units
        x = x * result.normalizer[1] + result.normalizer[0]
    return x, y
