"""Graphs of layers as pure data: the form of a graph model and of a graph block's body
(LANGUAGE.md v2, "Graph models"), with their shape functions.

A `Graph` is its input names, its shared layers, and its nodes in order: each node reads
one value (an input or an earlier node) or merges several, then runs its layers. A layer
in a node may be a `SharedUse`, which names one of the graph's shared layers: every use
of a shared layer has the same weights. A block whose body is a graph is used in a chain
as a `GraphBlockUse`, its input the name `in` and its value the node `out`. Both kinds are
kinds of the typed program that no spec names (registered with `LAYERS.add_kind`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar, Literal

from mlspec.catalog.layers.base import AnyLayer, Layer, Shape, ShapeError
from mlspec.catalog.merges import AnyMerge, Concat, Merge
from mlspec.syntax import ir


class SharedLayer(ir.Node):
    """`share NAME = layer`: one layer (or block) of a graph, built once."""

    kind: Literal["shared_layer"] = "shared_layer"
    name: str
    layer: AnyLayer


class GraphNode(ir.Node):
    """A value of a graph: `inputs` (one, or a merge's several), then `layers`."""

    kind: Literal["graph_node"] = "graph_node"
    name: str
    """The binding's or output's name."""
    inputs: tuple[str, ...]
    merge: AnyMerge | None = None
    """How several inputs become one; None for a node that reads one value."""
    layers: tuple[AnyLayer, ...] = ()


class Graph(ir.Node):
    """A graph of layers: what a graph model or a graph block's body is, once resolved."""

    kind: Literal["graph"] = "graph"
    inputs: tuple[str, ...]
    shares: tuple[SharedLayer, ...] = ()
    nodes: tuple[GraphNode, ...]
    outputs: tuple[str, ...]
    """The nodes that are the graph's outputs (`out` for a block), in their order."""

    def shared(self, name: str) -> Layer:
        return next(s.layer for s in self.shares if s.name == name)

    def resolved(self, layer: Layer) -> Layer:
        """The layer itself, or the shared layer a `SharedUse` names."""
        return self.shared(layer.name) if isinstance(layer, SharedUse) else layer

    def walk(self, inputs: Mapping[str, Shape]) -> Iterator[tuple[GraphNode, Layer | None,
                                                                 Shape, Shape]]:
        """(node, layer, input shape, output shape) for each layer of each node in order,
        shared layers resolved; each node first with layer None (its merge or its read).
        A shape that does not fit is a ShapeError naming the node."""
        shapes = dict(inputs)
        for node in self.nodes:
            try:
                if node.merge is not None:
                    shape = node.merge.output_shape([shapes[n] for n in node.inputs],
                                                    node.inputs)
                else:
                    shape = shapes[node.inputs[0]]
                yield node, None, shape, shape
                for layer in node.layers:
                    after = self.resolved(layer).output_shape(shape)
                    yield node, layer, shape, after
                    shape = after
            except ShapeError as exc:
                raise ShapeError(f"{exc} (in '{node.name}')") from None
            shapes[node.name] = shape

    def shapes(self, inputs: Mapping[str, Shape]) -> dict[str, Shape]:
        """Every value's shape, by name, from the inputs' shapes."""
        shapes = dict(inputs)
        for node, _, _, after in self.walk(inputs):
            shapes[node.name] = after
        return shapes

    def segments(self, inputs: Mapping[str, Shape]) -> list[tuple[tuple[Layer, ...], Shape]]:
        """The graph's layers in runs that see one shape after another, each with its
        input shape: a shared layer once, at its first use."""
        out: list[tuple[list[Layer], Shape]] = []
        seen: set[str] = set()
        for _, layer, before, _ in self.walk(inputs):
            if layer is None:
                out.append(([], before))
            elif isinstance(layer, SharedUse):
                if layer.name not in seen:
                    seen.add(layer.name)
                    out.append(([self.shared(layer.name)], before))
                out.append(([], self.shared(layer.name).output_shape(before)))
            else:
                out[-1][0].append(layer)
        return [(tuple(layers), shape) for layers, shape in out if layers]

    def param_count(self, inputs: Mapping[str, Shape]) -> int:
        """Every parameter of the graph, a shared layer's once."""
        total = 0
        for layers, shape in self.segments(inputs):
            for layer in layers:
                total += layer.param_count(shape)
                shape = layer.output_shape(shape)
        return total

    def masks(self, inputs: Mapping[str, Shape], masked: Mapping[str, str]
              ) -> dict[str, str | None]:
        """The mask each value carries, by name: the name of the input whose padding mask
        it is (`masked` gives the inputs' own), or None. The mask follows each node's
        layers while they keep it, and its merge as `merged_mask` says."""
        shapes = dict(inputs)
        sources: dict[str, str | None] = {name: masked.get(name) for name in inputs}
        source = None
        for node, layer, before, after in self.walk(inputs):
            if layer is None:
                source = sources[node.inputs[0]] if node.merge is None else merged_mask(
                    node.merge, [sources[n] for n in node.inputs], shapes[node.inputs[0]])
            elif source is not None and not self.resolved(layer).mask_after(before):
                source = None
            sources[node.name], shapes[node.name] = source, after
        return sources

    def layers(self) -> Iterator[Layer]:
        """Every layer of the graph (a shared one once), not those inside bodies."""
        for share in self.shares:
            yield share.layer
        for node in self.nodes:
            yield from (layer for layer in node.layers if not isinstance(layer, SharedUse))


class SharedUse(Layer):
    """A use of a graph's shared layer, by its name."""

    kind: Literal["shared"] = "shared"
    name: str

    def output_shape(self, shape):
        raise ShapeError(f"the shared layer '{self.name}' is known only in its graph")

    def build(self, ctx):
        raise NotImplementedError("a shared layer is built by its graph")


def merged_mask(merge: Merge, sources: list[str | None], shape: Shape) -> str | None:
    """The mask a merge of values carrying masks `sources` (see `Graph.masks`) carries,
    its inputs of `shape`: their mask where all carry the same one and the merge acts per
    step (elementwise, or `concat` along an axis but the time axis), else None."""
    first = sources[0]
    if first is None or any(source != first for source in sources[1:]):
        return None
    if isinstance(merge, Concat) and merge.axis % len(shape) == 0:
        return None  # along the time axis: the positions are no longer the input's
    return first


class GraphBlockUse(Layer):
    """A use of a block whose body is a graph: its input `in`, its value `out`. Its built
    function passes a mask on to the graph's input; the mask holds after it where it
    reaches `out`."""

    kind: Literal["graph_block"] = "graph_block"
    uses_mask: ClassVar[bool] = True
    name: str
    graph: Graph

    def mask_after(self, shape):
        return self.graph.masks({"in": shape}, {"in": "in"})["out"] == "in"

    def output_shape(self, shape):
        try:
            return self.graph.shapes({"in": shape})["out"]
        except ShapeError as exc:
            raise ShapeError(f"{exc} in block '{self.name}'") from None

    def param_count(self, shape):
        return self.graph.param_count({"in": shape})

    def build(self, ctx):
        return ctx.stack(self.graph, name=self.name)


def inner_layers(layer: Layer) -> tuple[Layer, ...]:
    """The layers a layer holds: a composite's body, a graph block's every layer."""
    if isinstance(layer, GraphBlockUse):
        return tuple(layer.graph.layers())
    return tuple(layer.body) if layer.composite else ()
