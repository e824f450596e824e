"""The broken-spec table of version 2 (graphs, typed data, the v2 layers and losses): each
mistake is reported by `mlspec check` at its line and column with a caret (exit 2), and by
the language server at the same place with the same words, before any training."""

from __future__ import annotations

import pandas as pd
import pytest

from mlspec.cli import main
from mlspec.editor.diagnostics import check_text, to_lsp_diagnostic

INPUTS = "    input a [4]\n    input b [3]\n"
TRAIN = "train {\n    loss = softmax_cross_entropy\n    optimizer = adam(0.01)\n    steps = 2\n}\n"


def graph(body: str, inputs: str = INPUTS) -> str:
    """A graph model without data: its inputs on `input` lines, then `body`."""
    return f"model g {{\n{inputs}{body}}}\n"


def typed(source: str, model: str = "model m {\n    dense(classes)\n}\n",
          train: str = TRAIN) -> str:
    """A model on d.csv (columns city, note, n, m, y); `source` the csv call's arguments
    after the path and target; the source stands on line len(model lines) + 2."""
    return (f"{model}data {{\n    source = csv(\"d.csv\", target=\"y\"{source})\n"
            f"    valid = 0.25\n}}\n{train}")


NUMBERS = ', features=["n", "m"]'
TYPED = ', categorical=["city"], text=["note"]'
TEXT = ', text=["note"], features=[]'


def lines(*rows: str) -> str:
    return "".join(f"    {row}\n" for row in rows)


def searched(axis: str, search: str | None = "    trials = 4\n") -> str:
    """A sweep of the rate `lr` (its value on line 16) and a search section (its first
    setting on line 19; none for None)."""
    return ("param lr = 0.1\nmodel m {\n    dense(1)\n}\ndata {\n    train = linear(n=32)\n"
            "    valid = linear(n=32, seed=1)\n}\ntrain {\n    loss = mse\n"
            "    optimizer = sgd(lr)\n    steps = 10\n    eval_every = 2\n}\n"
            f"sweep {{\n    lr = {axis}\n}}\n"
            + (f"search {{\n{search}}}\n" if search is not None else ""))


# name -> (spec text, line, column, the whole message)
BROKEN = {
    # ------------------------------------------------------------------ merges
    "merge shapes differ": (
        graph(lines("h = add(a, b)", "output y = h -> dense(2)")), 4, 9,
        "add needs values of equal shapes: 'a' is [4] but 'b' is [3]"),
    "concat off its axis": (
        graph(lines("h = concat(a, b)", "output y = h -> dense(2)"),
              "    input a [4, 2]\n    input b [3, 3]\n"), 4, 9,
        "concat along axis -1 needs shapes equal but on that axis: 'a' is [4, 2] but 'b' "
        "is [3, 3]"),
    "unknown merge": (
        graph(lines("h = concatt(a, b)", "output y = h -> dense(2)")), 4, 9,
        "unknown merge 'concatt'; did you mean 'concat'?"),
    "merge of a number": (
        graph(lines("h = concat(a, 3)", "output y = concat(h, b)")), 4, 19,
        "concat merges values, named by inputs or bindings (its other arguments are given "
        "by name, such as axis=-1)"),
    "merge argument misspelt": (
        graph(lines("h = concat(a, b, axs=0)", "output y = h -> dense(2)")), 4, 22,
        "merge 'concat' has no argument 'axs'; did you mean 'axis'?"),
    # ------------------------------------------------------------------ names
    "unbound name": (
        graph(lines("h = concat(a, bb)", "output y = h -> dense(2)")), 4, 19,
        "undefined name 'bb'; did you mean 'b'?"),
    "bound twice": (
        graph(lines("h = a -> dense(2)", "h = b -> dense(2)", "output y = concat(h, b)")),
        5, 5, "'h' is bound twice (first at line 4)"),
    "an input bound": (
        graph(lines("a = b -> dense(4)", "output y = concat(a, b)")), 4, 5,
        "'a' is an input of the model; bind another name"),
    "unused binding": (
        graph(lines("h = a -> dense(2)", "k = b -> dense(2)", "output y = h -> dense(2)")),
        5, 5, "'k' is bound but nothing uses it"),
    "unused input": (
        graph(lines("output y = a -> dense(2)")), 1, 1, "input 'b' of model 'g' is never used"),
    "use before bind": (
        graph(lines("h = concat(a, k)", "k = b -> dense(2)", "output y = h -> dense(2)")),
        4, 19, "'k' is used before it is bound; bind it on an earlier line"),
    "a cycle": (
        graph(lines("h = concat(a, k)", "k = h -> dense(2)", "output y = b -> dense(2)")),
        4, 19, "'k' is used before it is bound; bind it on an earlier line"),
    "bound from itself": (
        graph(lines("h = h -> dense(2)", "output y = concat(a, b, h)")), 4, 9,
        "'h' is used in its own binding; a value cannot depend on itself"),
    "chain from a layer call": (
        graph(lines("h = dense(2)", "output y = concat(a, b, h)")), 4, 9,
        "a chain starts from a value (an input, a binding or a merge), and 'dense' is a "
        "layer: write h = NAME -> dense(...)"),
    "chain from a layer name": (
        graph(lines("h = relu -> dense(2)", "output y = concat(a, b, h)")), 4, 9,
        "a chain starts from a value (an input, a binding or a merge), and 'relu' is a "
        "layer: write h = NAME -> relu"),
    "a value as a layer": (
        graph(lines("h = concat(a, b)", "output y = h -> h")), 5, 21,
        "'h' is a value, not a layer: a chain runs layers on the one value it starts from "
        "(merge values to combine them: add(h, ...))"),
    "no output": (
        graph(lines("h = concat(a, b) -> dense(2)", "k = h -> dense(2)")), 1, 1,
        "graph model 'g' has no output: add a line output NAME = ..."),
    "input declared twice": (
        graph(lines("output y = concat(a, b)"), "    input a [4]\n    input a [3]\n"
              "    input b [3]\n"), 3, 11, "input 'a' is declared twice"),
    "input type without vocab": (
        graph(lines("output y = concat(a, b, c)"), INPUTS + "    input c category\n"), 4, 13,
        "input type 'category' needs argument 'vocab'"),
    "a chain on a typed input line": (
        "model m {\n    input t tokens(6, vocab=50)\n    embedding(8)\n}\n", 2, 11,
        "a chain model takes one input of floats (input x [8]); several or typed inputs "
        "need a graph model"),
    "graph without inputs": (
        "model g {\n    h = x -> dense(2)\n    output y = h\n}\n", 1, 1,
        "graph model 'g' needs its inputs: add a data section or lines such as input x [8]"),
    "unnamed input in a graph": (
        "model g {\n    input [4]\n    output y = x -> dense(2)\n}\n", 2, 11,
        "a graph model names its inputs: `input x [8]`, `input x tokens(20, vocab=100)`"),
    # ------------------------------------------------------------------ shared layers
    "share with arguments at a use": (
        graph(lines("share enc = dense(4)", "h = a -> enc(3)", "k = b -> enc",
                    "output y = add(h, k)")), 5, 14,
        "shared layer 'enc' is used as it is (-> enc); its arguments stand on its share line"),
    "share used before its line": (
        graph(lines("h = a -> enc", "share enc = dense(4)", "k = b -> enc",
                    "output y = add(h, k)")), 4, 14,
        "shared layer 'enc' is used before its share line; share lines stand before their "
        "first use"),
    "share never used": (
        graph(lines("share enc = dense(4)", "output y = concat(a, b)")), 4, 11,
        "shared layer 'enc' is never used"),
    "share named as a layer": (
        graph(lines("share dense = dense(4)", "output y = concat(a, b) -> relu")), 4, 11,
        "shared layer 'dense' has the name of a layer"),
    "share on two shapes": (
        graph(lines("share enc = dense(4)", "h = a -> enc", "k = b -> enc",
                    "output y = add(h, k)")), 6, 14,
        "shared layer 'enc' takes [4] at its first use (at line 5) but [3] here; its weights "
        "fit one shape"),
    "share as a value": (
        graph(lines("share enc = dense(4)", "h = enc", "output y = concat(a, b, h)")), 5, 9,
        "'enc' is a shared layer, not a value: use it in a chain (x -> enc)"),
    "share in a block": (
        "block inc(f) {\n    share e = dense(f)\n    out = in -> e\n}\nmodel g {\n"
        "    input a [4]\n    output y = a -> inc(2)\n}\n", 7, 21,
        "share lines stand in the model body, not in a block's (in block 'inc' at line 2, "
        "column 11)"),
    # ------------------------------------------------------------------ graph blocks
    "graph block without out": (
        "block inc(f) {\n    p = in -> dense(f)\n    out2 = p\n}\nmodel g {\n"
        "    input a [4]\n    output y = a -> inc(2)\n}\n", 7, 21,
        "'out2' is bound but nothing uses it (in block 'inc' at line 3, column 5)"),
    "graph block reads the model's input": (
        "block inc(f) {\n    p = a -> dense(f)\n    out = p\n}\nmodel g {\n"
        "    input a [4]\n    output y = a -> inc(2)\n}\n", 7, 21,
        "undefined name 'a'; the values bound here are 'in' (in block 'inc' at line 2, "
        "column 9)"),
    # ------------------------------------------------------------------ syntax
    "binding without =": (
        graph(lines("h a -> dense(3)", "output y = concat(h, b)")), 4, 5,
        "expected '=' after 'h': a binding is `h = chain` (a layer that goes on with the "
        "chain above follows '->')"),
    "output without =": (
        graph(lines("h = concat(a, b)", "output y h -> dense(1)")), 5, 12,
        "expected '=' after 'y': `output y = chain`"),
    "share without =": (
        graph(lines("h = concat(a, b)", "share enc dense(1)", "output y = h -> enc")), 5, 11,
        "expected '=' after 'enc': `share enc = layer`"),
    "a reserved word bound": (
        graph(lines("input = concat(a, b)", "output y = input")), 4, 5,
        "'input' is a reserved word here and needs a name after it: an input is `input NAME "
        "[shape]` or `input NAME type(...)`"),
    # ------------------------------------------------------------------ typed data
    "a v1 chain on several inputs": (
        typed(TYPED), 1, 1,
        "this data has the inputs x, city, note; a chain takes one input, so write a graph "
        "model"),
    "a typed input unused": (
        typed(TYPED, "model m {\n    c = city -> embedding(2)\n"
                     "    output y = concat(x, c) -> dense(classes)\n}\n"), 1, 1,
        "input 'note' of model 'm' is never used"),
    "a column misspelt in a graph": (
        typed(', categorical=["city"]' + NUMBERS, "model m {\n    c = cty -> embedding(2)\n"
                                        "    output y = concat(x, c) -> dense(classes)\n}\n"),
        2, 9, "undefined name 'cty'; did you mean 'city'?"),
    "an input line the data lacks": (
        typed(TYPED, "model m {\n    input z [3]\n    output y = x -> dense(classes)\n}\n"),
        2, 11, "the data has no input 'z' (its inputs: x, city, note)"),
    "an input line of another shape": (
        typed(TYPED, "model m {\n    input x [3]\n    output y = x -> dense(classes)\n}\n"),
        2, 11, "input 'x' is declared [3] but the data's is [2]"),
    "a text column that is not text": (
        typed(', text=["n"]'), 5, 45,
        "column 'n' of 'd.csv' holds numbers, not text (such as 0.0); a number column is a "
        "feature, or categorical=[...]"),
    "a categorical column missing": (
        typed(', categorical=["cty"]'), 5, 52, "'d.csv' has no column 'cty'; did you mean "
                                               "'city'?"),
    "a text column left as a feature": (
        typed(', categorical=["city"]'), 5, 14,
        "column 'note' of 'd.csv' is not numeric (it holds values such as 'word0 not good'); "
        "list the numeric columns in features=[...], or name it in categorical=[...] or "
        "text=[...]"),
    "missing misspelt": (
        typed(', missing="nope"' + NUMBERS), 5, 47,
        "argument 'missing' of data source 'csv' should be 'error', 'drop' or 'fill' (got a "
        "string 'nope')"),
    "seq_len of 0": (
        typed(', seq_len=0' + TEXT), 5, 47,
        "argument 'seq_len' of data source 'csv' should be greater than 0 (got an integer 0)"),
    "embedding without a vocabulary": (
        typed(NUMBERS, "model m {\n    embedding(4)\n    dense(classes)\n}\n"), 2, 5,
        "embedding needs vocab=... here, as in embedding(vocab, features): only on a "
        "categorical or text input does it take that input's vocabulary"),
    "embedding vocabulary too small": (
        typed(', categorical=["city"], features=[]',
              "model m {\n    embedding(2, 4)\n    dense(classes)\n}\n"), 2, 5,
        "embedding has vocab=2, but the input 'city' takes 4 ids (0 to 3); leave vocab out "
        "to take the input's"),
    "one_hot too small in a graph": (
        typed(', categorical=["city"], features=[]',
              "model m {\n    c = city -> one_hot(2)\n    output y = c -> dense(classes)\n}\n"),
        2, 17, "one_hot has n=2, but the input 'city' takes 4 ids (0 to 3); leave n out to "
               "take the input's"),
    # ------------------------------------------------------------------ v2 layers
    "lstm on text ids": (
        typed(TEXT, "model m {\n    lstm(4)\n    dense(classes)\n}\n"), 2, 5,
        "'note' holds ids (0 to 7), not numbers: lstm cannot read them; start with "
        "embedding(N) or one_hot"),
    "dense on a graph's token ids": (
        "model m {\n    input x tokens(20, vocab=50)\n    h = x -> dense(8) -> relu\n"
        "    output y = h -> flatten -> dense(2)\n}\n", 3, 14,
        "'x' holds ids (0 to 49), not numbers: dense cannot read them; start with "
        "embedding(N) or one_hot"),
    "lstm on a rank-1 input": (
        typed(NUMBERS, "model m {\n    lstm(4)\n    dense(classes)\n}\n"), 2, 5,
        "lstm needs [time, features] input; this input is [2]"),
    "bidirectional on a rank-1 input": (
        typed(NUMBERS, "model m {\n    dense(classes)\n    bidirectional(lstm(2))\n}\n"),
        3, 5, "bidirectional needs [time, features] input; this input is [2]"),
    "bidirectional of a dense": (
        typed(TEXT, "model m {\n    embedding(4)\n    bidirectional(dense(2))\n"
                    "    dense(classes)\n}\n"), 3, 19,
        "bidirectional takes a recurrent layer (lstm or gru), not 'dense'"),
    "attention heads not dividing": (
        typed(TEXT, "model m {\n    embedding(6)\n    attention(4)\n    global_avg_pool\n"
                    "    dense(classes)\n}\n"), 3, 5,
        "attention's qkv_features (6) must be divisible by its heads (4)"),
    "position_embedding on a rank-1 input": (
        typed(NUMBERS, "model m {\n    position_embedding\n    dense(classes)\n}\n"), 2, 5,
        "position_embedding needs [time, features] input; this input is [2]"),
    "global pooling on a rank-1 input": (
        typed(NUMBERS, "model m {\n    global_max_pool\n    dense(classes)\n}\n"), 2, 5,
        "global_max_pool needs an input with spatial axes and channels, got shape [2]"),
    "group_norm groups not dividing": (
        typed(NUMBERS, "model m {\n    reshape([2, 1, 1])\n    group_norm(groups=2)\n"
                       "    flatten\n    dense(classes)\n}\n"), 3, 5,
        "group_norm's 2 groups do not divide the 1 channels of this input [2, 1, 1]"),
    # ------------------------------------------------------------------ v2 losses, metrics
    "class_weight of another length": (
        typed(NUMBERS, train=TRAIN.replace("softmax_cross_entropy",
                                           "softmax_cross_entropy(class_weight=[1.0])")),
        9, 47, "class_weight has 1 weights, but the data has 2 classes: give one weight per "
               "class"),
    "label_smoothing of 1.5": (
        typed(NUMBERS, train=TRAIN.replace("softmax_cross_entropy",
                                           "softmax_cross_entropy(label_smoothing=1.5)")),
        9, 50, "argument 'label_smoothing' of loss 'softmax_cross_entropy' should be less "
               "than 1 (got a number 1.5)"),
    "an optax loss argument misspelt": (
        typed(NUMBERS, train=TRAIN.replace("softmax_cross_entropy",
                                           "sigmoid_focal_loss(gama=2)")), 9, 31,
        "loss 'sigmoid_focal_loss' has no argument 'gama'; did you mean 'gamma'?"),
    "a real loss on classes": (
        typed(NUMBERS, train=TRAIN.replace("softmax_cross_entropy", "log_cosh")), 9, 12,
        "'log_cosh' needs real targets, but the data has class ids; use "
        "softmax_cross_entropy or sigmoid_binary_cross_entropy"),
    "top_k past the classes": (
        typed(NUMBERS, train=TRAIN.replace("steps = 2", "steps = 2\n"
                                           "    metrics = [top_k_accuracy(k=5)]")), 12, 33,
        "top_k_accuracy needs k at most the number of classes (2), but k is 5"),
    # ------------------------------------------------------------------ searches
    'a loguniform from 0': (
        searched("loguniform(0, 1)"), 16, 21,
        "loguniform's ends must be above 0 (its values are drawn on a log scale), not 0"),
    "a distribution's ends reversed": (
        searched("uniform(0.5, 0.1)"), 16, 10,
        'uniform(0.5, 0.1): the low end must be below the high end'),
    'int_uniform of a fraction': (
        searched("int_uniform(1, 2.5)"), 16, 25,
        "int_uniform's ends are whole numbers, not 2.5"),
    'a choice that makes a bad member': (
        searched('choice(0.1, "fast")'), 16, 22,
        'lr = "fast": argument \'learning_rate\' of optimizer \'sgd\' should be a number or a '
        'schedule call (got a string \'fast\') (at line 11, column 21)'),
    'a distribution without a search': (
        searched("loguniform(1e-3, 1)", None), 16, 10,
        "'lr' is a distribution: say how many trials to draw from it in a search section "
        "(search { trials = 32 })"),
    'a grid search of a distribution': (
        searched("loguniform(1e-3, 1)", "    method = grid\n"), 16, 10,
        "method = grid takes each axis as a list; 'lr' is a distribution (use method = random "
        "or tpe)"),
    'a random search without trials': (
        searched("loguniform(1e-3, 1)", "    method = random\n"), 18, 1,
        "a random search needs 'trials': how many to draw (trials = 32)"),
    'an unknown search method': (
        searched("loguniform(1e-3, 1)", "    method = bayes\n    trials = 4\n"), 19, 14,
        "undefined name 'bayes'; expected one of 'grid', 'random', 'tpe'"),
    'together below 1': (
        searched("loguniform(1e-3, 1)", "    trials = 4\n    together = 0\n"), 20, 16,
        "setting 'together' of search should be greater than 0 (got an integer 0)"),
    'a search metric not recorded': (
        searched("loguniform(1e-3, 1)", "    trials = 4\n    metric = valid.acuracy\n"),
        20, 14,
        "the search ranks by 'valid.acuracy', which is not recorded; expected one of "
        "'train.loss', 'valid.loss'"),
    'halving keeps all': (
        searched("loguniform(1e-3, 1)",
                 "    trials = 4\n    prune = halving(keep=1, every=4)\n"), 20, 26,
        "argument 'keep' of halving should be less than 1 (got an integer 1)"),
    'halving every 0': (
        searched("loguniform(1e-3, 1)",
                 "    trials = 4\n    prune = halving(keep=0.5, every=0)\n"), 20, 37,
        "argument 'every' of halving should be greater than 0 (got an integer 0)"),
    'halving between evaluations': (
        searched("loguniform(1e-3, 1)",
                 "    trials = 4\n    prune = halving(keep=0.5, every=3)\n"), 20, 13,
        'prune every=3 must be a multiple of train.eval_every = 2: trials are cut at an '
        'evaluation'),
    'a grid search of more trials than combinations': (
        searched("[0.1, 0.2]", "    trials = 4\n"), 19, 14,
        'a grid search has 2 trials, not 4 (one for each combination)'),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("broken")
    pd.DataFrame({"city": ["a", "b", "c"] * 4, "note": [f"word{i % 5} not good"
                                                        for i in range(12)],
                  "n": [i / 10 for i in range(12)], "m": [i % 4 for i in range(12)],
                  "y": ["p", "q"] * 6}).to_csv(folder / "d.csv", index=False)
    return folder


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_broken_spec_is_reported_at_its_place_by_check_and_the_editor(case, folder, capsys):
    text, line, column, message = BROKEN[case]
    path = folder / f"{case.replace(' ', '_')}.mlspec"
    path.write_text(text)
    capsys.readouterr()
    assert main(["check", str(path)]) == 2
    shown = capsys.readouterr().err.splitlines()
    assert "Traceback" not in "\n".join(shown)
    head = f"{path}:{line}:{column}: error: {message}"
    assert head in shown, "\n".join(shown)
    quoted, caret = shown[shown.index(head) + 1:shown.index(head) + 3]
    assert quoted.strip() == text.split("\n")[line - 1].strip()
    assert caret.strip().startswith("^") and caret.index("^") == 4 + column - 1
    found = check_text(text, str(path))  # the language server's diagnostics
    first = next(d for d in found if d.message == message)
    lsp = to_lsp_diagnostic(first, text, str(path))
    assert (lsp.range.start.line, lsp.range.start.character) == (line - 1, column - 1)
    assert lsp.message == message


def test_a_refused_input_line_is_the_one_error_of_a_chain(folder):
    """Not also `the model needs an input shape`: it has an input line."""
    text, line, column, message = BROKEN["a chain on a typed input line"]
    (error,) = check_text(text, str(folder / "typed_line.mlspec"))
    assert (error.span.line, error.span.column, error.message) == (line, column, message)
