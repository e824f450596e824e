"""The settings sections are one registry: every registered section parses, prints back,
takes `--set` on each of its settings and completes in the editor; and a new section is
one `ir.Spec` field and one `SECTIONS` entry (proved by adding one to a copy of the
package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mlspec
from mlspec.editor.completion import complete
from mlspec.semantics.overrides import apply_overrides
from mlspec.semantics.sections import SECTIONS
from mlspec.syntax import ir
from mlspec.syntax.lexicon import lexicon
from mlspec.syntax.parser import grammar_text, lark_parser

ROOT = Path(__file__).resolve().parent.parent

# A value of each setting that parses (the registry test needs no meaning).
SAMPLE = {"data": ("source", "iris"), "train": ("steps", "10"), "sweep": ("lr", "[1, 2]"),
          "search": ("trials", "16")}


def _labels(text: str) -> list[str]:
    offset = text.index("|")
    return [item.label for item in complete(text.replace("|", "", 1), offset)]


def test_every_section_is_registered_once_in_the_order_it_prints():
    assert tuple(SECTIONS) == ir.SECTION_NAMES == ("data", "train", "sweep", "search")
    assert set(ir.SECTION_NAMES) <= set(lexicon().keywords)
    assert set(SAMPLE) == set(SECTIONS), "every section has a row here"


def test_the_grammar_is_lalr_and_strict():
    """lark's strict mode (with interegular, a test dependency) refuses shift/reduce
    conflicts and terminals that can match the same text; the grammar with its section
    rule passes it."""
    from lark import Lark

    Lark(grammar_text(), parser="lalr", start=["start", "expr"], strict=True)


@pytest.mark.parametrize("name", SECTIONS)
def test_a_section_parses_prints_back_takes_set_and_completes(name):
    setting, value = SAMPLE[name]
    text = f"model m {{\n    dense(1)\n}}\n\n{name} {{\n    {setting} = {value}\n}}\n"
    spec = mlspec.parse(text)
    assert spec.sections() == {name: spec.sections()[name]}
    assert spec.to_text() == text
    assert lark_parser().parse(text, start="start").children[-1].data == "section_def"
    # the keyword starts a statement; inside, the section's settings are offered
    assert name in _labels("model m { relu }\n|")
    offered = _labels(f"{name} {{\n    |\n}}")
    kind = SECTIONS[name]
    assert set(kind.setting_names()) <= set(offered)
    for other in kind.setting_names():  # every setting may be set by --set
        changed = apply_overrides(spec, {f"{name}.{other}": 7})
        assert changed.sections()[name].get(other).value == ir.Number(value=7)
    if not kind.setting_names():  # a section of paths: it names the others' settings
        assert {f"{o.name}.{s}" for o in SECTIONS.values() for s in o.setting_names()} \
            <= set(offered)


def test_an_unknown_set_path_names_the_sections_settings():
    spec = mlspec.parse("model m { input [2] dense(1) }\n")
    with pytest.raises(mlspec.SpecError, match="did you mean 'data.standardize'"):
        apply_overrides(spec, {"data.standardise": True})


NEW_SECTION = '''
from typing import Literal

from pydantic import PositiveInt

from mlspec.catalog.signature import Symbol


class TuneSection(SectionModel):
    kind: Literal["tune"] = "tune"
    trials: PositiveInt = 8
    method: Symbol[Literal["grid", "random", "tpe"]] = "tpe"  # written bare: method = tpe


SECTIONS["tune"] = SectionKind("tune", "how to tune the sweep's axes", TuneSection)
'''

PROBE = r'''
import mlspec
from mlspec.editor.completion import complete
from mlspec.semantics.overrides import apply_overrides
from mlspec.semantics.sections import SECTIONS
from mlspec.syntax.ir import SECTION_NAMES

text = "model m {\n    dense(1)\n}\n\ntune {\n    trials = 16\n}\n"
spec = mlspec.parse(text)
assert SECTION_NAMES[-1] == "tune" and spec.tune.get("trials") is not None
assert spec.to_text() == text
assert apply_overrides(spec, {"tune.method": mlspec.Call(name="random")}).to_text() \
    .endswith("    method = random\n}\n")
labels = lambda t: [i.label for i in complete(t.replace("|", ""), t.index("|"))]
assert "tune" in labels("model m { relu }\n|")
assert {"trials", "method"} <= set(labels("tune {\n    |\n}"))
assert {"grid", "random", "tpe"} <= set(labels("tune { method = | }"))
try:
    mlspec.parse("model m { dense(1) }\ntune { }\ntune { }\n")
except mlspec.SpecError as exc:
    assert "at most one 'tune' section" in str(exc)
else:
    raise AssertionError("a second tune section was taken")
from pygments.token import Keyword
from mlspec.editor.lexer import MlspecLexer
assert (Keyword, "tune") in list(MlspecLexer().get_tokens("tune { trials = 4 }"))
print("ok")
'''


def test_a_new_section_is_one_field_and_one_registry_entry(tmp_path):
    """Adds a `tune` section to a copy of the package in two edits, and finds it
    parsed, printed, settable by --set, completed and highlighted."""
    package = tmp_path / "mlspec"
    shutil.copytree(ROOT / "mlspec", package, ignore=shutil.ignore_patterns("__pycache__"))
    ir_file = package / "syntax" / "ir.py"
    ir_text = ir_file.read_text()
    field = "    search: SectionField = None\n"
    assert ir_text.count(field) == 1
    ir_file.write_text(ir_text.replace(field, field + "    tune: SectionField = None\n"))
    sections = package / "semantics" / "sections.py"
    text = sections.read_text()
    marker = '"""The settings sections by keyword, in `ir.SECTION_NAMES` order."""\n'
    assert text.count(marker) == 1
    sections.write_text(text.replace(marker, marker + NEW_SECTION))
    env = {"PYTHONPATH": str(tmp_path), "TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
