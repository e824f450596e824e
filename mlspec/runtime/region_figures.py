"""The figures of a model over its 2-D inputs: its decision regions (or predictions) with
the training rows on top, and where each first-layer hidden unit is positive, as the
tutorial draws them."""

from __future__ import annotations

import math

import numpy as np

from mlspec.runtime.figures import (
    CLASS_COLOURS,
    GRID,
    POINTS,
    UNIT_COLOURS,
    feature_names,
    figure,
    model_note,
    run_label,
    tint,
)


def _grid(x: np.ndarray):
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.02 * (hi - lo)
    a = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID)
    b = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID)
    aa, bb = np.meshgrid(a, b)
    extent = (a[0], a[-1], b[0], b[-1])
    return extent, np.c_[aa.ravel(), bb.ravel()].astype(np.float32)


def _predict(result, points: np.ndarray) -> np.ndarray:
    """`result.predict(points)` as one compiled program, kept for the process (op by op,
    a fresh process compiles a small program for every operation of the model)."""
    import jax

    from mlspec.compiler.trainer import shared_jit
    from mlspec.runtime.predict import model_input

    trainer = result.trainer

    def predict(params, model_state, x):
        return trainer.data_loss.predict(trainer.apply(params, model_state, x)[0])

    fn = shared_jit(trainer, "plots.predict", lambda: jax.jit(predict))
    return np.asarray(fn(result.params, result.state["model_state"],
                         model_input(result, points)))


def _axes_labels(ax, result, y: bool = True) -> None:
    first, second = feature_names(result)
    ax.set_xlabel(first)
    if y:
        ax.set_ylabel(second)


def regions_figure(result, x: np.ndarray, y: np.ndarray):
    """The model's predictions over the inputs' box (a light tint of each class's colour,
    or a colour scale for real targets), with up to POINTS training rows on top in the
    colour of their true class (or value)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    extent, points = _grid(x)
    pred = _predict(result, points).reshape(GRID, GRID)
    shown = np.unique(np.linspace(0, len(x) - 1, min(len(x), POINTS)).astype(int))
    xs, ys = x[shown], np.asarray(y)[shown].ravel()  # rows spread over the split
    info = result.program.data.info
    fig = figure(5.6, 5.0)
    ax = fig.add_axes((0.12, 0.1, 0.84 if info.target == "class" else 0.68, 0.76))
    if info.target == "class":
        classes = max(info.classes or 2, int(pred.max()) + 1)
        colours = [CLASS_COLOURS[k % len(CLASS_COLOURS)] for k in range(classes)]
        tints = np.stack([tint(c) for c in colours])
        ax.imshow(tints[pred.astype(int)], origin="lower", extent=extent, aspect="auto",
                  interpolation="nearest")
        ax.scatter(xs[:, 0], xs[:, 1], c=np.asarray(colours)[ys.astype(int)], s=5,
                   linewidths=0)
        names = info.class_names or tuple(f"class {k}" for k in range(classes))
        handles = [(Patch(facecolor=tints[k], edgecolor="0.6"),
                    Line2D([], [], marker="o", linestyle="", color=colours[k],
                           markersize=4)) for k in range(classes)]
        from matplotlib.legend_handler import HandlerTuple

        ax.legend(handles, names, handler_map={tuple: HandlerTuple(ndivide=None)},
                  title="predicted (area) / true (points)", fontsize="small",
                  title_fontsize="small", loc="best", framealpha=0.85)
    else:
        from matplotlib.colors import Normalize

        norm = Normalize(min(pred.min(), ys.min()), max(pred.max(), ys.max()))
        image = ax.imshow(pred, origin="lower", extent=extent, aspect="auto",
                          cmap="viridis", norm=norm, alpha=0.6, interpolation="nearest")
        ax.scatter(xs[:, 0], xs[:, 1], c=ys, cmap="viridis", norm=norm, s=6,
                   edgecolors="k", linewidths=0.2)
        bar = fig.colorbar(image, cax=fig.add_axes((0.83, 0.1, 0.03, 0.76)))
        bar.set_label("prediction (area) / target (points)")
    _axes_labels(ax, result)
    what = "decision regions" if info.target == "class" else "predictions"
    rows = f"{len(xs):,} of {len(x):,} rows" if len(xs) < len(x) else f"the {len(x):,} rows"
    ax.set_title(f"{run_label(result)}: {what}{model_note(result)}\npoints: {rows} of the "
                 "train split", fontsize="medium")
    return fig


def first_dense(result):
    """(kernel, bias, layer name) of the first dense layer: its params' first 2-D kernel."""
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
    name = "/".join(str(key.key) for key in path[:-1])
    return (np.asarray(kernel), np.asarray(parent.get("bias", np.zeros(kernel.shape[1]))),
            name)


def hidden_units_figure(result, x: np.ndarray):
    """For each unit of the first dense layer (up to 8), where its pre-activation
    w·x + b is positive, over the inputs' box; None without a dense layer."""
    first = first_dense(result)
    if first is None:
        return None
    from matplotlib.patches import Patch

    kernel, bias, layer = first
    extent, points = _grid(x)
    if result.normalizer is not None:  # the layer sees standardized features
        points = (points - result.normalizer[0]) / result.normalizer[1]
    total = kernel.shape[1]
    units = min(total, 8)
    cols = min(units, 4)
    rows = math.ceil(units / cols)
    panel_w, panel_h, gap_w, gap_h = 2.5, 2.2, 0.45, 0.7  # inches
    left, right, top, bottom = 0.65, 0.2, 0.7, 0.85
    width = left + right + cols * panel_w + (cols - 1) * gap_w
    height = top + bottom + rows * panel_h + (rows - 1) * gap_h
    fig = figure(width, height)
    grid = fig.add_gridspec(rows, cols, left=left / width, right=1 - right / width,
                            bottom=bottom / height, top=1 - top / height,
                            wspace=gap_w / panel_w, hspace=gap_h / panel_h)
    colours = np.stack([tint(UNIT_COLOURS["off"], 0), tint(UNIT_COLOURS["on"], 0)])
    for i in range(units):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        on = (points @ kernel[:, i] + bias[i] >= 0).reshape(GRID, GRID)
        ax.imshow(colours[on.astype(int)], origin="lower", extent=extent, aspect="auto",
                  interpolation="nearest")
        ax.set_title(f"unit {i}", fontsize="medium")
        _axes_labels(ax, result, y=i % cols == 0)
        ax.tick_params(labelsize="small")
    shown = f"units 0-{units - 1} of {total}" if units < total else f"{total} units"
    fig.suptitle(f"{run_label(result)}: first dense layer ({layer}), {shown}"
                 f"{model_note(result)}",
                 fontsize="medium")
    fig.legend([Patch(facecolor=colours[1]), Patch(facecolor=colours[0])],
               ["pre-activation w·x + b ≥ 0", "pre-activation < 0"], loc="lower center",
               ncol=2, fontsize="small", frameon=False)
    return fig
