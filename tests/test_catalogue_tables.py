"""The catalogue tables (`mlspec list`, docs/catalogue.md): read from the registries,
complete, with defaults written as a spec writes them, readable at 80 columns, no jax."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

from mlspec.catalog import tables
from mlspec.catalog.layers import LAYERS
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.merges import MERGES
from mlspec.catalog.metrics import METRICS
from mlspec.catalog.optimizers import names, optax_catalogue
from mlspec.catalog.registry import to_python
from mlspec.catalog.sources import SOURCES
from mlspec.cli import main
from mlspec.syntax.parser import parse_expr

REGISTRIES = {"layers": list(LAYERS), "merges": list(MERGES), "losses": list(LOSSES),
              "metrics": list(METRICS), "optimizers": names("optimizer"),
              "schedules": names("schedule"), "sources": list(SOURCES)}


def test_every_registry_has_a_table_of_all_its_entries():
    assert list(tables.KINDS) == list(REGISTRIES)
    for kind, expected in REGISTRIES.items():
        table = tables.KINDS[kind]()
        assert table.kind == kind and table.names == expected, kind


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_every_entry_has_a_description_of_one_sentence(kind):
    for row in tables.KINDS[kind]().rows:
        description = row[-1]
        assert description.endswith(".") and len(description) > 10, (kind, row)
        assert "\n" not in description


@pytest.mark.parametrize("registry", [LAYERS, MERGES, LOSSES, SOURCES], ids=lambda r: r.what)
def test_defaults_are_written_as_a_spec_writes_them(registry):
    """Each `name=value` of a table, read back as spec text, is the entry's default."""
    for name, cls in registry.items():
        shown = dict(a.split("=", 1) for a in tables.entry_arguments(cls) if "=" in a)
        for argument, text in shown.items():
            value = to_python(parse_expr(text))
            default = cls.model_fields[argument].default
            assert value == (tuple(default) if isinstance(default, list) else default), \
                (name, argument, text)
            assert type(value) is type(default), (name, argument, text)


def test_optax_defaults_read_back_as_optax_wrote_them():
    import ast

    for fn in optax_catalogue().values():
        arguments = dict(a.split("=", 1) for a in tables.optax_arguments(fn) if "=" in a)
        for arg in fn.arguments:
            if arg.name not in arguments or arg.default == "jnp.float32":
                continue
            text = arguments[arg.name]
            assert to_python(parse_expr(text)) == ast.literal_eval(arg.default), (fn.name, text)


def test_arguments_optax_takes_as_python_objects_are_left_out():
    rows = dict((row[0], row[1]) for row in tables.optimizers().rows)
    assert "mask" not in " ".join(rows["adamw"]) and "linesearch" not in " ".join(rows["lbfgs"])
    assert rows["sgd"] == ("learning_rate", "[momentum]", "nesterov=false",
                           "[accumulator_dtype]")
    assert "`adam` with `nesterov=true`" in dict((r[0], r[2]) for r in tables.optimizers().rows)[
        "nadam"]


def test_first_sentence_ends_at_a_full_stop_outside_code():
    assert tables.first_sentence("Each row to `shape`, e.g. `x.y`. More.") == \
        "Each row to `shape`, e.g. `x.y`."
    assert tables.first_sentence("One\n    line. Two.\n\nOther.") == "One line."
    assert tables.first_sentence(None) == ""


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_list_prints_a_kind_at_80_columns(kind, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list", kind]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{tables.KINDS[kind]().title} ({len(REGISTRIES[kind])})"
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    heads = {line.split("(")[0].split()[0] for line in lines if line.startswith("  ")
             and not line.startswith("   ")}
    assert heads == set(REGISTRIES[kind])


def test_list_shows_signatures_and_descriptions(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    main(["list", "layers"])
    out = capsys.readouterr().out
    assert "  dense(features, use_bias=true)\n      A fully connected layer" in out
    assert "  repeat(times) { ... }\n" in out and "  flatten\n" in out
    main(["list", "optimizers"])
    out = capsys.readouterr().out
    assert "  adafactor([learning_rate], min_dim_size_to_factor=128, decay_rate=0.8,\n" \
           "            decay_offset=0," in out   # wrapped under its parenthesis


def test_list_without_a_kind_shows_every_kind_with_its_names(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind, entries in REGISTRIES.items():
        assert f"\n{kind} ({len(entries)})\n" in out
        assert all(name in out for name in entries)
    assert max(map(len, out.splitlines())) <= 80


@pytest.mark.parametrize("kind, hint", [("layer", "; did you mean 'layers'?"),
                                        ("widgets", "")])
def test_list_of_an_unknown_kind_names_the_kinds(kind, hint, capsys):
    assert main(["list", kind]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"error: mlspec list: unknown kind '{kind}'{hint} (the kinds are "
                            "layers, merges, losses, metrics, optimizers, schedules, sources)\n")


def test_list_and_the_generator_do_not_import_jax():
    code = ("import sys, contextlib, io\nfrom mlspec.cli import main\n"
            "from mlspec.catalog import tables\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    for argv in ([], *([k] for k in tables.KINDS)):\n"
            "        assert main(['list', *argv]) == 0, argv\n"
            "    assert tables.main([]) == 0\n"
            "heavy = [m for m in ('jax', 'flax', 'optax') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_the_generator_writes_the_markdown(tmp_path):
    out = tmp_path / "catalogue.md"
    assert tables.main(["--write", str(out)]) == 0
    text = out.read_text()
    assert text == tables.markdown()
    assert "| `dense` | `features`, `use_bias=true` | A fully connected layer" in text
    assert "`mean(\\|out - y\\|)`" in text  # a | inside a cell is escaped
