"""What a program needs to run, estimated from its shapes alone (no jax), so that `check`
refuses at its place a spec that cannot fit rather than letting the run hang or die.

The estimate is a lower bound: float32 parameters with their gradients and the optimizer
slots the known optax aliases keep per parameter, the largest activation of one batch, the
data arrays, and the training history; parameters, activations and history once per
member (seeds, sweep), since a group of members trains vmapped, all at once.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

from mlspec.catalog.layers import Layer, Repeat
from mlspec.syntax.errors import Span, SpecError

FLOAT = 4  # bytes of a float32
MAX_MEMBERS = 100_000
MAX_STEPS = 2**31 - 1  # the run's step counter is a 32-bit integer
MEMORY_LIMIT_ENV = "MLSPEC_MEMORY_LIMIT"

# Optimizer state arrays per parameter (each the parameter's size) that these optax
# aliases keep whatever their arguments; an alias not listed counts none, so the estimate
# stays a lower bound (adafactor and sm3 keep factored, smaller state).
_SLOTS = {"adam": 2, "adamw": 2, "adamax": 2, "adamaxw": 2, "nadam": 2, "nadamw": 2,
          "amsgrad": 3, "adabelief": 2, "radam": 2, "yogi": 2, "lamb": 2, "adadelta": 2,
          "adan": 4, "rprop": 2, "rmsprop": 1, "adagrad": 1, "lion": 1, "novograd": 1,
          "optimistic_gradient_descent": 1}


def memory_limit() -> int:
    """Bytes a run may use: MLSPEC_MEMORY_LIMIT if set, else this machine's memory."""
    return _memory_limit(os.environ.get(MEMORY_LIMIT_ENV))


@functools.lru_cache(maxsize=8)
def _memory_limit(value: str | None) -> int:
    """Worked out once per value of the variable: `check` of a large sweep asks often."""
    if value:
        try:
            return int(value)
        except ValueError:
            raise SpecError.at(None, f"{MEMORY_LIMIT_ENV} should be a number of bytes, got "
                                     f"'{value[:40]}'") from None
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def size_text(nbytes: float) -> str:
    """Bytes in decimal units, as `df -H` and memory vendors write them: 16.0 GB."""
    if nbytes >= 10**18:  # also beyond what a float holds
        return "more than 1000 PB"
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if nbytes < 1000 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Need:
    """A part of what a run needs, and the place in the spec that asks for it."""

    what: str
    nbytes: int
    span: Span | None
    per_member: bool


def optimizer_slots(optimizer) -> int:
    """State arrays per parameter that the optimizer keeps (0 where unknown)."""
    if optimizer is None:
        return 0
    if optimizer.name == "sgd":
        return 1 if optimizer.arguments.get("momentum") else 0
    return _SLOTS.get(optimizer.name, 0)


def layer_needs(layers: tuple[Layer, ...] | list, shape: tuple[int, ...] | None, rows: int,
                state_copies: int) -> tuple[Need | None, Need | None]:
    """The parameters (with `state_copies` arrays of each) and the largest activation of
    `rows` rows, each placed at the layer that weighs most. `layers` may be runs of
    layers, each with its input shape (a graph's `segments`), with `shape` None."""
    params_total, params_top, act_top = 0, (0, None), (0, None)
    for run, shape in [(layers, shape)] if shape is not None else layers:
        for layer in run:
            count = layer.param_count(shape)
            params_total += count
            heaviest = _heaviest(layer, shape)
            params_top = max(params_top, heaviest, key=lambda p: p[0])
            shape = layer.output_shape(shape)
            act_top = max(act_top, (math.prod(shape), layer.span), key=lambda p: p[0])
    params = Need("parameters" + (" with their gradients and optimizer state"
                                  if state_copies > 1 else ""),
                  params_total * state_copies * FLOAT, params_top[1], True) \
        if params_total else None
    activations = Need(f"the activations of {rows_text(rows)}", act_top[0] * rows * FLOAT,
                       act_top[1], True) if act_top[0] else None
    return params, activations


def rows_text(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


def _heaviest(layer: Layer, shape: tuple[int, ...]) -> tuple[int, Span | None]:
    """The single layer (inside bodies too) with the most parameters, and its place."""
    if not layer.composite:
        return layer.param_count(shape), layer.span
    best = (0, layer.span)
    inputs = layer.copy_inputs(shape) if isinstance(layer, Repeat) else [(shape, 1)]
    for seen, _ in inputs:
        for sub in layer.body:
            best = max(best, _heaviest(sub, seen), key=lambda p: p[0])
            seen = sub.output_shape(seen)
    return best


def data_need(data) -> Need | None:
    """The data arrays of every split, placed at the source of the largest (the one
    source that a split source is)."""
    if data is None or not data.split_rows:
        return None
    width = math.prod(data.info.features) + max(data.info.target_dim, 1)
    rows = sum(data.split_rows.values())
    largest = max(data.split_rows, key=data.split_rows.get)
    span = data.sources.get("source", data.sources.get(largest)).span
    return Need(f"{rows_text(rows)} of data", rows * width * FLOAT, span, False)


def history_need(train, section, data, splits: int) -> Need | None:
    """The rows the run records (one per `eval_every` steps) and the arrays that lay out
    its steps; too many steps for the run's 32-bit step counter are refused."""
    if train is None:
        return None
    setting = section.get("steps") or section.get("epochs") if section else None
    span = setting.value.span or setting.span if setting else None
    rows = _train_rows(data)
    per_epoch = max(1, rows // train.batch) if rows and train.batch and train.batch < rows \
        else 1
    steps = train.steps if train.steps is not None else train.epochs * per_epoch
    if steps > MAX_STEPS:
        raise SpecError.at(span, f"{steps:,} steps are more than a run can count "
                                 f"({MAX_STEPS:,}: its step counter is 32 bits)")
    history_rows = steps // min(train.eval_every, steps) + 1
    values = splits * (1 + len(train.metrics))
    # each row: its step (int64) and its block's length (int32) on the host, and each
    # recorded value three times: on the device and on the host (float32), and in the
    # history table (float64)
    return Need(f"the history of {rows_text(history_rows)}",
                history_rows * (12 + 4 * FLOAT * values), span, True)


def _train_rows(data) -> int | None:
    """The train split's rows, where its source knows them."""
    return None if data is None else data.split_rows.get("train")


def program_needs(program, section=None) -> list[Need]:
    """Everything one member of `program` needs; `section` is the spec's train section."""
    train = program.train
    copies = 1 + (1 + optimizer_slots(train.optimizer) if train is not None else 0)
    # rows a step runs on: a batch, or the whole train split when it is smaller; 1 where
    # the split's size is not known (a batch may be larger than the split)
    rows = _train_rows(program.data) or 1
    if train is not None and train.batch:
        rows = min(rows, train.batch)
    model = program.model
    needs = [*(layer_needs(model.graph.segments(model.input_shapes()), None, rows, copies)
               if model.graph is not None else
               layer_needs(model.layers, model.input_shape, rows, copies)),
             data_need(program.data),
             history_need(train, section, program.data,
                          len(program.data.splits) if program.data else 1)]
    return [n for n in needs if n is not None]


def refuse_if_too_big(needs: list[Need], members: int = 1,
                      members_span: Span | None = None) -> None:
    """A SpecError at the place of what makes the run too big for this machine."""
    limit = memory_limit()
    one = sum(n.nbytes for n in needs)
    total = sum(n.nbytes * (members if n.per_member else 1) for n in needs)
    if total <= limit:
        return
    have = f"this machine has {size_text(limit)} of memory"
    if one > limit or members == 1:
        parts = ", ".join(f"{size_text(n.nbytes)} for {n.what}"
                          for n in sorted(needs, key=lambda n: -n.nbytes)
                          if n.nbytes >= one / 100)  # what matters
        top = max(needs, key=lambda n: n.nbytes)
        each = " for each member" if members > 1 else ""
        raise SpecError.at(top.span, f"this run needs at least {size_text(one)}{each} "
                                     f"({parts}); {have}")
    each = sum(n.nbytes for n in needs if n.per_member)
    raise SpecError.at(members_span, f"{members:,} members need at least "
                                     f"{size_text(total)} ({size_text(each)} each, trained "
                                     f"together); {have}")
