"""The spec IR: what a .mlspec file says, as frozen, JSON-serialisable pydantic data.

This is the syntax-level IR that the parser builds and the printer prints. Values stay
unevaluated (a bare name is a `Name`, whatever it will mean; calls are unresolved) so
that overrides and the canonical printer see the spec as written. The resolver later turns
it into the typed program of `mlspec.semantics.program`.

Every node carries an optional `span` that is excluded from equality, hashing and JSON, so
two specs that say the same thing compare equal wherever they came from.

Example:
    >>> from mlspec.syntax.ir import Call, LayerCall, Model, Spec
    >>> spec = Spec(model=Model(name="net", layers=[LayerCall.of("dense", 2)]))
    >>> print(spec.to_text().strip())
    model net {
        dense(2)
    }
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ValidationInfo,
)

from mlspec.syntax.errors import Span


class Node(BaseModel):
    # Schemas are built on first use, so that `check` pays only for the nodes and
    # catalogue entries a spec uses.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    span: Span | None = Field(default=None, exclude=True, repr=False)
    """Where the node came from in its source file, when it came from one."""

    _uncompared: ClassVar[frozenset[str]] = frozenset({"span"})

    def _key(self) -> tuple:
        return tuple(v for k, v in self.__dict__.items() if k not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return self._key() == other._key()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self), self._key()))


def as_expr(value: Any) -> Any:
    """Let Python users write plain values where the IR wants expression nodes. A call
    without arguments is the bare name (`Call(name="relu")` is `Name(name="relu")`, as
    `relu()` in text is `relu`), in Python objects and in JSON alike."""
    if isinstance(value, Call) and not value.has_arguments:
        return Name(name=value.name, span=value.span)
    if isinstance(value, dict) and value.get("kind") == "call" \
            and not value.get("args") and not value.get("kwargs"):
        return {k: v for k, v in value.items() if k not in ("args", "kwargs")} | {"kind": "name"}
    if isinstance(value, bool):
        return Bool(value=value)
    if isinstance(value, (int, float)):
        return Number(value=value)
    if isinstance(value, str):
        return String(value=value)
    if isinstance(value, (list, tuple)):
        return ListExpr(items=tuple(as_expr(v) for v in value))
    return value


def _within_64_bits(value: Any, info: ValidationInfo) -> Any:
    # the float branch would take a larger integer in JSON, rounded: refuse it, as text
    # does (from Python, such an int stays a float, as Python users expect)
    if info.mode == "json" and isinstance(value, int) and not isinstance(value, bool) and \
            not -(2**63) <= value <= 2**63 - 1:
        raise ValueError("an integer must fit in 64 bits")
    return value


class Number(Node):
    kind: Literal["number"] = "number"
    # strict: "2" and true are no numbers (pydantic's lax mode reads them as 2 and 1);
    # an integer is taken where a float is wanted
    value: Annotated[
        Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
        | Annotated[float, Field(strict=True, allow_inf_nan=False)],
        BeforeValidator(_within_64_bits)]
    """A 64-bit integer or a finite float."""
    text: str | None = Field(default=None, exclude=True, repr=False)
    """The literal as written in the source (`3e-3`, `0.010`), which the printer keeps;
    like the span, no part of the value (equality, hashing and JSON leave it out)."""

    _uncompared: ClassVar[frozenset[str]] = frozenset({"span", "text"})


class String(Node):
    kind: Literal["string"] = "string"
    value: str


class Bool(Node):
    kind: Literal["bool"] = "bool"
    value: Annotated[bool, Field(strict=True)]  # not 1, "yes" nor "on"


class ListExpr(Node):
    kind: Literal["list"] = "list"
    items: tuple[Expr, ...] = ()


class Keyword(Node):
    """A `name=value` argument of a call."""

    kind: Literal["keyword"] = "keyword"
    name: str
    value: Expr


class Name(Node):
    """A bare name in a value position: a param, a block argument, `classes`, a catalogue
    entry, a metric path (`valid.loss`) or a symbol (`min`). What it means is settled
    where it is used (`mlspec.catalog.signature`); a name that means none of these there
    is an error at its place.

    `name` may be dotted (`valid.loss`).
    """

    kind: Literal["name"] = "name"
    name: str


class Call(Node):
    """`name(args..., key=value...)`: a call of a catalogue entry (a data source, a loss,
    an optimizer, a schedule, `early_stop`). In a spec a call has arguments: one without
    any is a `Name` (see `as_expr`).
    """

    kind: Literal["call"] = "call"
    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()

    @classmethod
    def of(cls, name: str, *args: Any, **kwargs: Any) -> Call:
        return cls(
            name=name,
            args=tuple(as_expr(a) for a in args),
            kwargs=tuple(Keyword(name=k, value=as_expr(v)) for k, v in kwargs.items()),
        )

    @property
    def has_arguments(self) -> bool:
        return bool(self.args or self.kwargs)

    def keyword(self, name: str) -> Keyword | None:
        return next((k for k in self.kwargs if k.name == name), None)


class BinOp(Node):
    kind: Literal["binop"] = "binop"
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr


class Neg(Node):
    kind: Literal["neg"] = "neg"
    operand: Expr


Expr = Annotated[
    Annotated[Number | String | Bool | ListExpr | Name | Call | BinOp | Neg,
              Discriminator("kind")],
    BeforeValidator(as_expr),
]


class LayerCall(Node):
    """One layer of a model or block: a call, with a body for composites (`repeat(3) {..}`)."""

    kind: Literal["layer"] = "layer"
    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    body: tuple[LayerCall, ...] | None = None

    @classmethod
    def of(cls, name: str, *args: Any, body: Any = None, **kwargs: Any) -> LayerCall:
        call = Call.of(name, *args, **kwargs)
        return cls(name=name, args=call.args, kwargs=call.kwargs, body=body)

    @property
    def has_args_or_body(self) -> bool:
        return bool(self.args or self.kwargs or self.body is not None)


def _start_of_chain(value: Any) -> Any:
    """From Python, a chain may start from a plain name (`"x"`)."""
    return Name(name=value) if isinstance(value, str) else as_expr(value)


class Chain(Node):
    """A value in a graph model: where it starts, then layers (`c -> dense(8) -> relu`).

    `start` is a `Name` (an input, a binding, or `in` in a graph block) or a `Call` (a
    merge: `concat(a, b, axis=-1)`, whose arguments are names). The layers may name a
    `share` of the model (`a -> enc`). What each name means is settled by the resolver."""

    kind: Literal["chain"] = "chain"
    start: Annotated[Name | Call, Discriminator("kind"), BeforeValidator(_start_of_chain)]
    layers: tuple[LayerCall, ...] = ()


class Binding(Node):
    """`NAME = chain` in a graph: names a value."""

    kind: Literal["binding"] = "binding"
    name: str
    value: Chain


class Output(Node):
    """`output NAME = chain`: a named output of a graph model, trained against the target
    of the same name when there are several."""

    kind: Literal["output"] = "output"
    name: str
    value: Chain


class Share(Node):
    """`share NAME = layer`: one layer (or block) whose every use has the same weights."""

    kind: Literal["share"] = "share"
    name: str
    layer: LayerCall


Statement = Annotated[Binding | Output | Share, Discriminator("kind")]
"""A line of a graph body."""


class InputDecl(Node):
    """`input NAME TYPE` in a model without data: `input x [8]` (floats of that shape),
    `input title tokens(20, vocab=10000)`, `input city category(vocab=12)`."""

    kind: Literal["input_decl"] = "input_decl"
    name: str
    type: Expr


class Import(Node):
    kind: Literal["import"] = "import"
    path: str


class Param(Node):
    kind: Literal["param"] = "param"
    name: str
    value: Expr


class BlockParam(Node):
    kind: Literal["block_param"] = "block_param"
    name: str
    default: Expr | None = None


class Block(Node):
    kind: Literal["block"] = "block"
    name: str
    params: tuple[BlockParam, ...] = ()
    body: tuple[LayerCall, ...] = ()
    graph: tuple[Statement, ...] | None = None
    """A graph body instead of a chain: its input is the name `in`, its value the binding
    named `out`."""


class Model(Node):
    kind: Literal["model"] = "model"
    name: str
    input: Annotated[ListExpr | None, BeforeValidator(as_expr)] = None
    """The input shape per example (`input [8, 8, 1]`); from Python a list of ints."""
    inputs: tuple[InputDecl, ...] = ()
    """Named, typed inputs (`input x [8]`), for a graph model without data."""
    layers: tuple[LayerCall, ...] = ()
    """A v1 chain from the single input to the output (empty for a graph model)."""
    graph: tuple[Statement, ...] | None = None
    """A graph body: bindings, `share`s and `output`s, one a line."""


class Setting(Node):
    """`path = value` inside `data`, `train` or `sweep`; `path` is dotted (`train.seed`)."""

    kind: Literal["setting"] = "setting"
    path: str
    value: Expr


class Section(Node):
    kind: Literal["section"] = "section"
    settings: tuple[Setting, ...] = ()

    def get(self, path: str) -> Setting | None:
        return next((s for s in self.settings if s.path == path), None)


class Comment(Node):
    kind: Literal["comment"] = "comment"
    text: str
    line: int


_SECTION = "settings section"
SectionField = Annotated[Section | None, _SECTION]
"""The type of a settings section's field on Spec: the field's name is the section's
keyword (`train { ... }`), its place the order `fmt` prints it in."""


class Spec(Node):
    """A whole .mlspec file."""

    kind: Literal["spec"] = "spec"
    imports: tuple[Import, ...] = ()
    params: tuple[Param, ...] = ()
    blocks: tuple[Block, ...] = ()
    model: Model | None = None
    # The settings sections; what each means is its entry in mlspec.semantics.sections.
    data: SectionField = None
    train: SectionField = None
    sweep: SectionField = None
    search: SectionField = None
    comments: tuple[Comment, ...] = Field(default=(), exclude=True, repr=False)
    """Comments with their line numbers, kept for the formatter; not part of the meaning."""
    path: str | None = Field(default=None, exclude=True, repr=False)
    """The file this spec was read from; imports and data paths resolve against it."""

    def _key(self) -> tuple:
        return tuple(v for k, v in self.__dict__.items() if k not in ("span", "comments", "path"))

    def sections(self) -> dict[str, Section]:
        """The settings sections the spec holds, by keyword, in SECTION_NAMES order."""
        return {name: section for name in SECTION_NAMES
                if (section := getattr(self, name)) is not None}

    def to_text(self) -> str:
        """The spec in canonical .mlspec text."""
        from mlspec.syntax.printer import print_spec

        return print_spec(self)


SECTION_NAMES: tuple[str, ...] = tuple(
    name for name, field in Spec.model_fields.items() if _SECTION in field.metadata)
"""The settings sections' keywords, in the order `fmt` prints them (`data`, `train`,
`sweep`): the grammar's section keywords are these."""


for _model in (ListExpr, Keyword, Call, BinOp, Neg, LayerCall, Chain, Binding, Output, Share,
               InputDecl, Param, BlockParam, Setting):
    _model.model_rebuild()
