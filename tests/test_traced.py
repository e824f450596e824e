"""What may differ inside one compiled program is declared on the field (`Traced`, see
mlspec.catalog.traced); the rest follows from the declarations: the training state's
values, the model's and the loss's reading of them, the sweep's grouping key.

Making a hyperparameter sweepable in one program is `Annotated[..., Traced()]` on its
field and a row in TRACED below, whose sweep is trained as one program and holds every
member to its single run."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax
import numpy as np
import pytest

import mlspec
from mlspec.catalog.layers import LAYERS
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.traced import traced_fields, traced_values, untraced
from mlspec.compiler.trainer import TRACED_NAMES, Trainer, clear_programs
from mlspec.semantics.structure import groups, structure
from mlspec.semantics.sweep import expand
from mlspec.semantics.train import LossTerm

CLASSIFIER = """
param v = {default}
model m {{
    {layers}
}}
data {{
    train = hill(n=300, seed=0)
    valid = hill(n=100, seed=1)
}}
train {{
    loss       = {loss}
    optimizer  = sgd(learning_rate=0.1, momentum=0.9)
    steps      = 40
    eval_every = 10
    metrics    = [accuracy]
}}
"""

REGRESSION = """
param v = {default}
model m {{
    {layers}
}}
data {{
    train = linear(n=200, seed=0)
    valid = linear(n=100, seed=1)
}}
train {{
    loss       = {loss}
    optimizer  = sgd(learning_rate=0.05, momentum=0.9)
    steps      = 40
    eval_every = 10
}}
"""


@dataclass(frozen=True)
class Row:
    entry: type
    field: str
    saved_as: str
    """Its values' name in the training state (and a run folder's state)."""
    spec: str
    """A spec whose param `v` is the field's value."""
    values: tuple[float, ...]


TRACED = [
    Row(LAYERS.get("dropout"), "rate", "dropout_keep", CLASSIFIER.format(
        default=0.1, layers="dense(8) -> tanh\n    repeat(2) { dense(8) -> dropout(v) }\n"
        "    dense(2)", loss="softmax_cross_entropy"), (0.09, 0.5)),
    Row(LossTerm, "weight", "loss_weights", CLASSIFIER.format(
        default=0.0, layers="dense(8) -> tanh\n    dense(2)",
        loss="softmax_cross_entropy + v * l2"), (0.0, 0.05)),
    Row(LAYERS.get("leaky_relu"), "slope", "leaky_relu_slope", CLASSIFIER.format(
        default=0.01, layers="dense(8) -> leaky_relu(v)\n    residual { dense(8) -> "
        "leaky_relu(slope=v) }\n    dense(2)", loss="softmax_cross_entropy"), (0.01, 0.3)),
    Row(LOSSES.get("huber"), "delta", "huber_delta", REGRESSION.format(
        default=1.0, layers="dense(8) -> tanh\n    dense(1)", loss="huber(delta=v)"),
        (0.2, 2.0)),
]


def test_every_traced_field_has_a_row():
    """A field marked Traced without a row here fails, and so does a row without one."""
    declared = {(cls, t.field) for _, cls in [*LAYERS.items(), *LOSSES.items()]
                for t in traced_fields(cls)} | {(LossTerm, "weight")}
    assert declared == {(row.entry, row.field) for row in TRACED}
    assert set(TRACED_NAMES) == {row.saved_as for row in TRACED}
    for row in TRACED:
        (traced,) = [t for t in traced_fields(row.entry) if t.field == row.field]
        assert traced.name == row.saved_as


def sweep(row: Row, values=None) -> mlspec.Spec:
    values = row.values if values is None else values
    return mlspec.parse(row.spec + f"sweep {{\n    v = [{', '.join(map(str, values))}]\n}}\n")


def traces_of_run_all(monkeypatch) -> list[int]:
    """Counts the traces of the training program (jit calls the Python function once per
    trace; `Trainer.run_all` is the whole run, vmapped over the members of a sweep)."""
    traces = []
    original = Trainer.run_all

    def counted(self, *args):
        traces.append(1)
        return original(self, *args)

    monkeypatch.setattr(Trainer, "run_all", counted)
    return traces


def assert_same_numbers(member, single):
    """Equal to float tolerance (vmapping may reorder float sums by about 1e-7)."""
    assert list(member.history["step"]) == list(single.history["step"])
    for column in single.history.columns.drop("step"):
        tolerance = {"rtol": 1e-5} if column.endswith("loss") else {"atol": 0.006}
        np.testing.assert_allclose(member.history[column], single.history[column],
                                   **tolerance, err_msg=column)
    for a, b in zip(jax.tree.leaves(member.params), jax.tree.leaves(single.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("row", TRACED, ids=lambda row: row.saved_as)
def test_a_sweep_of_a_traced_field_is_one_program_with_the_single_runs_numbers(
        row, monkeypatch):
    spec = sweep(row)
    members = expand(spec)
    assert len(members) == len(row.values) and len(groups(members)) == 1
    clear_programs()
    traces = traces_of_run_all(monkeypatch)
    result = mlspec.run(spec)
    assert len(traces) == 1, "the members share one compiled training program"
    base = spec.model_copy(update={"sweep": None})
    finals = []
    for member in result.members:
        single = mlspec.run(base, {"v": member.settings["v"]})
        assert_same_numbers(member, single)
        finals.append(single.history["train.loss"].iloc[-1])
    assert len(set(finals)) == len(row.values), "each member trained with its own value"


@pytest.mark.parametrize("row", TRACED, ids=lambda row: row.saved_as)
def test_the_state_holds_the_values_under_their_saved_name(row):
    program = mlspec.resolve(sweep(row).model_copy(update={"sweep": None}),
                             {"v": row.values[-1]})
    state = Trainer(program, 300).traced_state()
    assert set(state) == set(TRACED_NAMES)  # every name, empty where the program has none
    expected = traced_values(program)[row.saved_as]
    np.testing.assert_array_equal(state[row.saved_as], np.asarray(expected, np.float32))
    value = row.values[-1]
    fed = 1.0 - value if row.saved_as == "dropout_keep" else value
    assert fed in expected


def test_dropout_is_fed_its_keep_probability_worked_out_in_double_precision():
    """float32(1 - rate) from the host: 1 - float32(rate) on the device differs in the
    last bit for 0.09 (and many rates), which would change the mask and scaling."""
    assert np.float32(1 - 0.09) != np.float32(1) - np.float32(0.09)
    row = TRACED[0]
    program = mlspec.resolve(mlspec.parse(row.spec), {"v": 0.09})
    assert Trainer(program, 300).traced_state()["dropout_keep"].tolist() == \
        [np.float32(1 - 0.09)]  # one value: the copies of a repeat share their rate


def test_the_grouping_key_leaves_out_the_traced_fields_only():
    row = TRACED[2]  # leaky_relu's slope
    base = mlspec.parse(row.spec)
    one, other = (mlspec.resolve(base, {"v": v}) for v in (0.01, 0.3))
    assert one != other and structure(one) == structure(other)
    wider = mlspec.resolve(mlspec.parse(row.spec.replace("dense(8)", "dense(9)")))
    assert structure(wider) != structure(one)
    key = json.loads(structure(one))
    layer = key["model"]["layers"][1]
    assert layer == {"__type__": "LeakyRelu", "kind": "leaky_relu", "slope": None}
    assert untraced(one.model.layers[0]) == {"__type__": "Dense", "kind": "dense",
                                             "features": 8, "use_bias": True}


def test_a_folder_saved_before_a_field_was_traced_still_loads(tmp_path):
    """Run folders written before a field was made sweepable lack its state entry (as
    those of older versions lack `dropout_keep`): it is the spec's, taken from it."""
    from mlspec.runtime.checkpoints import tree_sha256, write_tree
    from mlspec.runtime.predict import evaluate, rows_for
    from mlspec.runtime.reading import read_state
    from mlspec.runtime.reload import load_run

    row = TRACED[3]  # huber's delta
    spec = mlspec.parse(row.spec.replace("dense(8) -> tanh", "dense(8) -> leaky_relu(0.2)"))
    folder = mlspec.run(spec).save(tmp_path / "run")
    path = folder / "state"
    state = read_state(path)
    for name in ("huber_delta", "leaky_relu_slope"):
        del state["train"][name]
    write_tree(path, state)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["file_sha256"]["state"] = tree_sha256(path)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_run(folder)
    assert float(loaded.state["huber_delta"][0]) == 1.0
    x, y = rows_for(loaded, "valid", need_targets=True)
    saved = json.loads((folder / "metrics.json").read_text())["valid"]
    assert evaluate(loaded, x, y) == pytest.approx(saved, rel=1e-6)
