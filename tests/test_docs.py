"""Every example in README.md and docs/*.md is run, and the catalogue in docs/ is the
registries' own.

The examples are fenced blocks, run in the order they appear, in a temporary folder that
holds a copy of `specs/` (and of `specs/data/` as `data/`):

- ```mlspec: a complete spec, saved as `file=NAME` (else example-LINE.mlspec), checked,
  and trained in the slow tier (training is what the python examples check in the quick
  one). Marks: `check` (never trained: trained by a later example, or needing devices the
  tests lack), `error` (check must fail with the text of the ```text block that
  follows), `fragment` (a part of a spec or a library of params and blocks: parsed only,
  and saved for imports).
- ```python: a complete program, run (`fragment`: compiled only; `slow`: run in the slow
  tier).
- ```console: `$ mlspec ...` lines are run in process and must exit 0 (or the code of a
  trailing `# exit N`); the lines after a command, if any, are its exact output (`slow`,
  `fragment` as for python).
- ```text: output or a listing; not code.

Any other fence, or an unknown mark, fails `test_every_fenced_block_is_run_or_marked`.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT

import mlspec
from mlspec.catalog import tables
from mlspec.cli import main
from mlspec.semantics.sections import SECTIONS

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKS = {"mlspec": {"check", "error", "fragment"}, "python": {"fragment", "slow"},
         "console": {"fragment", "slow"}, "text": set()}
OPTIONS = {"mlspec": {"file"}}


@dataclass
class Block:
    doc: Path
    line: int
    """The line of the opening fence."""
    lang: str
    marks: set[str]
    options: dict[str, str]
    text: str
    problems: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def fenced_blocks(doc: Path) -> list[Block]:
    found, current, lines = [], None, []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if current is None and line.startswith("```"):
            words = line[3:].split()
            lang = words[0] if words else ""
            marks = {w for w in words[1:] if "=" not in w}
            options = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            current, lines = Block(doc, number, lang, marks, options, ""), []
        elif current is not None and line.strip() == "```":
            current.text = "\n".join(lines) + "\n"
            found.append(current)
            current = None
        elif current is not None:
            lines.append(line)
    assert current is None, f"{doc}:{current.line}: a fence that is never closed"
    return found


def _problems(block: Block) -> list[str]:
    if block.lang not in MARKS:
        return [f"fence language {block.lang or '(none)'!r}: use one of {sorted(MARKS)}"]
    problems = [f"unknown mark {m!r}" for m in sorted(block.marks - MARKS[block.lang])]
    problems += [f"unknown option {o!r}" for o in sorted(set(block.options)
                                                          - OPTIONS.get(block.lang, set()))]
    if block.lang == "console" and "fragment" not in block.marks:
        if not any(line.startswith("$ ") for line in block.text.splitlines()):
            problems.append("a console block without a `$ mlspec ...` command")
        problems += [f"a command that is not mlspec's: {line!r}" for line in
                     block.text.splitlines()
                     if line.startswith("$ ") and not line.startswith("$ mlspec ")]
    return problems


ALL_BLOCKS = [block for doc in DOCS for block in fenced_blocks(doc)]


def test_every_fenced_block_is_run_or_marked():
    """The extractor finds every example: a fence it does not know, or a mark it does not
    know, would be an example that no test runs."""
    problems = [f"{b.where}: {p}" for b in ALL_BLOCKS for p in _problems(b)]
    for block, after in zip(ALL_BLOCKS, ALL_BLOCKS[1:] + [None]):
        if "error" in block.marks and (after is None or after.lang != "text"):
            problems.append(f"{block.where}: an error example needs the ```text block of its "
                            "message after it")
    assert not problems, "\n".join(problems)
    run = [b for b in ALL_BLOCKS if b.lang != "text" and "fragment" not in b.marks]
    readme = [b for b in run if b.doc.name == "README.md"]
    assert len(readme) >= 4 and len(run) >= 25, [b.where for b in run]


def _run_console(block: Block, capsys) -> None:
    commands: list[tuple[list[str], int, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            text, _, comment = line[2:].partition("# exit ")
            commands.append((shlex.split(text)[1:], int(comment or 0), []))
        elif commands:
            commands[-1][2].append(line.rstrip())
    for argv, code, shown in commands:
        capsys.readouterr()
        assert main(argv) == code, (block.where, argv, capsys.readouterr())
        if shown:
            out, err = capsys.readouterr()
            got = [line.rstrip() for line in (out + err).rstrip("\n").splitlines()]
            assert got == shown, f"{block.where}: the output of mlspec {shlex.join(argv)}"


def _run_mlspec(block: Block, following: Block | None, train: bool) -> None:
    name = block.options.get("file", f"example-{block.line}.mlspec")
    Path(name).write_text(block.text)
    if "fragment" in block.marks:
        mlspec.parse(block.text, name)
        return
    spec = mlspec.load(name)
    if "error" in block.marks:
        with pytest.raises(mlspec.SpecError) as caught:
            mlspec.check(spec)
        assert caught.value.render() + "\n" == following.text, block.where
        return
    mlspec.check(spec)
    trainable = spec.data is not None and spec.train is not None  # else a model alone
    if train and trainable and "check" not in block.marks:
        result = mlspec.run(spec)
        assert result.status in ("completed", "early_stopped"), block.where


def run_examples(doc: Path, capsys, slow: bool) -> None:
    """Runs the examples of `doc` in order, in the current folder: the quick tier (`slow`
    False) or the slow one. Both write and check every spec (a later one may import it)."""
    shutil.copytree(ROOT / "specs", "specs")
    shutil.copytree(ROOT / "specs" / "data", "data")
    blocks = fenced_blocks(doc)
    for block, following in zip(blocks, blocks[1:] + [None]):
        if block.lang == "text":
            continue
        run = ("slow" in block.marks) == slow
        if block.lang == "mlspec":
            _run_mlspec(block, following, train=slow)
        elif "fragment" in block.marks:
            if block.lang == "python":
                compile(block.text, block.where, "exec")
        elif run and block.lang == "python":
            exec(compile(block.text, block.where, "exec"), {"__name__": "__main__"})
        elif run and block.lang == "console":
            _run_console(block, capsys)


@pytest.fixture
def example_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")  # the width of the outputs shown
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_examples_run(doc, capsys, example_env):
    run_examples(doc, capsys, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_slow_examples_run(doc, capsys, example_env):
    run_examples(doc, capsys, slow=True)


def test_catalogue_in_the_docs_is_the_registries():
    committed = (ROOT / "docs" / "catalogue.md").read_text()
    assert committed == tables.markdown(), (
        "docs/catalogue.md differs from the registries: run "
        "`python -m mlspec.catalog.tables --write docs/catalogue.md`")


def test_the_language_reference_names_every_section_and_setting():
    text = (ROOT / "docs" / "language.md").read_text()
    missing = [f"{name} {{" for name in SECTIONS if f"\n{name} {{\n" not in text]
    missing += [f"{kind.name}.{k}" for kind in SECTIONS.values() for k in kind.setting_names()
                if f"`{k}`" not in text]
    missing += [kind for kind in tables.KINDS if f"mlspec list {kind}" not in text]
    assert not missing, missing


@pytest.mark.parametrize("doc", ["README.md", "docs/language.md"])
def test_the_docs_state_the_limits_the_code_holds(doc):
    """The nesting limit, and the key that makes a JSON file a spec whose lines an error
    may quote, as the parser and the JSON reader hold them."""
    from mlspec.syntax.json_spec import _DECLARED
    from mlspec.syntax.limits import MAX_DEPTH

    text = (ROOT / doc).read_text()
    assert f"nested more than {MAX_DEPTH} levels" in text or f"{MAX_DEPTH} levels deep" in text
    (declared,) = set(re.findall(r'`("kind": "[a-z]+")`', text))
    assert _DECLARED.match("{" + declared + "}")


def test_readme_links_the_reference():
    text = (ROOT / "README.md").read_text()
    assert "(docs/language.md)" in text and "(docs/catalogue.md)" in text
    assert "shared folder" not in text


def _anchors(doc: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them."""
    headings = re.findall(r"^#+ (.*)$", doc.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_lead_to_files_and_headings(doc):
    for target, anchor in re.findall(r"\]\(([^)#:]*)(?:#([^)]*))?\)", doc.read_text()):
        path = doc.parent / target if target else doc
        assert path.exists(), f"{doc.name}: link to {target}"
        assert not anchor or anchor in _anchors(path), f"{doc.name}: link to {target}#{anchor}"
