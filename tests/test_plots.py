"""The plots say what they show: the run's name, axis labels (the feature names), which
colour is which class or sign, which split the points are, and in the history where
training stopped early and which evaluation's model the run returns. Read from the
matplotlib figures as drawn (`plots._save` is replaced by a recorder)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mlspec
from mlspec.runtime import history_figure, plots

HILL = """
model hill_net {
    dense(3) -> sigmoid
    dense(2)
}
data {
    train = hill(n=400, seed=0)
    valid = hill(n=200, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=0.05)
    steps      = 400
    eval_every = 10
    metrics    = [accuracy]
"""


def hill_run(extra: str = ""):
    return mlspec.run(mlspec.parse(HILL + extra + "}\n"))


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn, by file name, instead of PNG files."""
    figures = {}

    def record(fig, path):
        figures[path.name] = fig
        return path

    monkeypatch.setattr(plots, "_save", record)
    return figures


@pytest.fixture(scope="module")
def completed():
    return hill_run()


@pytest.fixture(scope="module")
def stopped():
    """Stopped early on a plateau of the valid accuracy, with the best model restored."""
    result = hill_run("    early_stop = early_stop(metric=valid.accuracy, mode=\"max\", "
                      "patience=2)\n")
    assert result.status == "early_stopped" and result.best_step is not None
    assert result.stopped_at < result.trainer.schedule.total
    return result


def legend_texts(container) -> list[str]:
    """The entries of the legends of a figure (its own and its panels') or of a panel."""
    axes = getattr(container, "axes", [])
    panels = axes if isinstance(axes, list) else [container]
    legends = list(getattr(container, "legends", [])) + [ax.get_legend() for ax in panels]
    return [t.get_text() for legend in legends if legend is not None
            for t in legend.get_texts()]


def history_marks(fig) -> list[str]:
    """The labels of the stop and best-evaluation marks over the panels."""
    return sorted({line.get_label() for ax in fig.axes for line in ax.lines
                   if line.get_label().startswith(("early stop", "best evaluation",
                                                   "diverged"))})


def test_every_plot_names_the_run_its_axes_and_its_colours(completed, drawn, tmp_path):
    written, missing = plots.draw_all(completed, tmp_path)
    assert missing == [] and len(written) == 3
    history = drawn["history.png"]
    assert history._suptitle.get_text() == "hill_net: training history"
    assert all(ax.get_xlabel() == "step" for ax in history.axes)
    assert [ax.get_title() for ax in history.axes] == ["loss", "accuracy"]
    assert legend_texts(history) == ["train", "valid"]

    regions = drawn["decision_regions.png"]
    (ax,) = regions.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x0", "x1")
    title = ax.get_title()
    assert title.startswith("hill_net: decision regions") and "train split" in title
    assert "400 rows" in title
    assert legend_texts(ax) == ["class 0", "class 1"]
    assert ax.get_legend().get_title().get_text() == "predicted (area) / true (points)"

    units = drawn["hidden_units.png"]
    assert units._suptitle.get_text() == "hill_net: first dense layer (Dense_0), 3 units"
    assert [ax.get_title() for ax in units.axes] == ["unit 0", "unit 1", "unit 2"]
    assert [ax.get_xlabel() for ax in units.axes] == ["x0"] * 3
    assert units.axes[0].get_ylabel() == "x1"
    assert legend_texts(units) == ["pre-activation w·x + b ≥ 0", "pre-activation < 0"]


def test_a_completed_run_has_no_stop_or_best_marks(completed, drawn, tmp_path):
    plots.draw_all(completed, tmp_path)
    assert history_marks(drawn["history.png"]) == []
    assert "best evaluation" not in drawn["decision_regions.png"].axes[0].get_title()


def test_an_early_stop_and_the_best_evaluation_are_marked(stopped, drawn, tmp_path):
    plots.draw_all(stopped, tmp_path)
    fig = drawn["history.png"]
    assert history_marks(fig) == [f"best evaluation, step {stopped.best_step:,} (returned)",
                                  f"early stop at step {stopped.stopped_at:,}"]
    total = stopped.trainer.schedule.total
    assert fig._suptitle.get_text().endswith(
        f"stopped early at step {stopped.stopped_at:,} of {total:,} planned")
    for ax in fig.axes:  # the steps that ran fill the panel, not the ones planned
        assert stopped.stopped_at <= ax.get_xlim()[1] <= 1.1 * stopped.stopped_at
        stop = [line for line in ax.lines if line.get_label().startswith("early stop")]
        assert list(stop[0].get_xdata()) == [stopped.stopped_at] * 2
    assert f"early stop at step {stopped.stopped_at:,}" in legend_texts(fig)
    note = f"best evaluation's model, step {stopped.best_step:,}"
    assert note in drawn["decision_regions.png"].axes[0].get_title()
    assert note in drawn["hidden_units.png"]._suptitle.get_text()


def test_an_early_stop_without_restore_marks_the_stop_only(drawn, tmp_path):
    history = pd.DataFrame({"step": [0, 10, 20], "train.loss": [1.0, 0.5, 0.6],
                            "valid.loss": [1.1, 0.6, 0.7]})
    plots.plot_history(history, tmp_path / "h.png", title="net", stopped_at=20,
                       status="early_stopped", total=100)
    assert history_marks(drawn["h.png"]) == ["early stop at step 20"]
    plots.plot_history(history, tmp_path / "d.png", stopped_at=20, status="diverged")
    assert history_marks(drawn["d.png"]) == ["diverged at step 20"]
    plots.plot_history(history, tmp_path / "c.png", stopped_at=None, status="completed")
    assert history_marks(drawn["c.png"]) == []


def test_csv_features_and_class_names_label_the_regions(tmp_path, drawn):
    rng = np.random.default_rng(0)
    x = rng.random((300, 2))
    names = np.where(x[:, 1] > x[:, 0], "above", "below")
    pd.DataFrame({"height": x[:, 0], "weight": x[:, 1], "side": names}).to_csv(
        tmp_path / "points.csv", index=False)
    spec = mlspec.parse(f"""
model side {{
    dense(4) -> relu
    dense(classes)
}}
data {{
    source = csv("{tmp_path / 'points.csv'}", target="side")
    valid  = 0.2
    standardize = true
}}
train {{
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.05)
    steps     = 50
}}
""")
    result = mlspec.run(spec)
    plots.draw_all(result, tmp_path)
    (ax,) = drawn["decision_regions.png"].axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("height", "weight")
    assert legend_texts(ax) == ["above", "below"]
    assert "240 rows of the train split" in ax.get_title()
    assert [a.get_xlabel() for a in drawn["hidden_units.png"].axes] == ["height"] * 4


def test_long_histories_are_thinned_without_losing_a_spike():
    steps = np.arange(100_000)
    values = np.sin(steps / 5000.0)
    values[61_234] = 50.0
    kept_steps, kept = history_figure._thin(steps, values)
    assert len(kept) < 2000 and kept_steps[0] == 0 and kept_steps[-1] == 99_999
    assert 50.0 in kept and kept.min() == pytest.approx(values.min())
    with_nan = values.copy()
    with_nan[10] = np.nan
    assert len(history_figure._thin(steps, with_nan)[0]) == len(steps)  # drawn as it is


def test_the_final_metrics_are_written_and_printed_before_the_plots(tmp_path, monkeypatch,
                                                                     capsys):
    import mlspec.cli

    spec = tmp_path / "hill.mlspec"
    spec.write_text(HILL.replace("steps      = 400", "steps      = 40") + "}\n")
    out = tmp_path / "run"
    seen = {}
    draw_all = plots.draw_all

    def watched(result, folder, **kwargs):
        seen["printed"] = capsys.readouterr().out
        seen["files"] = sorted(p.name for p in folder.iterdir())
        seen["missing"] = json.loads((folder / "manifest.json").read_text())["plots_missing"]
        return draw_all(result, folder, **kwargs)

    monkeypatch.setattr(plots, "draw_all", watched)
    assert mlspec.cli.main(["run", str(spec), "--out", str(out)]) == 0
    assert "final metrics after 40 steps" in seen["printed"]
    assert {"metrics.json", "history.csv", "state", "manifest.json"} \
        <= set(seen["files"])
    assert not [name for name in seen["files"] if name.endswith(".png")]
    names = ["history.png", "decision_regions.png", "hidden_units.png"]
    assert seen["missing"] == names  # until they are drawn
    assert json.loads((out / "manifest.json").read_text())["plots_missing"] == []
    assert all((out / name).stat().st_size > 1000 for name in names)


def sweep_history(members: int = 8) -> pd.DataFrame:
    """`members` members (two learning rates, then widths and seeds) of 30 evaluations."""
    frames = []
    for i in range(members):
        steps = np.arange(0, 300, 10)
        loss = np.exp(-steps / (50.0 + 10 * i))
        frames.append(pd.DataFrame({
            "train.optimizer.learning_rate": [0.01, 0.03][i % 2], "h": 4 * (1 + i // 4),
            "seed": i // 2 % 2, "step": steps, "train.loss": loss, "valid.loss": loss + 0.1,
            "train.accuracy": 1 - loss, "valid.accuracy": 0.9 - loss}))
    return pd.concat(frames, ignore_index=True)


def assert_legend_clear(fig) -> None:
    """The figure's legend is inside the figure and off every panel (its tick labels and
    titles included)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
    for ax in fig.axes:
        assert not box.overlaps(ax.get_tightbbox(renderer)), ax.get_title()


@pytest.mark.parametrize("members", [8, 30])
def test_a_sweeps_legend_is_off_the_panels_one_entry_a_member(drawn, tmp_path, members):
    columns = ["train.optimizer.learning_rate", "h", "seed"]
    best = {"train.optimizer.learning_rate": 0.03, "h": 8, "seed": 0}
    plots.plot_history(sweep_history(members), tmp_path / "h.png", columns, title="net",
                       best_member=best)
    fig = drawn["h.png"]
    assert_legend_clear(fig)
    texts = legend_texts(fig)
    assert texts[:2] == ["train", "valid"]  # the line styles, then the members' colours
    assert "learning_rate=0.03 h=8 seed=0 (best)" in texts
    assert fig._suptitle.get_text() == (f"net: training history, {members} members\n"
                                        "best: learning_rate=0.03 h=8 seed=0")
    if members == 8:
        assert len(texts) == 2 + 8 and "learning_rate=0.01 h=4 seed=1" in texts
    else:  # past the colours that tell members apart: the best and the rest in grey
        assert texts[2:] == ["learning_rate=0.03 h=8 seed=0 (best)", "the other 29 members"]


@pytest.mark.parametrize("metrics", [1, 2, 4, 5])
def test_a_single_runs_legend_is_off_the_panels(drawn, tmp_path, metrics):
    steps = np.arange(0, 100, 10)
    history = pd.DataFrame({"step": steps} | {
        f"{split}.m{k}": np.exp(-steps / 30) for k in range(metrics)
        for split in ("train", "valid")})
    plots.plot_history(history, tmp_path / "h.png", stopped_at=90, status="early_stopped",
                       total=1000, best_step=50)
    assert_legend_clear(drawn["h.png"])


def test_a_point_without_finite_neighbours_is_marked(drawn, tmp_path):
    """A diverged run's loss is finite only at step 0: a line alone would draw nothing."""
    nan = float("nan")
    history = pd.DataFrame({"step": [0, 3, 6, 9, 12], "train.loss": [1.0, nan, nan, nan, nan],
                            "valid.loss": [1.0, 0.9, nan, 0.5, nan]})
    plots.plot_history(history, tmp_path / "h.png", stopped_at=3, status="diverged",
                       total=300)
    fig = drawn["h.png"]
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.lines}
    for label, marked in [("train", [0]), ("valid", [3])]:
        line = lines[label]
        assert line.get_marker() == "o"
        assert list(np.flatnonzero(line.get_markevery())) == marked
    assert fig._suptitle.get_text().endswith("diverged at step 3 of 300 planned")
    assert ax.get_xlim()[1] < 20
    plots.plot_history(history.fillna(0.5), tmp_path / "c.png")  # no gaps: no markers
    assert {line.get_marker() for line in drawn["c.png"].axes[0].lines} == {"None"}


def test_each_outputs_metric_has_its_own_panel(drawn, tmp_path):
    """With several outputs, `valid.digit.accuracy` and `valid.parity.accuracy` are two
    panels, each with a train and a valid line (not four unlabelled lines in one)."""
    steps = np.arange(0, 50, 10)
    history = pd.DataFrame({"step": steps} | {
        f"{split}.{metric}": np.linspace(0.1, 0.9, len(steps))
        for split in ("train", "valid")
        for metric in ("loss", "digit.accuracy", "parity.accuracy")})
    plots.plot_history(history, tmp_path / "h.png")
    axes = drawn["h.png"].axes
    titles = [ax.get_title() for ax in axes if ax.lines]
    assert titles == ["loss", "digit.accuracy", "parity.accuracy"]
    for ax in axes:
        if ax.lines:
            assert [line.get_label() for line in ax.lines] == ["train", "valid"]
