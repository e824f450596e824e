"""Spec JSON (as `mlspec export --json` writes it) -> spec IR, every node placed.

A mistake in a JSON spec is reported at its line and column, as one in spec text is:
where the JSON stops being JSON, at the value that a pydantic error's path names, and,
since every IR node gets its JSON value's span, wherever the resolver finds it later.

A JSON file may be no spec at all (a credentials file imported by mistake), so its lines
are quoted under an error only when it says it is a spec: its first key is
`"kind": "spec"`, as exported. Any other file's mistakes are placed but never quoted, and
no message repeats a part of its text.
"""

from __future__ import annotations

import bisect
import json
import re
from json.decoder import scanstring
from json.scanner import NUMBER_RE
from typing import Any

from pydantic import ValidationError

from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, ErrorCollector, Span, SpecError, remember_source
from mlspec.syntax.limits import MAX_DEPTH, NAME

__all__ = ["parse_json"]

# A spec of MAX_DEPTH IR levels nests at most twice as deep in JSON (a node's list of
# children is a level of its own).
MAX_JSON_DEPTH = 2 * MAX_DEPTH + 1
_DECLARED = re.compile(r'\s*\{\s*"kind"\s*:\s*"spec"\s*[,}]')
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
_SPACE = re.compile(r"[ \t\n\r]*")
_LITERAL = re.compile(r"true|false|null|NaN|-?Infinity")
_NO_NODES = ("span", "comments", "path")  # IR fields that hold no nodes (and Spec.path)

Path = tuple[str | int, ...]


class _Places:
    """Where each value (and each object key) of a JSON text is, by its path."""

    def __init__(self, text: str, file: str):
        self.text, self.file = text, file
        self.values: dict[Path, tuple[int, int]] = {}
        self.keys: dict[Path, tuple[int, int]] = {}
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def span(self, start: int, end: int) -> Span:
        line, column = self._position(start)
        end_line, end_column = self._position(max(end, start + 1))
        return Span(file=self.file, line=line, column=column, end_line=end_line,
                    end_column=end_column)

    def _position(self, offset: int) -> tuple[int, int]:
        row = bisect.bisect_right(self._starts, offset) - 1
        return row + 1, offset - self._starts[row] + 1

    def offset(self, line: int, column: int) -> int:
        return self._starts[min(max(line, 1), len(self._starts)) - 1] + max(column - 1, 0)

    def at(self, path: Path, key: bool = False) -> Span | None:
        found = (self.keys if key else self.values).get(path)
        return None if found is None else self.span(*found)

    def walk(self, i: int = 0, path: Path = ()) -> int:
        """Records the value at `i` (valid JSON, nested at most MAX_JSON_DEPTH deep) and
        its members; returns the offset after it."""
        text = self.text
        i = start = _SPACE.match(text, i).end()
        if text[i] in "{[":
            closing, index = ("}" if text[i] == "{" else "]"), 0
            i = _SPACE.match(text, i + 1).end()
            while text[i] != closing:
                if closing == "}":
                    key, after = scanstring(text, i + 1)
                    self.keys[(*path, key)] = (i, after)
                    member = (*path, key)
                    i = _SPACE.match(text, after).end() + 1  # past the ':'
                else:
                    member, index = (*path, index), index + 1
                i = _SPACE.match(text, self.walk(i, member)).end()
                if text[i] == ",":
                    i = _SPACE.match(text, i + 1).end()
            end = i + 1
        elif text[i] == '"':
            end = scanstring(text, i + 1)[1]
        else:
            found = NUMBER_RE.match(text, i) or _LITERAL.match(text, i)
            end = found.end()
        self.values[path] = (start, end)
        return end


def parse_json(text: str, file: str = "<json>") -> ir.Spec:
    """A spec IR in JSON; its mistakes are reported at their place in the JSON."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # lines end at \n, as in text
    remember_source(file, text if _DECLARED.match(text) else "")
    places = _Places(text, file)
    _check_json_depth(text, places)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # a file cut off is wrong where its text ends, just after its last line's end,
        # not on the empty line after it
        pos = len(text.rstrip()) if not text[exc.pos:].strip() else exc.pos
        raise SpecError.at(places.span(pos, pos + 1),
                           f"not a spec JSON (as `mlspec export --json` writes): "
                           f"{exc.msg}") from None
    places.walk()
    try:
        spec = ir.Spec.model_validate_json(text)
    except ValidationError as exc:
        raise SpecError(_validation_errors(exc, data, places)) from None
    spec = _placed(spec, (), places)
    _check_ir_depth(spec)
    _check_json_names(spec, file)
    path = None if file.startswith("<") else file
    return spec.model_copy(update={"path": path})


def _check_json_depth(text: str, places: _Places) -> None:
    """Refuses JSON nested deeper than a spec can be, at the bracket that crosses the
    limit (before json's and pydantic's readers stop on it, placeless)."""
    depth = 0
    for found in _BRACKETS.finditer(text):
        bracket = found.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise SpecError.at(places.span(found.start(), found.end()),
                                   f"not a spec JSON: it nests more than {MAX_JSON_DEPTH} "
                                   "deep, deeper than a spec may")
        elif bracket in "]}":
            depth -= 1


def _validation_errors(exc: ValidationError, data: Any, places: _Places) -> list[Diagnostic]:
    found: dict[tuple, Diagnostic] = {}
    for err in exc.errors():
        if err["type"] == "json_invalid":  # what json reads and jiter does not (NaN)
            where = re.search(r"line (\d+) column (\d+)", err["msg"])
            at = None if where is None else places.offset(int(where[1]), int(where[2]))
            span = None if at is None else places.span(at, at + 1)
            found[("json",)] = Diagnostic(message="not a spec JSON (as `mlspec export "
                                                  "--json` writes): " + err["msg"]
                                          .split(" [")[0].removeprefix("Invalid JSON: "),
                                          span=span)
            continue
        path, node, rest = _json_path(data, err["loc"])
        key = err["type"] == "extra_forbidden"
        span = places.at(path, key=key) or places.at(path)
        if err["type"] == "union_tag_invalid" and isinstance(node, dict) and "kind" in node:
            span = places.at((*path, "kind"))
        where = ".".join(_json_key(part) for part in path) or "the top level"
        message = f"not a spec JSON: {where}: {_json_problem(err, node, rest)}"
        # the branches of a union (an int or a float) fail at one value: say it once
        found[(path, tuple(rest) if isinstance(node, dict) else ())] = Diagnostic(
            message=message, span=span)
    return list(found.values())


def _json_path(data: Any, loc: tuple) -> tuple[Path, Any, list]:
    """The path in the JSON that a pydantic error's `loc` names (a union's tag and
    branch names are no keys of it), the value there, and what of `loc` is left."""
    path, node, parts = (), data, list(loc)
    while parts:
        part = parts[0]
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node, path = node[part], (*path, part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node, path = node[part], (*path, part)
        elif not (isinstance(node, dict) and part == node.get("kind")):
            break
        parts.pop(0)
    return path, node, parts


_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
             "string_type": "a string", "int_parsing": "an integer",
             "float_parsing": "a number", "bool_parsing": "true or false"}


def _json_problem(err, node: Any, rest: list) -> str:
    """pydantic's message, without the bits of the input that some of them quote."""
    kind = err["type"]
    if kind == "union_tag_invalid":
        return f"unknown kind; expected one of {err['ctx']['expected_tags']}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]} here, not {_json_type(node)}"
    if kind == "missing" and rest:
        return f"'{_json_key(rest[0])}' is missing"
    if kind == "extra_forbidden":
        return "a key that this node does not have"
    message = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    return message.replace(given, "...") if isinstance(given, str) and given else message


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    names = {dict: "an object", list: "an array", str: "a string", int: "an integer",
             float: "a number", type(None): "null"}
    return names.get(type(value), "that")


def _json_key(part) -> str:
    """A place in the JSON, with keys that are no names left out (they are its text)."""
    return str(part) if isinstance(part, int) or NAME.fullmatch(part) else "..."


def _placed(value: Any, path: Path, places: _Places) -> Any:
    """The IR with each node's span at its JSON value: a scalar node's value, a named
    node's name, or else the node's object. (A span the JSON itself gave is dropped.)"""
    if isinstance(value, tuple):
        return tuple(_placed(item, (*path, i), places) for i, item in enumerate(value))
    if not isinstance(value, ir.Node):
        return value
    update = {key: _placed(getattr(value, key), (*path, key), places)
              for key in type(value).model_fields if key not in _NO_NODES}
    anchor = next((key for key in ("value", "name", "path")
                   if key in type(value).model_fields and not isinstance(
                       getattr(value, key), (ir.Node, tuple))), None)
    update["span"] = (places.at((*path, anchor)) if anchor else None) or places.at(path)
    return value.model_copy(update=update)


def _check_ir_depth(spec: ir.Spec) -> None:
    """Refuses a spec that nests deeper than text may (MAX_DEPTH), at the first node in
    reading order that crosses it."""
    stack = [(spec, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpecError.at(node.span, f"this is nested more than {MAX_DEPTH} deep "
                                          "(values in values, layers in bodies, or the "
                                          "terms of a long sum); split it into params or "
                                          "blocks")
        children = []
        for key in type(node).model_fields:
            if key not in _NO_NODES:
                value = getattr(node, key)
                children += [v for v in (value if isinstance(value, tuple) else (value,))
                             if isinstance(v, ir.Node)]
        stack += [(child, depth + 1) for child in reversed(children)]


# The fields of IR nodes that hold names, which JSON must spell as text would; a dotted
# field may hold several (`valid.loss`, `train.seed`).
_NAME_FIELDS = {ir.Model: ("name", False), ir.Param: ("name", False),
                ir.Block: ("name", False), ir.BlockParam: ("name", False),
                ir.Keyword: ("name", False), ir.LayerCall: ("name", False),
                ir.Name: ("name", True), ir.Call: ("name", True),
                ir.Setting: ("path", True), ir.Binding: ("name", False),
                ir.Output: ("name", False), ir.Share: ("name", False),
                ir.InputDecl: ("name", False)}


def _check_json_names(spec: ir.Spec, file: str) -> None:
    errors = ErrorCollector()

    def visit(value, where: str) -> None:
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                visit(item, f"{where}.{i}")
            return
        if not isinstance(value, ir.Node):
            return
        field, dotted = _NAME_FIELDS.get(type(value), (None, False))
        if field is not None:
            name = getattr(value, field)
            parts = name.split(".") if dotted else [name]
            if not all(NAME.fullmatch(part) for part in parts):
                errors.add(value.span, f"{where}.{field}: {name[:40]!r} is not a name "
                                       "(letters, digits and _, not starting with a digit)")
        for key in type(value).model_fields:
            if key not in _NO_NODES:
                visit(getattr(value, key), f"{where}.{key}" if where else key)

    visit(spec, "")
    errors.raise_if_any()
