"""Spec input that is not what it should be: bytes that are not UTF-8 text, paths that are
no readable file, imports of files that are no spec, specs that would hang `check` or
cannot fit in memory, and JSON specs whose names are no names. Each is an error at its
place (exit 2), never a traceback, a hang, or the contents of a file that is no spec."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

import mlspec
from mlspec.cli import main
from mlspec.semantics.overrides import parse_override
from mlspec.semantics.sweep import expand
from mlspec.syntax import ir
from mlspec.syntax.json_spec import parse_json
from mlspec.syntax.limits import MAX_DEPTH

MODEL = "model m {\n    input [2]\n    dense(1)\n}\n"
LIMIT_24GB = str(24 * 10**9)
MEMORY_LIMIT_ENV = "MLSPEC_MEMORY_LIMIT"  # bytes that check lets a run use


def check_cli(path: Path, capsys) -> tuple[int, str]:
    """`mlspec check PATH` in process: its exit status and what it printed."""
    status = main(["check", str(path)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


# ----------------------------------------------------------------- bytes and paths


def _symlink_loop(folder: Path, name: str) -> Path:
    (folder / f"other_{name}").symlink_to(folder / name)
    (folder / name).symlink_to(folder / f"other_{name}")
    return folder / name


def _bytes(data: bytes):
    def make(folder: Path, name: str) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return make


def _directory(folder: Path, name: str) -> Path:
    (folder / name).mkdir()
    return folder / name


def _missing(folder: Path, name: str) -> Path:
    return folder / name


def _fifo(folder: Path, name: str) -> Path:
    os.mkfifo(folder / name)  # opening it would wait for a writer forever
    return folder / name


def _too_big(folder: Path, name: str) -> Path:
    (folder / name).write_text(MODEL + "#" * 2**20 + "\n")
    return folder / name


LATIN1 = b"# caf\xe9 au lait\n" + MODEL.encode()
NUL = MODEL.replace("dense(1)", "dense(1)\0").encode()
BINARY = random.Random(0).randbytes(300)

# name -> (how the file is made, the error's words, its line:column or None for no place
# in the file itself)
BAD_FILES = {
    "latin-1 in a comment": (_bytes(LATIN1), "byte 0xe9 is not UTF-8", "1:6"),
    "UTF-16 LE with BOM": (_bytes(b"\xff\xfe" + MODEL.encode("utf-16-le")), "UTF-16", "1:1"),
    "UTF-16 BE with BOM": (_bytes(b"\xfe\xff" + MODEL.encode("utf-16-be")), "UTF-16", "1:1"),
    "UTF-16 LE without BOM": (_bytes(MODEL.encode("utf-16-le")), "UTF-16", "1:1"),
    "NUL byte": (_bytes(NUL), "NUL byte", "3:13"),
    "random binary": (_bytes(BINARY), "is not UTF-8", "1:1"),
    "a directory": (_directory, "it is a directory", None),
    "a symlink loop": (_symlink_loop, "symlink loop", None),
    "a missing file": (_missing, "No such file", None),
    "a FIFO": (_fifo, "it is not a regular file", None),
    "a file of more than 1 MiB": (_too_big, "more than a spec may", None),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
def test_a_spec_file_that_is_no_utf8_text_is_an_error_at_its_place(case, tmp_path, capsys):
    make, words, place = BAD_FILES[case]
    path = make(tmp_path, "spec.mlspec")
    with pytest.raises(mlspec.SpecError, match=words) as info:
        mlspec.load(path)
    rendered = info.value.render()
    if place is not None:
        assert rendered.startswith(f"{path}:{place}: error: ")
    status, output = check_cli(path, capsys)
    assert status == 2 and words in output and "Traceback" not in output
    assert "caf" not in output and "dense" not in output  # the file is not quoted


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
def test_an_import_that_is_no_utf8_text_is_an_error(case, tmp_path, capsys):
    make, words, place = BAD_FILES[case]
    imported = make(tmp_path, "common.mlspec")
    main_spec = tmp_path / "main.mlspec"
    main_spec.write_text('import "common.mlspec"\n' + MODEL)
    with pytest.raises(mlspec.SpecError, match=words) as info:
        mlspec.check(mlspec.load(main_spec))
    rendered = info.value.render()
    # bad bytes are shown in the imported file; a file that cannot be read at the import
    where = f"{imported}:{place}" if place is not None else f"{main_spec}:1:1"
    assert rendered.startswith(f"{where}: error: ")
    status, output = check_cli(main_spec, capsys)
    assert status == 2 and words in output and "Traceback" not in output


def test_a_utf8_byte_order_mark_is_accepted_and_ignored(tmp_path, capsys):
    path = tmp_path / "spec.mlspec"
    path.write_bytes(b"\xef\xbb\xbf" + MODEL.encode())
    assert mlspec.load(path) == mlspec.parse(MODEL)
    common = tmp_path / "common.mlspec"
    common.write_bytes(b"\xef\xbb\xbfparam width = 3\n")
    main_spec = tmp_path / "main.mlspec"
    main_spec.write_text('import "common.mlspec"\n' + MODEL.replace("dense(1)", "dense(width)"))
    assert mlspec.check(mlspec.load(main_spec)).model.output_shape == (3,)
    assert check_cli(path, capsys)[0] == 0


@pytest.mark.parametrize("case", ["latin-1 in a comment", "UTF-16 LE with BOM", "NUL byte",
                                  "a directory"])
def test_fmt_reports_a_bad_file_without_a_traceback(case, tmp_path, capsys):
    make, words, _ = BAD_FILES[case]
    path = make(tmp_path, "spec.mlspec")
    before = path.read_bytes() if path.is_file() else None
    assert main(["fmt", str(path)]) == 2
    assert words in capsys.readouterr().err
    assert (path.read_bytes() if path.is_file() else None) == before


def test_fmt_leaves_a_json_spec_as_it_is(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(mlspec.parse(MODEL).model_dump_json())
    before = path.read_bytes()
    assert main(["fmt", str(path)]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_fmt_rewrites_a_file_with_a_byte_order_mark_without_it(tmp_path, capsys):
    path = tmp_path / "spec.mlspec"
    path.write_bytes(b"\xef\xbb\xbf" + mlspec.parse(MODEL).to_text().encode())
    assert main(["fmt", "--check", str(path)]) == 1
    assert main(["fmt", str(path)]) == 0
    assert path.read_bytes() == mlspec.parse(MODEL).to_text().encode()


# ------------------------------------------------------------ imports of no spec


SECRET = "TOPSECRET-7f3a"


@pytest.mark.parametrize("name, content", [
    ("notes.txt", f"{SECRET}:x:0:0\n"),
    ("passwd", f"root:{SECRET}:0:0\n"),
    ("spec.mlspec.bak", MODEL),
    ("data.csv", f"a,b\n{SECRET},1\n"),
])
def test_only_spec_files_can_be_imported(name, content, tmp_path, capsys):
    (tmp_path / name).write_text(content)
    main_spec = tmp_path / "main.mlspec"
    main_spec.write_text(f'import "{name}"\n' + MODEL)
    with pytest.raises(mlspec.SpecError, match="only .mlspec and .json") as info:
        mlspec.check(mlspec.load(main_spec))
    assert info.value.render().startswith(f"{main_spec}:1:1: error: cannot import '{name}'")
    status, output = check_cli(main_spec, capsys)
    assert status == 2 and SECRET not in output


@pytest.mark.parametrize("target", ["/etc/passwd", "/etc/shadow"])
def test_system_files_are_not_imported_nor_echoed(target, tmp_path, capsys):
    main_spec = tmp_path / "main.mlspec"
    main_spec.write_text(f'import "{target}"\n' + MODEL)
    status, output = check_cli(main_spec, capsys)
    assert status == 2 and "only .mlspec and .json" in output
    assert "root:" not in output


@pytest.mark.parametrize("content", [
    f"{SECRET}:x:0:0\n",
    json.dumps([SECRET]),
    json.dumps({SECRET: 1}),
    json.dumps({"params": [{"name": "x", "value": {"kind": SECRET}}]}),
    json.dumps({"model": {"name": "m", "span": {"file": "/etc/passwd", "line": 1,
                                               "column": 1, "end_line": 1,
                                               "end_column": 5}}}),
], ids=["text", "a list", "an odd key", "an odd kind", "a span into another file"])
def test_a_json_import_that_is_no_spec_json_is_not_echoed(content, tmp_path, capsys):
    (tmp_path / "common.json").write_text(content)
    main_spec = tmp_path / "main.mlspec"
    main_spec.write_text('import "common.json"\n' + MODEL)
    status, output = check_cli(main_spec, capsys)
    assert status == 2 and "Traceback" not in output
    assert SECRET not in output and "root:" not in output
    assert "not a spec JSON" in output or "may hold only" in output


def test_a_spec_json_that_is_no_json_says_so(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(f"{SECRET}\n")
    status, output = check_cli(path, capsys)
    assert status == 2 and "not a spec JSON" in output and SECRET not in output


# ------------------------------------------------------------------ JSON names


def _json_spec() -> dict:
    text = ("param width = 4\nblock mlp(n) {\n    dense(n) -> relu\n}\nmodel net {\n"
            "    mlp(width)\n    dense(2, use_bias=false)\n}\ndata {\n"
            "    train = hill(n=100)\n    valid = hill(n=50, seed=1)\n}\ntrain {\n"
            "    loss = softmax_cross_entropy\n    optimizer = adam(learning_rate=0.01)\n"
            "    steps = 10\n    early_stop = early_stop(metric=valid.loss)\n}\n")
    return json.loads(mlspec.parse(text).model_dump_json())


def _set(spec: dict, where: tuple, value) -> dict:
    node = spec
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return spec


JSON_PLACES = {
    "model name": ("model", "name"),
    "param name": ("params", 0, "name"),
    "block name": ("blocks", 0, "name"),
    "block parameter": ("blocks", 0, "params", 0, "name"),
    "layer name": ("model", "layers", 1, "name"),
    "keyword name": ("model", "layers", 1, "kwargs", 0, "name"),
    "setting path": ("train", "settings", 2, "path"),
    "call name": ("train", "settings", 1, "value", "name"),
}
BAD_NAMES = ["../../x", "/tmp/abs", "a b", "1st", "", "x.", "na\u00efve"]


@pytest.mark.parametrize("place", JSON_PLACES, ids=str)
@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_names_in_a_json_spec_obey_the_name_rule(place, name, tmp_path, capsys):
    path = tmp_path / "spec.json"
    text = json.dumps(_set(_json_spec(), JSON_PLACES[place], name), indent=1)
    path.write_text(text)
    with pytest.raises(mlspec.SpecError, match="is not a name") as info:
        mlspec.load(path)
    # at the name's value in the JSON, quoted (the file says it is a spec)
    value = f'"{JSON_PLACES[place][-1]}": {json.dumps(name)}'
    row, line = next((i, line) for i, line in enumerate(text.splitlines(), 1)
                     if line.strip().rstrip(",") == value)
    column = line.index(json.dumps(name)) + 1
    head, quoted, caret = info.value.render().splitlines()[:3]
    assert head.startswith(f"{path}:{row}:{column}: error: ")
    assert quoted.strip() == line.strip() and caret.strip().startswith("^")
    assert check_cli(path, capsys)[0] == 2


def test_a_valid_json_spec_loads_with_its_dotted_names(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(_json_spec()))
    program = mlspec.check(mlspec.load(path))
    assert program.name == "net" and program.train.early_stop.metric == "valid.loss"


# ------------------------------------------------------------------ JSON places


def _exported(text: str) -> str:
    """The spec JSON as `mlspec export` writes it (indented, `"kind": "spec"` first)."""
    return mlspec.parse(text).model_dump_json(indent=2) + "\n"


SPEC_FOR_JSON = ("model m {\n    input [2]\n    dense(3, use_bias=false)\n}\n"
                 "train {\n    loss = mse\n    optimizer = sgd(learning_rate=0.5)\n"
                 "    steps = 7\n}\n")

# name -> (the text replaced in the exported JSON, its replacement, where in the
# replacement the caret goes, the words of the error)
JSON_MISTAKES = {
    "a string for a number": ('"value": 3', '"value": "3"', '"3"',
                              "expected a number here, not a string"),
    "true for a number": ('"value": 3', '"value": true', "true", "not true or false"),
    "an integer past 64 bits": ('"value": 3', '"value": 9223372036854775808', "9223",
                                "fit in 64 bits"),
    "NaN for a number": ('"value": 3', '"value": NaN', "NaN", "finite number"),
    "a number for a bool": ('"value": false', '"value": 0', "0",
                            "expected true or false here"),
    "a string for a bool": ('"value": false', '"value": "no"', '"no"', "expected true or"),
    "a key no node has": ('"name": "dense",', '"name": "dense", "colour": 1,', '"colour"',
                          "a key that this node does not have"),
    "an unknown kind": ('"kind": "number"', '"kind": "numbr"', '"numbr"', "unknown kind"),
    "an unknown layer (found by the resolver)": ('"name": "dense"', '"name": "dens"',
                                                 '"dens"', "unknown layer 'dens'"),
    "a setting the resolver refuses": ('"value": 7', '"value": -7', "-7", "steps"),
    "a comma missing": ('"name": "dense",', '"name": "dense" "args"', '"args"',
                        "Expecting ',' delimiter"),
}


@pytest.mark.parametrize("case", JSON_MISTAKES, ids=str)
def test_a_mistake_in_a_json_spec_is_shown_at_its_place(case, tmp_path, capsys):
    old, new, at, words = JSON_MISTAKES[case]
    text = _exported(SPEC_FOR_JSON).replace(old, new, 1)
    assert new in text
    path = tmp_path / "spec.json"
    path.write_text(text)
    status, output = check_cli(path, capsys)
    assert status == 2 and "Traceback" not in output and words in output, output
    start = text.index(new) + new.index(at)
    row = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    head, quoted, caret = output.splitlines()[:3]
    assert head.startswith(f"{path}:{row}:{column}: error: "), output
    line = text.splitlines()[row - 1]
    assert quoted == f"    {line}" and caret.index("^") == 4 + column - 1


def test_an_integer_is_taken_where_a_json_spec_wants_a_float(tmp_path):
    text = _exported(SPEC_FOR_JSON).replace('"value": 0.5', '"value": 1', 1)
    path = tmp_path / "spec.json"
    path.write_text(text)
    program = mlspec.check(mlspec.load(path))
    assert program.train.optimizer.arguments["learning_rate"] == 1


def test_a_json_file_that_does_not_say_it_is_a_spec_is_placed_but_not_quoted(tmp_path,
                                                                               capsys):
    spec = json.loads(_exported(SPEC_FOR_JSON))
    del spec["kind"]  # no `"kind": "spec"` first: it may be any JSON file
    spec["model"]["layers"][0]["args"][0]["value"] = SECRET
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec, indent=2))
    status, output = check_cli(path, capsys)
    text = path.read_text()
    row = text[:text.index(json.dumps(SECRET))].count("\n") + 1
    assert status == 2 and output.startswith(f"{path}:{row}:")
    assert "expected a number" in output and SECRET not in output
    assert len(output.strip().splitlines()) == 1  # no line quoted


@pytest.mark.parametrize("content", ["", "\n\n", '{"a": 1}', "[1, 2", '{"model": 3}'])
def test_an_empty_or_foreign_json_file_prints_its_error_alone(content, tmp_path, capsys):
    """No quote of a file that is no spec (nor of an empty one): no empty lines either."""
    path = tmp_path / "spec.json"
    path.write_text(content)
    status, output = check_cli(path, capsys)
    assert status == 2 and output.startswith(f"{path}:")
    assert output.endswith("\n") and len(output.splitlines()) == 1, repr(output)


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("newline", [False, True])
def test_a_cut_off_json_spec_gets_its_caret_where_its_text_ends(cut, newline, tmp_path,
                                                                capsys):
    """A truncated export: the error is past the end of its last line, caret and all."""
    text = _exported(SPEC_FOR_JSON)
    text = text[:text.rindex(",", 0, int(len(text) * cut)) + 1]  # after a value
    path = tmp_path / "spec.json"
    path.write_text(text + ("\n" if newline else ""))
    status, output = check_cli(path, capsys)
    lines = output.splitlines()
    last = text.splitlines()[-1]
    assert status == 2 and len(lines) == 3, output
    assert lines[0].startswith(f"{path}:{len(text.splitlines())}:{len(last) + 1}: error: ")
    assert lines[1] == f"    {last}" and lines[2] == " " * (4 + len(last)) + "^", output


# ------------------------------------------------------------------ nesting

DEPTH = MAX_DEPTH + 1  # the first IR level past the limit; the spec is level 1
PREFIX = "param p = "  # a param's value is level 3 (spec, param, value)


def _params_chain(count: int) -> str:
    return "param a0 = 1\n" + "".join(f"param a{i} = a{i - 1}\n" for i in range(1, count))


# name -> (the spec text, the line and column where the limit is crossed, the words)
NESTING = {
    "a list in a list": (PREFIX + "[" * 200 + "1" + "]" * 200 + "\n" + MODEL,
                         (1, len(PREFIX) + DEPTH - 2), "nested more than 64 deep"),
    "a negation of a negation": (PREFIX + "-" * 200 + "x\n" + MODEL,
                                 (1, len(PREFIX) + DEPTH - 2), "nested more than 64 deep"),
    "a call in a call": (PREFIX + "f(" * 120 + ")" * 120 + "\n" + MODEL,
                         (1, len(PREFIX) + 1 + 2 * (DEPTH - 3)), "nested more than 64"),
    "a sum of many terms": (PREFIX + " + ".join(["1"] * 120) + "\n" + MODEL,
                            (1, len(PREFIX) + 1), "the terms of a long sum"),
    "a repeat in a repeat": ("model m {\n    input [2]\n" + "repeat(1) {\n" * 1000
                             + "dense(1)\n" + "}\n" * 1000 + "}\n",
                             (2 + DEPTH - 3, len("repeat(") + 1), "nested more than 64"),
    "params defined by params": (_params_chain(100) + MODEL.replace("dense(1)", "dense(a99)"),
                                 (100 - MAX_DEPTH + 1, len("param a36 = ") + 1),
                                 "params are defined by params more than 64 deep"),
    "a value nested through params": (
        "param q0 = 1\n" + "".join(f"param q{i} = [q{i - 1}]\n" for i in range(1, 100))
        + "param all = [" + ", ".join(f"q{i}" for i in range(100)) + "]\n"
        + MODEL.replace("dense(1)", "reshape(all)"),
        (MAX_DEPTH + 1, len("param ") + 1), "param 'q64' is nested 65 deep when written out"),
    "blocks in blocks": ("".join(f"block b{i}() {{\n    b{i + 1}\n}}\n" for i in range(100))
                         + "block b100() {\n    relu\n}\n"
                         + MODEL.replace("dense(1)", "b0"),
                         (3 * (MAX_DEPTH - 4) + 2, 5),
                         "layers are nested more than 62 deep here once blocks"),
}


@pytest.mark.parametrize("case", NESTING, ids=str)
def test_nesting_past_the_limit_is_an_error_where_it_crosses(case, tmp_path, capsys):
    text, (row, column), words = NESTING[case]
    path = tmp_path / "spec.mlspec"
    path.write_text(text)
    status, output = check_cli(path, capsys)
    assert status == 2 and "Traceback" not in output and words in output, output[:500]
    head, quoted, caret = output.splitlines()[:3]
    assert head.startswith(f"{path}:{row}:{column}: error: "), head
    assert quoted == "    " + text.splitlines()[row - 1] and caret.index("^") == 3 + column


def test_an_import_chain_past_the_limit_is_an_error_at_its_import(tmp_path, capsys):
    for i in range(100):
        (tmp_path / f"f{i}.mlspec").write_text(f'import "f{i + 1}.mlspec"\nparam p{i} = 1\n')
    (tmp_path / "f100.mlspec").write_text("param p100 = 1\n")
    path = tmp_path / "spec.mlspec"
    path.write_text('import "f0.mlspec"\n' + MODEL)
    status, output = check_cli(path, capsys)
    crossing = tmp_path / f"f{MAX_DEPTH - 1}.mlspec"  # the 64th file, after spec.mlspec
    assert status == 2 and output.startswith(f"{crossing}:1:1: error: imports import "), output


def test_an_override_counts_where_it_lands_towards_the_limit():
    spec = mlspec.parse(MODEL + "train {\n    steps = 1\n}\n")
    # the value sits at level 4 (spec, section, setting, value): its 61 lists reach 64,
    # the number in them 65
    deep = "[" * (MAX_DEPTH - 3) + "1" + "]" * (MAX_DEPTH - 3)
    with pytest.raises(mlspec.SpecError, match="nested more than 64 deep") as info:
        parse_override(f"train.steps={deep}")
    assert info.value.render().startswith(f"--set train.steps:1:{MAX_DEPTH - 2}: error: ")
    key, value = parse_override(f"train.steps={deep[1:-1]}")  # one level less: it fits
    with pytest.raises(mlspec.SpecError) as info:  # (it is no step count, and no loss)
        mlspec.resolve(spec, {key: value})
    assert "nested" not in str(info.value)


# name -> a spec with a value or layers nested `n` deep
AT_THE_LIMIT = {
    "a list in a list": lambda n: PREFIX + "[" * n + "1" + "]" * n + "\n" + MODEL,
    "a negation of a negation": lambda n: PREFIX + "-" * n + "x\n" + MODEL,
    "a call in a call": lambda n: PREFIX + "f(" * n + ")" * n + "\n" + MODEL,
    "keywords in calls": lambda n: PREFIX + "f(a=" * n + "1" + ")" * n + "\n" + MODEL,
    "a sum of many terms": lambda n: PREFIX + " + ".join(["x"] * n) + "\n" + MODEL,
    "a repeat in a repeat": lambda n: ("model m {\n    input [2]\n" + "repeat(1) {\n" * n
                                       + "dense(1)\n" + "}\n" * n + "}\n"),
}


@pytest.mark.parametrize("case", AT_THE_LIMIT, ids=str)
def test_a_spec_nested_to_the_limit_is_read_printed_and_exported_whole(case):
    """The deepest spec that parses is checked, prints back and goes through JSON: every
    reader takes what the parser lets through."""
    make = AT_THE_LIMIT[case]
    n = 1
    while True:
        try:
            mlspec.parse(make(n + 1))
        except mlspec.SpecError as exc:
            assert "nested more than 64 deep" in str(exc)
            break
        n += 1
    spec = mlspec.parse(make(n))
    assert mlspec.parse(spec.to_text()) == spec
    assert parse_json(spec.model_dump_json(), "spec.json") == spec
    if case == "a repeat in a repeat":
        assert mlspec.check(spec).model.output_shape == (1,)


def test_a_json_spec_nested_past_the_limit_is_an_error_where_it_crosses(tmp_path, capsys):
    value = mlspec.parse(PREFIX + "x\n" + MODEL).params[0].value
    for _ in range(100):
        value = ir.Neg(operand=value)
    deep = mlspec.parse(PREFIX + "x\n" + MODEL).model_copy(
        update={"params": (ir.Param(name="p", value=value),)})  # IR nested past the limit
    text = deep.model_dump_json(indent=1)  # (JSON nests once a level: within its limit)
    path = tmp_path / "spec.json"
    path.write_text(text)
    status, output = check_cli(path, capsys)
    start = [m.start() for m in re.finditer('{"kind": "neg"|{\n *"kind": "neg"', text)]
    assert status == 2 and "nested more than 64 deep" in output
    row = text.count("\n", 0, start[DEPTH - 3]) + 1  # the neg at level 65
    assert output.startswith(f"{path}:{row}:"), output[:300]
    # JSON nested past any spec's depth stops at the bracket that crosses
    head = '{"kind": "spec", "params": '
    path.write_text(head + "[" * 500 + "]" * 500 + "}")
    status, output = check_cli(path, capsys)
    column = len(head) + 2 * MAX_DEPTH + 1  # the top object is a level too
    assert status == 2 and output.startswith(f"{path}:1:{column}: error: not a spec JSON: "
                                             "it nests more than 129 deep"), output[:300]


# ------------------------------------------------------------------ hangs


def _nested_repeats(folder: Path) -> Path:
    body = "dense(4) -> relu"
    for _ in range(3):
        body = f"repeat(1000) {{\n{body}\n}}"
    path = folder / "spec.mlspec"
    path.write_text(f"model m {{\n    input [4]\n{body}\n}}\n")
    return path


def _block_doubling(folder: Path) -> Path:
    blocks = [f"block b{i}() {{\n    b{i + 1}() -> b{i + 1}()\n}}" for i in range(30)]
    path = folder / "spec.mlspec"
    path.write_text("\n".join(blocks) + "\nblock b30() {\n    relu\n}\n"
                    "model m {\n    input [2]\n    b0()\n}\n")
    return path


def _repeated_embedding(folder: Path) -> Path:
    path = folder / "spec.mlspec"
    path.write_text("model m {\n    input [2]\n    repeat(100) {\n        repeat(100) {\n"
                    "            embedding(2, 2)\n        }\n    }\n}\n")
    return path


def _doubling_loss(folder: Path) -> Path:
    params = "param l0 = mse\n" + "".join(f"param l{i + 1} = l{i} + l{i}\n" for i in range(40))
    path = folder / "spec.mlspec"
    path.write_text(f"{params}model m {{\n    dense(1)\n}}\ndata {{\n    train = linear(n=100)\n"
                    "}\ntrain {\n    loss = l40\n    optimizer = sgd(learning_rate=0.1)\n"
                    "    steps = 10\n}\n")
    return path


def _doubling_block_argument(folder: Path) -> Path:
    blocks = "".join(f"block b{i}(v) {{\n    b{i + 1}([v, v])\n}}\n" for i in range(30))
    path = folder / "spec.mlspec"
    path.write_text(f"{blocks}block b30(v) {{\n    reshape(v)\n}}\n"
                    "model m {\n    input [2]\n    b0(1)\n}\n")
    return path


def _long_names(folder: Path) -> Path:
    """Two names of 300,000 characters that differ in the last: no edit distance."""
    path = folder / "spec.mlspec"
    path.write_text(f"param {'x' * 300_000} = 1\nmodel m {{\n    input [2]\n"
                    f"    dense({'x' * 299_999}y)\n}}\n")
    return path


TRAIN = ("data {\n    train = hill(n=1000)\n    valid = hill(n=100, seed=1)\n}\n"
         "train {\n    loss = softmax_cross_entropy\n    optimizer = adam(learning_rate=0.01)\n"
         "    steps = 100\n}\n")


def _big_sweep(folder: Path) -> Path:
    names = "abcdef"
    params = "".join(f"param {n} = 1\n" for n in names)
    axes = "".join(f"    {n} = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" for n in names)
    path = folder / "spec.mlspec"
    path.write_text(f"{params}model m {{\n    dense(2)\n}}\n{TRAIN}sweep {{\n{axes}}}\n")
    return path


def _import_diamond(folder: Path, names: bool = True) -> Path:
    """f0 imports l0 and r0, which both import f1, and so on: 2^25 paths to f25."""
    depth = 25
    for i in range(depth):
        (folder / f"f{i}.mlspec").write_text(f'import "l{i}.mlspec"\nimport "r{i}.mlspec"\n'
                                             + (f"param p{i} = {i}\n" if names else ""))
        for side in "lr":
            (folder / f"{side}{i}.mlspec").write_text(f'import "f{i + 1}.mlspec"\n'
                                                      + (f"param {side}{i} = 1\n" if names
                                                         else ""))
    (folder / f"f{depth}.mlspec").write_text(f"param p{depth} = 3\n" if names else "")
    path = folder / "spec.mlspec"
    path.write_text('import "f0.mlspec"\n'
                    + MODEL.replace("dense(1)", f"dense(p{depth})" if names else "dense(3)"))
    return path


def _nested_bodies(layer: str, depth: int = 60):
    """`layer { layer { ... dense(2) } }`: repeat asked its body's shape twice, 2^60."""
    def make(folder: Path) -> Path:
        path = folder / "spec.mlspec"
        path.write_text("model m {\n    input [2]\n" + f"{layer} {{\n" * depth
                        + "dense(2)\n" + "}\n" * depth + "}\n")
        return path

    return make


# name -> (how the spec is made, the words of its error (None: it is valid), the place)
HANGS = {
    "repeat(1) nested 60 deep": (_nested_bodies("repeat(1)"), None, None),
    "nested repeat(1000) three deep": (_nested_repeats, "2,000,000,000 layers", "3:1"),
    "blocks doubling 30 deep": (_block_doubling, "more than 10,000 layers once its blocks",
                                "96:5"),
    "a sweep of 10^6 members": (_big_sweep, "this sweep has 1,000,000 members", "19:1"),
    "an import diamond 25 deep": (_import_diamond, None, None),
    "an import diamond 25 deep, no names": (lambda folder: _import_diamond(folder, False),
                                            None, None),
    "a loss doubling through 40 params": (_doubling_loss, "param 'l13' is 16,383 terms",
                                          "14:7"),
    "a list doubling through 30 block arguments": (
        _doubling_block_argument, "argument 'v' of block 'b13' is 16,383 terms", "38:5"),
    "two names of 300,000 characters": (_long_names, "undefined name 'xxxxx", "4:11"),
    "an embedding repeated 10^4 times": (_repeated_embedding, "an array has at most 64", "5:13"),
}


@pytest.mark.parametrize("case", HANGS, ids=str)
def test_check_answers_quickly_where_it_used_to_hang(case, tmp_path):
    make, words, place = HANGS[case]
    path = make(tmp_path)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mlspec", "check", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"check took {elapsed:.1f} s"
    if words is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"{path}:{place}: error: ") and words in result.stderr
        assert len(result.stderr) < 2000  # no long line, name or value is echoed whole


def test_an_import_diamond_counts_once_but_a_clash_is_still_an_error(tmp_path):
    for side in "lr":
        (tmp_path / f"{side}.mlspec").write_text(f'import "base.mlspec"\nparam {side} = 1\n')
    (tmp_path / "base.mlspec").write_text("param width = 3\n")
    main_spec = tmp_path / "main.mlspec"
    main_spec.write_text('import "l.mlspec"\nimport "./r.mlspec"\n'
                         + MODEL.replace("dense(1)", "dense(width)"))
    assert mlspec.check(mlspec.load(main_spec)).model.output_shape == (3,)
    (tmp_path / "r.mlspec").write_text('import "base.mlspec"\nparam width = 2\n')
    with pytest.raises(mlspec.SpecError, match="'width' is defined here and in an import"):
        mlspec.check(mlspec.load(main_spec))


def test_an_import_cycle_is_still_an_error(tmp_path):
    (tmp_path / "a.mlspec").write_text('import "b.mlspec"\nparam a = 1\n')
    (tmp_path / "b.mlspec").write_text('import "a.mlspec"\nparam b = 1\n')
    main_spec = tmp_path / "main.mlspec"
    main_spec.write_text('import "a.mlspec"\n' + MODEL)
    with pytest.raises(mlspec.SpecError, match="import cycle: main.mlspec -> a.mlspec -> "
                                               "b.mlspec -> a.mlspec"):
        mlspec.check(mlspec.load(main_spec))


@pytest.mark.parametrize("body, shape, params", [
    ("repeat(100) {\n repeat(100) {\n dense(4)\n }\n}", (3,), 16 + 9999 * 20),
    ("repeat(3) {\n dense(8)\n}", (2,), 24 + 2 * 72),
    ("repeat(2) {\n repeat(3) {\n max_pool(2)\n }\n}", (64, 64, 1), 0),
])
def test_repeat_shapes_and_counts_are_exact_without_writing_copies_out(body, shape, params):
    """Once a copy keeps its input's shape all later ones do: the counts are the sums over
    every copy (checked against the direct sum for the small ones)."""
    from mlspec.semantics.model import infer_shapes

    text = f"model m {{\n    input {list(shape)}\n{body}\n}}\n"
    layer = mlspec.resolve(mlspec.parse(text)).model.layers[0]
    assert layer.param_count(shape) == params
    out = shape
    if params < 10**4:  # the copies one by one, the way the compiler builds them
        total = 0
        for _ in range(layer.times):
            for sub in layer.body:
                total += sub.param_count(out)
                out = sub.output_shape(out)
        assert total == params and layer.output_shape(shape) == out
    from mlspec.syntax.errors import ErrorCollector

    assert infer_shapes((layer,), shape, ErrorCollector()) == layer.output_shape(shape)


# ------------------------------------------------------------ resource bombs


def _spec(model: str = "dense(2)", data: str = "hill(n=1000)", train: str = "") -> str:
    return (f"model m {{\n    {model}\n    dense(2)\n}}\ndata {{\n    train = {data}\n"
            "    valid = hill(n=100, seed=1)\n}\ntrain {\n    loss = softmax_cross_entropy\n"
            "    optimizer = adam(learning_rate=0.01)\n"
            f"    {train or 'steps = 100'}\n}}\n")


# name -> (spec text, the error's words, its line:column)
BOMBS = {
    "dense(1000000000)": (_spec("dense(1000000000)"), "this run needs at least 4.1 TB", "2:5"),
    "conv(16, 100000) on 8x8": (
        _spec("reshape([8, 8, 1])\n    conv(16, 100000)\n    flatten",
              "hyperplane(n=1000, dim=64)").replace("hill(n=100, seed=1)",
                                                    "hyperplane(n=100, dim=64, seed=1)"),
        "2.6 TB for parameters with their gradients and optimizer state", "3:5"),
    "seeds = 100000000": (_spec(train="steps = 100\n    seeds = 100000000"),
                          "seeds = 100,000,000 makes more members", "13:13"),
    "seeds = 50000 of a wide model": (
        _spec("dense(10000)", train="steps = 100\n    seeds = 50000"),
        "50,000 members need at least", "13:13"),
    "hill(n=10000000000)": (_spec(data="hill(n=10000000000)"), "120.0 GB for "
                            "10,000,000,100 rows of data", "6:13"),
    "steps = 10**12": (_spec(train="steps = 1000000000000"),
                       "1,000,000,000,000 steps are more than a run can count", "12:13"),
    "epochs = 10**10 of 1000 batches": (_spec(train="epochs = 10000000000\n    batch = 1"),
                                        "steps are more than a run can count", "12:14"),
    "steps = 2*10**9 (history)": (_spec(train="steps = 2000000000"),
                                  "for the history of 2,000,000,001 rows", "12:13"),
    "steps = 5*10**8 (history as the host holds it)": (
        _spec(train="steps = 600000000"), "for the history of 600,000,001 rows", "12:13"),
}


@pytest.mark.parametrize("case", BOMBS, ids=str)
def test_what_cannot_fit_is_refused_at_its_place(case, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, LIMIT_24GB)
    text, words, place = BOMBS[case]
    path = tmp_path / "spec.mlspec"
    path.write_text(text)
    with pytest.raises(mlspec.SpecError, match=None) as info:
        mlspec.check(mlspec.load(path))
    rendered = info.value.render()
    assert rendered.startswith(f"{path}:{place}: error: ") and words in rendered, rendered
    if "members" not in words and "count" not in words:
        assert "this machine has 24.0 GB of memory" in rendered
    status, output = check_cli(path, capsys)
    assert status == 2 and words in output


def test_the_memory_limit_decides(tmp_path, monkeypatch):
    """The same spec fits under a large limit and is refused under a small one; without the
    variable the machine's memory is the limit."""
    program = mlspec.check(mlspec.parse(_spec("dense(1000)")))
    assert program.model.output_shape == (2,)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1000000")
    with pytest.raises(mlspec.SpecError, match=r"this machine has 1\.0 MB of memory"):
        mlspec.check(mlspec.parse(_spec("dense(1000)")))
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(mlspec.SpecError, match=f"{MEMORY_LIMIT_ENV} should be a number"):
        mlspec.check(mlspec.parse(_spec()))


def test_a_sweep_whose_members_cannot_fit_together_is_refused_at_the_sweep(monkeypatch):
    # 4 members of one group (only the learning rate differs): all four train at once
    text = _spec("dense(100000)") + "sweep {\n    train.optimizer.learning_rate = " \
        "[0.1, 0.01, 0.001, 0.0001]\n}\n"
    one = mlspec.resolve(mlspec.parse(text))
    from mlspec.semantics.budget import program_needs

    each = sum(n.nbytes for n in program_needs(one, one.spec.train))
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(int(each * 2.5)))
    with pytest.raises(mlspec.SpecError, match="4 members need at least") as info:
        mlspec.check(mlspec.parse(text))
    assert info.value.diagnostics[0].span.line == 14
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(each * 5))
    assert len(expand(mlspec.parse(text))) == 4


@pytest.mark.parametrize("data, batch, rows", [
    ("train = hill(n=1000)\n    valid = hill(n=100, seed=1)", "batch = 1000000000", 1000),
    ("train = hill(n=1000)\n    valid = hill(n=100, seed=1)", "batch = 10", 10),
    ("source = hill(n=1000)\n    valid = 0.25", "steps = 1", 750),
    ("source = hill(n=1000)\n    valid = 0.25\n    test = 100", "steps = 1", 650),
    ("source = iris\n    valid = 0.2", "batch = 1000", 120),
    ("source = digits\n    valid = 0.2\n    test = 100", "batch = 64", 64),
    ("train = digits\n    valid = digits", "steps = 1", 1797),
])
def test_activations_are_counted_for_the_rows_a_step_runs_on(data, batch, rows):
    """A batch larger than the train split runs on the split: the estimate never counts
    more rows than a step has (it is a lower bound)."""
    from mlspec.semantics.budget import program_needs

    text = (f"model m {{\n    dense(1000)\n    dense(classes)\n}}\ndata {{\n    {data}\n}}\n"
            "train {\n    loss = softmax_cross_entropy\n    optimizer = sgd(learning_rate=0.1)\n"
            f"    steps = 10\n    {batch}\n}}\n").replace("steps = 10\n    steps = 1", "steps = 1")
    program = mlspec.resolve(mlspec.parse(text))
    (activations,) = [n for n in program_needs(program) if "activations" in n.what]
    assert activations.nbytes == rows * 1000 * 4 and f"of {rows:,} row" in activations.what


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_the_rows_of_a_file_source_are_counted(kind, tmp_path, monkeypatch):
    """A file's rows count as a generated source's `n`: in its data arrays, and in the
    activations of a full batch for each member, so that 100 seeds of a wide layer on a
    file of 5,000 rows are refused at check rather than dying in run."""
    import numpy as np

    x, y = np.random.default_rng(0).random((5000, 3)), np.arange(5000) % 2
    if kind == "csv":
        lines = [f"{a:.4f},{b:.4f},{c:.4f},{label}\n" for (a, b, c), label in zip(x, y)]
        (tmp_path / "points.csv").write_text("a,b,c,label\n" + "".join(lines))
        source = 'csv("points.csv", target="label")'
    else:
        np.savez(tmp_path / "points.npz", x=x, y=y)
        source = 'npz("points.npz")'
    path = tmp_path / "s.mlspec"
    path.write_text(f"model m {{\n    dense(1000)\n    dense(2)\n}}\ndata {{\n    source = "
                    f"{source}\n    valid = 1000\n}}\ntrain {{\n    loss = softmax_cross_entropy"
                    "\n    optimizer = sgd(learning_rate=0.1)\n    steps = 10\n"
                    "    seeds = 100\n}\n")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, LIMIT_24GB)
    program = mlspec.check(mlspec.load(path))
    from mlspec.semantics.budget import program_needs

    needs = {n.what: n.nbytes for n in program_needs(program, program.spec.train)}
    assert needs["the activations of 4,000 rows"] == 4000 * 1000 * 4  # the train split's
    assert needs["5,000 rows of data"] == 5000 * (3 + 1) * 4  # features and a target
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(10**9))  # 100 members x 16 MB of activations
    with pytest.raises(mlspec.SpecError) as info:
        mlspec.check(mlspec.load(path))
    rendered = info.value.render()
    assert rendered.startswith(f"{path}:13:13: error: 100 members need at least 1.6 GB"), \
        rendered


def test_the_parameter_estimate_matches_the_parameters_flax_makes():
    """The estimate's parameter bytes (one copy) are those of the compiled model."""
    import jax
    import jax.numpy as jnp

    from mlspec.compiler.model import build_module
    from mlspec.semantics.budget import layer_needs

    text = ("model m {\n    input [8, 8, 1]\n    conv(4, 3) -> relu\n    repeat(2) {\n"
            "        conv(4, 3)\n    }\n    flatten\n    dense(10)\n}\n")
    program = mlspec.resolve(mlspec.parse(text))
    module = build_module(program.model)
    x = jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32)
    params = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x), x)["params"]
    actual = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(params))
    need, _ = layer_needs(program.model.layers, (8, 8, 1), 1, 1)
    assert need.nbytes == actual


@pytest.mark.parametrize("optimizer", [
    "sgd(learning_rate=0.1)", "sgd(learning_rate=0.1, momentum=0.9)", "adam(learning_rate=0.1)",
    "adamw(learning_rate=0.1)", "rmsprop(learning_rate=0.1)", "adagrad(learning_rate=0.1)",
    "lion(learning_rate=0.1)", "novograd(learning_rate=0.1)", "amsgrad(learning_rate=0.1)",
    "adadelta(learning_rate=0.1)", "adafactor(learning_rate=0.1)", "lbfgs(learning_rate=0.1)",
])
def test_optimizer_slots_are_a_lower_bound_of_optax_state(optimizer):
    """optax's own state (through jax.eval_shape) holds at least the slots the estimate
    counts, and at most a few scalars more for the aliases it knows."""
    from mlspec.compiler.sizes import optimizer_state_bytes
    from mlspec.semantics.budget import optimizer_slots

    text = (f"model m {{\n    input [10]\n    dense(10)\n}}\ntrain {{\n    loss = mse\n"
            f"    optimizer = {optimizer}\n    steps = 1\n}}\n")
    program = mlspec.resolve(mlspec.parse(text))
    slots = optimizer_slots(program.train.optimizer)
    params = 110 * 4
    actual = optimizer_state_bytes(program)
    assert slots * params <= actual
    if slots:
        assert actual < (slots + 0.1) * params


# ---------------------------------------------------------------- the CLI's bound


@pytest.mark.parametrize("case", ["latin-1 in a comment", "a symlink loop"])
def test_check_of_a_bad_file_through_the_command_exits_2(case, tmp_path):
    make, words, _ = BAD_FILES[case]
    path = make(tmp_path, "spec.mlspec")
    result = subprocess.run([sys.executable, "-m", "mlspec", "check", str(path)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and words in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("nbytes, text", [
    (0, "0 bytes"), (999, "999 bytes"), (16 * 10**9, "16.0 GB"), (2.56e12, "2.6 TB"),
    (10**17, "100.0 PB"), (2**10001, "more than 1000 PB"),
])
def test_sizes_are_written_in_decimal_units(nbytes, text):
    from mlspec.semantics.budget import size_text

    assert size_text(nbytes) == text


def test_a_reshape_to_more_axes_than_an_array_has_is_an_error():
    text = "model m {\n    input [1]\n    reshape([" + ", ".join(["1"] * 64) + "])\n}\n"
    with pytest.raises(mlspec.SpecError, match="65 axes"):
        mlspec.resolve(mlspec.parse(text))
    assert mlspec.resolve(mlspec.parse(text.replace("1, 1])", "1])"))).model.output_shape \
        == (1,) * 63


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a/b", ""])
def test_a_model_name_from_python_is_a_name_too(name):
    """The model's name names its run folder: from Python as from JSON, no path."""
    from mlspec.syntax import ir

    spec = ir.Spec(model=ir.Model(name=name, input=ir.as_expr([2]),
                                  layers=(ir.LayerCall.of("dense", 1),)))
    with pytest.raises(mlspec.SpecError, match="is not a name"):
        mlspec.resolve(spec)


def test_a_sweep_without_training_is_checked_member_by_member(monkeypatch):
    """Members that do not train are never in memory together: each must fit alone."""
    text = ("param w = 1\nmodel m {\n    input [2]\n    dense(w)\n}\n"
            "sweep {\n    w = [1000, 1001]\n}\n")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "20000")  # one member: 16 kB
    assert len(expand(mlspec.parse(text))) == 2
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "10000")
    with pytest.raises(mlspec.SpecError, match=r"at least 16.0 kB \(12.0 kB for parameters, "
                                               r"4.0 kB for the activations of 1 row\)"):
        expand(mlspec.parse(text))
