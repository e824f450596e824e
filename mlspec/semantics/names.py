"""What a bare name means (LANGUAGE.md v2, "Names").

A bare name in a value position is one of: a param, a block argument, `classes`, a
catalogue entry where one is expected, a metric path (`valid.loss`), or a symbol that the
argument's type lists (`mode=min`). Params and block arguments are bound by the scope
(`semantics.scope`); `bind_names` binds the names that the data gives a spec; the binder
(`catalog.signature`) settles every other name by the type of the place it stands in, and
a name that means nothing there is an error at its place:
`undefined name 'widht'; did you mean 'width'?`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec.catalog.layers import LAYERS
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS
from mlspec.catalog.optimizers import optax_catalogue
from mlspec.catalog.sources import SOURCES
from mlspec.syntax import ir

if TYPE_CHECKING:
    from mlspec.semantics.resolve import Resolution


def bind_names(state: Resolution) -> None:
    """The names the data gives the model: `classes`, the number of classes of a class
    target. Without one, `classes` is absent, and its error says why."""
    scope, data = state.scope, state.data
    if data is not None and data.info.outputs:
        scope.absent["classes"] = ("'classes' needs a data with a single class target; with "
                                   "several, it is the number of classes of NAME's target "
                                   "in the chain of output NAME = ...")
    elif data is not None and data.info.target == "class":
        scope.bind("classes", ir.Number(value=data.info.classes))
    elif state.data_failed:  # a stand-in, so that the data's mistake is not reported again
        scope.bind("classes", ir.Number(value=2))
    elif data is not None:
        scope.absent["classes"] = ("'classes' exists only for class targets, and this "
                                   "data's target is real")
    else:
        scope.absent["classes"] = ("'classes' is the number of classes of the data's "
                                   "target, and this spec has no data section")


def catalogue_kind(name: str) -> str | None:
    """What `name` names in the catalogues ("a layer", "an optimizer"), if anything: for
    the error of a name that stands where that cannot."""
    for registry in (LAYERS, LOSSES, METRICS, SOURCES):
        if name in registry:
            what = registry.what
            return f"{'an' if what[0] in 'aeiou' else 'a'} {what}"
    fn = optax_catalogue().get(name)
    if fn is not None:
        return f"{'an' if fn.kind == 'optimizer' else 'a'} {fn.kind}"
    return None
