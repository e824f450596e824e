"""Normalisation layers: a scale and a bias per feature."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveFloat

from mlspec.catalog.layers.base import Layer


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
    epsilon: PositiveFloat = 1e-6

    def param_count(self, shape):
        return 2 * shape[-1]

    def build(self, ctx):
        return ctx.nn.LayerNorm(epsilon=self.epsilon)
