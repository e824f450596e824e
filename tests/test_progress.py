"""Progress of `mlspec run`: in a log, a short line at every tenth of the run and one at
its end; on a terminal, a bar. Every step shown is an evaluation's, with its values."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from conftest import iris_net
from rich.console import Console

import mlspec
from mlspec.cli import main
from mlspec.cli.progress import Progress
from mlspec.runtime.training import Training

LONG = iris_net("""
    optimizer = adam(learning_rate=0.01)
    steps = 400
""", width=8)

EARLY = iris_net("""
    optimizer = adam(learning_rate=0.1)
    steps = 300
    early_stop = early_stop(metric=valid.loss, patience=5)
""", width=8)

SHOWN = ("train.loss", "valid.loss", "valid.accuracy")


def _run_logged(text, tmp_path, capsys):
    """`mlspec run` with stderr not a terminal: its progress lines and history."""
    spec = tmp_path / "net.mlspec"
    spec.write_text(text)
    assert main(["run", str(spec), "--out", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().err.splitlines()
    return lines, pd.read_csv(tmp_path / "run" / "history.csv")


def _shown(line: str) -> tuple[int, dict[str, str]]:
    step = int(re.search(r"step (\d+)", line).group(1))
    return step, dict(re.findall(r"(\w+\.\w+) (-?\d+\.\d{4})\b", line))


def _row(history: pd.DataFrame, step: int) -> dict[str, str]:
    row = history[history["step"] == step].iloc[-1]
    return {k: f"{row[k]:.4f}" for k in SHOWN}


def test_a_log_gets_a_line_per_tenth_each_true_to_its_step(tmp_path, capsys):
    lines, history = _run_logged(LONG, tmp_path, capsys)
    assert lines[0] == "net: compiling, then training to 400 steps"
    assert 9 <= len(lines) <= 12, lines
    assert all(len(line) < 100 for line in lines), lines
    steps = []
    for line in lines[1:]:
        step, values = _shown(line)
        assert values == _row(history, step), line  # the values of the step it names
        steps.append(step)
    assert steps == sorted(set(steps))
    assert lines[-1].startswith("  done, step 400/400  ")
    assert steps[-1] == history["step"].iloc[-1] == 400  # the final row, shown once
    assert [10 * s // 400 for s in steps[:-1]] == sorted(set(10 * s // 400 for s in steps[:-1]))


def test_an_early_stop_ends_the_log_at_the_stop(tmp_path, capsys):
    lines, history = _run_logged(EARLY, tmp_path, capsys)
    stop = int(history["step"].iloc[-1])
    assert stop < 300
    assert lines[-1].startswith(f"  stopped early at step {stop} of 300  ")
    assert _shown(lines[-1]) == (stop, _row(history, stop))
    assert all(_shown(line)[0] <= stop for line in lines[1:])


def test_seeds_show_the_best_value_over_the_members(tmp_path, capsys):
    lines, history = _run_logged(LONG.replace("steps = 400", "steps = 400\n    seeds = 3"),
                                 tmp_path, capsys)
    assert lines[0].startswith("net [3 members, program 1/1]: ")
    step, values = _shown(lines[-1])
    final = history[history["step"] == step]
    assert len(final) == 3 and step == 400
    assert values == {"train.loss": f"{final['train.loss'].min():.4f}",
                      "valid.loss": f"{final['valid.loss'].min():.4f}",
                      "valid.accuracy": f"{final['valid.accuracy'].max():.4f}"}


def test_a_program_of_one_member_says_member(tmp_path, capsys):
    text = "param w = 4\n" + iris_net("optimizer = adam(learning_rate=0.01)\nsteps = 20",
                                     width="w") + "sweep {\n    w = [4, 8]\n}\n"
    lines, _ = _run_logged(text, tmp_path, capsys)
    heads = [line for line in lines if not line.startswith(" ")]
    assert [h.split(":")[0] for h in heads] == ["net [1 member, program 1/2]",
                                                "net [1 member, program 2/2]"], lines


@pytest.mark.parametrize("text", [LONG, EARLY], ids=["completed", "early stop"])
def test_the_terminal_bar_ends_at_the_final_row(text):
    training = Training(mlspec.resolve(mlspec.parse(text)), updates=50)
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    with Progress(console, training, "net") as bar:
        result = training.run(on_progress=bar.update)
    task = bar.progress.tasks[0]
    last = result.history.iloc[-1]
    assert task.completed == task.total == last["step"] == result.steps_done
    assert task.fields["metrics"] == "  ".join(f"{k} {last[k]:.4f}" for k in SHOWN)
    final = console.file.getvalue().rsplit("\r", 1)[-1]
    assert f"{result.steps_done}/{result.steps_done}" in final
    if result.status == "early_stopped":
        assert result.steps_done < 300 and "net (early stopped)" in final
    else:
        assert result.steps_done == 400 and task.description == "net"
