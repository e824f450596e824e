"""mlspec: say what to train in a .mlspec file; get a compiled JAX training run.

A spec comes from text, a file, or Python, and is printed, checked and run the same way:

    >>> import mlspec
    >>> spec = mlspec.parse('model m { dense(1) }')
    >>> print(spec.to_text(), end="")
    model m {
        dense(1)
    }
    >>> mlspec.spec(mlspec.model("m", mlspec.dense(1))) == spec
    True

Building from Python (`spec`, `model`, `data`, `train`, `sweep`, `param`, `block`, `arg`,
`layer`, `name`, `call`, `classes`; for graph models `binding`, `output`, `share`,
`tokens`, `category`) is described in docs/python.md. Every catalogue entry is a function
here, made from its registry on first use: layers (`dense`, `conv`, `repeat`, ...),
merges (`concat`, `add`, ...), losses (`huber`), data sources (`hill`, `csv`),
`early_stop`, and optax's optimizers and schedules (`adam`,
`warmup_cosine_decay_schedule`); `help(mlspec.dense)` shows its arguments.

Nothing is imported until it is used: `import mlspec` stays quick and never imports jax,
which only `run`, `compile` and `load_run` do.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from mlspec.version import __version__

if TYPE_CHECKING:
    from mlspec.runtime.results import DivergedError, Result
    from mlspec.semantics.build import arg, block, data, model, param, spec, sweep, train
    from mlspec.semantics.builders import call, classes, layer, name
    from mlspec.semantics.graph_build import binding, category, output, share, tokens
    from mlspec.semantics.program import Program
    from mlspec.syntax.errors import SpecError
    from mlspec.syntax.ir import (
        Block,
        BlockParam,
        Call,
        Import,
        LayerCall,
        Model,
        Name,
        Param,
        Section,
        Setting,
        Spec,
    )
    from mlspec.syntax.parser import parse
    from mlspec.syntax.reader import load

# Imported when first used, so that `import mlspec` is quick: the `mlspec` command
# installs its signal handlers before the imports that take most of its start.
_LAZY = {
    **dict.fromkeys(["Block", "BlockParam", "Call", "Import", "LayerCall", "Model", "Name",
                     "Param", "Section", "Setting", "Spec"], ".syntax.ir"),
    "SpecError": ".syntax.errors", "load": ".syntax.reader", "parse": ".syntax.parser",
    "Program": ".semantics.program", "Result": ".runtime.results",
    "DivergedError": ".runtime.results",
    **dict.fromkeys(["arg", "block", "data", "model", "param", "spec", "sweep", "train"],
                    ".semantics.build"),
    **dict.fromkeys(["call", "classes", "layer", "name"], ".semantics.builders"),
    **dict.fromkeys(["binding", "category", "output", "share", "tokens"],
                    ".semantics.graph_build"),
}

__all__ = [
    "Block", "BlockParam", "Call", "DivergedError", "Import", "LayerCall", "Model", "Name",
    "Param",
    "Program", "Result", "Section", "Setting", "Spec", "SpecError", "__version__", "arg",
    "binding", "block", "call", "category", "check", "classes", "compile", "data", "layer",
    "load", "load_run", "model", "name", "output", "param", "parse", "resolve", "run",
    "share", "spec", "sweep", "tokens", "train",
]


def _as_spec(spec: Spec | str | os.PathLike) -> Spec:
    """A Spec as it is; a path read as `mlspec.load` reads it (a SpecError for a file
    that cannot be read)."""
    from mlspec.syntax.ir import Spec
    from mlspec.syntax.reader import load

    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return load(spec)
    raise TypeError(f"expected a Spec or the path of a spec file, got {type(spec).__name__}")


def check(spec: Spec | str | os.PathLike) -> Program | None:
    """Validates a spec, every member of its sweep too, without training.

    Args:
        spec: a Spec (parsed, loaded or built), or the path of a .mlspec or JSON spec.

    Returns:
        The spec's typed program (without its sweep); None for a library (params and
        blocks only, as `import` reads), which is checked as one.

    Raises:
        SpecError: every mistake found, each at its place.

    Example:
        >>> program = mlspec.check("specs/hill.mlspec")
        >>> program.model.output_shape
        (2,)
    """
    from mlspec.semantics.sweep import check_spec

    return check_spec(_as_spec(spec))


def resolve(spec: Spec | str | os.PathLike, overrides: dict[str, Any] | None = None) -> Program:
    """The typed program of a spec: every name bound, every default filled in, every
    shape known; what the compiler reads and `mlspec export --program` prints.

    Args:
        spec: a Spec, or the path of a .mlspec or JSON spec.
        overrides: params by name and settings by path, e.g. {"train.steps": 500}.

    Raises:
        SpecError: every mistake found (a `sweep` section is left to `check` and `run`).
    """
    from mlspec.semantics.resolve import resolve as _resolve

    return _resolve(_as_spec(spec), overrides)


def run(spec: Spec | str | os.PathLike, overrides: dict[str, Any] | None = None,
        **kwargs: Any) -> Result:
    """Trains a spec (a Spec or a .mlspec path); see `mlspec.runtime.runner.run`.

    Imports jax only when called, so `import mlspec` stays light for check and fmt.
    """
    from mlspec.runtime.runner import run as _run

    return _run(_as_spec(spec), overrides, **kwargs)


def compile(spec, overrides=None):  # noqa: A001 - the verb users expect
    """The compiled pieces of a spec: flax module, optax transformation, `init` and the
    jitted `train` (see `mlspec.runtime.compiled.Compiled`)."""
    from mlspec.runtime.compiled import compile_program

    return compile_program(resolve(spec, overrides))


def load_run(folder, member: int = 0):
    """A run folder read back as a Result (predict, history, metrics, manifest); for seeds
    or a sweep, `member` K is the K-th of metrics.json's members (0, the best)."""
    from mlspec.runtime.reload import load_run as _load_run

    return _load_run(folder, member)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        from mlspec.semantics.builders import catalogue_function
        from mlspec.semantics.graph_build import merge_function

        function = catalogue_function(name) or merge_function(name)
        if function is not None:
            globals()[name] = function
            return function
    raise AttributeError(f"module 'mlspec' has no attribute '{name}'")


def __dir__() -> list[str]:
    from mlspec.catalog.merges import MERGES
    from mlspec.semantics.builders import catalogue_names

    return sorted(set(globals()) | set(_LAZY) | set(catalogue_names()) | set(MERGES))
