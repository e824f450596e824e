"""The confusion matrix of a trained run, asked for by `metrics = [..., confusion_matrix]`:
no history column but a table of the returned model on one split, which `run` writes to
the run folder (`confusion_matrix.csv`, its header and index the class names, and
`confusion_matrix.png`) and `mlspec evaluate` prints for the rows it evaluates. The
counts are computed by one compiled program over all the split's rows
(`Trainer.confusion_matrix`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlspec.runtime.figures import figure, run_label

CSV = "confusion_matrix.csv"
PNG = "confusion_matrix.png"


def wanted(result) -> bool:
    """Whether the run lists `confusion_matrix` among its metrics."""
    return "confusion_matrix" in result.trainer.metric_arguments


def split_of(result) -> str:
    """The split the run folder's matrix is of: valid where the data has one, else train."""
    return "valid" if "valid" in result.program.data.splits else "train"


def class_labels(result) -> list[str]:
    info = result.program.data.info
    return list(info.class_names) if info.class_names else [str(i) for i in
                                                            range(info.classes)]


def confusion(result, x, y) -> pd.DataFrame:
    """Counts of the rows (x, y) by target class (rows, `target` the index's name) and
    predicted class (columns), labelled by class name."""
    import jax
    import jax.numpy as jnp

    from mlspec.compiler.trainer import n_rows
    from mlspec.runtime.predict import model_input, targets_of

    x = model_input(result, x)
    y = targets_of(result, n_rows(x), y)
    counts = np.asarray(jax.jit(result.trainer.confusion_matrix)(
        result.state, jax.tree.map(jnp.asarray, x), jnp.asarray(y)))
    labels = class_labels(result)
    frame = pd.DataFrame(counts, index=pd.Index(labels, name="target"), columns=labels)
    frame.columns.name = "predicted"
    return frame


def of_split(result) -> tuple[str, pd.DataFrame]:
    """The split of the run folder's matrix and the matrix."""
    from mlspec.runtime.predict import rows_for

    split = split_of(result)
    x, y = rows_for(result, split, need_targets=True)
    return split, confusion(result, x, y)


def to_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index_label="target")


def figure_of(result, split: str, frame: pd.DataFrame):
    """The matrix as a figure: a cell's shade its share of the target class's rows, its
    text the count."""
    counts = frame.to_numpy()
    n = len(counts)
    size = min(2.0 + 0.6 * n, 12.0)
    fig = figure(size + 1.0, size)
    ax = fig.add_axes((0.2, 0.18, 0.68, 0.72))
    rows = counts.sum(axis=1, keepdims=True)
    share = counts / np.maximum(rows, 1)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                        color="white" if share[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(n), list(frame.columns), rotation=45 if n > 6 else 0)
    ax.set_yticks(range(n), list(frame.index))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("target class")
    ax.set_title(f"{run_label(result)}: confusion matrix ({split}, {int(counts.sum())} rows)",
                 fontsize=10)
    return fig


def rich_table(frame: pd.DataFrame, title: str):
    """The matrix as a rich table, for the terminal."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("target \\ predicted")
    for label in frame.columns:
        table.add_column(str(label), justify="right")
    for label, row in frame.iterrows():
        table.add_row(str(label), *(str(int(v)) for v in row))
    return table
