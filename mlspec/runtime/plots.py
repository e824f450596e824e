"""PNG plots of a run: the history (one panel per metric, train and valid together, with
the early stop and the best evaluation marked), and for 2-D inputs the decision regions of
the model and where each first-layer hidden unit is positive, as the tutorial draws them.

Every plot is a bare `matplotlib.figure.Figure` drawn by the Agg renderer: no pyplot (whose
import and global figure manager cost more than drawing), margins fixed in inches instead
of a tight layout (which draws the figure once more), images (`imshow`) rather than
contours. Each `plot_*` function returns the path written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mlspec.files import atomic_write

GRID = 200
POINTS = 2000
"""At most this many training rows are drawn over the regions."""
DPI = 100

LINE_STYLES = {"train": "--", "valid": "-", "test": ":"}
STOP_COLOUR = "0.35"
BEST_COLOUR = "#2ca02c"
DIVERGED_COLOUR = "#d62728"
CLASS_COLOURS = ["#3b6fb6", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f",
                 "#2e4057", "#b5651d", "#e377c2", "#7f7f7f"]
"""One colour per class (cycled past ten): the points in it, the regions in a light tint."""
UNIT_COLOURS = {"on": "#f4a261", "off": "#c9d6e8"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def _save(fig, path: Path) -> Path:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    atomic_write(path, buffer.getvalue())
    return path


def run_label(result) -> str:
    """The run's name for titles: the model's, with a sweep member's settings."""
    settings = " ".join(f"{k.rpartition('.')[2] if k != 'train.seed' else 'seed'}={v}"
                        for k, v in (result.settings or {}).items())
    if result.members:
        settings += f", best of {len(result.members)}"
    return f"{result.program.name} [{settings}]" if settings else result.program.name


def _model_note(result) -> str:
    """Which model a picture of the trained model shows, when it is not the last one."""
    if result.best_step is not None:
        return f" (best evaluation's model, step {result.best_step:,})"
    return ""


def feature_names(result) -> tuple[str, str]:
    """The names of the two input features: a CSV's columns, else x0 and x1 (as the data
    sources describe their inputs)."""
    names = result.program.data.info.feature_names if result.program.data else None
    return tuple(names[:2]) if names and len(names) >= 2 else ("x0", "x1")


def _tint(colour: str, amount: float = 0.7) -> np.ndarray:
    """`colour` mixed with white (amount 1: white), as RGB in [0, 1]."""
    from matplotlib.colors import to_rgb

    return 1 - (1 - np.asarray(to_rgb(colour))) * (1 - amount)


# ------------------------------------------------------------------------------ history


def _thin(steps: np.ndarray, values: np.ndarray, width: int = 500):
    """At most about 3 * `width` points of a line: of each of `width` buckets its first,
    lowest and highest point (a spike still shows). A panel is a few hundred pixels wide,
    and Agg spends its time on vertices that it cannot show apart."""
    n = len(steps)
    if n <= 3 * width or not np.isfinite(values).all():  # NaN and inf rows as they are
        return steps, values
    size = -(-n // width)
    padded = np.concatenate([values, np.repeat(values[-1:], width * size - n)])
    buckets = padded.reshape(width, size)
    starts = np.arange(width) * size
    keep = np.concatenate([starts, starts + buckets.argmin(axis=1),
                           starts + buckets.argmax(axis=1), [n - 1]])
    keep = np.unique(np.minimum(keep, n - 1))
    return steps[keep], values[keep]


def _isolated(values: np.ndarray) -> np.ndarray:
    """Where a finite value has no finite neighbour: a line through it draws nothing, so
    it needs a marker (a diverged run's only point before the NaNs, say)."""
    finite = np.isfinite(values)
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    return finite & ~before & ~after


def _member_label(columns: list[str], values: tuple) -> str:
    """A member's settings by the last part of each key (`learning_rate=0.01 h=4`), or by
    the whole key where two would read the same."""
    short = [c.rpartition(".")[2] for c in columns]
    names = short if len(set(short)) == len(short) else columns
    return " ".join(f"{k}={v}" for k, v in zip(names, values))


MEMBER_COLOURS = 20
"""Sweeps of up to this many members get a colour and a legend entry each; past it, the
best member is drawn in colour over the others in grey."""


def plot_history(history, path: Path, member_columns=(), *, title: str | None = None,
                 stopped_at: int | None = None, status: str | None = None,
                 best_step: int | None = None, total: int | None = None,
                 best_member: dict | None = None) -> Path | None:
    """One panel per metric; train, valid (and test) share a panel. For seeds or a sweep
    (`member_columns` tell the members apart) a line per member and split: a colour per
    member, a line style per split, one legend entry per member, and `best_member` (its
    settings by column) drawn thicker and named in the title. A single run's early stop
    (or divergence) at `stopped_at` is a dashed vertical line, the title saying how much
    of the planned `total` ran; the x axis shows the steps that ran. With `best_step`
    (early_stop(restore_best=true)) the best evaluation, whose model the run returns, is
    a dotted line with a dot on every curve. The legend goes in a free panel's place
    where it fits there, else right of the panels, the figure grown to hold it."""
    from matplotlib.lines import Line2D

    member_columns = list(member_columns)
    metrics = [c for c in history.columns if c != "step" and c not in member_columns]
    names = list(dict.fromkeys(c.rpartition(".")[2] for c in metrics))
    if not names or len(history) < 1:
        return None
    from matplotlib import colormaps, rcParams

    members = list(history.groupby(member_columns, sort=False)) if member_columns \
        else [((), history)]
    members = [(v if isinstance(v, tuple) else (v,), rows_of) for v, rows_of in members]
    best_values = tuple(best_member[c] for c in member_columns) \
        if best_member and all(c in best_member for c in member_columns) else None
    best_index = next((i for i, (v, _) in enumerate(members) if v == best_values), None)
    many = len(members) > MEMBER_COLOURS
    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    colours = cycle if len(members) <= 10 else [colormaps["tab20"](k) for k in range(20)]

    def colour(i):
        if many:
            return cycle[0] if i == best_index else "0.7"
        return colours[i % len(colours)]

    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    panel_w, panel_h, gap_w, gap_h = 2.6, 1.75, 0.7, 0.85  # inches
    left, right, top, bottom = 0.6, 0.15, 0.75, 0.5
    panels_w = left + cols * panel_w + (cols - 1) * gap_w
    height = top + bottom + rows * panel_h + (rows - 1) * gap_h
    fig = _figure(panels_w + right, height)
    grid = fig.add_gridspec(rows, cols, wspace=gap_w / panel_w, hspace=gap_h / panel_h)

    def lay_out(width):  # margins in inches for a figure `width` wide
        fig.set_size_inches(width, height)
        grid.update(left=left / width, right=panels_w / width, bottom=bottom / height,
                    top=1 - top / height)
        for ax in fig.axes:  # drawn panels do not follow the grid by themselves
            ax.set_position(ax.get_subplotspec().get_position(fig))

    lay_out(panels_w + right)
    axes = [fig.add_subplot(grid[i // cols, i % cols]) for i in range(len(names))]
    marks = not member_columns
    splits = []
    for ax, name in zip(axes, names):
        for i, (values, rows_of) in enumerate(members):
            steps = rows_of["step"].to_numpy()
            for column in metrics:
                if column.rpartition(".")[2] != name:
                    continue
                split = column.rpartition(".")[0]
                splits.append(split)
                xs, ys = _thin(steps, rows_of[column].to_numpy())
                style = {"label": split or name, "linestyle": "-", "linewidth": 1.2}
                if member_columns:
                    best = i == best_index
                    style = {"label": "_member", "color": colour(i),
                             "linestyle": LINE_STYLES.get(split, "-"),
                             "linewidth": 2.0 if best else 1.0, "zorder": 3 if best else 2}
                alone = _isolated(ys)
                line, = ax.plot(xs, ys, marker="o" if alone.any() else "None", markersize=3,
                                markevery=alone, **style)
                if marks and best_step is not None:
                    at = np.flatnonzero(steps == best_step)
                    if len(at):
                        ax.plot([best_step], [rows_of[column].iloc[at[0]]], "o",
                                color=line.get_color(), markersize=4)
        if marks and stopped_at is not None and status in ("early_stopped", "diverged"):
            diverged = status == "diverged"
            ax.axvline(stopped_at, color=DIVERGED_COLOUR if diverged else STOP_COLOUR,
                       linestyle="--", linewidth=1,
                       label=f"{'diverged' if diverged else 'early stop'} at step "
                             f"{stopped_at:,}")
        if marks and best_step is not None:
            ax.axvline(best_step, color=BEST_COLOUR, linestyle=":", linewidth=1.2,
                       label=f"best evaluation, step {best_step:,} (returned)")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("step")
        ax.tick_params(labelsize="small")

    if member_columns:  # a key to the line styles, then the members by colour
        handles = [Line2D([], [], color="0.3", linestyle=LINE_STYLES.get(s, "-"), label=s)
                   for s in dict.fromkeys(splits)]
        shown = [best_index] if many and best_index is not None else \
            [] if many else range(len(members))
        for i in shown:
            label = _member_label(member_columns, members[i][0])
            handles.append(Line2D([], [], color=colour(i), label=label + (
                " (best)" if i == best_index else ""),
                linewidth=2.0 if i == best_index else 1.0))
        if many:
            handles.append(Line2D([], [], color="0.7", label=f"the other "
                                  f"{len(members) - len(shown)} members"))
        labels = [h.get_label() for h in handles]
    else:
        handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        _place_legend(fig, grid, rows, cols, len(names), handles, labels, lay_out,
                      panels_w, height)

    heading = f"{title}: training history" if title else "training history"
    if member_columns:
        heading += f", {len(members)} members"
        if best_index is not None:
            heading += f"\nbest: {_member_label(member_columns, members[best_index][0])}"
    elif stopped_at is not None and status in ("early_stopped", "diverged"):
        what = "diverged" if status == "diverged" else "stopped early"
        planned = f" of {total:,} planned" if total is not None and total > stopped_at \
            else ""
        heading += f"\n{what} at step {stopped_at:,}{planned}"
    fig.suptitle(heading, fontsize="large" if "\n" not in heading else "medium")
    return _save(fig, path)


def _place_legend(fig, grid, rows, cols, used, handles, labels, lay_out, panels_w, height):
    """The figure's one legend (every panel has the same lines): in the first free
    panel's place when it fits there, else right of the panels (in as many columns as
    its height needs), the figure widened to hold it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    options = {"frameon": False, "fontsize": "small"}
    if used < rows * cols:
        cell = grid[used // cols, used % cols].get_position(fig)
        legend = fig.legend(handles, labels, loc="center", bbox_to_anchor=cell, **options)
        box = legend.get_window_extent(renderer).transformed(fig.transFigure.inverted())
        if box.width <= cell.width * 1.15 and box.height <= cell.height * 1.3:
            return  # the free place spans the gaps around it too
        legend.remove()
    room = height - 0.3  # inches, less a margin
    ncol = 1
    while True:
        legend = fig.legend(handles, labels, loc="center left", ncol=ncol, **options)
        box = legend.get_window_extent(renderer)
        if box.height / fig.dpi <= room or ncol >= len(handles):
            break
        legend.remove()
        ncol += 1
    width = panels_w + 0.25 + box.width / fig.dpi + 0.1
    lay_out(width)
    legend.set_bbox_to_anchor(((panels_w + 0.25) / width, 0.5), fig.transFigure)


# --------------------------------------------------------------------------- regions


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


def plot_regions(result, x: np.ndarray, y: np.ndarray, path: Path) -> Path:
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
    fig = _figure(5.6, 5.0)
    ax = fig.add_axes((0.12, 0.1, 0.84 if info.target == "class" else 0.68, 0.76))
    if info.target == "class":
        classes = max(info.classes or 2, int(pred.max()) + 1)
        colours = [CLASS_COLOURS[k % len(CLASS_COLOURS)] for k in range(classes)]
        tints = np.stack([_tint(c) for c in colours])
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
    ax.set_title(f"{run_label(result)}: {what}{_model_note(result)}\npoints: {rows} of the "
                 "train split", fontsize="medium")
    return _save(fig, path)


def _first_dense(result):
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


def plot_hidden_units(result, x: np.ndarray, path: Path) -> Path | None:
    """For each unit of the first dense layer (up to 8), where its pre-activation
    w·x + b is positive, over the inputs' box."""
    first = _first_dense(result)
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
    fig = _figure(width, height)
    grid = fig.add_gridspec(rows, cols, left=left / width, right=1 - right / width,
                            bottom=bottom / height, top=1 - top / height,
                            wspace=gap_w / panel_w, hspace=gap_h / panel_h)
    colours = np.stack([_tint(UNIT_COLOURS["off"], 0), _tint(UNIT_COLOURS["on"], 0)])
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
                 f"{_model_note(result)}",
                 fontsize="medium")
    fig.legend([Patch(facecolor=colours[1]), Patch(facecolor=colours[0])],
               ["pre-activation w·x + b ≥ 0", "pre-activation < 0"], loc="lower center",
               ncol=2, fontsize="small", frameon=False)
    return _save(fig, path)


# ------------------------------------------------------------------------------- all


def plot_names(result) -> list[str]:
    """The plots that fit the run, in the order they are drawn."""
    names = ["history.png"]
    info = result.program.data.info if result.program.data else None
    if tuple(result.program.model.input_shape) == (2,) and info is not None:
        if info.target == "class" or info.target_dim == 1:  # one value to colour by
            names.append("decision_regions.png")
        if _first_dense(result) is not None:
            names.append("hidden_units.png")
    return names


def _member_columns(result) -> list[str]:
    from mlspec.semantics.sweep import setting_column

    return [setting_column(k) for k in result.members[0].settings] if result.members else []


def _best_member(result, suffix: str) -> dict | None:
    """The best member's settings by history column: the first of the ranked members, or
    the result's own (a loaded run's best member; `suffix` is of any other)."""
    from mlspec.semantics.sweep import setting_column

    settings = result.members[0].settings if result.members else \
        None if suffix else result.settings
    return {setting_column(k): v for k, v in settings.items()} if settings else None


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
            single = not member_columns
            written.append(plot_history(
                history, out / name, member_columns,
                title=result.program.name if not single else run_label(result),
                stopped_at=result.stopped_at if single else None,
                status=result.status, best_step=result.best_step if single else None,
                total=result.trainer.schedule.total if single else None,
                best_member=_best_member(result, suffix)))
            continue
        if data is None:
            data = _training_rows(result)
        if name == "decision_regions.png":
            written.append(plot_regions(result, *data, path))
        else:
            written.append(plot_hidden_units(result, data[0], path))
    return [w for w in written if w is not None], []


def _training_rows(result):
    from mlspec.runtime.loading import load_data

    x, y = load_data(result.program.data)["train"]
    if result.normalizer is not None:  # plot in the data's own units
        x = x * result.normalizer[1] + result.normalizer[0]
    return x, y
