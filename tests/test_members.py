"""Seeds and sweeps in a run folder: every member is saved, loads, predicts and evaluates
as it did in memory; the folder's spec is the spec as run, its sweep kept."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import mlspec
import mlspec.cli
from mlspec import files
from mlspec.runtime import plots
from mlspec.runtime.predict import evaluate, rows_for
from mlspec.runtime.reload import load_run
from mlspec.runtime.runs import RunFolderError

SWEEP = """
param width = 8
model hill_net {
    dense(width) -> sigmoid
    dense(2)
}
data {
    train = hill(n=300, seed=0)
    valid = hill(n=100, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=0.05)
    steps      = 30
    batch      = 32
    eval_every = 10
    metrics    = [accuracy]
    seeds      = 2
}
sweep {
    width = [3, 5]
}
"""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mlspec", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "MLSPEC_COMPILATION_CACHE": "0"})


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A sweep of widths (two compiled programs) over two seeds (vmapped together), run
    in memory and saved."""
    folder = tmp_path_factory.mktemp("members")
    spec = folder / "sweep.mlspec"
    spec.write_text(SWEEP)
    result = mlspec.run(spec)
    out = result.save(folder / "run")
    return result, out


def test_every_member_loads_and_predicts_as_in_memory(swept):
    result, out = swept
    assert len(result.members) == 4
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    metrics = json.loads((out / "metrics.json").read_text())
    for k, member in enumerate(result.members):
        loaded = load_run(out, member=k)
        assert loaded.settings == member.settings == metrics["members"][k]["settings"]
        np.testing.assert_array_equal(loaded.predict(x), member.predict(x))
        np.testing.assert_array_equal(loaded.outputs(x), member.outputs(x))
        assert loaded.metrics == pytest.approx(member.metrics, rel=1e-6)
        xv, yv = rows_for(loaded, "valid", need_targets=True)
        assert evaluate(loaded, xv, yv) == pytest.approx(metrics["members"][k]["valid"],
                                                         rel=1e-5)
        assert list(loaded.history["step"]) == [0, 10, 20, 30]
        np.testing.assert_allclose(loaded.history["valid.loss"],
                                   member.history["valid.loss"], rtol=1e-12)
    # member 0 (the default) is the best
    np.testing.assert_array_equal(mlspec.load_run(out).predict(x), result.predict(x))


def test_member_out_of_range_is_a_clear_error(swept):
    _, out = swept
    with pytest.raises(RunFolderError, match="members 0 to 3"):
        load_run(out, member=4)


def test_the_folders_spec_is_the_spec_as_run_with_its_sweep(swept, tmp_path):
    _, out = swept
    text = (out / "spec.mlspec").read_text()
    assert "sweep {" in text and "seeds      = 2" in text
    resolved = mlspec.cli.main(["check", "--resolved", str(out / "spec.mlspec")])
    assert resolved == 0
    spec = tmp_path / "sweep.mlspec"
    spec.write_text(SWEEP)
    run = tmp_path / "cli"
    code = mlspec.cli.main(["run", str(spec), "--out", str(run), "--quiet",
                            "--set", "train.steps=20"])
    assert code == 0
    text = (run / "spec.mlspec").read_text()
    assert "steps      = 20" in text and "width = [3, 5]" in text
    assert load_run(run, member=3).steps_done == 20


@pytest.mark.slow
def test_the_command_line_uses_every_member(swept, tmp_path):
    _, out = swept
    metrics = json.loads((out / "metrics.json").read_text())
    for k in (0, 3):
        evaluated = cli("evaluate", out, "valid", "--json", "--member", k)
        assert evaluated.returncode == 0, evaluated.stderr
        assert json.loads(evaluated.stdout) == pytest.approx(metrics["members"][k]["valid"],
                                                             rel=1e-5)
    predicted = cli("predict", out, "valid", "--member", 2)
    assert predicted.returncode == 0, predicted.stderr
    assert len(predicted.stdout.splitlines()) == 101
    plotted = cli("plot", out, "--member", 1)
    assert plotted.returncode == 0, plotted.stderr
    assert (out / "decision_regions-member-1.png").stat().st_size > 1000
    bad = cli("evaluate", out, "--member", 9)
    assert bad.returncode == 2 and "no member 9" in bad.stderr


def test_the_history_plot_draws_every_member(swept, monkeypatch, tmp_path):
    result, _ = swept
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    plots.plot_history(result.history, tmp_path / "h.png", ["width", "seed"])
    loss_panel = drawn[0].axes[0]
    assert loss_panel.get_title() == "loss"
    assert len(loss_panel.lines) == 4 * 2  # every member, train and valid
    legends = drawn[0].legends + [ax.get_legend() for ax in drawn[0].axes if ax.get_legend()]
    entries = [text.get_text() for legend in legends for text in legend.get_texts()]
    assert any(entry.startswith("width=5 seed=1") for entry in entries), entries


def _disk_full_for(monkeypatch, folder):
    """atomic_write fails with ENOSPC for `folder` (except its writability probe, so the
    disk fills up during the run, not before)."""
    original = files.atomic_write

    def write(path, data):
        if path.parent == folder and path.name != ".probe":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, data)

    monkeypatch.setattr(files, "atomic_write", write)
    monkeypatch.setattr(plots, "atomic_write", write)


@pytest.mark.parametrize("sweep", [True, False])
def test_a_full_disk_writes_the_trained_run_elsewhere(sweep, monkeypatch, tmp_path, capsys):
    spec = tmp_path / "sweep.mlspec"
    spec.write_text(SWEEP if sweep else SWEEP.split("sweep {")[0].replace("seeds      = 2",
                                                                          ""))
    out = tmp_path / "full"
    _disk_full_for(monkeypatch, out)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the fallback folder goes here
    assert mlspec.cli.main(["run", str(spec), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err
    fallback = err.split("written to ")[1].split(" instead")[0]
    assert len(json.loads(open(f"{fallback}/metrics.json").read()).get("members", [])) == \
        (4 if sweep else 0)
    assert load_run(fallback, member=3 if sweep else 0).params is not None
    assert Path(fallback).parent == tmp_path


CLASHING = """
param step = 0.05
model hill_net {
    dense(3) -> sigmoid
    dense(2)
}
data {
    train = hill(n=200, seed=0)
    valid = hill(n=100, seed=1)
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=step)
    steps     = 4
}
sweep {
    step       = [0.05, 0.1]
    train.loss = [softmax_cross_entropy, softmax_cross_entropy + 0.01 * l2]
}
"""


def test_swept_keys_named_as_history_columns_get_their_own(tmp_path):
    # A param named `step` and a sweep of `train.loss` (a setting and a metric) took over
    # the history's own columns: the plot raised and the folder could not be read back.
    spec = tmp_path / "clash.mlspec"
    spec.write_text(CLASHING)
    out = mlspec.run(spec).save(tmp_path / "run")
    history = mlspec.load_run(out).history
    columns = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert columns[:3] == ["sweep.step", "sweep.train.loss", "step"]
    assert "train.loss" in columns and list(history["step"]) == [0, 1, 2, 3, 4]
    metrics = json.loads((out / "metrics.json").read_text())
    for k in range(4):
        loaded = load_run(out, member=k)
        xv, yv = rows_for(loaded, "valid", need_targets=True)
        assert evaluate(loaded, xv, yv) == pytest.approx(metrics["members"][k]["valid"],
                                                         rel=1e-5)
    assert (out / "history.png").exists()
