"""The canonical printer: identity on canonical text, round trip on every spec."""

from __future__ import annotations

import pytest
from conftest import SPECS

import mlspec

CANONICAL = [
    # each must print back unchanged
    "model m {\n    dense(2) -> sigmoid\n    dense(1)\n}\n",
    "param hidden = 64\nparam lr     = 3e-4\n\nmodel m {\n    dense(hidden)\n}\n",
    # numbers keep the spelling they were written in
    "param a = 0.010\nparam b = 3E-3\nparam c = -.5\nparam d = 2.\nparam e = 1e+2\n\n"
    "model m {\n    dense(1)\n}\n\ntrain {\n    optimizer = adam(3e-3)\n"
    "    steps     = 1000\n    loss      = mse + 1.0e-4 * l2\n}\n",
    'import "common/blocks.mlspec"\n\nmodel m {\n    dense(1)\n}\n',
    "block mlp(width, act=relu) {\n    dense(width) -> act\n}\n\nmodel m {\n"
    "    mlp(64, act=gelu)\n}\n",
    "model m {\n    input [8, 8, 1]\n    conv(8, 3) -> relu -> max_pool(2)\n"
    "    flatten\n    dense(10)\n}\n",
    "model m {\n    repeat(3) {\n        dense(8) -> relu\n    }\n    residual {\n"
    "        dense(8)\n    }\n}\n",
    "model m {\n    dense(1)\n}\n\ntrain {\n    loss      = mse + 1e-4 * l2 + 0.5 * l1\n"
    "    optimizer = adam(learning_rate=exponential_decay(0.1, transition_steps=10, "
    "decay_rate=0.5))\n    steps     = 10\n}\n",
    "model m {\n    dense(1)\n}\n\nsweep {\n    lr         = [0.001, 0.003]\n"
    "    train.seed = [0, 1]\n}\n",
    'model m {\n    dense(1)\n}\n\ndata {\n    source = csv("a \\"b\\".csv", target="y")\n'
    "    valid  = 0.2\n}\n",
    "param x = (1 + 2) * 3 - -y / 2\n\nmodel m {\n    dense(1)\n}\n",
    "# header\n\n# about the model\nmodel m {\n    # first layer\n    dense(2)  # two\n"
    "    # trailing inside\n}\n\ntrain {\n    steps = 3  # few\n}\n# the end\n",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_text_prints_back_unchanged(text):
    assert mlspec.parse(text).to_text() == text


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_example_spec_round_trips(path):
    spec = mlspec.load(path)
    text = spec.to_text()
    assert mlspec.parse(text) == spec
    assert mlspec.parse(text).to_text() == text
    assert path.read_text() == text, "example specs are kept in canonical form"


def test_layout_is_canonicalised_and_comments_kept():
    # Layers keep the lines the author put them on; everything else is laid out anew.
    messy = """train{steps=3 loss=mse}
# the net
model   m{dense(2)->sigmoid dense(1)}  # end
"""
    assert mlspec.parse(messy).to_text() == (
        "# the net\nmodel m {\n    dense(2) -> sigmoid -> dense(1)  # end\n}\n\n"
        "train {\n    steps = 3\n    loss  = mse\n}\n"
    )


def test_python_built_spec_prints():
    spec = mlspec.Spec(model=mlspec.Model(name="net", layers=[mlspec.LayerCall.of("dense", 3)]))
    assert spec.to_text() == "model net {\n    dense(3)\n}\n"


def test_python_values_stand_for_spec_values():
    """From Python, plain numbers, strings, booleans and lists are spec values, the
    model's input shape too (a list of ints was refused there)."""
    from mlspec import Call, LayerCall, Model, Section, Setting, Spec

    spec = Spec(
        model=Model(name="m", input=[4, 2], layers=[LayerCall.of("dense", 3, use_bias=False)]),
        train=Section(settings=[Setting(path="steps", value=10),
                                Setting(path="metrics", value=[Call(name="mse")])]),
    )
    text = spec.to_text()
    assert "    input [4, 2]\n    dense(3, use_bias=false)\n" in text
    assert "metrics = [mse]" in text and mlspec.parse(text) == spec
    assert mlspec.resolve(spec.model_copy(update={"train": None})).model.output_shape == (4, 3)


def test_params_align_their_equals_as_settings_do():
    messy = "param lr=3e-3\nparam hidden_units = 16 # wide\n\n\nparam n=2\nmodel m{dense(n)}\n"
    text = mlspec.parse(messy).to_text()
    assert text.startswith("param lr           = 3e-3\nparam hidden_units = 16  # wide\n"
                           "param n            = 2\n\nmodel m {\n")
    assert mlspec.parse(text).to_text() == text
    assert mlspec.parse(text) == mlspec.parse(messy)


def test_a_number_s_spelling_is_no_part_of_its_value():
    from mlspec.syntax.ir import Number

    spelled, plain = mlspec.parse("param lr = 3e-3"), mlspec.parse("param lr = 0.003")
    assert spelled == plain and hash(spelled) == hash(plain)
    assert spelled.model_dump_json() == plain.model_dump_json()  # JSON holds the value only
    assert spelled.to_text() == "param lr = 3e-3\n"
    assert plain.to_text() == "param lr = 0.003\n"
    # a text that no longer says the value (or is no literal of the grammar) is not printed
    stale = Number(value=0.5, text="3e-3")
    assert mlspec.parse(f"param x = {_expr(stale)}").params[0].value.value == 0.5
    for text, value in (("1_0", 10), ("+3", 3), ("1", 1.0), ("inf", 0.0)):
        printed = _expr(Number(value=value, text=text))
        assert printed != text and mlspec.parse(f"param x = {printed}").params[0].value == \
            Number(value=value)


def _expr(node):
    from mlspec.syntax.printer import format_expr

    return format_expr(node)


def test_fmt_keeps_spellings_and_is_idempotent(tmp_path, capsys):
    from mlspec.cli import main

    path = tmp_path / "s.mlspec"
    path.write_text("param lr=3e-3\nparam width = 16\nmodel m{dense(width)}\n"
                    "train{optimizer=adam(learning_rate=lr, b1=0.90)}\n")
    assert main(["fmt", str(path)]) == 0
    text = path.read_text()
    assert text == ("param lr    = 3e-3\nparam width = 16\n\nmodel m {\n    dense(width)\n}\n\n"
                    "train {\n    optimizer = adam(learning_rate=lr, b1=0.90)\n}\n")
    assert main(["fmt", "--check", str(path)]) == 0 and path.read_text() == text
