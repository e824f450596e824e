"""Names are first class (LANGUAGE.md v2, "Names"): a bare name in a value position is a
param, a block argument, `classes`, a catalogue entry where one is expected, a metric path
or a symbol that the argument's type lists; anything else is an error at its place, the
same through `mlspec.check`, `mlspec check` and the language server."""

from __future__ import annotations

import pytest

import mlspec
from mlspec.cli import main
from mlspec.editor.lsp import check_text
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError


def spec(layers: str = "dense(classes)", data: str = "train = hill(n=100)",
         loss: str = "softmax_cross_entropy", optimizer: str = "sgd(0.1)",
         head: str = "param width = 8\n", extra: str = "") -> str:
    return (f"{head}model m {{\n    {layers}\n}}\ndata {{\n    {data}\n}}\n"
            f"train {{\n    loss = {loss}\n    optimizer = {optimizer}\n    steps = 2\n"
            f"{extra}}}\n")


MLP = "block head(n, act=relu) {\n    dense(n) -> act\n}\n"
BLOCK_BODY = "block head(n) {\n    dense(n)\n    dense(widht)\n}\n"

# name -> (spec text, line, column, the message as the user reads it)
MISTAKES = {
    "a misspelt param": (
        spec("dense(widht) -> dense(classes)"), 3, 11,
        "undefined name 'widht'; did you mean 'width'?"),
    "a learning rate named but not defined": (
        spec(optimizer="adam(learning_rate=lr)"), 10, 36, "undefined name 'lr'"),
    "classes on regression data": (
        spec(data="train = linear(n=100)", loss="mse"), 3, 11,
        "'classes' exists only for class targets, and this data's target is real"),
    "a dtype misspelt": (
        spec(optimizer="adam(learning_rate=0.1, mu_dtype=bfloat61)"), 10, 50,
        "undefined name 'bfloat61'; did you mean 'bfloat16'?"),
    "a symbol misspelt": (
        spec(data="train = hill(n=100)\n    valid = hill(n=50, seed=1)",
             extra="    early_stop = early_stop(mode=mx)\n"), 13, 34,
        "undefined name 'mx'; did you mean 'max'?"),
    "a layer where a symbol stands": (
        spec(data="train = hill(n=100)\n    valid = hill(n=50, seed=1)",
             extra="    early_stop = early_stop(mode=relu)\n"), 13, 34,
        "'relu' is a layer, which cannot stand here; expected one of 'max', 'min'"),
    "a train setting's symbol misspelt": (
        spec(extra="    devices = al\n"), 12, 15, "undefined name 'al'; did you mean 'all'?"),
    "a string written bare": (
        spec("input [8, 8, 1]\n    conv(2, 3, padding=SAME)", data="source = digits",
             loss="mse"), 4, 24,
        "undefined name 'SAME'; this is a string here: write \"SAME\""),
    "a file name written bare": (
        spec(data="source = csv(data.csv, target=y)"), 6, 18,
        "undefined name 'data.csv'; this is a string here: write \"data.csv\""),
    "a column name written bare": (
        spec(data='source = csv("data.csv", target=y)'), 6, 37,
        "undefined name 'y'; this is a string here: write \"y\""),
    "a param misspelt where a string stands": (
        spec(data="source = csv(data.csv, target=colum)", head="param column = \"y\"\n"),
        6, 35, "undefined name 'colum'; did you mean 'column'?"),
    "a schedule misnamed": (
        spec(optimizer="sgd(learning_rate=cosine_decay)"), 10, 35,
        "undefined name 'cosine_decay'; did you mean 'cosine_decay_schedule'?"),
    "a size named but not defined": (
        spec(data="source = hill(n=100)\n    valid = frac"), 7, 13, "undefined name 'frac'"),
    "an input shape's name": (
        spec("input [widht]\n    dense(classes)", data="source = hill(n=100)"), 3, 12,
        "undefined name 'widht'; did you mean 'width'?"),
    "a loss term's weight named but not defined": (
        spec(loss="softmax_cross_entropy + wd * l2"), 9, 36, "undefined name 'wd'"),
    "a loss term's divisor misspelt": (
        spec(loss="softmax_cross_entropy + l2 / decya", head="param decay = 1e4\n"), 9, 41,
        "undefined name 'decya'; did you mean 'decay'?"),
    "a mistake in a block's body, at its use": (
        spec("head(2)\n    dense(classes)", head="param width = 8\n" + BLOCK_BODY), 7, 5,
        "undefined name 'widht'; did you mean 'width'? (in block 'head' at line 4, "
        "column 11)"),
    # a mistake written in a block's use (not its body) is an error where it is written
    "a misspelt argument of a block's use": (
        spec("head(widht)\n    dense(classes)", head="param width = 8\n" + MLP), 6, 10,
        "undefined name 'widht'; did you mean 'width'?"),
    "a misspelt layer given to a block": (
        spec("head(2, act=tahn)\n    dense(classes)", head=MLP), 5, 17,
        "unknown layer 'tahn'; did you mean 'tanh'?"),
    "a value given to a block that its body cannot take": (
        spec("head(-1)\n    dense(classes)", head=MLP), 5, 10,
        "argument 'features' of layer 'dense' should be greater than 0 (got an integer -1) "
        "(the argument 'n' of block 'head', given to 'dense' at line 2, column 11)"),
    "a value passed on through two blocks, at the outer use": (
        spec("outer(-2)\n    dense(classes)",
             head=MLP + "block outer(m) {\n    head(m)\n}\n"), 8, 11,
        "argument 'features' of layer 'dense' should be greater than 0 (got an integer -2) "
        "(the argument 'n' of block 'head', given to 'dense' at line 2, column 11)"),
    "a mistake in a block's body that uses a block, naming that body": (
        spec("outer(2)\n    dense(classes)",
             head=MLP + "block outer(m) {\n    head(-3)\n}\n"), 8, 5,
        "argument 'features' of layer 'dense' should be greater than 0 (got an integer -3) "
        "(the argument 'n' of block 'head', given to 'dense' at line 2, column 11) "
        "(in block 'outer' at line 5, column 10)"),
    "a misspelt sweep value of a param a block's use is given": (
        spec("head(width)\n    dense(classes)", head="param width = 8\n" + MLP,
             extra="}\nsweep {\n    width = [4, widht]\n"), 18, 17,
        "width = widht: undefined name 'widht'; did you mean 'width'?"),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_a_name_that_means_nothing_is_an_error_at_its_place(case, tmp_path, capsys):
    text, line, column, message = MISTAKES[case]
    path = tmp_path / "s.mlspec"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.load(path))
    found = [d for d in info.value.diagnostics if d.message == message]
    assert found, info.value.render()
    assert (found[0].span.line, found[0].span.column) == (line, column), info.value.render()
    # the command line: exit 2, FILE:LINE:COL, the line and a caret under the name
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    head = f"{path}:{line}:{column}: error: {message}"
    assert head in err.splitlines(), err
    quoted, caret = err.splitlines()[err.splitlines().index(head) + 1:][:2]
    assert quoted == "    " + text.splitlines()[line - 1]
    assert caret.index("^") == column - 1 + 4, err
    # the language server shows the same diagnostic
    diagnostics = check_text(text, str(path))
    assert any(d.message == message and (d.span.line, d.span.column) == (line, column)
               for d in diagnostics), diagnostics


def test_the_caret_of_a_block_mistake_is_under_the_use_and_the_body_is_named():
    text = spec("head(2)\n    dense(classes)", head="param width = 8\n" + BLOCK_BODY)
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text, "s.mlspec"))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.render().splitlines()[1:] == ["        head(2)", "        ^^^^"]


def test_a_shape_mistake_in_a_block_body_is_reported_at_the_use():
    text = spec("head(2)\n    dense(classes)", head="block head(n) {\n    dense(n)\n"
                "    residual { dense(3) }\n}\n")
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text, "s.mlspec"))
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column) == (6, 5)
    assert diagnostic.message == ("the residual body changes the shape from [2] to [3]; it "
                                  "must keep it (in block 'head' at line 3, column 5)")


def test_a_mistake_in_a_nested_block_names_the_chain_of_uses():
    head = "block a(n) {\n    b(n)\n}\nblock b(k) {\n    dense(k, use_bias=ture)\n}\n"
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(spec("a(2)\n    dense(classes)", head=head), "s.mlspec"))
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column) == (8, 5)
    assert diagnostic.message == ("undefined name 'ture'; did you mean 'true'? (in block "
                                  "'b' at line 5, column 23, used by 'a')")


def test_a_mistake_in_an_imported_block_names_its_file(tmp_path):
    (tmp_path / "lib.mlspec").write_text("block head(n) {\n    dense(n, use_bias=1)\n}\n")
    path = tmp_path / "s.mlspec"
    path.write_text(spec("head(2)\n    dense(classes)", head='import "lib.mlspec"\n'))
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.load(path))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.span.file == str(path) and diagnostic.span.line == 3
    assert diagnostic.message.endswith(f"(in block 'head' at line 2, column 23 of "
                                       f"{tmp_path / 'lib.mlspec'})")


def test_classes_without_a_data_section_says_why():
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse("model m {\n    input [2]\n    dense(classes)\n}\n"))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == ("'classes' is the number of classes of the data's target, "
                                  "and this spec has no data section")
    assert (diagnostic.span.line, diagnostic.span.column) == (3, 11)


def test_a_block_default_may_be_classes():
    text = spec("head", head="block head(n=classes) {\n    dense(n)\n}\n")
    program = mlspec.check(mlspec.parse(text))
    assert program.model.output_shape == (2,)
    assert program.model.layers[0].body[0].features == 2
    digits = text.replace("train = hill(n=100)", "source = digits")
    assert mlspec.check(mlspec.parse(digits)).model.output_shape == (10,)


def test_a_block_default_sees_the_specs_params_not_the_callers_arguments():
    head = ("param n = 3\nblock inner(k=n) {\n    dense(k)\n}\n"
            "block outer(n) {\n    inner\n}\n")
    program = mlspec.check(mlspec.parse(spec("outer(5)\n    dense(classes)", head=head)))
    assert program.model.output_shape == (2,)
    assert program.model.layers[0].body[0].body[0].features == 3


@pytest.mark.parametrize("written, value", [("min", "min"), ('"max"', "max")])
def test_a_symbol_is_written_bare_or_as_its_string(written, value):
    text = spec(data="train = hill(n=100)\n    valid = hill(n=50, seed=1)",
                extra="    metrics = [accuracy]\n"
                      f"    early_stop = early_stop(metric=valid.accuracy, mode={written})\n")
    stop = mlspec.check(mlspec.parse(text)).train.early_stop
    assert (stop.metric, stop.mode) == ("valid.accuracy", value)


def test_a_dtype_reaches_optax_as_optax_takes_it():
    optimizer = mlspec.check(mlspec.parse(spec(
        optimizer="adam(learning_rate=0.1, mu_dtype=bfloat16)"))).train.optimizer
    assert optimizer.arguments == {"learning_rate": 0.1, "mu_dtype": "bfloat16"}
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(spec(optimizer='adam(learning_rate=0.1, mu_dtype="float64")')))
    assert info.value.diagnostics[0].message == (
        "argument 'mu_dtype' of optimizer 'adam' should be 'bfloat16', 'float16' or 'float32' "
        "(got a string 'float64')")


def test_a_param_may_hold_a_name():
    head = "param act = tanh\nparam lr = 0.5\nparam sched = constant_schedule(lr)\n"
    program = mlspec.check(mlspec.parse(spec("dense(4) -> act\n    dense(classes)", head=head,
                                             optimizer="sgd(learning_rate=sched)")))
    assert program.model.layers[1].kind == "tanh"
    assert program.train.optimizer.arguments["learning_rate"].arguments == {"value": 0.5}


def test_an_undefined_name_in_a_param_is_placed_in_the_param():
    text = spec("dense(w)\n    dense(classes)", head="param w = widht\nparam width = 8\n")
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "undefined name 'widht'; did you mean 'width'?"
    assert (diagnostic.span.line, diagnostic.span.column) == (1, 11)


def test_a_library_leaves_its_unknown_arguments_to_the_use():
    lib = ("param width = 4\nblock b(n, act=relu) {\n    dense(n) -> act\n"
           "    dense(width * n, use_bias=false)\n    dense(classes)\n}\n")
    assert mlspec.check(mlspec.parse(lib)) is None
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(lib.replace("width * n", "widht * n")))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "undefined name 'widht'; did you mean 'width'?"
    assert (diagnostic.span.line, diagnostic.span.column) == (4, 11)


# ------------------------------------------------------------------- the IR of names


def test_a_bare_name_parses_prints_and_reads_back_from_json():
    text = spec(data="train = iris", loss="softmax_cross_entropy + 1e-4 * l2",
                optimizer="lbfgs", extra="    metrics = [accuracy]\n")
    parsed = mlspec.parse(text)
    assert parsed.data.get("train").value == ir.Name(name="iris")
    assert parsed.train.get("metrics").value.items == (ir.Name(name="accuracy"),)
    assert mlspec.parse(parsed.to_text()) == parsed
    assert "    train = iris\n" in parsed.to_text()
    from mlspec.syntax.json_spec import parse_json

    dumped = parsed.model_dump_json()
    assert '{"kind":"name","name":"iris"}' in dumped
    assert parse_json(dumped) == parsed


def test_a_call_without_arguments_is_the_bare_name():
    assert mlspec.parse("param a = relu()\n").params[0].value == ir.Name(name="relu")
    built = ir.Param(name="a", value=ir.Call(name="relu"))
    assert built.value == ir.Name(name="relu")
    from mlspec.syntax.json_spec import parse_json

    old = '{"kind": "spec", "params": [{"name": "a", "value": {"kind": "call", "name": "x"}}]}'
    assert parse_json(old).params[0].value == ir.Name(name="x")


def test_a_json_name_that_is_no_name_is_refused():
    from mlspec.syntax.json_spec import parse_json

    bad = '{"kind": "spec", "params": [{"name": "a", "value": {"kind": "name", "name": "1x"}}]}'
    with pytest.raises(SpecError, match="'1x' is not a name"):
        parse_json(bad)


# ------------------------------------------------------------------------- imports


def test_a_diamond_of_imports_counts_once(tmp_path):
    (tmp_path / "base.mlspec").write_text("param width = 3\nblock head(n) {\n    dense(n)\n}\n")
    for side in ("left", "right"):
        (tmp_path / f"{side}.mlspec").write_text(f'import "base.mlspec"\nparam {side} = 1\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.mlspec").write_text('import "../base.mlspec"\n')
    main_spec = tmp_path / "s.mlspec"
    main_spec.write_text('import "left.mlspec"\nimport "right.mlspec"\nimport '
                         '"sub/deep.mlspec"\n' + spec("dense(width)\n    head(classes)",
                                                      head=""))
    program = mlspec.check(mlspec.load(main_spec))
    assert program.model.output_shape == (2,)
    assert [p.name for p in program.spec.params].count("width") == 1


def test_a_name_defined_in_two_files_is_an_error(tmp_path):
    (tmp_path / "a.mlspec").write_text("param width = 3\n")
    (tmp_path / "b.mlspec").write_text("param width = 4\n")
    main_spec = tmp_path / "s.mlspec"
    main_spec.write_text('import "a.mlspec"\nimport "b.mlspec"\n' + spec("dense(classes)",
                                                                          head=""))
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.load(main_spec))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "'width' is defined here and in an import (from b.mlspec)"
    assert diagnostic.span.file == str(tmp_path / "a.mlspec")
