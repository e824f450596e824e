"""Resolution: params, arithmetic, overrides, blocks, imports, `classes`."""

from __future__ import annotations

import pytest

import mlspec
from mlspec.semantics.overrides import parse_override
from mlspec.syntax.errors import SpecError

BASE = """
param hidden = 4
param lr = 0.01
block mlp(width, act=relu) {
    dense(width) -> act
}
model net {
    mlp(hidden * 2, act=sigmoid)
    mlp(hidden)
    dense(classes)
}
data {
    train = hill(n=200, seed=0)
    valid = hill(n=100, seed=1)
}
train {
    loss      = softmax_cross_entropy + 1e-4 * l2
    optimizer = adam(learning_rate=lr / 10)
    steps     = 20
}
"""


def layers(program):
    def walk(items):
        for layer in items:
            yield layer
            if layer.composite:
                yield from walk(layer.body)

    return [(layer.kind, getattr(layer, "features", None)) for layer in walk(
        program.model.layers)]


def test_params_blocks_and_classes_resolve():
    program = mlspec.resolve(mlspec.parse(BASE))
    assert layers(program) == [("block", None), ("dense", 8), ("sigmoid", None),
                               ("block", None), ("dense", 4), ("relu", None), ("dense", 2)]
    assert program.train.optimizer.arguments == {"learning_rate": pytest.approx(0.001)}
    assert [(t.weight, t.loss.kind) for t in program.train.loss] == [
        (1.0, "softmax_cross_entropy"), (1e-4, "l2")]
    assert program.model.output_shape == (2,)


@pytest.mark.parametrize("overrides, check", [
    ({"hidden": 16}, lambda p: layers(p)[1] == ("dense", 32)),
    ({"train.steps": 7}, lambda p: p.train.steps == 7),
    ({"train.batch": 32}, lambda p: p.train.batch == 32),
    ({"data.train.n": 50}, lambda p: p.data.train.n == 50),
    ({"train.optimizer.learning_rate": 0.5},
     lambda p: p.train.optimizer.arguments["learning_rate"] == 0.5),
    ({"lr": 1.0}, lambda p: p.train.optimizer.arguments["learning_rate"] == 0.1),
])
def test_overrides(overrides, check):
    assert check(mlspec.resolve(mlspec.parse(BASE), overrides))


def test_overrides_from_the_command_line_are_spec_values():
    key, value = parse_override("train.optimizer=sgd(learning_rate=0.2, momentum=0.9)")
    program = mlspec.resolve(mlspec.parse(BASE), {key: value})
    assert program.train.optimizer.name == "sgd"
    assert program.train.optimizer.arguments == {"learning_rate": 0.2, "momentum": 0.9}


IRIS = """
model net {
    dense(classes)
}
data {
    source = iris
    valid  = 0.2
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    steps     = 10
}
"""


@pytest.mark.parametrize("overrides, text", [
    ({"train.loss": {"softmax_cross_entropy": 1, "l2": 1e-3}},
     "train.loss=softmax_cross_entropy + 0.001 * l2"),
    ([("train.loss", {"softmax_cross_entropy": 1, "l2": 1e-3})],
     "train.loss=softmax_cross_entropy + 0.001 * l2"),
    ({"train.loss": "softmax_cross_entropy"}, "train.loss=softmax_cross_entropy"),
    ({"data.source": "wine"}, "data.source=wine"),
    ({"train.metrics": ["accuracy"]}, "train.metrics=[accuracy]"),
    ({"train.optimizer": "lbfgs"}, "train.optimizer=lbfgs"),
    ({"train.optimizer.learning_rate": 0.5}, "train.optimizer.learning_rate=0.5"),
])
def test_python_overrides_follow_the_builders_rules(overrides, text):
    """A Python value overrides as the builders take it (a string in `train.loss` names a
    loss), so it resolves as the same override written as `--set` text does."""
    spec = mlspec.parse(IRIS)
    assert mlspec.resolve(spec, overrides) == mlspec.resolve(spec, dict([parse_override(text)]))


@pytest.mark.parametrize("overrides, message", [
    ({"train.loss": object()}, "override 'train.loss': an object cannot be a spec value"),
    ({"train.loss": "nope"}, "override 'train.loss': unknown loss 'nope'"),
    ({"train.metrics": ["acuracy"]}, "override 'train.metrics': unknown metric 'acuracy'"),
    ({"train.optimizer.learning_rate": None}, "override 'train.optimizer.learning_rate': "
                                              "a NoneType cannot be a spec value"),
    ({"lr": float("nan")}, "override 'lr': nan is no spec number"),
    ([1, 2], "overrides are a dict of keys"),
    ({3: 1}, "overrides are a dict of keys"),
])
def test_python_overrides_that_are_no_spec_values_are_errors(overrides, message):
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(BASE if "lr" in str(overrides) else IRIS), overrides)
    assert message in str(info.value)


@pytest.mark.parametrize("key, hint", [
    ("hiden", "did you mean 'hidden'?"),
    ("train.stesp", "did you mean 'train.steps'?"),
    ("data.train.m", "data source 'hill' has no argument 'm'; did you mean 'n'?"),
    ("model.x", ""),
])
def test_unknown_override_names_the_nearest(key, hint):
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(BASE), {key: 1})
    assert hint in str(info.value)
    assert len(info.value.diagnostics) == 1, "one mistake, one message"


SOURCE_DATA = 'data {\n    source = hill(n=200)\n    valid  = 0.2\n}\n'
SOURCE_BASE = BASE[:BASE.index("data {")] + SOURCE_DATA + BASE[BASE.index("train {"):]
STEPS_LINE = BASE.splitlines().index("    steps     = 20") + 1
SOURCE_LINE = SOURCE_BASE.splitlines().index("    source = hill(n=200)") + 1

# name -> (the spec, the --set overrides, the place (line, column), words of the error)
CLASHES = {
    "epochs from --set, steps in the spec": (
        BASE, ["train.epochs=3"], (STEPS_LINE, 5),
        "train has both 'steps' and 'epochs'; give exactly one of them ('epochs' comes "
        "from --set train.epochs)"),
    "epochs from Python, steps in the spec": (
        BASE, {"train.epochs": 3}, (STEPS_LINE, 5), "('epochs' comes from an override)"),
    "both in the spec": (
        BASE.replace("    steps     = 20\n", "    steps     = 20\n    epochs = 2\n"), [],
        (STEPS_LINE + 1, 5), "train has both 'steps' and 'epochs'; give exactly one of them"),
    "a train source from --set, a source in the spec": (
        SOURCE_BASE, ["data.train=hill(n=10)"], (SOURCE_LINE, 5),
        "with 'source', the splits are sizes: give 'valid' (and 'test') as fractions or "
        "counts, not a 'train' source ('train' comes from --set data.train)"),
}


@pytest.mark.parametrize("case", CLASHES, ids=str)
def test_settings_that_exclude_each_other_are_an_error_at_the_specs_one(case):
    text, overrides, (line, column), words = CLASHES[case]
    if isinstance(overrides, list):
        overrides = dict(parse_override(o) for o in overrides)
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(text, "s.mlspec"), overrides)
    (diagnostic,) = info.value.diagnostics
    assert words in diagnostic.message
    rendered = diagnostic.render()
    assert rendered.startswith(f"s.mlspec:{line}:{column}: error: "), rendered
    assert rendered.splitlines()[1] == "    " + text.splitlines()[line - 1]


def test_a_clash_is_reported_with_the_settings_own_mistakes():
    text = BASE.replace("    steps     = 20\n", "    steps     = 20\n    epochs = 2\n"
                        "    batch = 0\n    stpes = 1\n")
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(text, "s.mlspec"))
    found = [(d.span.line, d.message) for d in info.value.diagnostics]
    assert [line for line, _ in found] == [STEPS_LINE + 1, STEPS_LINE + 2, STEPS_LINE + 3]
    assert "has both 'steps' and 'epochs'" in found[0][1]
    assert "setting 'batch' of train should be greater than 0 (got an integer 0)" in found[1][1]
    assert "unknown train setting 'stpes'; did you mean 'steps'?" in found[2][1]


def test_a_data_mistake_found_only_at_run_is_shown_at_the_data_section(tmp_path):
    # the valid file's columns are read only when its rows are encoded as the train file's
    (tmp_path / "train.csv").write_text("x,y,label\n1,0,a\n2,1,b\n3,0,a\n4,1,b\n")
    (tmp_path / "valid.csv").write_text("x,z,label\n1,0,a\n2,1,b\n")
    data = 'data {\n    train = csv("train.csv", target="label")\n' \
           '    valid = csv("valid.csv", target="label")\n}\n'
    path = tmp_path / "s.mlspec"
    path.write_text(SOURCE_BASE.replace(SOURCE_DATA, data))
    mlspec.check(mlspec.load(path))
    with pytest.raises(SpecError, match="'valid.csv' has no column 'y'") as info:
        mlspec.run(mlspec.load(path))
    line = path.read_text().splitlines().index("data {") + 1
    assert info.value.render().startswith(f"{path}:{line}:1: error: ")


def _points(folder, rows: int) -> None:
    (folder / "points.csv").write_text("x,label\n" + "".join(f"{i},{'ab'[i % 2]}\n"
                                                             for i in range(rows)))


# name -> (source, sizes, the size setting at fault, words of the error)
SPLITS = {
    "fractions past the whole": ("iris", "valid = 0.6\n    test = 0.5", "test",
                                 "'test' = 0.5 leaves no train rows: of the source's 150 "
                                 "rows, 'valid' takes 90 and 'test' takes 75"),
    "counts that take every row of a CSV": (
        'csv("points.csv", target="label")', "valid = 2\n    test = 2", "test",
        "'test' = 2 leaves no train rows: of the source's 4 rows, 'valid' takes 2 and 'test' "
        "takes 2"),
    "a count of every row alone": ('csv("points.csv", target="label")',
                                   "valid = 4\n    test = 1", "valid",
                                   "'valid' = 4 leaves no train rows: of the source's 4 rows, "
                                   "'valid' takes 4 and 'test' takes 1"),
    "a test count past the rows alone": ("digits", "valid = 0.1\n    test = 5000", "test",
                                         "'test' = 5000 leaves no train rows: of the "
                                         "source's 1,797 rows, 'valid' takes 180 and 'test' "
                                         "takes 5,000"),
    "a fraction that rounds to no rows": ("wine", "valid = 0.002", "valid",
                                          "'valid' = 0.002 takes none of the source's 178 "
                                          "rows"),
    "a generated source": ("hill(n=10)", "valid = 0.2\n    test = 8", "test",
                           "'test' = 8 leaves no train rows: of the source's 10 rows"),
}


@pytest.mark.parametrize("case", SPLITS, ids=str)
def test_sizes_that_leave_no_train_rows_are_a_check_error_at_the_size(case, tmp_path):
    source, sizes, split, words = SPLITS[case]
    _points(tmp_path, 4)
    path = tmp_path / "s.mlspec"
    text = SOURCE_BASE.replace(SOURCE_DATA, f"data {{\n    source = {source}\n    {sizes}\n}}\n")
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.load(path))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == words or diagnostic.message.startswith(words), diagnostic
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith(f"    {split} ="))
    rendered = info.value.render()  # at the size's value
    assert rendered.startswith(f"{path}:{line}:{len(split) + 8}: error: "), rendered


def test_a_size_from_an_override_is_placed_in_its_set_text():
    key, value = parse_override("data.valid=0.999")
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(SOURCE_BASE), {key: value})
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == ("'valid' = 0.999 leaves no train rows: of the source's 200 "
                                  "rows, 'valid' takes 200")
    assert diagnostic.span.file == "--set data.valid"


def test_sizes_that_leave_one_train_row_split_as_check_counts_them(tmp_path):
    """check's row counts are the splits that run makes (counted two ways)."""
    from mlspec.runtime.loading import load_data

    text = SOURCE_BASE.replace(SOURCE_DATA, "data {\n    source = iris\n    valid = 0.5\n"
                                            "    test = 74\n}\n")
    data = mlspec.check(mlspec.parse(text)).data
    assert data.split_rows == {"train": 1, "valid": 75, "test": 74}
    assert {k: len(x) for k, (x, _) in load_data(data).splits.items()} == data.split_rows


def test_a_file_that_shrank_after_check_is_refused_at_run(tmp_path):
    """run splits the rows it reads: a file with fewer rows than check saw is a data error,
    not an empty split (a valid split of no rows left early stopping without its metric)."""
    from mlspec.catalog.sources import DataError
    from mlspec.runtime.loading import load_data

    _points(tmp_path, 10)
    path = tmp_path / "s.mlspec"
    path.write_text(SOURCE_BASE.replace(SOURCE_DATA, 'data {\n    source = csv("points.csv", '
                                        'target="label")\n    valid = 0.1\n}\n'))
    data = mlspec.check(mlspec.load(path)).data
    assert data.split_rows == {"train": 9, "valid": 1}
    _points(tmp_path, 4)
    with pytest.raises(DataError, match="'valid' = 0.1 takes no rows of 4"):
        load_data(data)
    _points(tmp_path, 10)
    data = mlspec.resolve(mlspec.load(path), dict([parse_override("data.valid=3")])).data
    _points(tmp_path, 3)
    with pytest.raises(DataError, match=r"\(3 \+ 0 rows\) leave no train rows out of 3"):
        load_data(data)


def test_a_spec_without_a_model_is_named(tmp_path):
    path = tmp_path / "s.mlspec"
    path.write_text("param a = 1\ndata { source = iris }\n")
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.load(path))
    assert info.value.render() == f"error: {path}: the spec has no model"
    path.write_text("param a = 1\n")  # params only: a library, and the error says so
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.load(path))
    assert info.value.render().startswith(f"error: {path}: the spec has no model (with only")


def test_classes_without_data_is_an_error():
    with pytest.raises(SpecError, match="'classes' is the number of classes of the data's "
                                        "target, and this spec has no data section"):
        mlspec.resolve(mlspec.parse("model m {\n    input [2]\n    dense(classes)\n}\n"))


def test_imports_bring_params_and_blocks(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "blocks.mlspec").write_text(
        "param width = 3\nblock head(n) {\n    dense(n)\n}\n")
    main = tmp_path / "main.mlspec"
    main.write_text('import "common/blocks.mlspec"\nmodel m {\n    input [2]\n'
                    "    dense(width) -> relu\n    head(1)\n}\n")
    program = mlspec.resolve(mlspec.load(main))
    assert program.model.output_shape == (1,)


def test_import_cycle_and_clash_are_errors(tmp_path):
    (tmp_path / "a.mlspec").write_text('import "b.mlspec"\nparam x = 1\n')
    (tmp_path / "b.mlspec").write_text('import "a.mlspec"\n')
    main = tmp_path / "main.mlspec"
    main.write_text('import "a.mlspec"\nmodel m {\n    input [2]\n    dense(1)\n}\n')
    with pytest.raises(SpecError, match="import cycle"):
        mlspec.resolve(mlspec.load(main))
    (tmp_path / "b.mlspec").write_text("param x = 2\n")
    main.write_text('import "b.mlspec"\nparam x = 1\nmodel m {\n    input [2]\n'
                    "    dense(1)\n}\n")
    with pytest.raises(SpecError, match="'x' is defined here and in an import"):
        mlspec.resolve(mlspec.load(main))


def test_imported_file_may_not_hold_a_model(tmp_path):
    (tmp_path / "other.mlspec").write_text("model other { input [1] dense(1) }\n")
    main = tmp_path / "main.mlspec"
    main.write_text('import "other.mlspec"\nmodel m {\n    input [2]\n    dense(1)\n}\n')
    with pytest.raises(SpecError, match="may hold only param, block and import"):
        mlspec.resolve(mlspec.load(main))


def test_devices_setting_is_validated():
    text = BASE.replace("    steps     = 20\n", "    steps     = 20\n    devices   = 0\n")
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(text, "s.mlspec"))
    assert "setting 'devices' of train" in str(info.value)
    assert [(d.span.line, d.span.column) for d in info.value.diagnostics] == [(20, 17)]
    for value in ("4", "all"):
        program = mlspec.resolve(mlspec.parse(text.replace("devices   = 0",
                                                           f"devices   = {value}")))
        assert program.train.devices == (4 if value == "4" else "all")


def test_python_api_run_with_overrides():
    result = mlspec.run(mlspec.parse(BASE), overrides={"train.steps": 5})
    assert list(result.history["step"]) == [0, 1, 2, 3, 4, 5]
    assert result.history.columns[:2].tolist() == ["step", "train.loss"]
    assert set(result.metrics) >= {"train.loss", "valid.loss"}
    assert "mlp_0" in result.params and "Dense_0" in result.params
