"""Recurrent layers over the time axis of [time, features]: lstm, gru, and bidirectional,
which runs one of them both ways.

The time axis may hold padding: each built layer takes `mask=`, the [batch, time]
booleans of the positions that hold values (padded ones at the end), and reads the state
after each sequence's last value (flax's `seq_lengths`; zeros for a row with none); without
it every position counts. With `return_sequences=true` the output keeps the mask.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator
from pydantic_core import PydanticCustomError

from mlspec.catalog.layers.base import LAYERS, Layer, needs_sequence
from mlspec.catalog.registry import instantiate
from mlspec.catalog.signature import UNKNOWN, Catalogue, Names
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError


def lengths(mask: Any) -> Any:
    """The number of positions that hold values in each row of a [batch, time] mask."""
    return None if mask is None else mask.sum(axis=-1)


def after_last(out: Any, mask: Any) -> Any:
    """The output after each row's last value: zeros, the state before any step, for a
    row with none (flax's seq_lengths would read a row of length 0 at its last step)."""
    if mask is None:
        return out
    import jax.numpy as jnp

    return jnp.where(mask.any(axis=-1, keepdims=True), out, 0)


class _Recurrent(Layer):
    uses_mask: ClassVar[bool] = True
    features: PositiveInt
    return_sequences: bool = False

    @property
    def keeps_mask(self) -> bool:  # type: ignore[override]
        return self.return_sequences

    def output_shape(self, shape):
        time, _ = needs_sequence(shape, self.kind)
        return (time, self.features) if self.return_sequences else (self.features,)

    def cell(self, nn):
        raise NotImplementedError

    def last(self, carry):
        """The output after the last step, from the cell's final carry."""
        raise NotImplementedError

    def build(self, ctx):
        rnn = ctx.nn.RNN(self.cell(ctx.nn), return_carry=True)

        def apply(x, mask=None):
            carry, outputs = rnn(x, seq_lengths=lengths(mask))
            return outputs if self.return_sequences else after_last(self.last(carry), mask)

        return apply


class Lstm(_Recurrent):
    """A long short-term memory layer over the time axis (`flax.linen.LSTMCell`): the
    last step's output, or every step's (`return_sequences=true`)."""

    kind: Literal["lstm"] = "lstm"

    def param_count(self, shape):
        inputs, h = shape[-1], self.features
        return 4 * (inputs * h + h * h + h)  # four gates: input and hidden kernels, a bias

    def cell(self, nn):
        return nn.LSTMCell(self.features)

    def last(self, carry):
        return carry[1]  # (c, h)


class Gru(_Recurrent):
    """A gated recurrent unit layer over the time axis (`flax.linen.GRUCell`): the last
    step's output, or every step's (`return_sequences=true`)."""

    kind: Literal["gru"] = "gru"

    def param_count(self, shape):
        inputs, h = shape[-1], self.features
        # reset, update and candidate: input and hidden kernels; biases on the hidden
        # kernels and on the candidate's input kernel
        return 3 * (inputs * h + h * h) + 4 * h

    def cell(self, nn):
        return nn.GRUCell(self.features)

    def last(self, carry):
        return carry


RECURRENT = ("lstm", "gru")


def recurrent_layer(call: ir.Name | ir.Call, scope: Names) -> Any:
    """The recurrent layer that `bidirectional` is given (`lstm(32)`), built as a layer of
    the model is; UNKNOWN where its arguments are not known here (a library's block)."""
    if call.name not in RECURRENT:
        raise SpecError.at(call.span, f"bidirectional takes a recurrent layer "
                                      f"({' or '.join(RECURRENT)}), not '{call.name}'")
    layer = instantiate(LAYERS, call, scope)
    return UNKNOWN if layer is None else layer


class Bidirectional(Layer):
    """A recurrent layer run both ways over the time axis, outputs concatenated
    (`flax.linen.Bidirectional`): `bidirectional(lstm(32))`. Each direction has its own
    weights; without `return_sequences` the backward direction's output is after it
    reads the first step."""

    kind: Literal["bidirectional"] = "bidirectional"
    uses_mask: ClassVar[bool] = True
    layer: Annotated[Lstm | Gru, Field(discriminator="kind"),
                     Catalogue("recurrent layer", lambda: RECURRENT, recurrent_layer)]

    @field_validator("layer", mode="before")
    @classmethod
    def _recurrent(cls, value: Any) -> Any:
        if not isinstance(value, (Lstm, Gru, dict)):  # a dict: the layer read from JSON
            raise PydanticCustomError("recurrent_layer", "Input should be a recurrent "
                                      "layer, such as lstm(32) or gru(32)")
        return value

    @property
    def keeps_mask(self) -> bool:  # type: ignore[override]
        return self.layer.return_sequences

    def output_shape(self, shape):
        needs_sequence(shape, "bidirectional")
        one = self.layer.output_shape(shape)
        return (*one[:-1], 2 * one[-1])

    def param_count(self, shape):
        return 2 * self.layer.param_count(shape)

    def build(self, ctx):
        import jax.numpy as jnp

        nn, layer = ctx.nn, self.layer
        both = nn.Bidirectional(nn.RNN(layer.cell(nn)), nn.RNN(layer.cell(nn)),
                                return_carry=True)

        def apply(x, mask=None):
            (forward, backward), outputs = both(x, seq_lengths=lengths(mask))
            if layer.return_sequences:
                return outputs
            # the backward direction ends at the first step
            return after_last(jnp.concatenate([layer.last(forward), layer.last(backward)],
                                              axis=-1), mask)

        return apply
