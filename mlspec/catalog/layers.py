"""The layer catalogue: one small class per layer, a thin adapter over flax.linen.

Each entry declares its arguments as fields, states its output shape and parameter count
as pure functions of the input shape (per example, without the batch axis), and builds its
flax module in `build`, which receives `flax.linen` from the compiler so that this module
never imports jax.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from mlspec.catalog.registry import Entry, Registry

Shape = tuple[int, ...]
IntOrList = PositiveInt | tuple[PositiveInt, ...]


class ShapeError(ValueError):
    """A layer cannot take its input shape; the resolver reports it at the layer."""


@dataclass(frozen=True)
class BuildContext:
    """What a layer needs to build itself: `flax.linen`, the mode, and how to build a body."""

    nn: Any
    train: bool
    stack: Callable[[tuple[Layer, ...]], Any]
    features_first: bool = False
    """Activations are laid out (features, rows) instead of (rows, features): see
    `Layer.features_first`."""
    dense_features_first: Any = None
    """The flax module that `dense` builds in that layout (same parameters as nn.Dense)."""
    dropout: Any = None
    """The compiler's dropout module: nn.Dropout's mask and scaling, with a keep
    probability that may be traced (so that sweep members may differ in it)."""
    dropout_keep: Any = None
    """The keep probabilities (1 - rate) of the model's dropout layers as a traced array
    (see `dropout_layers`), or None for each layer's own rate."""
    dropout_index: int = 0
    """Where the next dropout layer's keep probability sits in `dropout_keep`."""


class Layer(Entry):
    composite: ClassVar[bool] = False
    train_dependent: ClassVar[bool] = False
    """Behaves differently in training and evaluation (dropout, batch_norm)."""
    features_first: ClassVar[bool] = False
    """Can run on activations laid out (features, rows), with the same parameters and
    results: elementwise functions and dense. The compiler picks that layout for narrow
    models, where rows-first arrays of 2 to 32 features waste the CPU's vector lanes."""

    def widths(self, shape: Shape) -> list[int]:
        """The feature widths this layer produces, for the compiler's layout choice."""
        return [self.output_shape(shape)[-1]] if shape else []

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def param_count(self, shape: Shape) -> int:
        return 0

    def build(self, ctx: BuildContext) -> Callable[[Any], Any]:
        raise NotImplementedError


LAYERS: Registry[type[Layer]] = Registry("layer")
AnyLayer = Annotated[Layer, LAYERS.any_kind()]  # read back from JSON by its kind


# Axes an array may have (NumPy's limit, which the run's arrays pass through), the batch
# axis included.
MAX_RANK = 64


def _within_rank(shape: Shape, layer: str) -> Shape:
    if len(shape) + 1 > MAX_RANK:
        raise ShapeError(f"{layer} would give arrays of {len(shape) + 1} axes (with the "
                         f"batch axis); an array has at most {MAX_RANK}")
    return shape


def _spatial(value: int | tuple[int, ...], rank: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise ShapeError(f"{what} has {len(value)} entries but the input has {rank} "
                         f"spatial axes")
    return tuple(value)


def _needs_spatial(shape: Shape, layer: str) -> int:
    if len(shape) < 2:
        raise ShapeError(f"{layer} needs an input with spatial axes and channels, "
                         f"got shape {list(shape)}")
    return len(shape) - 1


@LAYERS.register
class Dense(Layer):
    """A fully connected layer (`flax.linen.Dense`) over the last axis."""

    kind: Literal["dense"] = "dense"
    features_first: ClassVar[bool] = True
    features: PositiveInt
    use_bias: bool = True

    def output_shape(self, shape):
        if not shape:
            raise ShapeError("dense needs an input with at least one axis")
        return (*shape[:-1], self.features)

    def param_count(self, shape):
        return shape[-1] * self.features + (self.features if self.use_bias else 0)

    def build(self, ctx):
        dense = ctx.dense_features_first if ctx.features_first else ctx.nn.Dense
        return dense(self.features, use_bias=self.use_bias)


@LAYERS.register
class Conv(Layer):
    """A convolution (`flax.linen.Conv`); the spatial rank comes from the input."""

    kind: Literal["conv"] = "conv"
    features: PositiveInt
    kernel: IntOrList
    stride: IntOrList = 1
    padding: Literal["SAME", "VALID"] = "SAME"

    def output_shape(self, shape):
        rank = _needs_spatial(shape, "conv")
        kernel = _spatial(self.kernel, rank, "kernel")
        stride = _spatial(self.stride, rank, "stride")
        return (*_window_out(shape[:-1], kernel, stride, self.padding), self.features)

    def param_count(self, shape):
        rank = len(shape) - 1
        return math.prod(_spatial(self.kernel, rank, "kernel")) * shape[-1] * self.features \
            + self.features

    def build(self, ctx):
        def apply(x):  # the spatial rank is the input's, known when it arrives
            rank = x.ndim - 2
            return ctx.nn.Conv(
                self.features, kernel_size=_spatial(self.kernel, rank, "kernel"),
                strides=_spatial(self.stride, rank, "stride"), padding=self.padding,
            )(x)

        return apply


def _window_out(spatial: Shape, window: Shape, stride: Shape, padding: str) -> Shape:
    out = []
    for n, k, s in zip(spatial, window, stride):
        size = -(-n // s) if padding == "SAME" else -(-(n - k + 1) // s)
        if size < 1:
            raise ShapeError(f"window {list(window)} is larger than the input's spatial "
                             f"shape {list(spatial)}")
        out.append(size)
    return tuple(out)


class _Pool(Layer):
    window: IntOrList
    stride: IntOrList | None = None
    padding: Literal["SAME", "VALID"] = "VALID"

    def _geometry(self, rank: int):
        window = _spatial(self.window, rank, "window")
        stride = window if self.stride is None else _spatial(self.stride, rank, "stride")
        return window, stride

    def output_shape(self, shape):
        rank = _needs_spatial(shape, self.kind)
        window, stride = self._geometry(rank)
        return (*_window_out(shape[:-1], window, stride, self.padding), shape[-1])

    def build(self, ctx):
        pool = getattr(ctx.nn, self.kind)

        def apply(x):
            window, stride = self._geometry(x.ndim - 2)
            return pool(x, window, strides=stride, padding=self.padding)

        return apply


@LAYERS.register
class MaxPool(_Pool):
    """Max pooling over the spatial axes (`flax.linen.max_pool`); `stride` is the
    window unless given."""

    kind: Literal["max_pool"] = "max_pool"


@LAYERS.register
class AvgPool(_Pool):
    """Average pooling over the spatial axes (`flax.linen.avg_pool`); `stride` is the
    window unless given."""

    kind: Literal["avg_pool"] = "avg_pool"


@LAYERS.register
class Flatten(Layer):
    """All axes but the batch axis into one."""

    kind: Literal["flatten"] = "flatten"

    def output_shape(self, shape):
        return (math.prod(shape),)

    def build(self, ctx):
        return lambda x: x.reshape(x.shape[0], -1)


@LAYERS.register
class Reshape(Layer):
    """Each example to `shape`, e.g. `reshape([8, 8, 1])`."""

    kind: Literal["reshape"] = "reshape"
    shape: tuple[PositiveInt, ...]

    def output_shape(self, shape):
        _within_rank(self.shape, "reshape")
        if math.prod(shape) != math.prod(self.shape):
            raise ShapeError(f"cannot reshape {list(shape)} ({math.prod(shape)} values) to "
                             f"{list(self.shape)} ({math.prod(self.shape)} values)")
        return tuple(self.shape)

    def build(self, ctx):
        return lambda x: x.reshape(x.shape[0], *self.shape)


@LAYERS.register
class Dropout(Layer):
    """Zeroes a share `rate` of activations in training only (`flax.linen.Dropout`)."""

    kind: Literal["dropout"] = "dropout"
    train_dependent: ClassVar[bool] = True
    rate: NonNegativeFloat = Field(lt=1)

    def build(self, ctx):
        keep = None if ctx.dropout_keep is None else ctx.dropout_keep[ctx.dropout_index]
        return ctx.dropout(self.rate, keep=keep, deterministic=not ctx.train)


def dropout_layers(layers) -> list[Dropout]:
    """The dropout layers in build order, a composite's body counted once (the copies of a
    `repeat` share their rate); the index of each is where its keep probability sits in
    the trainer's state."""
    found = []
    for layer in layers:
        if isinstance(layer, Dropout):
            found.append(layer)
        elif layer.composite:
            found += dropout_layers(layer.body)
    return found


@LAYERS.register
class BatchNorm(Layer):
    """Batch normalisation; running statistics are used at evaluation."""

    kind: Literal["batch_norm"] = "batch_norm"
    train_dependent: ClassVar[bool] = True
    momentum: float = Field(default=0.99, ge=0, le=1)
    epsilon: PositiveFloat = 1e-5

    def param_count(self, shape):
        return 2 * shape[-1]

    def build(self, ctx):
        return ctx.nn.BatchNorm(use_running_average=not ctx.train, momentum=self.momentum,
                                epsilon=self.epsilon)


@LAYERS.register
class LayerNorm(Layer):
    """Layer normalisation over the last axis (`flax.linen.LayerNorm`)."""

    kind: Literal["layer_norm"] = "layer_norm"
    epsilon: PositiveFloat = 1e-6

    def param_count(self, shape):
        return 2 * shape[-1]

    def build(self, ctx):
        return ctx.nn.LayerNorm(epsilon=self.epsilon)


@LAYERS.register
class Embedding(Layer):
    """A lookup table from integer ids to vectors (`flax.linen.Embed`)."""

    kind: Literal["embedding"] = "embedding"
    vocab: PositiveInt
    features: PositiveInt

    def output_shape(self, shape):
        return _within_rank((*shape, self.features), "embedding")

    def param_count(self, shape):
        return self.vocab * self.features

    def build(self, ctx):
        embed = ctx.nn.Embed(self.vocab, self.features)
        return lambda x: embed(x.astype("int32"))


class Activation(Layer):
    """An elementwise (or last-axis) function of flax.linen under the same name."""

    def build(self, ctx):
        return getattr(ctx.nn, self.kind)


def _activation(name: str, doc: str) -> type[Activation]:
    cls = type(name.title().replace("_", ""), (Activation,), {
        "__annotations__": {"kind": Literal[name]}, "kind": name, "__doc__": doc,
        "__module__": __name__,
        "features_first": name not in ("softmax", "log_softmax"),  # these are over an axis
    })
    return LAYERS.register(cls)


for _name, _doc in {
    "relu": "`max(x, 0)`",
    "sigmoid": "`1 / (1 + exp(-x))`",
    "tanh": "The hyperbolic tangent",
    "gelu": "The Gaussian error linear unit, tanh approximation",
    "silu": "`x * sigmoid(x)` (swish)",
    "softplus": "`log(1 + exp(x))`",
    "elu": "`x` above 0, `exp(x) - 1` below",
    "softmax": "Softmax over the last axis",
    "log_softmax": "Log of the softmax over the last axis",
}.items():
    _activation(_name, f"{_doc} (`flax.linen.{_name}`).")


@LAYERS.register
class LeakyRelu(Activation):
    """`flax.linen.leaky_relu` with its negative `slope`."""

    kind: Literal["leaky_relu"] = "leaky_relu"
    features_first: ClassVar[bool] = True
    slope: NonNegativeFloat = 0.01

    def build(self, ctx):
        return lambda x: ctx.nn.leaky_relu(x, negative_slope=self.slope)


class Composite(Layer):
    """A layer with a body of layers: `repeat(3) { ... }`, `residual { ... }`."""

    composite: ClassVar[bool] = True
    body: tuple[AnyLayer, ...] = ()

    @property
    def features_first(self) -> bool:
        return all(layer.features_first for layer in self.body)

    def widths(self, shape):
        out = []
        for layer in self.body:
            out += layer.widths(shape)
            shape = layer.output_shape(shape)
        return out

    @classmethod
    def argument_names(cls) -> list[str]:
        return [n for n in super().argument_names() if n != "body"]

    def output_shape(self, shape):
        return _body_output(self.body, shape)

    def param_count(self, shape):
        return _body_params(self.body, shape)


# A body's shape and count are pure functions of its layers and input shape: they are
# kept, as nested composites ask for them again at every level (repeat asks its body
# once per copy's input), which without this grows as 2^depth.
@functools.lru_cache(maxsize=4096)
def _body_output(body: tuple[Layer, ...], shape: Shape) -> Shape:
    for layer in body:
        shape = layer.output_shape(shape)
    return shape


@functools.lru_cache(maxsize=4096)
def _body_params(body: tuple[Layer, ...], shape: Shape) -> int:
    total = 0
    for layer in body:
        total += layer.param_count(shape)
        shape = layer.output_shape(shape)
    return total


@LAYERS.register
class Repeat(Composite):
    """The body `times` times in a row, each copy with its own weights."""

    kind: Literal["repeat"] = "repeat"
    times: PositiveInt = Field(le=10_000)

    def copy_inputs(self, shape: Shape) -> list[tuple[Shape, int]]:
        """The input shape of each copy, with how many copies in a row see it: once a copy
        keeps its input's shape, so do all the later ones (shape functions are pure), so
        nested repeats cost a few passes over the body rather than `times` each."""
        out = []
        for done in range(self.times):
            after = super().output_shape(shape)
            if after == shape:
                return out + [(shape, self.times - done)]
            out.append((shape, 1))
            shape = after
        return out

    def output_shape(self, shape):
        last, _ = self.copy_inputs(shape)[-1]
        return super().output_shape(last)

    def param_count(self, shape):
        return sum(count * super(Repeat, self).param_count(seen)
                   for seen, count in self.copy_inputs(shape))

    def build(self, ctx):
        copies = [ctx.stack(self.body) for _ in range(self.times)]

        def apply(x):
            for copy in copies:
                x = copy(x)
            return x

        return apply


@LAYERS.register
class Residual(Composite):
    """`x + body(x)`; the body must keep the shape."""

    kind: Literal["residual"] = "residual"

    def output_shape(self, shape):
        out = super().output_shape(shape)
        if out != shape:
            raise ShapeError(f"the residual body changes the shape from {list(shape)} to "
                             f"{list(out)}; it must keep it")
        return shape

    def build(self, ctx):
        body = ctx.stack(self.body)
        return lambda x: x + body(x)


@LAYERS.add_kind
class BlockUse(Composite):
    """A use of a user-defined block: its layers, kept together under the block's name
    (a kind of the typed program that no spec names)."""

    kind: Literal["block"] = "block"
    name: str

    def build(self, ctx):
        return ctx.stack(self.body, name=self.name)
