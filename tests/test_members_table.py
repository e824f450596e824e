"""The table of members that `mlspec run` prints for seeds and sweeps: readable at 80
columns without cutting a name, saying which metric ranks the rows, its columns named as
in history.csv."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from rich.console import Console

from mlspec.cli import main
from mlspec.runtime.tables import members_tables, wrap_name

SWEEP = """
param learning_rate_of_the_optimizer = 0.5
param hidden_units_of_the_first_layer = 4
model sweep_net {
    dense(hidden_units_of_the_first_layer) -> sigmoid
    dense(2)
}
data {
    train = hill(n=300, seed=0)
    valid = hill(n=100, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = sgd(learning_rate=learning_rate_of_the_optimizer, momentum=0.9)
    steps      = 20
    eval_every = 10
    metrics    = [accuracy, false_pos, false_neg, pred_mean]
}
sweep {
    learning_rate_of_the_optimizer  = [0.1, 0.5]
    hidden_units_of_the_first_layer = [2, 4]
    train.optimizer.momentum        = [0.0, 0.9]
}
"""


def _cells(line: str, edge: str) -> list[str]:
    return [cell.strip() for cell in line.strip()[1:-1].split(edge)]


def parse_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each table printed: its column names (header lines joined) and its rows."""
    tables = []
    for block in text.split("┏")[1:]:
        lines = block.splitlines()[1:]
        end = next(i for i, line in enumerate(lines) if line.startswith("┡"))
        header_lines = [_cells(line, "┃") for line in lines[:end]]
        names = ["".join(parts) for parts in zip(*header_lines)]
        rows = [_cells(line, "│") for line in lines[end + 1:] if line.startswith("│")]
        tables.append((names, rows))
    return tables


def test_a_sweep_of_long_names_reads_at_80_columns(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "sweep.mlspec"
    spec.write_text(SWEEP)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["run", str(spec), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    # every line but the folder's path (as long as the temporary folder's name)
    assert all(len(line) <= 80 for line in out.splitlines()
               if not line.startswith("wrote ")), out
    assert "…" not in out
    title = " ".join(out.split("┏")[0].split())
    assert "8 runs in 2 compiled programs, best first by valid.accuracy (higher is " \
           "better)" in title
    tables = parse_tables(out)
    assert len(tables) >= 2 and all(names[0] == "member" for names, _ in tables)
    shown = [name for names, _ in tables for name in names if name != "member"]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    swept = ["learning_rate_of_the_optimizer", "hidden_units_of_the_first_layer",
             "train.optimizer.momentum"]
    assert list(history.columns[:3]) == swept
    metrics = [c for c in history.columns[4:]]
    assert sorted(shown) == sorted(swept + metrics)  # every name whole, each once
    assert shown[3] == "valid.accuracy"  # the ranking metric first
    # the numbers are the members' of metrics.json, best first
    members = json.loads((tmp_path / "run" / "metrics.json").read_text())["members"]
    for names, rows in tables:
        assert [row[0] for row in rows] == [str(i) for i in range(8)]
        for member, row in zip(members, rows):
            for name, cell in zip(names[1:], row[1:]):
                if name in swept:
                    assert cell == str(member["settings"][name])
                else:
                    split, metric = name.split(".")
                    assert cell == f"{member[split][metric]:.4f}", name
    accuracy = [member["valid"]["accuracy"] for member in members]
    assert accuracy == sorted(accuracy, reverse=True)


def _result(settings: list[dict], metrics: list[dict]):
    trainer = object()
    members = [SimpleNamespace(settings=s, metrics=m, trainer=trainer)
               for s, m in zip(settings, metrics)]
    return SimpleNamespace(members=members)


def _render(result, width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for table in members_tables(result, width):
        console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 120, 300])
def test_every_width_keeps_every_name_and_value_whole(width):
    names = [f"valid.metric_number_{i}_of_a_long_list" for i in range(6)] + ["train.loss"]
    result = _result([{"train.seed": s, "data.train.n": 1000 * s} for s in range(3)],
                     [{n: 0.25 * i for n in names} for i in range(3)])
    text = _render(result, width)
    assert all(len(line) <= width for line in text.splitlines()), text
    tables = parse_tables(text)
    shown = [name for names, _ in tables for name in names if name != "member"]
    metrics = [name for name in shown if name.startswith(("valid.", "train."))]
    assert sorted(metrics) == sorted(names)  # each once, whole
    assert set(shown) - set(metrics) == {"seed", "data.train.n"}
    assert "best first by valid.metric_number_0_of_a_long_list (higher is better)" not in \
        text  # not a known metric: lower is better
    assert "(lower is better)" in " ".join(text.split())
    for names, rows in tables:
        assert [row[0] for row in rows] == ["0", "1", "2"]
        for i, row in enumerate(rows):
            for name, cell in zip(names, row):
                if name.startswith(("valid.", "train.")):
                    assert cell == f"{0.25 * i:.4f}"
    if width >= 300:
        assert len(tables) == 1


def test_a_name_breaks_only_after_a_dot_or_underscore():
    assert wrap_name("learning_rate_of_the_optimizer", 9) == \
        "learning_\nrate_of_\nthe_\noptimizer"
    assert wrap_name("valid.accuracy", 8) == "valid.\naccuracy"
    assert wrap_name("supercalifragilistic", 5) == "supercalifragilistic"


def test_the_test_metrics_follow_the_spec_s_order_as_train_and_valid_do():
    """metrics = [pred_mean, accuracy, false_pos]: each split's columns in that order
    (jax hands back the test split's values with their names sorted)."""
    import mlspec
    from mlspec.runtime.training import Training
    from mlspec.semantics.sweep import expand

    spec = mlspec.parse(SWEEP.split("sweep {")[0].replace(
        "valid = hill(n=100, seed=1)", "valid = hill(n=100, seed=1)\n"
        "    test  = hill(n=100, seed=2)").replace(
        "[accuracy, false_pos, false_neg, pred_mean]", "[pred_mean, accuracy, false_pos]")
        .replace("steps      = 20", "steps      = 20\n    seeds      = 2"))
    members = expand(spec)
    result = Training(members[0].program, members=members).run()
    order = ["loss", "pred_mean", "accuracy", "false_pos"]
    for member in result.members:
        assert [k for k in member.metrics if k.startswith("test.")] == \
            [f"test.{m}" for m in order]
    (names, _), = parse_tables(_render(result, 300))
    columns = [f"{split}.{m}" for split in ("train", "valid", "test") for m in order]
    # the ranking metric first: the first valid metric with a better direction
    # (pred_mean has none)
    assert names[:3] == ["member", "seed", "valid.accuracy"]
    assert names[3:] == [c for c in columns if c != "valid.accuracy"]
