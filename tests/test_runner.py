"""A run resolves its spec once: `mlspec.run`, `mlspec run` and `mlspec run --resume` all
train through `mlspec.runtime.runner.Run`, and seeds and sweeps resolve each of their
programs once (counted where every resolve goes: `mlspec.semantics.resolve._resolve`)."""

from __future__ import annotations

import pytest

import mlspec
from mlspec.cli import main

SPEC = """
model hill_net {
    dense(4) -> sigmoid
    dense(2)
}
data {
    train = hill(n=200, seed=0)
    valid = hill(n=100, seed=1)
}
train {
    loss       = softmax_cross_entropy
    optimizer  = adam(learning_rate=0.05)
    steps      = 20
    eval_every = 10
}
"""
SEEDS = SPEC.replace("eval_every = 10", "eval_every = 10\n    seeds      = 3")
SWEEP = SPEC + "sweep {\n    train.optimizer.learning_rate = [0.01, 0.1]\n}\n"


@pytest.fixture
def resolved(monkeypatch):
    """The text of every program resolved (its spec with imports merged and overrides
    applied, as `_resolve` reads it), in order."""
    import mlspec.semantics.resolve as module
    from mlspec.semantics.imports import merge_imports
    from mlspec.semantics.overrides import apply_overrides

    texts = []
    original = module._resolve

    def counted(spec, overrides):
        texts.append(apply_overrides(merge_imports(spec), overrides).to_text())
        return original(spec, overrides)

    monkeypatch.setattr(module, "_resolve", counted)
    return texts


def _file(tmp_path, text):
    path = tmp_path / "net.mlspec"
    path.write_text(text)
    return path


# spec -> programs resolved: the spec's own; for seeds also the reference of one seed
# (`seeds = 1`) that checking them compares with; then each member
COUNTS = {"single": (SPEC, 1), "seeds": (SEEDS, 1 + 1 + 3), "sweep": (SWEEP, 1 + 2)}


@pytest.mark.parametrize("case", COUNTS)
def test_mlspec_run_resolves_each_program_once(case, resolved):
    text, count = COUNTS[case]
    result = mlspec.run(mlspec.parse(text))
    assert result.status == "completed"
    assert len(resolved) == count and len(set(resolved)) == count


@pytest.mark.parametrize("case", COUNTS)
def test_the_run_command_resolves_each_program_once(case, resolved, tmp_path):
    text, count = COUNTS[case]
    code = main(["run", str(_file(tmp_path, text)), "--out", str(tmp_path / "run"),
                 "--quiet"])
    assert code == 0
    assert len(resolved) == count and len(set(resolved)) == count


def test_an_override_is_resolved_with_the_spec_not_after_it(resolved, tmp_path):
    code = main(["run", str(_file(tmp_path, SPEC)), "--out", str(tmp_path / "run"),
                 "--quiet", "--set", "train.steps=10"])
    assert code == 0
    assert len(resolved) == 1 and "steps      = 10" in resolved[0]


def test_a_resumed_run_resolves_its_spec_once(resolved, tmp_path):
    from mlspec.runtime.runs import save_run
    from mlspec.runtime.training import Training

    training = Training(mlspec.resolve(mlspec.parse(SPEC)), updates=2)
    result = training.run(should_stop=lambda: training.blocks_done >= 1)
    assert result.status == "interrupted"
    save_run(result, tmp_path / "run", blocks_done=training.blocks_done,
             chunk=training.chunk, plots=False)
    resolved.clear()
    assert main(["run", "--resume", str(tmp_path / "run"), "--quiet"]) == 0
    assert len(resolved) == 1


@pytest.mark.parametrize(("text", "count"), [(SPEC, 1), (SWEEP, 1 + 2)])
def test_check_resolves_each_program_once(text, count, resolved):
    mlspec.check(mlspec.parse(text))
    assert len(resolved) == count and len(set(resolved)) == count


def test_a_run_reports_progress_and_stops_through_its_callbacks():
    """The callbacks that `mlspec run` gives: each program followed, progress after each
    chunk, and a stop asked for between programs keeps the programs trained."""
    from contextlib import contextmanager

    from mlspec.runtime.runner import Run, plan

    planned = plan(mlspec.parse(SPEC + "sweep {\n    train.seed = [0, 1]\n}\n"))
    followed, chunks = [], []

    @contextmanager
    def following(training, i, n):
        followed.append((i, n, len(training.members)))
        yield

    run = Run(planned, updates=2)
    assert not run.single and not run.kept()
    result = run.train(following=following, on_progress=lambda t: chunks.append(t.steps_done))
    assert followed == [(1, 1, 2)] and chunks == [10, 20, 20]
    assert result.status == "completed" and len(result.members) == 2 and run.kept()
    assert run.resume_point() == {}
    stopped = Run(planned, updates=2).train(should_stop=lambda: True)
    assert stopped is None  # stopped before any chunk: nothing to keep
