"""`mlspec export --json`: the spec as written (params, blocks, sweep, imports brought in),
which reads back as the same spec wherever a .mlspec goes; and overrides of what a sweep
sets, which are errors rather than lost under the sweep's values."""

from __future__ import annotations

import pytest
from conftest import ROOT, SPECS

import mlspec
from mlspec.cli import main
from mlspec.semantics.imports import merge_imports
from mlspec.semantics.overrides import parse_override
from mlspec.semantics.sweep import expand
from mlspec.syntax.json_spec import parse_json
from mlspec.syntax.parser import parse

HILL = (ROOT / "specs" / "hill.mlspec").read_text()
SWEEP = ("param lr = 0.01\n" + HILL.replace("learning_rate=0.01", "learning_rate=lr")
         + "sweep {\n    lr          = [0.01, 0.1]\n    train.steps = [3, 5]\n}\n")


def _export(path, capsys) -> str:
    assert main(["export", "--json", str(path)]) == 0
    return capsys.readouterr().out


def _sweep_file(tmp_path):
    path = tmp_path / "sw.mlspec"
    path.write_text(SWEEP)
    return path


@pytest.mark.parametrize("path", [*SPECS, "sweep"], ids=lambda p: getattr(p, "name", p))
def test_the_export_reads_back_as_the_spec_with_the_same_members(path, tmp_path, capsys):
    if path == "sweep":
        path = _sweep_file(tmp_path)
    text = path.read_text()
    exported = _export(path, capsys)
    assert exported.startswith('{\n  "kind": "spec"')
    again = parse_json(exported, str(path.with_suffix(".json")))
    assert again == parse(text, str(path))  # spans, comments and number spellings aside
    members = expand(parse(text, str(path)))
    assert len(expand(again)) == len(members)
    assert [m.settings for m in expand(again)] == [m.settings for m in members]


def test_a_sweeps_export_keeps_its_params_and_sweep(tmp_path, capsys):
    exported = tmp_path / "sw.json"
    exported.write_text(_export(_sweep_file(tmp_path), capsys))
    spec = mlspec.load(exported)
    assert [p.name for p in spec.params] == ["lr"]
    assert [s.path for s in spec.sweep.settings] == ["lr", "train.steps"]
    members = expand(spec)
    assert len(members) == 4  # not 1: the sweep is part of the export
    assert {(m.settings["lr"], m.settings["train.steps"]) for m in members} == \
        {(0.01, 3), (0.01, 5), (0.1, 3), (0.1, 5)}
    assert main(["check", str(exported)]) == 0


def test_an_export_brings_its_imports_in_and_loads_from_another_folder(tmp_path, capsys):
    (tmp_path / "lib.mlspec").write_text("param width = 3\nblock head(n) {\n"
                                         "    dense(n) -> sigmoid\n}\n")
    path = tmp_path / "net.mlspec"
    path.write_text('import "lib.mlspec"\n' + HILL.replace("dense(2) -> sigmoid",
                                                           "head(width)"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exported = elsewhere / "net.json"
    exported.write_text(_export(path, capsys))
    spec = mlspec.load(exported)
    assert spec.imports == () and [p.name for p in spec.params] == ["width"]
    assert [b.name for b in spec.blocks] == ["head"]
    assert spec == merge_imports(parse(path.read_text(), str(path)))
    assert mlspec.check(spec).model.layers[0].body[0].features == 3


SWEPT = {
    "a swept param": ("lr=0.5", "--set lr: 'lr' is swept (line 22)"),
    "a swept setting": ("train.steps=7", "--set train.steps: 'train.steps' is swept (line 23)"),
}


@pytest.mark.parametrize("case", SWEPT)
def test_overriding_what_the_sweep_sets_is_an_error(case, tmp_path, capsys):
    override, words = SWEPT[case]
    path = _sweep_file(tmp_path)
    code = main(["run", str(path), "--set", override, "--out", str(tmp_path / "r"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{path}: error: {words}; a sweep's values cannot be overridden; edit its " \
           "values in the sweep, or remove it from the sweep to set it here" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_a_python_override_of_what_the_sweep_sets_is_an_error(tmp_path):
    spec = mlspec.load(_sweep_file(tmp_path))
    with pytest.raises(mlspec.SpecError, match=r"--set lr: 'lr' is swept \(line 22\)"):
        mlspec.run(spec, {"lr": 0.5})
    with pytest.raises(mlspec.SpecError, match="'train.steps' is swept"):
        expand(spec, {"train.steps": 7})


def test_an_argument_inside_a_swept_setting_cannot_be_overridden_either(tmp_path):
    path = tmp_path / "opt.mlspec"
    path.write_text(HILL + "sweep {\n    train.optimizer = [sgd(0.1), adam(0.01)]\n}\n")
    spec = mlspec.load(path)
    with pytest.raises(mlspec.SpecError, match="--set train.optimizer.learning_rate: "
                                               "'train.optimizer' is swept"):
        expand(spec, {"train.optimizer.learning_rate": 0.5})


def test_overrides_beside_the_sweep_still_apply(tmp_path):
    spec = mlspec.load(_sweep_file(tmp_path))
    members = expand(spec, {"train.seed": 7, "data.train.n": 50})
    assert len(members) == 4
    assert {m.program.train.seed for m in members} == {7}
    # what the sweep sets inside a call is kept when the call itself is overridden
    path = tmp_path / "arg.mlspec"
    path.write_text(HILL + "sweep {\n    train.optimizer.learning_rate = [0.1, 0.2]\n}\n")
    members = expand(mlspec.load(path), [parse_override("train.optimizer=adam(0.01)")])
    assert [m.program.train.optimizer.name for m in members] == ["adam", "adam"]
    assert [m.program.train.optimizer.arguments["learning_rate"] for m in members] == \
        [0.1, 0.2]
