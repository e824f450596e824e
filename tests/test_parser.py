"""Parsing: every construct of the contract's syntax lands in the IR as written."""

from __future__ import annotations

import pytest

import mlspec
from mlspec.syntax import ir
from mlspec.syntax.parser import parse_expr

HILL = """
# a comment
model hill_net {
    dense(2) -> sigmoid   # trailing
    dense(2)
}
data {
    train = hill(n=10000, seed=0)
    valid = hill(n=1000, seed=1)
}
train {
    loss      = softmax_cross_entropy + 1e-4 * l2
    optimizer = rmsprop(learning_rate=0.01)
    steps     = 4000
    metrics   = [accuracy, false_pos,]
}
"""


def test_hill_parses_into_ir():
    spec = mlspec.parse(HILL)
    assert spec.model.name == "hill_net"
    assert [layer.name for layer in spec.model.layers] == ["dense", "sigmoid", "dense"]
    assert spec.model.layers[0].args == (ir.Number(value=2),)
    assert spec.data.get("train").value == ir.Call.of("hill", n=10000, seed=0)
    loss = spec.train.get("loss").value
    assert loss == ir.BinOp(op="+", left=ir.Name(name="softmax_cross_entropy"),
                            right=ir.BinOp(op="*", left=ir.Number(value=1e-4),
                                           right=ir.Name(name="l2")))
    metrics = spec.train.get("metrics").value
    assert [m.name for m in metrics.items] == ["accuracy", "false_pos"]
    assert [c.text for c in spec.comments] == ["# a comment", "# trailing"]


@pytest.mark.parametrize("text, expected", [
    ("42", ir.Number(value=42)),
    ("-3", ir.Number(value=-3)),
    ("0.01", ir.Number(value=0.01)),
    ("1e-4", ir.Number(value=1e-4)),
    ("2.5E+3", ir.Number(value=2500.0)),
    ('"data/iris.csv"', ir.String(value="data/iris.csv")),
    (r'"say \"hi\" \\ bye"', ir.String(value='say "hi" \\ bye')),
    ("true", ir.Bool(value=True)),
    ("false", ir.Bool(value=False)),
    ("[a, b, c,]", ir.ListExpr(items=(ir.Name(name="a"), ir.Name(name="b"),
                                      ir.Name(name="c")))),
    ("[]", ir.ListExpr()),
    ("valid.loss", ir.Name(name="valid.loss")),
    ("relu()", ir.Name(name="relu")),  # a call without arguments is the bare name
    ("f(1, x=2)", ir.Call.of("f", 1, x=2)),
    ("lr * 2", ir.BinOp(op="*", left=ir.Name(name="lr"), right=ir.Number(value=2))),
    ("(1 + 2) * 3", ir.BinOp(op="*", left=ir.BinOp(op="+", left=ir.Number(value=1),
                                                    right=ir.Number(value=2)),
                             right=ir.Number(value=3))),
    ("-lr", ir.Neg(operand=ir.Name(name="lr"))),
])
def test_values(text, expected):
    value = parse_expr(text)
    assert value == expected
    assert type(value.value if isinstance(value, ir.Number) else 0) is type(
        expected.value if isinstance(expected, ir.Number) else 0)  # ints stay ints


def test_all_top_level_forms_in_any_order():
    spec = mlspec.parse("""
train { loss = mse  optimizer = sgd(0.1)  steps = 3 }
param hidden = 64
import "common.mlspec"
block mlp(width, act=relu) {
    dense(width) -> act
}
sweep { lr = [0.1, 0.2] }
model m {
    input [28, 28, 1]
    repeat(2) { mlp(hidden) }
    residual { dense(hidden) }
    dense(1)
}
data { source = csv("x.csv", target="y")  valid = 0.2 }
""")
    assert [i.path for i in spec.imports] == ["common.mlspec"]
    assert spec.params[0] == ir.Param(name="hidden", value=64)
    assert spec.blocks[0].params == (ir.BlockParam(name="width"),
                                     ir.BlockParam(name="act", default=ir.Name(name="relu")))
    assert spec.model.input == ir.ListExpr(items=(28, 28, 1))
    repeat = spec.model.layers[0]
    assert repeat.name == "repeat" and repeat.body[0].name == "mlp"
    assert spec.sweep.get("lr") is not None
    assert spec.train.get("steps").value == ir.Number(value=3)


def test_keywords_may_be_used_as_setting_names():
    spec = mlspec.parse("model m { dense(1) } sweep { train.seed = [0, 1] data.train.n = [5] }")
    assert [s.path for s in spec.sweep.settings] == ["train.seed", "data.train.n"]


def test_spans_are_kept_but_not_compared():
    a = mlspec.parse("model m {\n    dense(2)\n}")
    b = mlspec.parse("model m { dense(2) }")
    assert a == b
    assert a.model.layers[0].span.line == 2 and a.model.layers[0].span.column == 5
    assert hash(a) == hash(b)


def test_ir_is_json_serialisable_and_round_trips():
    spec = mlspec.parse(HILL)
    again = ir.Spec.model_validate_json(spec.model_dump_json())
    assert again == spec


def test_specs_can_be_built_from_python():
    spec = ir.Spec(
        model=ir.Model(name="net", layers=[ir.LayerCall.of("dense", 2),
                                           ir.LayerCall.of("sigmoid")]),
        train=ir.Section(settings=[ir.Setting(path="steps", value=10)]),
    )
    assert mlspec.parse(spec.to_text()) == spec
