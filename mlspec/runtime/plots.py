"""PNG plots of a run: the history (one panel per metric, train and valid together, with
the early stop and the best evaluation marked), and for 2-D inputs the decision regions of
the model and where each first-layer hidden unit is positive, as the tutorial draws them.

The figures are drawn by `mlspec.runtime.history_figure` and `region_figures`; this module
writes them, each `plot_*` function returning the path written, and says which plots fit
a run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlspec.files import atomic_write
from mlspec.runtime import confusion
from mlspec.runtime.figures import run_label
from mlspec.runtime.history_figure import history_figure
from mlspec.runtime.region_figures import first_dense, hidden_units_figure, regions_figure


def _save(fig, path: Path) -> Path:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    atomic_write(path, buffer.getvalue())
    return path


def plot_history(history, path: Path, member_columns=(), **marks) -> Path | None:
    """The history figure (see `history_figure` for `marks`), written to `path`; None
    when it has nothing to draw."""
    fig = history_figure(history, member_columns, **marks)
    return None if fig is None else _save(fig, path)


def plot_regions(result, x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    """The decision regions (or predictions) over the rows `x`, `y` (see
    `regions_figure`)."""
    return _save(regions_figure(result, x, y), path)


def plot_hidden_units(result, x: np.ndarray, path: Path) -> Path | None:
    """Where each first-layer unit is positive over the rows `x` (see
    `hidden_units_figure`); None without a dense layer."""
    fig = hidden_units_figure(result, x)
    return None if fig is None else _save(fig, path)


def plot_names(result) -> list[str]:
    """The plots that fit the run, in the order they are drawn."""
    names = ["history.png"]
    info = result.program.data.info if result.program.data else None
    if result.program.model.input_shape == (2,) and info is not None \
            and not info.typed:  # two features, not two ids
        if info.target == "class" or info.target_dim == 1:  # one value to colour by
            names.append("decision_regions.png")
        if first_dense(result) is not None:
            names.append("hidden_units.png")
    if confusion.wanted(result):
        names.append(confusion.PNG)
    if getattr(result, "trials", None) is not None:
        names.append("search.png")
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
        if name == "search.png":
            from mlspec.runtime.search_figure import search_figure

            written.append(_save(search_figure(result.trials), path))
            continue
        if name == confusion.PNG:
            written.append(_save(confusion.figure_of(result, *confusion.of_split(result)),
                                 path))
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
