"""Checking a library: a file of params and blocks only, which other specs `import`.

With no model to use them, a library's blocks are checked as far as their own text tells
(`mlspec.semantics.blocks`): every layer or block a body names exists and takes the
arguments given, no block uses itself, and where the values are known (numbers, params,
the block's defaults) the layer is validated as in a model. A value that depends on an
argument without a default (or on `classes`) is checked where the block is used; so are
shapes, which need an input.
"""

from __future__ import annotations

from mlspec.semantics.blocks import check_alone
from mlspec.semantics.imports import merge_imports
from mlspec.semantics.resolve import _check_unique
from mlspec.semantics.scope import Scope
from mlspec.syntax import ir
from mlspec.syntax.errors import ErrorCollector, SpecError


def is_library(spec: ir.Spec) -> bool:
    """Whether `spec` is a file that only `import` may use: params, blocks and imports."""
    return spec.model is None and not spec.sections() and bool(spec.params or spec.blocks
                                                                or spec.imports)


def check_library(spec: ir.Spec) -> None:
    """Raises SpecError listing every mistake found in a library's params and blocks (and
    in the files it imports)."""
    errors = ErrorCollector()
    spec = merge_imports(spec)
    _check_unique(spec, errors)
    scope = Scope({p.name: p for p in spec.params}, unknown={"classes"})
    for param in spec.params:
        try:
            scope.lookup(param.name, param.span)
        except SpecError as exc:
            errors.extend(exc)
    check_alone([b.name for b in spec.blocks], {b.name: b for b in spec.blocks}, scope,
                errors)
    # a param's mistake met again inside a block is reported once
    errors.diagnostics = list(dict.fromkeys(errors.diagnostics))
    errors.raise_if_any()
