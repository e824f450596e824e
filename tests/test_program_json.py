"""The typed program is plain data: it reads back from its own JSON as it was.

`Program.model_validate_json(p.model_dump_json()) == p`, and the JSON written again is the
same text (so no value changed type on the way: an int stays an int, `{100: 0.1}` keeps
its int keys), for every spec in specs/ and every program of the catalogue tables: each
layer row of test_layers and test_layers_v2 (every layer kind, blocks and composites
nested; the graph kinds are test_graph's, whose every graph reads back there), each loss,
each data source of test_data, each optimizer and schedule of test_optimizers. Layers,
losses and sources are discriminated unions on `kind` over what the registries hold
(`Registry.any_kind`), so a new entry is read back with no edit anywhere.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from conftest import SPECS
from pydantic import BaseModel, ValidationError
from test_data import SOURCE_TABLE, program_for, write_table_files
from test_graph import ROWS as GRAPH_ROWS
from test_layers import ROWS, static_text
from test_layers_v2 import ROWS as V2_ROWS
from test_optimizers import OPTIMIZERS, SCHEDULES, VARIANTS, spec_text

import mlspec
from mlspec.catalog.layers import LAYERS
from mlspec.catalog.layers.graph import GraphBlockUse, inner_layers
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.registry import Entry, Registry
from mlspec.catalog.sources import SOURCES
from mlspec.semantics.program import Program


def assert_round_trip(program: Program) -> None:
    text = program.model_dump_json()
    again = Program.model_validate_json(text)
    assert again == program
    assert again.model_dump_json() == text


def layer_kinds(layers) -> set[str]:
    found = set()
    for layer in layers:
        found.add(layer.kind)
        found |= layer_kinds(inner_layers(layer))
        if isinstance(layer, GraphBlockUse):
            found |= graph_kinds(layer.graph)
    return found


def graph_kinds(graph) -> set[str]:
    """The layer kinds of a graph, its shared uses too."""
    return layer_kinds(layer for node in graph.nodes for layer in node.layers) | \
        layer_kinds(share.layer for share in graph.shares)


# ------------------------------------------------------------------------ the table

LOSS_DATA = {"real": ("linear(n=50)", 1), "binary": ("hill(n=50)", 1),
             "class": ("hill(n=50)", 2)}


def loss_text(name: str) -> str:
    """A spec whose loss is `name` (a regulariser beside mse), with data that fits it."""
    cls = LOSSES.get(name)
    source, width = LOSS_DATA["real" if cls.regulariser or cls.target == "any" else cls.target]
    loss = f"mse + 0.5 * {name}" if cls.regulariser else name
    return (f"model m {{ dense({width}) }}\ndata {{ train = {source} }}\n"
            f"train {{ loss = {loss}\n optimizer = sgd(0.1)\n steps = 5 }}\n")


TABLE = [
    *(pytest.param(lambda path=path: mlspec.resolve(mlspec.load(path)), id=f"spec-{path.stem}")
      for path in SPECS),
    *(pytest.param(lambda row=row: mlspec.resolve(mlspec.parse(static_text(row))),
                   id=f"layer-{row.id}") for row in [*ROWS, *V2_ROWS]),
    *(pytest.param(lambda name=name: mlspec.resolve(mlspec.parse(loss_text(name))),
                   id=f"loss-{name}") for name in LOSSES),
    *(pytest.param(lambda call=call: mlspec.resolve(mlspec.parse(spec_text(call))),
                   id=f"optimizer-{name}")
      for name, call in ((n, f"{n}({a})") for n, a in OPTIMIZERS.items())),
    *(pytest.param(lambda call=call: mlspec.resolve(mlspec.parse(spec_text(
        f"sgd(learning_rate={call})"))), id=f"schedule-{name}")
      for name, call in SCHEDULES.items()),
    *(pytest.param(lambda v=v: mlspec.resolve(mlspec.parse(spec_text(v.values[0]))),
                   id=f"optimizer-{v.id}") for v in VARIANTS),
    pytest.param(lambda: mlspec.resolve(mlspec.parse(spec_text(
        "adam(learning_rate=0.01)", extra="clip_by_global_norm = 1.0; seeds = 2; "
        "early_stop = early_stop(metric=train.loss, patience=3); devices = all"))),
        id="train-settings"),
    # both forms of the data section (a union on its form), sizes as counts and fractions,
    # and early_stop's mode taken from its metric's direction
    pytest.param(lambda: mlspec.resolve(mlspec.parse(
        "model m { dense(classes) }\ndata {\n source = iris\n valid = 30\n test = 0.1\n"
        " split_seed = 2\n standardize = true\n}\ntrain {\n loss = softmax_cross_entropy\n"
        " optimizer = sgd(0.1)\n steps = 5\n metrics = [accuracy]\n"
        " early_stop = early_stop(metric=valid.accuracy)\n}\n")), id="data-split-in-place"),
    # a loss with a list argument, and metrics with arguments and of the report scope
    pytest.param(lambda: mlspec.resolve(mlspec.parse(
        "model m { dense(classes) }\ndata {\n source = iris\n valid = 0.3\n}\ntrain {\n"
        " loss = softmax_cross_entropy(label_smoothing=0.1, class_weight=[1.0, 2.0, 0.5])\n"
        " optimizer = sgd(0.1)\n steps = 5\n"
        " metrics = [top_k_accuracy(k=2), log_loss, confusion_matrix]\n"
        " early_stop = early_stop(metric=valid.top_k_accuracy)\n}\n")),
        id="loss-and-metric-arguments"),
    pytest.param(lambda: mlspec.resolve(mlspec.parse(
        "model m { dense(1) }\ndata {\n train = linear(n=50)\n valid = linear(n=20, seed=1)\n"
        " test = linear(n=20, seed=2)\n}\ntrain {\n loss = mse\n optimizer = sgd(0.1)\n"
        " epochs = 2\n batch = 10\n}\n")), id="data-named-splits"),
]


@pytest.mark.parametrize("make", TABLE)
def test_program_reads_back_from_its_json(make):
    assert_round_trip(make())


@pytest.fixture
def data_folder(tmp_path):
    """The files that test_data's table reads, in tmp_path."""
    return write_table_files(tmp_path)


@pytest.mark.parametrize("source", SOURCE_TABLE)
def test_every_source_reads_back(source, data_folder):
    assert_round_trip(program_for(source, folder=data_folder))


def test_the_table_holds_every_kind():
    """A new layer, loss or source is in the table by its registry's own table rows."""
    layers = set()
    for row in [*ROWS, *V2_ROWS]:
        layers |= layer_kinds(mlspec.resolve(mlspec.parse(static_text(row))).model.layers)
    for row in GRAPH_ROWS:  # (test_graph reads each back from its JSON)
        layers |= graph_kinds(mlspec.resolve(row.spec).model.graph)
    assert layers == set(LAYERS.kinds()) and "block" in layers
    assert {s.split("(")[0] for s in SOURCE_TABLE} == set(SOURCES.kinds())
    ids = {param.id for param in TABLE}
    assert {f"loss-{name}" for name in LOSSES} <= ids and len(ids) == len(TABLE)


def test_read_back_types_are_the_entries_and_the_program_trains_the_same(tmp_path):
    """The JSON gives back the catalogue's classes (a block in a repeat in a residual
    model), and a program read back trains to the same history, into a run folder."""
    from mlspec.runtime.runner import train_program

    program = mlspec.resolve(mlspec.load(SPECS[0].parent / "residual_mlp.mlspec"),
                             {"train.epochs": 1, "width": 8})
    again = Program.model_validate_json(program.model_dump_json())
    repeat = again.model.layers[1]
    assert type(repeat) is LAYERS.get("repeat")
    assert type(repeat.body[0]).__name__ == "BlockUse" and repeat.body[0].name == "res_block"
    assert type(repeat.body[0].body[0]) is LAYERS.get("residual")
    # the spec travels too, but for its comments (no part of its meaning)
    uncommented = program.spec.model_copy(update={"comments": ()}).to_text()
    assert again.spec == program.spec and again.spec.to_text() == uncommented
    first, second = train_program(program), train_program(again)
    assert first.history.equals(second.history)
    second.save(tmp_path / "run")
    assert (tmp_path / "run" / "spec.mlspec").read_text() == uncommented


def test_a_wrong_kind_is_refused_with_the_kinds_there_are():
    text = mlspec.resolve(mlspec.load(SPECS[0])).model_dump_json().replace('"kind":"dense"',
                                                              '"kind":"dens"', 1)
    with pytest.raises(ValidationError, match="'dens'.*expected tags: 'dense'"):
        Program.model_validate_json(text)


def test_a_kind_registered_after_its_union_was_built_is_refused():
    """A union is built on first use; a kind added later would be unknown to it, so the
    registry refuses it rather than read it back wrong."""
    things: Registry = Registry("thing")

    @things.register
    class One(Entry):
        kind: Literal["one"] = "one"

    class Holder(BaseModel):
        item: Annotated[Entry, things.any_kind()]

    assert Holder.model_validate_json('{"item": {"kind": "one"}}').item == One()

    class Two(Entry):
        kind: Literal["two"] = "two"

    with pytest.raises(RuntimeError, match="thing kind 'two' is registered after"):
        things.register(Two)
