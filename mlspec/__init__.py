"""mlspec: say what to train in a .mlspec file; get a compiled JAX training run.

    >>> import mlspec
    >>> spec = mlspec.parse('model m { dense(1) }')
    >>> print(spec.to_text(), end="")
    model m {
        dense(1)
    }
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mlspec.version import __version__

if TYPE_CHECKING:
    from mlspec.runtime.results import DivergedError, Result
    from mlspec.semantics.program import Program
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.errors import SpecError
    from mlspec.syntax.ir import Call, LayerCall, Model, Param, Section, Setting, Spec
    from mlspec.syntax.parser import load, parse

# Imported when first used, so that `import mlspec` is quick: the `mlspec` command
# installs its signal handlers before the imports that take most of its start.
_LAZY = {
    "SpecError": ".syntax.errors", "Call": ".syntax.ir", "LayerCall": ".syntax.ir", "Model": ".syntax.ir",
    "Param": ".syntax.ir", "Section": ".syntax.ir", "Setting": ".syntax.ir", "Spec": ".syntax.ir",
    "load": ".syntax.parser", "parse": ".syntax.parser", "Program": ".semantics.program",
    "resolve": ".semantics.resolve", "Result": ".runtime.results", "DivergedError": ".runtime.results",
}

__all__ = [
    "Call", "DivergedError", "LayerCall", "Model", "Param", "Program", "Result", "Section",
    "Setting", "compile", "load_run",
    "Spec", "SpecError", "check", "load", "parse", "resolve", "run", "__version__",
]


def check(spec: Spec) -> Program | None:
    """Validates a spec (every member of its sweep too) without training; raises
    SpecError listing every mistake. A library (params and blocks only, as `import`
    reads) is checked as one and gives None."""
    from mlspec.semantics.sweep import check_spec

    return check_spec(spec)


def run(spec, overrides=None, **kwargs) -> Result:
    """Trains a spec (a Spec or a .mlspec path); see `mlspec.runtime.runner.run`.

    Imports jax only when called, so `import mlspec` stays light for check and fmt.
    """
    from mlspec.runtime.runner import run as _run

    return _run(spec, overrides, **kwargs)


def compile(spec, overrides=None):  # noqa: A001 - the verb users expect
    """The compiled pieces of a spec: flax module, optax transformation, `init` and the
    jitted `train` (see `mlspec.runtime.compiled.Compiled`)."""
    from mlspec.runtime.compiled import compile_program
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.ir import Spec
    from mlspec.syntax.parser import load

    if not isinstance(spec, Spec):
        spec = load(spec)
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
    raise AttributeError(f"module 'mlspec' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
