"""The model: blocks expanded and every layer bound to its catalogue entry, then shapes
inferred through the chain.

A mistake inside a block's body is reported at the use of the block in the model (which
is what the spec's author can change for that use), naming the body's place.
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


def at_use(diagnostic: Diagnostic, uses: tuple[Use, ...]) -> Diagnostic:
    """A mistake found while expanding the blocks `uses`, placed at the outermost use and
    naming its own place, in the body of the innermost block."""
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
                self.errors.diagnostics += [at_use(d, self.uses) for d in exc.diagnostics]
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
            return instantiate(LAYERS, call, scope, body=body)
        if call.body is not None:
            raise SpecError.at(call.span, f"layer '{call.name}' takes no body")
        return instantiate(LAYERS, call, scope)

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
        try:
            body = self.body(call, lambda: self.layers(block.body, inner))
        finally:
            self.uses = self.uses[:-1]
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
