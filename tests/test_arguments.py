"""Command-line arguments as users write them: a command's options anywhere among its
positionals, and `--set` of any argument of a call by its name, a positional one too."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mlspec
from mlspec.cli import build_parser, main
from mlspec.syntax.errors import SpecError

# command line -> what it must mean, wherever its options are
ORDERS = [
    (["evaluate", "RUN", "--member", "2", "valid"],
     {"run_dir": "RUN", "data": "valid", "member": 2}),
    (["evaluate", "--json", "RUN", "valid", "--member", "1"],
     {"run_dir": "RUN", "data": "valid", "member": 1, "json": True}),
    (["evaluate", "RUN", "--member", "2"], {"run_dir": "RUN", "data": None, "member": 2}),
    (["predict", "RUN", "--member", "1", "hill(n=10)", "--out", "p.csv"],
     {"run_dir": "RUN", "data": "hill(n=10)", "member": 1, "out": "p.csv"}),
    (["plot", "--member", "3", "RUN"], {"run_dir": "RUN", "member": 3}),
    (["check", "a.mlspec", "--resolved", "b.mlspec"],
     {"files": ["a.mlspec", "b.mlspec"], "resolved": True}),
    (["fmt", "a.mlspec", "--check", "b.mlspec"], {"files": ["a.mlspec", "b.mlspec"],
                                                  "check": True}),
    (["run", "--set", "x=1", "s.mlspec", "--quiet", "--set", "y=2", "--out", "o"],
     {"file": "s.mlspec", "set": ["x=1", "y=2"], "quiet": True, "out": "o"}),
    (["run", "--resume", "RUN"], {"file": None, "resume": "RUN"}),
    (["summary", "--optimizer-state", "s.mlspec"],
     {"file": "s.mlspec", "optimizer_state": True}),
    (["export", "--program", "s.mlspec"], {"file": "s.mlspec", "program": True}),
]


@pytest.mark.parametrize("argv, meaning", ORDERS, ids=[" ".join(a) for a, _ in ORDERS])
def test_options_may_come_anywhere_among_the_positionals(argv, meaning):
    args = vars(build_parser().parse_args(argv))
    assert {key: args[key] for key in meaning} == meaning


def test_a_positional_too_many_is_still_an_error(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["evaluate", "RUN", "--json", "valid", "extra"])
    assert info.value.code == 2
    assert "unrecognized arguments: extra" in capsys.readouterr().err


# ------------------------------------------------------------------ --set of a call


def write_csv(path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = (x.sum(axis=1) > 0).astype(int)
    path.write_text("x1,x2,y\n" + "".join(f"{a:.6f},{b:.6f},{c}\n" for (a, b), c in
                                          zip(x, y)))


SPEC = """
model net {
    dense(4) -> relu
    dense(2)
}
data {
    train = csv("a.csv", target="y")
    valid = npz("a.npz")
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(exponential_decay(0.05, 10, 0.5))
    steps     = 6
    eval_every = 3
    metrics   = [accuracy]
}
"""


@pytest.fixture
def csv_spec(tmp_path):
    write_csv(tmp_path / "a.csv", 30, 0)
    write_csv(tmp_path / "b.csv", 50, 1)
    for name, rows in (("a.npz", 20), ("b.npz", 25)):
        rng = np.random.default_rng(rows)
        x = rng.normal(size=(rows, 2))
        np.savez(tmp_path / name, x=x, y=(x.sum(axis=1) > 0).astype(int))
    path = tmp_path / "spec.mlspec"
    path.write_text(SPEC)
    return path


@pytest.mark.parametrize("key, value, check", [
    ("data.train.path", "b.csv", lambda p: p.data.train.path == "b.csv"),
    ("data.valid.path", "b.npz", lambda p: p.data.valid.path == "b.npz"),
    ("data.valid.x", "x", lambda p: p.data.valid.path == "a.npz"),  # a keyword it lacks
    ("train.optimizer.learning_rate.init_value", 0.2,
     lambda p: p.train.optimizer.arguments["learning_rate"].arguments["init_value"] == 0.2),
    ("train.optimizer.learning_rate.decay_rate", 0.9,
     lambda p: p.train.optimizer.arguments["learning_rate"].arguments["decay_rate"] == 0.9),
])
def test_an_argument_given_by_position_is_set_by_its_name(key, value, check, csv_spec):
    assert check(mlspec.resolve(mlspec.load(csv_spec), {key: value}))


@pytest.mark.parametrize("key, words", [
    ("data.valid.file", "data source 'npz' has no argument 'file'; expected one of "
                        "'inputs', 'path', 'task', 'x', 'y'"),
    ("data.train.txt", "data source 'csv' has no argument 'txt'; did you mean 'text'?"),
    ("data.valid.pth", "data source 'npz' has no argument 'pth'; did you mean 'path'?"),
    ("train.optimizer.learning_rate.rate",
     "schedule 'exponential_decay' has no argument 'rate'; did you mean 'decay_rate'?"),
    ("train.optimizer.lr", "optimizer 'adam' has no argument 'lr'; did you mean "
                           "'learning_rate'?"),
])
def test_an_argument_that_does_not_exist_is_named(key, words, csv_spec, capsys):
    with pytest.raises(SpecError, match="cannot set") as info:
        mlspec.resolve(mlspec.load(csv_spec), {key: "b.csv"})
    assert words in str(info.value) and len(info.value.diagnostics) == 1
    code = main(["run", str(csv_spec), "--set", f"{key}=1", "--out",
                 str(csv_spec.parent / "run")])
    assert code == 2 and words in capsys.readouterr().err
    assert not (csv_spec.parent / "run").exists()


@pytest.mark.parametrize("text, value", [
    ("data/b.csv", "data/b.csv"), ("../b.csv", "../b.csv"), ("/abs/b.npz", "/abs/b.npz"),
    ("b.csv", "b.csv"), ('"quoted/b.csv"', "quoted/b.csv"),
    ("width/2", None), ("0.5/2", None), ("valid.loss", None), ("sgd(learning_rate=0.1)", None),
])
def test_an_unquoted_file_path_is_a_string(text, value):
    """As a shell passes it: `--set data.train.path=data/b.csv` (the quotes of
    `"data/b.csv"` are the shell's); arithmetic and names stay what they are."""
    from mlspec.semantics.overrides import parse_override
    from mlspec.syntax import ir

    _, parsed = parse_override(f"data.train.path={text}")
    if value is None:
        assert not isinstance(parsed, ir.String)
    else:
        assert parsed == ir.String(value=value)


def test_a_sweep_sets_a_positional_argument_too(csv_spec):
    text = SPEC + 'sweep {\n    data.train.path = ["a.csv", "b.csv"]\n}\n'
    spec = mlspec.parse(text, str(csv_spec))
    mlspec.check(spec)
    from mlspec.semantics.sweep import expand

    assert [m.program.data.train.path for m in expand(spec)] == ["a.csv", "b.csv"]


def test_run_with_a_file_set_by_position_then_evaluate_with_options_between(csv_spec,
                                                                           capsys):
    out = csv_spec.parent / "run"
    (csv_spec.parent / "more").mkdir()
    (csv_spec.parent / "b.csv").rename(csv_spec.parent / "more" / "b.csv")
    assert main(["run", str(csv_spec), "--quiet", "--set", "data.train.path=more/b.csv",
                 "--out", str(out)]) == 0
    assert 'csv("more/b.csv", target="y")' in (out / "spec.mlspec").read_text()
    assert json.loads((out / "manifest.json").read_text())["n_train"] == 50  # b.csv's rows
    capsys.readouterr()
    assert main(["evaluate", str(out), "--member", "0", "valid", "--json"]) == 0
    between = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--json", str(out), "valid"]) == 0
    assert json.loads(capsys.readouterr().out) == between
    assert between["accuracy"] == pytest.approx(
        json.loads((out / "metrics.json").read_text())["valid"]["accuracy"])


@pytest.mark.parametrize("key, value, check", [
    ("train.optimizer.memory_size", 3,
     lambda p: p.train.optimizer.arguments == {"memory_size": 3}),
    ("train.early_stop.patience", 7, lambda p: p.train.early_stop.patience == 7),
])
def test_an_argument_is_set_in_a_call_written_as_a_bare_name(key, value, check):
    """`optimizer = lbfgs` is the call `lbfgs` without arguments: `--set` gives it one."""
    text = SPEC.replace("adam(exponential_decay(0.05, 10, 0.5))", "lbfgs").replace(
        "    metrics   = [accuracy]\n", "    early_stop = early_stop\n")
    text = text.replace('csv("a.csv", target="y")', "hill(n=30)").replace(
        'npz("a.npz")', "hill(n=20, seed=1)")
    assert check(mlspec.resolve(mlspec.parse(text), {key: value}))


def test_set_names_a_symbol_bare(csv_spec):
    from mlspec.semantics.overrides import parse_override

    text = SPEC.replace("    metrics   = [accuracy]\n", "    early_stop = early_stop\n")
    program = mlspec.resolve(mlspec.parse(text, str(csv_spec)),
                             dict([parse_override("train.early_stop.mode=max")]))
    assert program.train.early_stop.mode == "max"
    with pytest.raises(SpecError, match="undefined name 'maxi'; did you mean 'max'?"):
        mlspec.resolve(mlspec.parse(text, str(csv_spec)),
                       dict([parse_override("train.early_stop.mode=maxi")]))
