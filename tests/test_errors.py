"""Every mistake is a SpecError at the right line and column, before any training."""

from __future__ import annotations

import pytest

import mlspec
from mlspec.syntax.errors import SpecError

DATA = """
data {
    train = hill(n=100, seed=0)
    valid = hill(n=100, seed=1)
}
"""
TRAIN = """
train {
    loss      = softmax_cross_entropy
    optimizer = sgd(learning_rate=0.1)
    steps     = 10
}
"""


def hill(model_body: str, train: str = TRAIN, data: str = DATA) -> str:
    return f"model m {{\n{model_body}\n}}\n{data}{train}"


def train(body: str) -> str:
    return hill("    dense(2)", train=f"train {{\n{body}\n}}\n")


# (spec text, line, column, part of the message)
BROKEN = [
    # syntax
    ("model m {\n    dense(2\n}\n", 3, 1, "unexpected '}'"),
    ("model m {\n    dense(2) ->\n}\n", 3, 1, "unexpected '}'"),
    ("model m {\n    dense(2) @ relu\n}\n", 2, 14, "unexpected character '@'"),
    ("model m {\n    dense(2)\n", 2, 12, "unexpected end of file"),
    ("model m { dense(x=1, 2) }", 1, 22, "positional argument cannot follow"),
    ("model m { dense(1) }\nmodel n { dense(1) }\n", 2, 1, "exactly one model"),
    ("model m { dense(1) }\ntrain { steps = 1 }\ntrain { steps = 2 }\n", 3, 1,
     "at most one 'train'"),
    ('model m { dense(1) }\ndata { train = csv("unterminated) }\n', 2, 20,
     "unexpected character"),
    # a setting's '=' missing: at the setting's line, not at the '}' after it
    (train("    loss = mse\n    optimizer = sgd(0.1)\n    steps = 1_000"), 12, 14,
     "unexpected '_000': a number has no '_' between its digits (write 1000)"),
    (train("    loss = mse\n    optimizer = sgd(0.1)\n    steps = 10 epochs"), 12, 16,
     "unexpected 'epochs' after the value of a setting"),
    (train("    loss = mse\n    optimizer = sgd(0.1)\n    steps  # ten\n"), 12, 5,
     "expected '=' after 'steps'"),
    # a misspelt keyword: the nearest keyword that may stand there
    ("model m { dense(1) }\ntrian {\n    steps = 1\n}\n", 2, 1,
     "unexpected 'trian'; did you mean 'train'?"),
    ("modle m {\n    dense(1)\n}\n", 1, 1, "unexpected 'modle'; did you mean 'model'?"),
    ("parm x = 1\nmodel m { dense(x) }\n", 1, 1, "unexpected 'parm'; did you mean 'param'?"),
    ("blok b(x) {\n    x\n}\nmodel m { dense(1) }\n", 1, 1,
     "unexpected 'blok'; did you mean 'block'?"),
    # unknown names, with suggestions
    (hill("    dens(2)"), 2, 5, "unknown layer 'dens'; did you mean 'dense'?"),
    (hill("    dense(2) -> sigmod"), 2, 17, "did you mean 'sigmoid'?"),
    (train("    loss = softmax_cross_entropi\n    optimizer = sgd(0.1)\n    steps = 1"), 10, 12,
     "unknown loss 'softmax_cross_entropi'; did you mean 'softmax_cross_entropy'?"),
    (train("    loss = softmax_cross_entropy\n    optimizer = adma(0.1)\n    steps = 1"), 11, 17,
     "unknown optimizer 'adma'; did you mean 'adam'?"),
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(0.1)\n    steps = 1\n"
           "    metrics = [acuracy]"), 13, 16,
     "unknown metric 'acuracy'; did you mean 'accuracy'?"),
    (hill("    dense(2)", data="data {\n    train = hil(n=10)\n}\n"), 5, 13,
     "unknown data source 'hil'; did you mean 'hill'?"),
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(0.1)\n    stepz = 1"), 12, 5,
     "unknown train setting 'stepz'; did you mean 'steps'?"),
    (hill("    dense(2)", data="data {\n    trian = hill(n=10)\n}\n"), 5, 5,
     "did you mean 'train'?"),
    # a swept setting that clashes with the spec's: at the sweep's value, named as the sweep's
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(0.1)\n    steps = 1")
     + "sweep {\n"
     "    train.epochs = [1, 2]\n}\n", 15, 21,
     "train has both 'steps' and 'epochs'; give exactly one of them ('epochs' comes from the "
     "sweep at line 15)"),
    # a string where a word may stand: the word
    (train("    loss = mse\n    optimizer = sgd(0.1)\n    steps = 1\n    devices = \"al\""), 13,
     15, "should be a valid integer (got a string 'al'); did you mean 'all'?"),
    (train("    loss = mse\n    optimizer = sgd(0.1)\n    steps = 1\n    devices = \"xyz\""), 13,
     15, "(got a string 'xyz'); it may also be 'all'"),
    (train("    loss = mse\n    optimizer = sgd(0.1)\n    steps = 1\n    devices = al"), 13, 15,
     "undefined name 'al'; did you mean 'all'?"),
    (hill("    dense(width)"), 2, 11, "undefined name 'width'"),
    ("param width = 2\n" + hill("    dense(widht)"), 3, 11,
     "undefined name 'widht'; did you mean 'width'?"),
    # argument names
    (hill("    dense(2, bias=false)"), 2, 14, "has no argument 'bias'; did you mean 'use_bias'?"),
    (hill("    dense(2, features=3)"), 2, 14, "given twice"),
    (hill("    dense(2, true, 3)"), 2, 20, "at most 2 positional"),
    (hill("    dense(2) -> relu(3)"), 2, 22, "layer 'relu' takes no arguments"),
    (hill("    dense()"), 2, 5, "needs argument 'features'"),
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(0.1, momentom=0.9)\n"
           "    steps = 1"), 11, 26, "did you mean 'momentum'?"),
    # types and ranges
    (hill("    dense(2.5)"), 2, 11, "should be a valid integer"),
    (hill("    dense(-2)"), 2, 11, "greater than 0"),
    (hill('    dense("two")'), 2, 11, "should be a valid integer"),
    (hill("    dense(2, use_bias=1)"), 2, 23, "should be a valid boolean"),
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(-0.1)\n    steps = 1"), 11, 21,
     "greater than 0"),
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(0.1)\n    steps = 0"), 12, 13,
     "greater than 0"),
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(0.1)\n    steps = 1\n"
           "    batch = 2.5"), 13, 13, "should be a valid integer"),
    (hill("    dropout(1.5)"), 2, 13, "less than 1"),
    # shapes
    (hill("    residual { dense(3) }\n    dense(2)"), 2, 5, "residual body changes the shape"),
    (hill("    flatten\n    conv(4, 3)\n    dense(2)"), 3, 5, "conv needs an input with spatial"),
    (hill("    reshape([3, 3])\n    dense(2)"), 2, 5, "cannot reshape [2]"),
    ("model m {\n    dense(2)\n}\n", 1, 1, "needs an input shape"),
    # task fit
    (hill("    dense(3)"), 11, 17, "needs one logit per class (2)"),
    (hill("    dense(1)", train="train {\n    loss = mse\n    optimizer = sgd(0.1)\n"
          "    steps = 1\n}\n"), 10, 12, "'mse' needs real targets"),
    (train("    loss = softmax_cross_entropy\n    optimizer = sgd(0.1)\n    steps = 1\n"
           "    metrics = [accuracy, r2]"), 13, 26, "metric 'r2' needs real targets"),
    # definitions
    ("param a = 1\nparam a = 2\nmodel m { input [2] dense(a) }\n", 2, 7, "defined twice"),
    ("param a = b\nparam b = a\nmodel m { input [2] dense(a) }\n", 1, 7, "in terms of itself"),
    ("block b(x) { b(x) }\nmodel m { input [2] b(1) }\n", 1, 14, "uses itself"),
    # any other mistake in a block's body is reported at the block's use, naming its place
    ("block b(x) { dense(x, use_bias=0) }\nmodel m { input [2] b(1) }\n", 2, 21,
     "should be a valid boolean (got an integer 0) (in block 'b' at line 1, column 32)"),
    ("block b(x) { dense(x) }\nmodel m { input [2] b(1, y=2) }\n", 2, 26, "no parameter 'y'"),
    ("model m { input [2] dense(1) }\ntrain { loss = mse optimizer = sgd(0.1) }\n", 2, 1,
     "exactly one of 'steps' and 'epochs'"),
]


@pytest.mark.parametrize("text, line, column, message", BROKEN,
                         ids=[b[3][:40] for b in BROKEN])
def test_broken_spec_is_reported_at_its_place(text, line, column, message):
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text, "broken.mlspec"))
    diagnostics = info.value.diagnostics
    assert any(message in d.message for d in diagnostics), info.value.render()
    first = next(d for d in diagnostics if message in d.message)
    assert (first.span.line, first.span.column) == (line, column), info.value.render()
    rendered = first.render()
    assert rendered.startswith(f"broken.mlspec:{line}:{column}: error: ")
    assert rendered.splitlines()[-1].strip().startswith("^")


def test_independent_errors_are_all_reported():
    text = hill("    dens(2)\n    dense(2, bias=true)", train="train {\n    loss = mse\n"
                "    optimizer = sgd(0.1)\n    steps = -1\n}\n")
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text))
    messages = [d.message for d in info.value.diagnostics]
    assert len(messages) >= 3, messages


def test_each_train_setting_s_mistake_is_reported_with_the_others():
    """A wrong optimizer argument or an unknown metric does not hide `steps = 0`: each
    setting of the train section is checked on its own, and reported in order."""
    text = train("    loss = softmax_cross_entropy\n    optimizer = adam(lr=0.1)\n"
                 "    steps = 0\n    batch = -3\n    metrics = [acuracy]\n    seed = -1")
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text))
    found = [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics]
    assert [(line, column) for line, column, _ in found] == [
        (11, 22), (12, 13), (13, 13), (14, 16), (15, 12)], found
    assert "no argument 'lr'" in found[0][2] and "'steps'" in found[1][2]
    assert "'batch'" in found[2][2] and "acuracy" in found[3][2] and "'seed'" in found[4][2]
    missing = train("    loss = softmax_cross_entropy\n    steps = 0")
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(missing))
    messages = [d.message for d in info.value.diagnostics]
    assert messages[0] == "train needs 'optimizer'" and "'steps'" in messages[1], messages


SEED_LIMIT = 2**63 - 1  # what jax.random.PRNGKey takes


@pytest.mark.parametrize("seed, seeds, ok", [
    (SEED_LIMIT, 1, True), (SEED_LIMIT - 2, 3, True), (SEED_LIMIT, 2, False),
    (SEED_LIMIT - 2, 4, False)])
def test_the_seeds_of_members_fit_the_prng_or_are_an_error_at_the_seed(seed, seeds, ok,
                                                                       capsys, tmp_path):
    """`seeds = N` gives its members the seeds from `seed` on: one past 2**63 - 1 would
    become a float (and then an error naming a float, or an overflow in jax)."""
    import mlspec.cli
    from mlspec.semantics.sweep import expand

    text = train(f"    loss = softmax_cross_entropy\n    optimizer = sgd(0.1)\n"
                 f"    steps = 1\n    seed = {seed}\n    seeds = {seeds}")
    spec = tmp_path / "seeds.mlspec"
    spec.write_text(text)
    if ok:
        members = expand(mlspec.parse(text))
        assert [m.settings.get("train.seed", seed) for m in members] == \
            list(range(seed, seed + seeds))
        assert all(type(m.program.train.seed) is int for m in members)
        assert mlspec.cli.main(["check", str(spec)]) == 0
        return
    for check in (mlspec.check, expand):  # `check` itself, not only the run, refuses it
        with pytest.raises(SpecError) as info:
            check(mlspec.parse(text, "seeds.mlspec"))
        (error,) = info.value.diagnostics
        assert (error.span.line, error.span.column) == (13, 12)
        assert f"seeds up to {seed + seeds - 1}, past the largest seed" in error.message
    assert mlspec.cli.main(["check", str(spec)]) == 2
    assert "past the largest seed" in capsys.readouterr().err


def test_many_errors_are_capped():
    body = "\n".join(f"    dens({i})" for i in range(1, 30))
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(hill(body)))
    assert info.value.render().splitlines()[-1] == "... and 9 more"


def test_caret_sits_under_the_token():
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(hill("    dense(2) -> sigmod"), "x.mlspec"))
    lines = info.value.render().splitlines()
    assert lines[0] == "x.mlspec:2:17: error: unknown layer 'sigmod'; did you mean 'sigmoid'?"
    source, caret = lines[1], lines[2]
    assert source.strip() == "dense(2) -> sigmod"
    assert caret.index("^") == source.index("sigmod") and caret.count("^") == len("sigmod")


@pytest.mark.parametrize("odd", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\u2029"],
                         ids=repr)
def test_the_quoted_line_is_the_errors_line_after_an_odd_line_break(odd):
    """Lines are counted by "\\n" alone, as the parser counts them: a form feed or a
    Unicode line separator in a comment does not shift the quoted line."""
    text = f"# a comment {odd} with an odd break\nmodel m {{\n    input [2]\n    dens(1)\n}}\n"
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text, "x.mlspec"))
    head, quoted, caret = info.value.render().splitlines()
    assert head.startswith("x.mlspec:4:5: error: unknown layer 'dens'")
    assert quoted == "        dens(1)" and caret == "        ^^^^"


def test_an_error_quotes_only_text_that_was_parsed_as_a_spec(tmp_path):
    """A span may name any file (a JSON spec can say anything): only the text of a spec
    that mlspec parsed is ever shown under an error, never another file's line."""
    from mlspec.syntax.errors import Diagnostic, Span

    other = tmp_path / "secret.txt"
    other.write_text("TOPSECRET line\n")
    span = Span(file=str(other), line=1, column=1, end_line=1, end_column=4)
    assert Diagnostic(message="m", span=span).render() == f"{other}:1:1: error: m"
    spec = tmp_path / "spec.mlspec"
    spec.write_text("model m {\n    dens(2)\n}\n")
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.load(spec))
    assert "    dens(2)\n" in info.value.render()


@pytest.mark.parametrize("data", [
    "data {\n    train = hill(n=100, seed=0)\n    valid = hill(n=100, seed=1)\n"
    "    test = hill(n=100, seed=2)\n}\n",
    "data {\n    source = hill(n=300)\n    valid = 0.2\n    test = 0.2\n}\n",
])
def test_early_stopping_cannot_watch_the_test_split(data):
    """The test split is held out until training ends: watching it passed `check` and
    then failed in training with a KeyError."""
    stop = "    early_stop = early_stop(metric=test.loss, patience=2)"
    text = hill("    dense(2)", data=data, train=TRAIN.replace("}", stop + "\n}"))
    with pytest.raises(SpecError) as info:
        mlspec.check(mlspec.parse(text, "broken.mlspec"))
    (diagnostic,) = info.value.diagnostics
    assert "cannot watch 'test.loss': the test split is held out" in diagnostic.message
    assert diagnostic.span.line == text.splitlines().index(stop) + 1
    mlspec.check(mlspec.parse(text.replace("test.loss", "valid.loss")))
