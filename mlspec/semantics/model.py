"""The model: blocks expanded and every layer bound to its catalogue entry, then shapes
inferred through the chain.

A mistake written inside a block's body is reported at the use of the block in the model
(which is what the spec's author can change for that use), naming the body's place. One
written elsewhere (a use's arguments, a param, a sweep value, an override) is reported
where it is written: a value given to a block that its body cannot use is placed at the
value, naming the block's argument and the layer it is given to.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlspec.catalog.layers import LAYERS, BlockUse, Layer, ShapeError
from mlspec.catalog.registry import instantiate, name_span
from mlspec.catalog.signature import Signature, bind
from mlspec.semantics.scope import Scope, check_value_size
from mlspec.syntax import ir
from mlspec.syntax.errors import Diagnostic, ErrorCollector, Span, SpecError
from mlspec.syntax.limits import MAX_DEPTH

Use = tuple[str, Span | None]
"""A block used, and where: the use in the model first, then the uses in bodies."""


def _inside(span: Span | None, outer: Span | None) -> bool:
    return span is not None and outer is not None and span.file == outer.file and (
        (outer.line, outer.column) <= (span.line, span.column)
        and (span.end_line, span.end_column) <= (outer.end_line, outer.end_column))


def at_use(diagnostic: Diagnostic, uses: tuple[Use, ...],
           blocks: Mapping[str, ir.Block] | None = None) -> Diagnostic:
    """A mistake found while expanding the blocks `uses`, placed at the outermost use and
    naming its own place, in the body of the innermost block. With `blocks`, only a
    mistake written in the definition of a block used is moved (naming that block); one
    written anywhere else stays where it is."""
    if blocks is not None:
        uses = next((uses[:i] for i in range(len(uses), 0, -1)
                     if _inside(diagnostic.span, getattr(blocks.get(uses[i - 1][0]), "span",
                                                         None))), ())
    if not uses:
        return diagnostic
    here = uses[0][1]
    inner = uses[-1][0]
    where = f"in block '{inner}'"
    span = diagnostic.span
    if span is not None and here is not None:
        where += f" at line {span.line}, column {span.column}"
        if span.file != here.file:
            where += f" of {span.file}"
    chain = [f"'{name}'" for name, _ in uses[:-1]]
    if len(chain) > 3:
        chain = [chain[0], "...", chain[-1]]
    if chain:
        where += ", used by " + " -> ".join(chain)
    return Diagnostic(message=f"{diagnostic.message} ({where})", span=here or span)


class _InTheBlocks(SpecError):
    """A mistake in how blocks are made of blocks (one using itself; a limit crossed,
    of nesting or of a value's size): it is reported where it is, whatever the use."""


# A model's layers once every block and repeat is written out: more cannot be built in
# useful time.
MAX_LAYERS = 10_000


class _TooManyLayers(Exception):
    """Blocks that write out more than MAX_LAYERS layers (blocks using blocks, twice each,
    double at every level): expansion stops at once."""


class ModelResolver:
    """Binds layers and blocks. With `expand=False` (a library, checked without a use)
    blocks used in bodies are bound but not written out, and a layer whose arguments
    are not known yet is checked as far as it can be."""

    def __init__(self, blocks: Mapping[str, ir.Block], scope: Scope, errors: ErrorCollector,
                 expand: bool = True):
        self.blocks, self.scope, self.errors, self.expand = blocks, scope, errors, expand
        self.uses: tuple[Use, ...] = ()
        self.given: tuple[Mapping[str, Span | None], ...] = ()
        """For each use, where the value of each of its block's arguments is written."""
        self.written = 0
        self.nesting = 1  # how deep the layers being resolved sit, once blocks are written out

    def model_layers(self, calls: tuple[ir.LayerCall, ...]) -> tuple[Layer, ...]:
        out = []
        for call in calls:
            try:
                out.extend(self.layers((call,), self.scope))
            except _TooManyLayers:
                self.errors.add(call.span, f"the model has more than {MAX_LAYERS:,} layers "
                                           "once its blocks are written out; a model may "
                                           f"have at most {MAX_LAYERS:,}")
                break
        return tuple(out)

    def layers(self, calls: tuple[ir.LayerCall, ...], scope: Scope) -> tuple[Layer, ...]:
        out = []
        for call in calls:
            try:
                layer = self.layer(call, scope)
            except _InTheBlocks as exc:
                self.errors.extend(exc)
                continue
            except SpecError as exc:
                self.errors.diagnostics += [at_use(d, self.uses, self.blocks)
                                            for d in exc.diagnostics]
                continue
            if layer is not None:
                out.append(layer)
        return tuple(out)

    def layer(self, call: ir.LayerCall, scope: Scope) -> Layer | None:
        self.written += 1
        if self.written > MAX_LAYERS:
            raise _TooManyLayers
        known = call.name in LAYERS or call.name in self.blocks
        bound = None if known else scope.lookup(call.name, call.span)
        if bound is not None and not call.has_args_or_body:  # a param or block argument
            if isinstance(bound, ir.Name) and scope.is_unknown(bound.name):
                return None  # a layer given as a library block's argument: known when used
            if not isinstance(bound, (ir.Name, ir.Call)):
                raise SpecError.at(call.span, f"'{call.name}' is not a layer here")
            if bound.name not in LAYERS and bound.name not in self.blocks:
                LAYERS.lookup(bound.name, name_span(bound), others=self.blocks)  # at the value
            call = ir.LayerCall(name=bound.name, args=getattr(bound, "args", ()),
                                kwargs=getattr(bound, "kwargs", ()), span=call.span)
        block = self.blocks.get(call.name)
        if block is not None:
            return self.block(block, call, scope)
        if LAYERS.lookup(call.name, name_span(call), others=self.blocks).composite:
            if call.body is None:
                raise SpecError.at(call.span, f"'{call.name}' needs a body: "
                                              f"{call.name} {{ ... }}")
            body = self.body(call, lambda: self.layers(call.body, scope))
            return self.instantiate(call, scope, body=body)
        if call.body is not None:
            raise SpecError.at(call.span, f"layer '{call.name}' takes no body")
        return self.instantiate(call, scope)

    def instantiate(self, call: ir.LayerCall, scope: Scope, **extra) -> Layer | None:
        """The layer `call`; a value it cannot take that is a block's argument (`width`
        in `dense(width)`) is reported where the value is written, at the block's use."""
        try:
            return instantiate(LAYERS, call, scope, **extra)
        except SpecError as exc:
            if not self.given:
                raise
            parameters = Signature.of_entry(LAYERS.lookup(call.name, None), "").parameters
            if len(call.args) > len(parameters):  # a mistake in the call, not a value
                raise
            given = self.given[-1]
            arguments = {span: name for span, name in _names(call).items()
                         if given.get(name) is not None}
            raise SpecError([d if d.span not in arguments else Diagnostic(
                message=f"{d.message} (the argument '{arguments[d.span]}' of block "
                        f"'{self.uses[-1][0]}', given to '{call.name}' at line "
                        f"{d.span.line}, column {d.span.column})",
                span=given[arguments[d.span]])
                for d in exc.diagnostics]) from None

    def block(self, block: ir.Block, call: ir.LayerCall, scope: Scope) -> Layer | None:
        if call.body is not None:
            raise SpecError.at(call.span, f"block '{block.name}' takes no body")
        if block.name in (name for name, _ in self.uses):
            chain = " -> ".join([*(name for name, _ in self.uses), block.name])
            raise _InTheBlocks.at(call.span, f"block '{block.name}' uses itself ({chain})")
        bound = bind(Signature.of_block(block), call, scope)
        bound.raise_with()
        try:  # a limit, reached where it is crossed
            for name, value in bound.values.items():
                check_value_size(value, call.span, f"argument '{name}' of block '{block.name}'")
        except SpecError as exc:
            raise _InTheBlocks(exc.diagnostics) from None
        if not self.expand:  # its own body is checked on its own
            return None
        inner = scope.root.child(bound.values)  # the spec's names and the block's arguments
        self.uses += ((block.name, name_span(call)),)
        names, outer = _names(call), self.given[-1] if self.given else {}
        places = {}  # a value passed on from the enclosing block's arguments: where it is
        for name, value in bound.values.items():  # written; a default: in the header
            arg = names.get(bound.spans.get(name)) if bound.spans.get(name) != call.span else None
            places[name] = outer[arg] if arg in outer else getattr(value, "span", None)
        self.given += (places,)
        try:
            return self.block_use(block, call, inner)
        finally:
            self.uses, self.given = self.uses[:-1], self.given[:-1]

    def block_use(self, block: ir.Block, call: ir.LayerCall, inner: Scope) -> Layer | None:
        """The use `call` of `block`, its body bound in `inner` (the block's arguments)."""
        body = self.body(call, lambda: self.layers(block.body, inner))
        return BlockUse(name=block.name, body=body, span=call.span)

    # Layers may nest as deep as in text (a model's layers sit 2 below the spec)
    MAX_NESTING = MAX_DEPTH - 2

    def body(self, call: ir.LayerCall, resolve_body):
        """The layers of `call`'s body, one level deeper than `call`."""
        if self.nesting >= self.MAX_NESTING:
            raise _InTheBlocks.at(name_span(call), f"layers are nested more than "
                                                f"{self.MAX_NESTING} deep here once blocks "
                                                "are written out")
        self.nesting += 1
        try:
            return resolve_body()
        finally:
            self.nesting -= 1


def _names(call: ir.LayerCall) -> dict[Span | None, str]:
    """The bare names among `call`'s argument values, by their places."""
    return {expr.span: expr.name for expr in (*call.args, *(kw.value for kw in call.kwargs))
            if isinstance(expr, ir.Name)}


def infer_shapes(layers: tuple[Layer, ...], shape: tuple[int, ...],
                 errors: ErrorCollector, uses: tuple[Use, ...] = ()) -> tuple[int, ...] | None:
    """Runs each layer's shape function; a layer that cannot take its input is reported
    at its place (inside a block, at the block's use)."""
    for layer in layers:
        try:
            if layer.composite:
                inner, inner_uses = shape, uses
                if isinstance(layer, BlockUse):
                    inner_uses += ((layer.name, name_span(layer)),)
                for _ in range(getattr(layer, "times", 1)):
                    after = infer_shapes(layer.body, inner, errors, inner_uses)
                    if after is None:
                        return None
                    if after == inner:  # every later copy sees this shape too
                        break
                    inner = after
            shape = layer.output_shape(shape)
        except ShapeError as exc:
            place = name_span(layer) if not layer.composite else layer.span
            errors.diagnostics.append(at_use(Diagnostic(message=str(exc), span=place), uses))
            return None
    return shape


def expanded_count(layers: tuple[Layer, ...]) -> int:
    return sum(getattr(layer, "times", 1) * expanded_count(layer.body) if layer.composite
               else 1 for layer in layers)


def check_layer_count(layers: tuple[Layer, ...], span: Span | None,
                      errors: ErrorCollector) -> bool:
    """Whether the model is small enough to build; if not, says so at the outermost layer
    that makes it too big (or the model)."""
    total = expanded_count(layers)
    if total <= MAX_LAYERS:
        return True
    where = next((layer.span for layer in layers if expanded_count((layer,)) > MAX_LAYERS),
                 span)
    errors.add(where, f"this makes {total:,} layers once every repeat is written out; a "
                      f"model may have at most {MAX_LAYERS:,}")
    return False
