"""Hover for the language server: a graph model's value under the cursor (an input, a
binding or an output) with its shape per example, as `check` infers it.

The shapes come from resolving the spec (its data section read as `check` reads it), once
per version of a document; a spec with a mistake gives no hover.
"""

from __future__ import annotations

import re

from mlspec.editor.graph_names import body_at
from mlspec.syntax.errors import SpecError
from mlspec.syntax.lexicon import lex

__all__ = ["hover_text", "value_shapes"]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Shapes = dict[str, tuple[str, tuple[int, ...]]]


def value_shapes(text: str, path: str | None) -> Shapes:
    """Each value of the spec's graph model by name: what it is ("input", "value",
    "output") and its shape; empty for a chain model or a spec with a mistake."""
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.parser import parse

    try:
        spec = parse(text, path or "<buffer>").model_copy(update={"path": path})
        if spec.model is None or spec.model.graph is None:
            return {}
        model = resolve(spec).model
    except SpecError:
        return {}
    if model.graph is None:
        return {}
    inputs = model.input_shapes()
    shapes = model.graph.shapes(inputs)
    return {name: ("input" if name in inputs else "output" if name in model.graph.outputs
                   else "value", shape) for name, shape in shapes.items()}


def hover_text(text: str, offset: int, shapes: Shapes) -> str | None:
    """The hover of the name at `offset` (a code point index) in the model's body: its
    kind and shape (`h: [64]`); None elsewhere."""
    for match in _WORD.finditer(text, max(0, offset - 200), offset + 200):
        if match.start() <= offset <= match.end() and match.group() in shapes:
            found = body_at(lex(text), offset)
            if found is None or found[0] != "MODEL":
                return None
            what, shape = shapes[match.group()]
            return f"{what} `{match.group()}`: {list(shape)}"
    return None
