"""Searches (LANGUAGE.md v2, "Search beyond the grid"): TPE over a log-uniform rate finds a
rate near the best one, halving stops the worst trials inside the compiled program, the
run folder holds every trial (trials.csv, --member), and two processes share one study.
The check-time mistakes are in tests/test_errors_v2.py's table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlspec
from mlspec.cli import main

# Linear regression by plain gradient descent for 8 steps: the loss's curvature is about 2
# in every direction (standardized x), so a rate near 0.5 converges in a step or two; a
# lower one underfits in 8 steps and a higher one oscillates, past 1 diverging.
TASK = """param lr = 0.1
model m {
    dense(1)
}
data {
    train = linear(n=256, seed=0)
    valid = linear(n=256, seed=1)
}
train {
    loss = mse
    optimizer = sgd(lr)
    steps = 8
    eval_every = 4
}
"""

SEARCH = TASK + """sweep {
    lr = loguniform(1e-3, 3)
}
search {
    method = tpe
    trials = 32
    together = 8
    prune = halving(keep=0.25, every=4)
}
"""

GRID = [0.01, 0.03, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.5]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    spec = folder / "lr.mlspec"
    spec.write_text(SEARCH)
    result = mlspec.run(spec)
    result.save(folder / "run")
    return result, folder / "run"


def test_tpe_finds_a_rate_within_twice_the_best(searched, tmp_path):
    result, _ = searched
    swept = tmp_path / "grid.mlspec"
    swept.write_text(TASK + "sweep {\n    lr = [" + ", ".join(map(str, GRID)) + "]\n}\n")
    grid = mlspec.run(swept)
    best_rate = grid.members[0].settings["lr"]
    assert 0.3 <= best_rate <= 0.7  # the task is as designed
    found = result.members[0].settings["lr"]
    assert best_rate / 2 <= found <= best_rate * 2, (found, best_rate)
    assert len(result.members) == 32 and len(set(result.trials["trial"])) == 32
    # every rate drawn from the distribution, spread over its range
    rates = result.trials["lr"].to_numpy()
    assert (rates >= 1e-3).all() and (rates <= 3).all() and rates.min() < 0.05


def test_halving_stops_the_worst_trials_at_the_first_rung(searched):
    result, _ = searched
    trials = result.trials
    pruned = trials[trials["status"] == "pruned"]
    # each batch of 8 keeps 2 past step 4: 24 of 32 stop there and take no more steps
    assert len(pruned) == 24 and (pruned["steps"] == 4).all()
    assert ((trials["status"] == "completed") == (trials["steps"] == 8)).all()
    assert trials["status"].iloc[0] == "completed"
    # the best of every trial by its final metric is one that went on
    assert trials.loc[trials["valid.loss"].idxmin(), "status"] == "completed"
    # a pruned trial's history ends at the rung, with its final metrics
    member = next(m for m in result.members if m.status == "pruned")
    assert member.history["step"].tolist() == [0, 4]
    assert member.metrics["valid.loss"] == pytest.approx(member.history["valid.loss"].iloc[-1])
    # within each batch, those cut were worse at the rung than those kept
    rows = result.history[result.history["step"] == 4].set_index("lr")["valid.loss"]
    for start in range(0, 32, 8):
        batch = trials[trials["trial"].between(start, start + 7)]
        kept = rows[batch[batch["status"] == "completed"]["lr"]]
        cut = rows[batch[batch["status"] == "pruned"]["lr"]]
        assert kept.max() <= cut.min()


def test_trials_csv_and_member_round_trip(searched, capsys):
    result, folder = searched
    table = pd.read_csv(folder / "trials.csv")
    assert table["trial"].tolist() == result.trials["trial"].tolist()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert [m["status"] for m in metrics["members"]] == table["status"].tolist()
    assert (folder / "search.png").stat().st_size > 0
    history = pd.read_csv(folder / "history.csv")
    assert "lr" in history.columns and len(history) == len(result.history)
    assert "search {" in (folder / "spec.mlspec").read_text()
    # the printed table shows the drawn rates to 4 digits, in trials.csv's order
    from rich.console import Console

    from mlspec.runtime.tables import members_tables

    console = Console(width=100, record=True)
    for shown in members_tables(result, 100):
        console.print(shown)
    printed = console.export_text()
    assert f"{table['lr'][0]:.4g}" in printed and repr(float(table["lr"][0])) not in printed
    # the plot command draws the search's figure again from the folder
    (folder / "search.png").unlink()
    assert main(["plot", str(folder)]) == 0
    assert (folder / "search.png").stat().st_size > 0
    for k in (0, 30):
        loaded = mlspec.load_run(folder, member=k)
        pd.testing.assert_frame_equal(loaded.trials, table)
        assert loaded.settings["lr"] == pytest.approx(table["lr"][k], rel=1e-12)
        capsys.readouterr()
        assert main(["evaluate", str(folder), "--member", str(k)]) == 0
        shown = capsys.readouterr().out
        assert f"{table['valid.loss'][k]:.4f}" in shown


@pytest.mark.slow  # two mlspec processes
def test_two_processes_share_one_study(tmp_path):
    spec = tmp_path / "shared.mlspec"
    spec.write_text(TASK.replace("steps = 8", "steps = 4") + """sweep {
    lr = loguniform(1e-3, 1)
}
search {
    method = random
    trials = 10
    together = 2
    storage = "study.log"
}
""")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    runs = [subprocess.Popen([sys.executable, "-m", "mlspec", "run", str(spec), "--quiet",
                              "--out", str(tmp_path / f"run{i}")], env=env, cwd=tmp_path,
                             stderr=subprocess.PIPE, text=True) for i in range(2)]
    numbers = []
    for i, process in enumerate(runs):
        _, err = process.communicate(timeout=600)
        if process.returncode == 2:  # it started after the other had asked for every trial
            assert "already has its 10 trials: nothing is left to train" in err
            assert not (tmp_path / f"run{i}").exists()
            continue
        assert process.returncode == 0, err
        numbers += pd.read_csv(tmp_path / f"run{i}" / "trials.csv")["trial"].tolist()
    assert sorted(numbers) == list(range(10))  # each trial once, by one process or both
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="shared", storage=JournalStorage(
        JournalFileBackend(str(tmp_path / "study.log"))))
    done = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(done) == list(range(10))
    assert np.isfinite([t.value for t in study.trials if t.number < 10]).all()


def test_a_grid_search_in_a_database_trains_each_combination_once(tmp_path):
    spec = tmp_path / "grid.mlspec"
    spec.write_text(TASK.replace("steps = 8", "steps = 2").replace("eval_every = 4", "")
                    + f"""sweep {{
    lr = [0.1, 0.3, 0.5]
    train.seed = [0, 1]
}}
search {{
    together = 4
    storage = "sqlite:///{tmp_path / 'grid.db'}"
}}
""")
    result = mlspec.run(spec)
    combos = sorted(zip(result.trials["lr"], result.trials["train.seed"]))
    assert combos == [(lr, seed) for lr in (0.1, 0.3, 0.5) for seed in (0, 1)]
    assert (result.trials["status"] == "completed").all()
    with pytest.raises(mlspec.SpecError, match="already has its 6 trials"):
        mlspec.run(spec)  # the study in the database is done
