"""Completion for the language server.

The parser says where the cursor is (`editor.context`): which keywords may start there,
and whether a name typed there is a layer, a setting, a value or an argument. The names
come from the registries: layers and the blocks a file defines in a model or block body,
each section's settings from its entry in `SECTIONS`, a setting's values from the
catalogue its field declares (`FromSpec`) and the constants its type allows, a call's
argument names from its catalogue entry (`dense(` -> `features=`, `use_bias=`; `adam(`
-> optax's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types

from mlspec.catalog.layers import LAYERS
from mlspec.catalog.merges import MERGES
from mlspec.catalog.metrics import METRICS, Metric
from mlspec.catalog.optimizers import OptaxFunction, optax_catalogue
from mlspec.catalog.signature import takes
from mlspec.editor.context import Place, place_at
from mlspec.editor.graph_names import GraphNames, graph_names
from mlspec.semantics.sections import SECTIONS
from mlspec.syntax.lexicon import lex
from mlspec.syntax.parser import comment_start

__all__ = ["Item", "Names", "complete", "document_names"]

Kind = types.CompletionItemKind
# optax arguments that a spec cannot set (see catalog.optimizers._check_value)
_UNSETTABLE = ("GradientTransformation", "Callable", "MaskOrFn")


@dataclass(frozen=True)
class Item:
    """One completion: `label` as shown, `insert` as inserted, `kind` an LSP kind."""

    label: str
    kind: types.CompletionItemKind
    detail: str
    doc: str = ""
    insert: str | None = None

    def to_lsp(self) -> types.CompletionItem:
        return types.CompletionItem(
            label=self.label, kind=self.kind, detail=self.detail,
            documentation=self.doc or None, insert_text=self.insert,
            filter_text=self.insert.rstrip("=") if self.insert else None,
        )


@dataclass
class Names:
    """What the document (and its imports) define: params and blocks with their
    parameter names."""

    params: list[str] = field(default_factory=list)
    blocks: dict[str, list[str]] = field(default_factory=dict)
    imported_params: list[str] = field(default_factory=list)
    imported_blocks: dict[str, list[str]] = field(default_factory=dict)


def document_names(text: str) -> Names:
    """Params and blocks that the text defines, found from its tokens without parsing
    (the text being edited is often broken)."""
    names = Names()
    tokens = lex(text)
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.type in ("LPAR", "LBRACE", "LSQB"):
            depth += 1
        elif tok.type in ("RPAR", "RBRACE", "RSQB"):
            depth = max(depth - 1, 0)
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if depth or nxt is None or nxt.type != "NAME":
            continue
        if tok.type == "PARAM":
            names.params.append(str(nxt))
        elif tok.type == "BLOCK":
            names.blocks[str(nxt)] = _block_params(tokens[i + 2:])
    return names


def _block_params(tokens: list) -> list[str]:
    if not tokens or tokens[0].type != "LPAR":
        return []
    params, depth, expect = [], 0, True
    for tok in tokens:
        if tok.type in ("LPAR", "LBRACE", "LSQB"):
            depth += 1
        elif tok.type in ("RPAR", "RBRACE", "RSQB"):
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and tok.type == "COMMA":
            expect = True
        elif depth == 1 and expect and tok.type == "NAME":
            params.append(str(tok))
            expect = False
    return params


def complete(text: str, offset: int, names: Names | None = None) -> list[Item]:
    """Completions at `offset` (a code point index into `text`)."""
    prefix = text[:offset]
    if comment_start(prefix.rsplit("\n", 1)[-1]) is not None:
        return []
    place = place_at(prefix)
    if place is None:
        return []
    names = names or Names()
    local = document_names(text)
    params = list(dict.fromkeys([*local.params, *names.imported_params]))
    blocks = {**names.imported_blocks, **local.blocks}
    call = place.call()
    if place.role == "start" or place.graph or (call is not None and call.owner in MERGES):
        items = _graph_items(place, graph_names(text, offset), params, blocks)
    else:
        items = _items(place, params, blocks)
    items += [Item(k, Kind.Keyword, "keyword", _KEYWORD_DOCS.get(k, "")) for k in place.keywords]
    return items


_KEYWORD_DOCS = {"input": "the input shape: input [28, 28, 1]; or a named input: "
                          "input x [8], input city category(vocab=12)",
                 "output": "a named output of a graph: output NAME = chain",
                 "share": "one layer with the same weights at every use: share NAME = layer"}


def _graph_items(place: Place, graph: GraphNames, params: list[str],
                 blocks: dict[str, list[str]]) -> list[Item]:
    """In a graph body: a chain starts from a value or a merge, a merge's values are
    names, and a chain's layers may be its shared layers."""
    values = [Item(n, Kind.Variable, "input") for n in graph.inputs] + [
        Item(n, Kind.Variable, "value") for n in graph.values]
    if place.role == "start":
        return values + [Item(name, Kind.Function, "merge", _entry_doc(name, cls))
                         for name, cls in MERGES.items()]
    call = place.call()
    if call is not None and call.owner in MERGES and place.inner is call:
        if place.role == "argument":
            return values + [Item(f"{n}=", Kind.Field, f"argument of merge '{call.owner}'",
                                  insert=f"{n}=")
                             for n in MERGES.get(call.owner).argument_names()
                             if n not in call.given]
        return _param_items(params)
    items = _items(place, params, blocks)
    if place.role == "layer":
        items += [Item(n, Kind.Variable, "shared layer") for n in graph.shares]
    return items


def _items(place: Place, params: list[str], blocks: dict[str, list[str]]) -> list[Item]:
    in_model = place.statement in ("model", "block")
    if place.role == "layer":
        items = _layer_items(blocks)
        if place.statement == "block":
            items += _param_items(blocks.get(place.block, []), "block parameter")
        return items
    if place.role == "setting":
        return _setting_items(place.statement, params)
    call = place.call()
    if place.role == "argument" and call is not None:
        found = _callee(call.owner, place.statement, blocks)
        what, arguments, _ = found or (None, [], None)
        label = f"{what} '{call.owner}'" if what else f"'{call.owner}'"
        items = [Item(f"{name}=", Kind.Field, f"argument of {label}", insert=f"{name}=")
                 for name in arguments if name not in call.given]
        return items + _positional_items(found, in_model, params, blocks)
    if place.role != "value":
        return []
    inner = place.inner
    if call is not None and place.keyword is not None:
        return _argument_value_items(_callee(call.owner, place.statement, blocks),
                                     place.keyword, in_model, params, blocks)
    if inner is not None and inner.kind == "block params":
        return _layer_items(blocks)
    if call is None and place.setting is not None:
        return _param_items(params) + _value_items(place.statement, place.setting)
    return _param_items(params) + (_classes(params) if in_model else [])


def _callee(name: str | None, statement: str | None, blocks: dict[str, list[str]]
            ) -> tuple[str, list[str], Any] | None:
    """What a call is ("layer", "optimizer"), its argument names, and its entry."""
    if name is None:
        return None
    if statement in ("model", "block"):
        if name in blocks:
            return "block", blocks[name], None
        if name in LAYERS:
            return "layer", LAYERS.get(name).argument_names(), LAYERS.get(name)
    kinds = [SECTIONS[statement]] if statement in SECTIONS else []
    for kind in [*kinds, *SECTIONS.values()]:
        found = kind.find(name)
        if found is not None:
            catalogue, entry = found
            arguments = catalogue.arguments(entry)
            if isinstance(entry, OptaxFunction):
                arguments = [a.name for a in entry.arguments
                             if not any(t in a.annotation for t in _UNSETTABLE)]
            return catalogue.what, arguments, entry
    return None


def _positional_items(callee, in_model: bool, params: list[str], blocks) -> list[Item]:
    items = _param_items(params) + (_classes(params) if in_model else [])
    what, _, entry = callee or (None, [], None)
    if what == "layer":  # an argument that is a catalogue entry: bidirectional's layer
        for argument in entry.argument_names():
            items += _catalogue_items(entry.model_fields[argument].rebuild_annotation())
    if what == "block":
        items += _layer_items(blocks)
    if what == "optimizer":  # its first argument, the learning rate, may be a schedule
        items += _optax_items("schedule")
    return items


def _argument_value_items(callee, argument: str, in_model: bool, params: list[str],
                          blocks) -> list[Item]:
    items = _param_items(params)
    what, _, entry = callee or (None, [], None)
    if isinstance(entry, OptaxFunction):
        arg = entry.argument(argument)
        if arg is not None and "Schedule" in arg.annotation:
            items += _optax_items("schedule")
        if arg is not None and arg.annotation.replace("Optional[", "").startswith("bool"):
            items += _constant_items(("true", "false"))
    elif what == "block":
        items += _layer_items(blocks)
    elif entry is not None and argument in entry.model_fields:
        if what == "setting" and argument == "metric":  # early_stop's
            items += [Item(m, Kind.EnumMember, "recorded metric") for m in _recorded_metrics()]
        annotation = entry.model_fields[argument].rebuild_annotation()
        items += _catalogue_items(annotation) + _constant_items(_constants(annotation))
    return items + (_classes(params) if in_model else [])


def _catalogue_items(annotation: Any) -> list[Item]:
    """The entries of the catalogues a type names (`lstm`, `gru` for a recurrent layer)."""
    items = []
    for catalogue in takes(annotation).catalogues:
        for name in catalogue.names():
            cls = LAYERS.get(name) if name in LAYERS else None
            items.append(Item(name, Kind.Class, catalogue.what,
                              _entry_doc(name, cls) if cls is not None else ""))
    return items


def _classes(params: list[str]) -> list[Item]:
    return [] if "classes" in params else [
        Item("classes", Kind.Constant, "the number of classes in the data")]


def _setting_items(section: str | None, params: list[str]) -> list[Item]:
    kind = SECTIONS.get(section)
    if kind is None:
        return []
    if kind.model is not None:
        return [Item(k, Kind.Property, f"{section} setting") for k in kind.setting_names()]
    # a section of paths (sweep): params, and the other sections' settings by path
    return _param_items(params) + [
        Item(f"{other.name}.{k}", Kind.Property, f"{other.name} setting")
        for other in SECTIONS.values() for k in other.setting_names()]


def _value_items(section: str | None, setting: str) -> list[Item]:
    kind = SECTIONS.get(section)
    if kind is None:
        return []
    how = kind.from_spec(setting)
    items = []
    if how is not None and how.calls:
        catalogue = how.calls[0]
        items += [_entry_item(catalogue.what, name, entry)
                  for name, entry in sorted(catalogue.entries().items())]
    return items + _constant_items(_constants(kind.annotation(setting)))


def _constants(annotation: Any) -> list[str]:
    """The constants a type allows, as a spec writes them: `true`/`false` for a bool, a
    symbol bare (`min`, `all`), any other Literal's value as a string (`"SAME"`)."""
    taken = takes(annotation)
    strings = [f'"{v}"' for v in taken.strings if v not in taken.symbols]
    return [*taken.symbols, *strings, *taken.words]


def _entry_item(what: str, name: str, entry: Any) -> Item:
    if isinstance(entry, Metric):
        return Item(name, Kind.EnumMember, "training metric" if entry.scope == "training"
                    else "metric", entry.doc.strip())
    if isinstance(entry, OptaxFunction):
        return _optax_item(name, entry)
    return Item(name, Kind.Constructor if what == "data source" else Kind.Function, what,
                _entry_doc(name, entry))


def _recorded_metrics() -> list[str]:
    out = []
    for name, metric in METRICS.items():
        if metric.scope == "split":
            out += [f"train.{name}", f"valid.{name}"]
        elif metric.scope == "training":  # a report (confusion_matrix) is no column
            out.append(name)
    return out


def _constant_items(values: Iterable[str]) -> list[Item]:
    return [Item(v, Kind.Constant, "value") for v in dict.fromkeys(values)]


def _param_items(params: Iterable[str], detail: str = "param") -> list[Item]:
    return [Item(p, Kind.Variable, detail) for p in params]


def _entry_signature(name: str, cls) -> str:
    parts = []
    for arg in cls.argument_names():
        f = cls.model_fields[arg]
        parts.append(arg if f.is_required() else f"{arg}={_format_default(f.default)}")
    return f"{name}({', '.join(parts)})" if parts else name


def _format_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_format_default(v) for v in value) + "]"
    return "none" if value is None else str(value)


def _entry_doc(name: str, cls) -> str:
    return f"{_entry_signature(name, cls)}\n\n{(cls.__doc__ or '').strip()}".strip()


def _layer_items(blocks: dict[str, list[str]]) -> list[Item]:
    items = [Item(name, Kind.Class, "layer", _entry_doc(name, cls))
             for name, cls in LAYERS.items()]
    items += [Item(name, Kind.Module, "block", f"block {name}({', '.join(ps)})")
              for name, ps in blocks.items()]
    return items


def _optax_item(name: str, fn: OptaxFunction) -> Item:
    args = ", ".join(a.name if a.required else f"{a.name}={a.default}" for a in fn.arguments)
    return Item(name, Kind.Function, f"{fn.kind} (optax)",
                f"optax.{name}({args})\n\n{fn.summary}".strip())


def _optax_items(kind: str) -> list[Item]:
    return [_optax_item(name, fn) for name, fn in sorted(optax_catalogue().items())
            if fn.kind == kind]
