"""Specs built from Python, as short as Keras's `Sequential([...])`.

    >>> import mlspec
    >>> spec = mlspec.spec(
    ...     mlspec.model("net", mlspec.dense(8), "relu", mlspec.dense(mlspec.classes)),
    ...     data=mlspec.data(source="iris", valid=0.2),
    ...     train=mlspec.train(loss="softmax_cross_entropy",
    ...                        optimizer=mlspec.adam(learning_rate=0.01), steps=200))
    >>> print(spec.to_text(), end="")
    model net {
        dense(8) -> relu
        dense(classes)
    }
    <BLANKLINE>
    data {
        source = iris
        valid  = 0.2
    }
    <BLANKLINE>
    train {
        loss      = softmax_cross_entropy
        optimizer = adam(learning_rate=0.01)
        steps     = 200
    }

Everything here makes spec IR (`mlspec.syntax.ir`), the very nodes the parser makes from
the same text, so a built spec prints, checks and runs as a parsed one and equals it.
Python values stand for spec values (numbers, strings, booleans, lists); a `param`, a
block `arg` or an uncalled catalogue function (`mlspec.relu`) stands for its name. Where a
spec names something, a string does too: a layer in a model (`"relu"`, as Keras's
`activation="relu"`), and a source, loss, optimizer or metric in `data` and `train`. Such
a name is checked against the catalogue here, at build time, with a "did you mean"; the
rest is `mlspec.check`'s work.

The catalogue functions (`mlspec.dense`, `mlspec.hill`, `mlspec.adam`, ...) are made from
the registries by `mlspec.semantics.builders`, so new layers, sources (with their typed
columns) and losses come with theirs. The forms grow by the same rule as the text: a new
section is a keyword of `spec` (read from `ir.Spec`'s fields), and a graph model's
statements (bindings, outputs, shared layers: `mlspec.semantics.graph_build`) are the
items that `model` and `block` take instead of layers, as their bodies hold them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlspec.semantics.builders import a_kind, call, classes, layer, layers, name, value
from mlspec.semantics.graph_build import identifier, input_decls, input_shape, statements
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError, did_you_mean

__all__ = ["arg", "block", "call", "classes", "data", "layer", "model", "name", "param",
           "spec", "sweep", "train"]


def model(model_name: str, *body: Any, input: Any = None,  # noqa: A002
          inputs: Mapping[str, Any] | None = None) -> ir.Model:
    """A model: its layers in order, as `keras.Sequential([...])` takes them, or a graph:
    its statements (`mlspec.binding`, `mlspec.output`, `mlspec.share`) in order.

    Args:
        model_name: the model's name (it names the run folder).
        *body: the layers, top to bottom: layer calls, layer names such as `"relu"`,
            blocks, or lists of these; or a graph's statements.
        input: the input shape per example (`[8, 8, 1]`), where there is no data.
        inputs: a graph's named inputs, where there is no data: `{"x": [8],
            "title": mlspec.tokens(20, vocab=1000), "city": mlspec.category(vocab=12)}`.

    Returns:
        The model's IR node, for `mlspec.spec`.

    Example:
        >>> net = mlspec.model("net", mlspec.dense(2), "sigmoid", mlspec.dense(2))
    """
    graph = statements(body)
    return ir.Model(name=identifier(model_name, "a model"),
                    layers=layers(body) if graph is None else (), graph=graph,
                    input=None if input is None else input_shape(input),
                    inputs=() if inputs is None else input_decls(inputs))


def param(param_name: str, param_value: Any) -> ir.Param:
    """A named value (`param hidden = 64`); used in place of a value, it stands for its
    name, so that `--set hidden=128` and a sweep can change it.

    Example:
        >>> hidden = mlspec.param("hidden", 64)
        >>> layer = mlspec.dense(hidden)  # dense(hidden)
    """
    return ir.Param(name=identifier(param_name, "a param"), value=value(param_value))


def arg(arg_name: str, default: Any = None) -> ir.BlockParam:
    """A block's parameter, with its default if it has one; used in the block's body in
    place of a value or of a layer, it stands for its name.

    Example:
        >>> act = mlspec.arg("act", default=mlspec.relu)  # block mlp(..., act=relu)
    """
    return ir.BlockParam(name=identifier(arg_name, "a block argument"),
                         default=None if default is None else value(default))


def block(block_name: str, args: Iterable[ir.BlockParam | str], *body: Any) -> ir.Block:
    """A reusable group of layers (`block mlp(width, act=relu) { ... }`).

    Args:
        block_name: the block's name.
        args: its parameters: `mlspec.arg`s, or names for those without a default.
        *body: its layers, as `mlspec.model` takes them; or a graph's bindings, whose
            input is `"in"` and whose value is the binding named `"out"`.

    Returns:
        The block's IR node, for `mlspec.spec`; `mlspec.layer(block, ...)` uses it.

    Example:
        >>> width, act = mlspec.arg("width"), mlspec.arg("act", default=mlspec.relu)
        >>> mlp = mlspec.block("mlp", [width, act], mlspec.dense(width), act)
    """
    params = tuple(arg(a) if isinstance(a, str) else a for a in args)
    for a in params:
        if not isinstance(a, ir.BlockParam):
            raise SpecError.at(None, f"{a_kind(a)} cannot be an argument of block "
                                     f"'{block_name}' (an `mlspec.arg` or a name can)")
    graph = statements(body)
    return ir.Block(name=identifier(block_name, "a block"), params=params,
                    body=layers(body) if graph is None else (), graph=graph)


def _settings(section: str, settings: Mapping[str, Any], keys: Iterable[str] | None,
              convert) -> ir.Section:
    out = []
    for path, item in settings.items():
        if keys is not None and path not in keys:
            raise SpecError.at(None, f"{section} has no setting '{path}'"
                                     f"{did_you_mean(path, keys)}")
        out.append(ir.Setting(path=path, value=convert(path, item)))
    return ir.Section(settings=tuple(out))


def data(**settings: Any) -> ir.Section:
    """The `data` section: named splits, or one `source` split in place.

    Args:
        **settings: `train`, `valid`, `test` (source calls, or a source's name), or
            `source` with `valid`/`test` as fractions or row counts; `split_seed`,
            `standardize`.

    Returns:
        The section, for `mlspec.spec(..., data=...)`.

    Example:
        >>> splits = mlspec.data(train=mlspec.hill(n=10000), valid=mlspec.hill(n=1000, seed=1))
        >>> in_place = mlspec.data(source="iris", valid=0.2, standardize=True)
    """
    from mlspec.catalog.sources import SOURCES
    from mlspec.semantics.sections import SECTIONS

    return _settings("data", settings, SECTIONS["data"].setting_names(),
                     lambda _, item: _named(item, SOURCES, "data source"))


def train(**settings: Any) -> ir.Section:
    """The `train` section: how the model learns.

    Args:
        **settings: `loss` (a loss's name or call, or a dict of terms and their weights:
            `{"softmax_cross_entropy": 1, "l2": 1e-4}`), `optimizer` (an optax call such
            as `mlspec.adam(learning_rate=0.01)`, or a name), `steps` or `epochs`,
            `metrics` (names), and the other settings of docs/language.md by name.

    Returns:
        The section, for `mlspec.spec(..., train=...)`.

    Example:
        >>> section = mlspec.train(loss="mse", optimizer=mlspec.sgd(0.01), steps=500,
        ...                        metrics=["r2"])
    """
    from mlspec.semantics.sections import SECTIONS

    return _settings("train", settings, SECTIONS["train"].setting_names(), _train_value)


def _train_value(key: str, item: Any) -> ir.Expr:
    from mlspec.catalog.losses import LOSSES
    from mlspec.catalog.metrics import METRICS
    from mlspec.catalog.optimizers import names

    if key == "loss":
        return _loss(item, LOSSES)
    if key == "optimizer":
        return _named(item, names("optimizer"), "optimizer")
    if key == "metrics" and isinstance(item, (list, tuple)):
        return ir.ListExpr(items=tuple(_metric(m, METRICS) for m in item))
    return _named(item, None, "")


def _named(item: Any, known: Iterable[str] | None, what: str) -> ir.Expr:
    """A value in a section, where a string names something (checked against `known`)."""
    if isinstance(item, str):
        if known is not None and item not in known:
            raise SpecError.at(None, f"unknown {what} '{item}'{did_you_mean(item, known)}")
        return name(item)
    return value(item)


def _metric(item: Any, known) -> ir.Expr:
    """A metric by name, or one output's (`"digit.accuracy"`: the output is checked with
    the model)."""
    if isinstance(item, str) and "." in item:
        _named(item.rpartition(".")[2], known, "metric")
        return name(item)
    return _named(item, known, "metric")


def _loss(item: Any, known) -> ir.Expr:
    if not isinstance(item, Mapping):
        return _named(item, known, "loss")
    total = None
    for term, weight in item.items():
        expr = _named(term, known, "loss")
        if not (isinstance(weight, (int, float)) and not isinstance(weight, bool)
                and weight == 1):
            expr = ir.BinOp(op="*", left=value(weight), right=expr)
        total = expr if total is None else ir.BinOp(op="+", left=total, right=expr)
    if total is None:
        raise SpecError.at(None, "a loss needs at least one term")
    return total


def sweep(axes: Mapping[str | ir.Param, Any] | None = None, **by_name: Any) -> ir.Section:
    """The `sweep` section: every combination of the values given.

    Args:
        axes: axes by a param (or its name) or a setting's path (`"train.seed"`), each
            with its values.
        **by_name: axes of params by name.

    Returns:
        The section, for `mlspec.spec(..., sweep=...)`. The values of a setting follow
        that setting's rules (a string in `train.loss` names a loss).

    Example:
        >>> grid = mlspec.sweep({"train.seed": [0, 1, 2]}, lr=[0.001, 0.01])
    """
    given = {(k.name if isinstance(k, ir.Param) else k): v
             for k, v in {**(axes or {}), **by_name}.items()}
    return _settings("sweep", given, None, _axis)


def setting_value(path: str, item: Any) -> ir.Expr:
    """A Python value for a param or a setting by its path (`train.loss`, `data.source`,
    `train.optimizer.learning_rate`), by the rules of `data` and `train`: a string in
    `train.loss` names a loss, in `data.source` a source; a string elsewhere is a string."""
    section, _, key = path.partition(".")
    if section == "train" and key and "." not in key:
        return _train_value(key, item)
    if section == "data" and key and "." not in key:
        from mlspec.catalog.sources import SOURCES

        return _named(item, SOURCES, "data source")
    return value(item)


def _axis(path: str, values: Any) -> ir.Expr:
    if isinstance(values, (list, tuple)):
        return ir.ListExpr(items=tuple(setting_value(path, v) for v in values))
    return value(values)


def spec(*parts: ir.Model | ir.Param | ir.Block, imports: Iterable[str] = (),
         **sections: ir.Section | Mapping[str, Any]) -> ir.Spec:
    """A whole spec, as a .mlspec file holds it.

    Args:
        *parts: the model (none for a library of params and blocks), and params and
            blocks, in any order.
        imports: paths of library files whose params and blocks it uses.
        **sections: `data`, `train` and `sweep`, each a section (`mlspec.data(...)`) or
            a dict of its settings.

    Returns:
        The spec (`mlspec.Spec`): `.to_text()` prints it; `mlspec.check` and
        `mlspec.run` take it.

    Example:
        >>> line = mlspec.spec(mlspec.model("line", mlspec.dense(1)),
        ...                    data={"train": mlspec.linear(n=1000)},
        ...                    train={"loss": "mse", "optimizer": mlspec.sgd(0.01),
        ...                           "steps": 100})
    """
    found: dict[str, Any] = {"params": [], "blocks": [], "model": None}
    for part in parts:
        if isinstance(part, ir.Model):
            if found["model"] is not None:
                raise SpecError.at(None, f"a spec has one model, not '{found['model'].name}' "
                                         f"and '{part.name}'")
            found["model"] = part
        elif isinstance(part, (ir.Param, ir.Block)):
            found["params" if isinstance(part, ir.Param) else "blocks"].append(part)
        else:
            raise SpecError.at(None, f"{a_kind(part)} is no part of a spec (a "
                                     "model, params and blocks are; sections go by name)")
    known = list(ir.SECTION_NAMES)
    for key, section in sections.items():
        if key not in known:
            raise SpecError.at(None, f"a spec has no section '{key}'"
                                     f"{did_you_mean(key, known)}")
        if isinstance(section, Mapping):
            sections[key] = sweep(section) if key == "sweep" else \
                _SECTIONS[key](**section) if key in _SECTIONS else \
                _settings(key, section, None, lambda _, item: _named(item, None, ""))
    return ir.Spec(imports=tuple(ir.Import(path=str(p)) for p in imports), **found,
                   **sections)


_SECTIONS = {"data": data, "train": train}
