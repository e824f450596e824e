"""Every error of the command line starts with the file it is about: `FILE:LINE:COL:` where
the error has a place in a source, else `FILE: error:` (a spec, a run folder, a file of
rows or of output). `mlspec check` of a library (params and blocks only) checks it."""

from __future__ import annotations

import pytest

from mlspec.cli import main

TINY = ("model tiny { dense(1) }\ndata { train = linear(n=32) }\n"
        "train { loss = mse optimizer = sgd(0.1) steps = 2 }\n")

LIBRARY = """\
param width = 16
block mlp(n, act=relu) {
    dense(n) -> act
    dense(width)
    dense(classes)
}
block stack(k=2) {
    repeat(k) { mlp(width, act=tanh) }
    dropout(0.1)
}
"""


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A folder with a spec, a library, a trained run of the spec and a non-run folder."""
    folder = tmp_path_factory.mktemp("errors")
    (folder / "tiny.mlspec").write_text(TINY)
    (folder / "lib.mlspec").write_text(LIBRARY)
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("mine")
    (folder / "no_train.mlspec").write_text("model m { dense(1) }\n"
                                            "data { train = linear(n=8) }\n")
    (folder / "spec.json").write_text('{"model": {"name": "m", "layers": []}}')
    (folder / "rows.csv").write_text("a,b,c\n1,2,3\n")
    assert main(["run", str(folder / "tiny.mlspec"), "--out", str(folder / "run"),
                 "--quiet"]) == 0
    return folder


# command (F is the fixture's folder) -> exit code, the start of stderr
ERRORS = {
    "check a missing file": ("check F/nope.mlspec", 2, "F/nope.mlspec: error: cannot read"),
    "check a folder": ("check F/mine", 2, "F/mine: error: cannot read spec"),
    "fmt a missing file": ("fmt F/nope.mlspec", 2, "F/nope.mlspec: error: cannot read"),
    "fmt JSON": ("fmt F/spec.json", 2, "F/spec.json: error: fmt formats .mlspec text"),
    "summary a missing file": ("summary F/nope.mlspec", 2, "F/nope.mlspec: error: "),
    "export a library": ("export F/lib.mlspec", 2,
                         "F/lib.mlspec: error: the spec has no model (with only params and "
                         "blocks, it is a library for `import`"),
    "run a missing file": ("run F/nope.mlspec", 2, "F/nope.mlspec: error: cannot read"),
    "run no FILE": ("run", 2, "mlspec run: error: give the FILE of a spec to train"),
    "run no train": ("run F/no_train.mlspec --out F/out1", 2,
                     "F/no_train.mlspec: error: run needs a 'train' section"),
    "run a library": ("run F/lib.mlspec", 2, "F/lib.mlspec: error: the spec has no model"),
    "set no =": ("run F/tiny.mlspec --set steps --out F/out2", 2,
                 "F/tiny.mlspec: error: --set needs KEY=VALUE, got 'steps'"),
    "set unknown": ("run F/tiny.mlspec --set train.stpes=3 --out F/out3", 2,
                    "F/tiny.mlspec: error: --set: unknown setting 'train.stpes'"),
    "set a bad value": ("run F/tiny.mlspec --set train.steps=( --out F/out4", 2,
                        "--set train.steps:1:1: error: "),
    "run over a run": ("run F/tiny.mlspec --out F/run", 1,
                       "F/run: error: it already holds a run, which is never overwritten"),
    "run into my files": ("run F/tiny.mlspec --out F/mine", 1,
                          "F/mine: error: it is not empty (it holds notes.txt)"),
    "resume nothing": ("run --resume F/nowhere", 2, "F/nowhere: error: it is not a run folder"),
    "resume a completed run": ("run --resume F/run", 2,
                               "F/run: error: the run in F/run is completed"),
    "predict no run": ("predict F/mine train", 2, "F/mine: error: it is not a run folder"),
    "evaluate no run": ("evaluate F/nowhere", 2, "F/nowhere: error: it is not a run folder"),
    "plot no run": ("plot F/mine", 2, "F/mine: error: it is not a run folder"),
    "predict a missing file": ("predict F/run F/nope.csv", 2,
                               "F/nope.csv: error: cannot read 'F/nope.csv'"),
    "predict rows of another width": ("predict F/run F/rows.csv", 2,
                                      "F/rows.csv: error: the run's model takes rows of 1 "
                                      "feature, but was given 3 features"),
    "predict a missing split": ("predict F/run test", 2,
                                "F/run: error: the run's data has no 'test' split"),
    "predict a missing member": ("predict F/run train --member 3", 2,
                                 "F/run: error: it holds a single run; it has no member 3"),
    "proba of a regression": ("predict F/run train --proba", 2,
                              "F/run: error: --proba needs a run of class targets"),
    "predict over the run": ("predict F/run train --out F/run/metrics.json", 1,
                             "F/run/metrics.json: error: this is a file of the run folder"),
    "predict into no folder": ("predict F/run train --out F/nowhere/p.csv", 1,
                               "F/nowhere/p.csv: error: cannot write the predictions: No such"),
    "a data call of bad syntax": ("evaluate F/run hill(n=3", 2, "DATA:1:8: error: "),
}


@pytest.mark.parametrize("case", ERRORS)
def test_every_error_starts_with_its_file(case, place, capsys):
    command, code, start = ERRORS[case]
    args = [a.replace("F/", f"{place}/") for a in command.split()]
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.startswith(start.replace("F/", f"{place}/")), err
    assert "Traceback" not in err


def test_check_of_a_library_checks_its_params_and_blocks(place, capsys):
    assert main(["check", str(place / "lib.mlspec")]) == 0
    assert capsys.readouterr().err == ""
    # and what check accepts, import accepts: a model using every block
    user = place / "user.mlspec"
    user.write_text('import "lib.mlspec"\nmodel m {\n    stack(k=1)\n    mlp(4)\n}\n'
                    "data { source = iris valid = 0.2 }\n")
    assert main(["check", str(user)]) == 0, capsys.readouterr().err


BROKEN_LIBRARY = {
    "unknown layer": ("    dens(n)", "3:5: error: unknown layer 'dens'; did you mean 'dense'?"),
    "argument name": ("    dense(n, bias=true)",
                      "3:14: error: layer 'dense' has no argument 'bias'; did you mean "
                      "'use_bias'?"),
    "known value": ("    dropout(1.5)", "3:13: error: argument 'rate' of layer 'dropout' "
                                       "should be less than 1"),
    "param value": ("    dense(width, use_bias=size)", "argument 'use_bias' of layer 'dense' "
                                                      "should be a valid boolean"),
    "block argument": ("    other(m=2)", "3:11: error: block 'other' has no parameter 'm'; "
                                         "did you mean 'n'?"),
    "body": ("    dense(n) { relu }", "3:5: error: layer 'dense' takes no body"),
}


@pytest.mark.parametrize("case", BROKEN_LIBRARY)
def test_check_of_a_library_reports_its_mistakes_where_they_are(case, tmp_path, capsys):
    line, expected = BROKEN_LIBRARY[case]
    path = tmp_path / "lib.mlspec"
    path.write_text(f"param width = 4\nblock b(n) {{\n{line}\n}}\nparam size = 8\n"
                    "block other(n=3) {\n    dense(n)\n}\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:") and expected in err.splitlines()[0], err
    # the same block used in a model is refused too
    user = tmp_path / "user.mlspec"
    user.write_text('import "lib.mlspec"\nmodel m {\n    input [2]\n    b(3)\n}\n')
    assert main(["check", str(user)]) == 2
    assert expected.split("error: ")[-1] in capsys.readouterr().err


def test_a_library_s_import_problems_are_its_own(tmp_path, capsys):
    path = tmp_path / "lib.mlspec"
    path.write_text('import "lib.mlspec"\nparam a = 1\n')
    assert main(["check", str(path)]) == 2
    assert "import cycle: lib.mlspec -> lib.mlspec" in capsys.readouterr().err
