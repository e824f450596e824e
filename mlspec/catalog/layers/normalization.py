"""Normalisation layers: a scale and a bias per feature."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from mlspec.catalog.layers.base import Layer, ShapeError


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


class LayerNorm(Layer):
    """Layer normalisation over the last axis (`flax.linen.LayerNorm`)."""

    kind: Literal["layer_norm"] = "layer_norm"
    keeps_mask: ClassVar[bool] = True
    over_last_axis: ClassVar[bool] = True
    epsilon: PositiveFloat = 1e-6

    def param_count(self, shape):
        return 2 * shape[-1]

    def build(self, ctx):
        return ctx.nn.LayerNorm(epsilon=self.epsilon)


class GroupNorm(Layer):
    """Normalisation of the channels in groups, `groups` of them (`flax.linen.GroupNorm`);
    a scale and a bias per channel. Each group is normalised over its channels and every
    axis but the batch."""

    kind: Literal["group_norm"] = "group_norm"
    groups: PositiveInt = 32
    epsilon: PositiveFloat = 1e-6

    def output_shape(self, shape):
        if not shape:
            raise ShapeError("group_norm needs an input with channels")
        if shape[-1] % self.groups:
            raise ShapeError(f"group_norm's {self.groups} groups do not divide the "
                             f"{shape[-1]} channels of this input {list(shape)}")
        return shape

    def param_count(self, shape):
        return 2 * shape[-1]

    def build(self, ctx):
        return ctx.nn.GroupNorm(num_groups=self.groups, epsilon=self.epsilon)


class RmsNorm(Layer):
    """Root-mean-square normalisation over the last axis (`flax.linen.RMSNorm`); a scale
    per feature, no bias."""

    kind: Literal["rms_norm"] = "rms_norm"
    keeps_mask: ClassVar[bool] = True
    over_last_axis: ClassVar[bool] = True
    epsilon: PositiveFloat = 1e-6

    def param_count(self, shape):
        return shape[-1]

    def build(self, ctx):
        return ctx.nn.RMSNorm(epsilon=self.epsilon)
