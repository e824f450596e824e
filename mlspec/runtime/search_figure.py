"""The figure of a search: its metric against each searched axis, one panel per axis, a
point per trial (completed ones filled, pruned ones hollow, the best ringed), a log x axis
for a log-uniform axis and the values as categories for a choice or list."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlspec.runtime.figures import BEST_COLOUR, figure

COMPLETED = "#3b6fb6"
PRUNED = "0.55"


def search_figure(trials: pd.DataFrame):
    """`trials`: a search's trials table (`mlspec.runtime.search.trials_table`), best
    first."""
    axes = trials.attrs["axes"]
    metric = trials.attrs["metric"]
    fig = figure(max(5.0, min(4.2 * len(axes), 12.6) + 0.4), 3.8)
    values = trials[metric].to_numpy(float)
    pruned = (trials["status"] == "pruned").to_numpy()
    for i, path in enumerate(axes):
        ax = fig.add_subplot(1, len(axes), i + 1)
        column = trials[path]
        if path not in trials.attrs.get("categorical", ()):
            x = column.to_numpy(float)
        else:  # a choice or a list: its values as categories, in order
            order = sorted(dict.fromkeys(column), key=lambda v: (isinstance(v, str), v))
            labels = [str(v) for v in order]
            x = np.array([order.index(v) for v in column], float)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.scatter(x[~pruned], values[~pruned], s=22, color=COMPLETED, label="completed",
                   zorder=3)
        if pruned.any():
            ax.scatter(x[pruned], values[pruned], s=22, facecolors="none",
                       edgecolors=PRUNED, label="pruned (last evaluation)", zorder=2)
        ax.scatter(x[:1], values[:1], s=110, facecolors="none", edgecolors=BEST_COLOUR,
                   linewidths=2, label="best", zorder=4)
        if path in trials.attrs.get("log", ()):
            ax.set_xscale("log")
        if np.all(values[np.isfinite(values)] > 0) and _spread(values) > 30:
            ax.set_yscale("log")
        ax.set_xlabel(path)
        if i == 0:
            ax.set_ylabel(metric)
            fig.legend(*ax.get_legend_handles_labels(), fontsize=8, ncol=3, frameon=False,
                       loc="upper center", bbox_to_anchor=(0.5, 0.92))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{len(trials)} trials: {metric} by setting "
                 f"({'higher' if trials.attrs['higher'] else 'lower'} is better)", fontsize=10)
    fig.subplots_adjust(left=0.16 if len(axes) == 1 else 0.08, right=0.97, bottom=0.15,
                        top=0.8, wspace=0.3)
    return fig


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max() / finite.min()) if len(finite) and finite.min() > 0 else 0.0
