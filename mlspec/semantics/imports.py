"""Imports merged into the spec that reads them: params and blocks of library files,
read once each, with a cycle or a clash refused at its place."""

from __future__ import annotations

import os
from pathlib import Path

from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError
from mlspec.syntax.limits import MAX_DEPTH, SPEC_SUFFIXES
from mlspec.syntax.reader import load as load_file


def merge_imports(spec: ir.Spec) -> ir.Spec:
    """Brings the params and blocks of imported files into `spec`. Each file is read once,
    however many paths reach it (LANGUAGE.md v2: a diamond counts once)."""
    if not spec.imports:
        return spec
    here = Path(os.path.realpath(spec.path)) if spec.path else None
    found: dict[Path, tuple[ir.Spec, ir.Import]] = {}
    _gather_imports(spec, (here,) if here else (), found)
    params, blocks = list(spec.params), list(spec.blocks)
    owner = {p.name: p for p in params} | {b.name: b for b in blocks}
    for other, imp in found.values():
        for item in (*other.params, *other.blocks):
            if item.name in owner:
                raise SpecError.at(owner[item.name].span, f"'{item.name}' is defined here "
                                                          f"and in an import (from {imp.path})")
            owner[item.name] = item
        params.extend(other.params)
        blocks.extend(other.blocks)
    return spec.model_copy(update={"params": tuple(params), "blocks": tuple(blocks),
                                   "imports": ()})


def _gather_imports(spec: ir.Spec, stack: tuple[Path, ...],
                    found: dict[Path, tuple[ir.Spec, ir.Import]]) -> None:
    """The files `spec` imports, directly or not, each once by its real path, in the order
    first reached; each with the import line that first reached it."""
    folder = Path(spec.path).parent if spec.path else Path.cwd()
    for imp in spec.imports:
        # realpath, not Path.resolve: a symlink loop is reported when the file is read
        target = Path(os.path.realpath(folder / imp.path))
        if target in stack:
            chain = " -> ".join(p.name for p in (*stack, target))
            raise SpecError.at(imp.span, f"import cycle: {chain}")
        if target in found:
            continue
        if len(stack) > MAX_DEPTH:  # each import is read by a recursion of its own
            raise SpecError.at(imp.span, f"imports import imports more than {MAX_DEPTH} "
                                         "deep here; import the files from one place")
        if target.suffix.lower() not in SPEC_SUFFIXES:
            raise SpecError.at(imp.span, f"cannot import '{imp.path}': only .mlspec and .json "
                                         "spec files can be imported")
        other = load_file(target, imp.span, f"cannot import '{imp.path}'")
        for section in ("model", *ir.SECTION_NAMES):
            node = getattr(other, section)
            if node is not None:
                raise SpecError.at(node.span, f"an imported file may hold only param, block "
                                              f"and import lines, not '{section}'")
        found[target] = (other, imp)
        _gather_imports(other, (*stack, target), found)
