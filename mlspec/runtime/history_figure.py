"""The history figure: one panel per metric, train and valid together, with the early
stop and the best evaluation marked; for seeds or a sweep a line per member."""

from __future__ import annotations

import math

import numpy as np

from mlspec.runtime.figures import BEST_COLOUR, DIVERGED_COLOUR, LINE_STYLES, STOP_COLOUR, figure


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


def _split_and_metric(column: str) -> tuple[str, str]:
    """`valid.accuracy` -> (valid, accuracy); `valid.digit.accuracy` -> (valid,
    digit.accuracy): one output's metric has a panel of its own."""
    split, dot, metric = column.partition(".")
    return (split, metric) if dot else ("", column)


MEMBER_COLOURS = 20
"""Sweeps of up to this many members get a colour and a legend entry each; past it, the
best member is drawn in colour over the others in grey."""


def history_figure(history, member_columns=(), *, title: str | None = None,
                   stopped_at: int | None = None, status: str | None = None,
                   best_step: int | None = None, total: int | None = None,
                   best_member: dict | None = None):
    """One panel per metric; train, valid (and test) share a panel. For seeds or a sweep
    (`member_columns` tell the members apart) a line per member and split: a colour per
    member, a line style per split, one legend entry per member, and `best_member` (its
    settings by column) drawn thicker and named in the title. A single run's early stop
    (or divergence) at `stopped_at` is a dashed vertical line, the title saying how much
    of the planned `total` ran; the x axis shows the steps that ran. With `best_step`
    (early_stop(restore_best=true)) the best evaluation, whose model the run returns, is
    a dotted line with a dot on every curve. The legend goes in a free panel's place
    where it fits there, else right of the panels, the figure grown to hold it. None
    without a metric or a row to draw."""
    from matplotlib.lines import Line2D

    member_columns = list(member_columns)
    metrics = [c for c in history.columns if c != "step" and c not in member_columns]
    names = list(dict.fromkeys(_split_and_metric(c)[1] for c in metrics))
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
    fig = figure(panels_w + right, height)
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
                split, metric = _split_and_metric(column)
                if metric != name:
                    continue
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
    return fig


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
