"""The data section as a pydantic model, a discriminated union of its two forms: named
splits (`train`, `valid` and `test` sources) and one `source` split in place by sizes;
then its sources inspected (no training rows loaded) and the split sizes settled."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    NonNegativeInt,
    PositiveInt,
    Tag,
)
from pydantic_core import PydanticCustomError

from mlspec.catalog.registry import instantiate
from mlspec.catalog.signature import Names
from mlspec.catalog.sources import SOURCES, DataError, DataInfo, Source
from mlspec.semantics.budget import rows_text
from mlspec.semantics.scope import Scope
from mlspec.semantics.settings import (
    Catalogue,
    Excludes,
    FromSpec,
    SectionModel,
    setting_place,
    validate_section,
)
from mlspec.syntax import ir
from mlspec.syntax.errors import SpecError

if TYPE_CHECKING:
    import numpy as np

AnySource = Annotated[Source, SOURCES.any_kind()]
"""A source of any kind, read back from a program's JSON by its `kind`."""


def source_call(value: ir.Expr, scope: Names) -> Source:
    """`hill(n=1000)`, or a source's bare name (`iris`), bound in `scope`."""
    if not isinstance(value, (ir.Call, ir.Name)):
        raise PydanticCustomError("source", "should be a data source call such as "
                                            "hill(n=1000)")
    return instantiate(SOURCES, value, scope)


def _size(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 \
            or (isinstance(value, float) and value >= 1):
        raise PydanticCustomError("size", "should be a fraction between 0 and 1 or a "
                                          "positive row count")
    return value


SourceSetting = Annotated[AnySource,
                          FromSpec(source_call, Catalogue("data source", lambda: SOURCES))]
Size = Annotated[PositiveInt | float, BeforeValidator(_size)]
"""A split's size: a fraction of the source's rows, or a count of them."""


def size_rows(size: float | int | None, rows: int) -> int:
    """Rows that a `valid` or `test` size takes of a source's `rows`: a fraction rounded,
    a count as it is; `check` and `run` split by this one rule."""
    if not size:
        return 0
    return int(round(size * rows)) if isinstance(size, float) else int(size)


class _Data(SectionModel):
    """What both forms hold besides their settings."""

    info: DataInfo | None = None
    """What the train source yields (its features, its target), from its inspection;
    set once the section is resolved."""
    split_rows: dict[str, int] = {}
    """Rows of each split, where its source knows them (all the catalogue's do)."""
    folder: str = "."
    """Where relative paths resolve: the spec file's folder."""

    derived: ClassVar = ("info", "split_rows", "folder")


class NamedSplits(_Data):
    """Each split from a source of its own: `train = csv("a.csv")`, `valid = ...`."""

    kind: Literal["named_splits"] = "named_splits"
    train: SourceSetting
    valid: SourceSetting | None = None
    test: SourceSetting | None = None
    split_seed: NonNegativeInt = 0
    standardize: bool = False

    missing: ClassVar = {"train": "data needs 'train' (and 'valid') sources, or one "
                                  "'source' with a 'valid' size"}

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in ("train", "valid", "test") if getattr(self, s) is not None)

    @property
    def sources(self) -> dict[str, Source]:
        """The sources by setting."""
        return {s: getattr(self, s) for s in self.splits}


class SplitInPlace(_Data):
    """One `source`, split by the sizes `valid` and `test` (fractions or row counts)."""

    kind: Literal["split_in_place"] = "split_in_place"
    source: SourceSetting
    valid: Size | None = None
    test: Size | None = None
    split_seed: NonNegativeInt = 0
    standardize: bool = False

    rules: ClassVar = (Excludes("source", "train", "with 'source', the splits are sizes: "
                                "give 'valid' (and 'test') as fractions or counts, not a "
                                "'train' source"),)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",) + tuple(s for s in ("valid", "test") if getattr(self, s))

    @property
    def sources(self) -> dict[str, Source]:
        return {"source": self.source}


def _form(value: Any) -> str:
    if isinstance(value, Mapping):
        return value.get("kind") or ("split_in_place" if "source" in value else
                                     "named_splits")
    return getattr(value, "kind", "named_splits")


DATA_FORMS: dict[str, type[_Data]] = {"named_splits": NamedSplits,
                                      "split_in_place": SplitInPlace}
DataSection = Annotated[Annotated[NamedSplits, Tag("named_splits")]
                        | Annotated[SplitInPlace, Tag("split_in_place")], Discriminator(_form)]
"""The data section: named splits, or one source split in place (with `source`)."""
DATA_SETTINGS = list(dict.fromkeys(n for form in DATA_FORMS.values()
                                   for n in form.setting_names()))


def split_cuts(data: SplitInPlace, rows: int) -> dict[str, np.ndarray]:
    """The rows of each split of one source (train, valid, test; those it has), by the
    one rule that `check` and `run` share: a permutation by `split_seed`, valid first."""
    import numpy as np

    order = np.random.default_rng(data.split_seed).permutation(rows)
    n_valid, n_test = size_rows(data.valid, rows), size_rows(data.test, rows)
    # `check` refuses these with the rows it knows; the file may have changed since
    if n_valid + n_test >= rows:
        raise DataError(f"the valid and test sizes ({n_valid} + {n_test} rows) leave no "
                        f"train rows out of {rows}")
    for split, size, taken in (("valid", data.valid, n_valid), ("test", data.test, n_test)):
        if size and not taken:
            raise DataError(f"'{split}' = {size} takes no rows of {rows}")
    cuts = {"train": order[n_valid + n_test:], "valid": order[:n_valid],
            "test": order[n_valid:n_valid + n_test]}
    return {name: index for name, index in cuts.items() if len(index)}


def _info(source: Source, folder: Path, setting: ir.Setting, **train) -> DataInfo:
    try:
        return source.info(folder, **train)
    except DataError as exc:
        raise SpecError.at(_argument_place(setting, exc), str(exc)) from None


def _argument_place(setting: ir.Setting, exc: DataError):
    """Where a data error is to blame: the source's argument it names (the item of a
    list argument), else the setting's value."""
    call = setting.value
    if exc.argument is not None and isinstance(call, ir.Call):
        for keyword in call.kwargs:
            if keyword.name == exc.argument:
                value = keyword.value
                if exc.item is not None and isinstance(value, ir.ListExpr) \
                        and exc.item < len(value.items):
                    value = value.items[exc.item]
                return value.span or keyword.span or setting_place(setting)
    return setting_place(setting)


def resolve_data(section: ir.Section, scope: Scope, folder: Path) -> DataSection:
    data = validate_section(DataSection, "data", section, scope, DATA_SETTINGS, DATA_FORMS,
                            folder=str(folder))
    settings = {s.path: s for s in section.settings}
    if isinstance(data, SplitInPlace):
        info = _info(data.source, folder, settings["source"])
        split_rows = {} if info.rows is None else _split(info.rows, settings, data)
        if info.typed:  # its vocabularies are the train split's
            train = split_cuts(data, info.rows)["train"]
            info = _info(data.source, folder, settings["source"], train=train)
    else:
        info = _info(data.train, folder, settings["train"])
        rows = {"train": info.rows}
        for split in data.splits[1:]:
            other = _info(getattr(data, split), folder, settings[split])
            problem = _misfit(other, info)
            if problem:
                raise SpecError.at(settings[split].span, f"the '{split}' source {problem}")
            rows[split] = other.rows
        split_rows = {k: n for k, n in rows.items() if n is not None}
    return data.model_copy(update={"info": info, "split_rows": split_rows})


def _split(rows: int, settings: dict[str, ir.Setting], data: SplitInPlace) -> dict[str, int]:
    """The rows of each split of one source's `rows`; a size that takes none, or sizes
    that leave no train rows, are an error at the size that does it."""
    sizes = {s: getattr(data, s) for s in ("valid", "test") if getattr(data, s) is not None}
    taken = {s: size_rows(size, rows) for s, size in sizes.items()}
    of = f"the source's {rows_text(rows)}"
    for split, count in taken.items():
        if not count:
            raise SpecError.at(setting_place(settings[split]), f"'{split}' = "
                               f"{sizes[split]} takes none of {of}")
    if sum(taken.values()) >= rows:
        # the one that alone takes every row, else the second: together they do
        split = next((s for s, n in taken.items() if n >= rows), list(taken)[-1])
        takes = " and ".join(f"'{s}' takes {n:,}" for s, n in taken.items())
        raise SpecError.at(setting_place(settings[split]), f"'{split}' = {sizes[split]} "
                           f"leaves no train rows: of {of}, {takes}")
    return {"train": rows - sum(taken.values()), **taken}


def _misfit(other: DataInfo, train: DataInfo) -> str | None:
    """Why a valid or test source cannot be encoded as the train source, or None: the
    same features, the same kind of target, and classes or target columns that the train
    source has (found from what the sources say of themselves, without making data)."""
    if (other.features, other.target) != (train.features, train.target):
        return f"yields {_describe(other)} but 'train' yields {_describe(train)}"
    kinds = [(i.name, i.shape, i.kind) for i in other.inputs]
    if kinds != [(i.name, i.shape, i.kind) for i in train.inputs]:
        return (f"has the inputs {_inputs(other)} but 'train' has {_inputs(train)}")
    if train.target == "real" and other.target_dim != train.target_dim:
        return (f"has {other.target_dim} target columns but 'train' has "
                f"{train.target_dim}")
    if train.target != "class":
        return None
    if other.class_names is not None and train.class_names is not None:
        unknown = sorted(set(other.class_names) - set(train.class_names))
        if unknown:
            return (f"has classes that 'train' does not have: "
                    f"{', '.join(repr(n) for n in unknown[:5])}")
    elif (other.class_names is None) != (train.class_names is None):
        named, ids = ("'train'", "it") if other.class_names is None else ("it", "'train'")
        return f"cannot be encoded as 'train': {named} has class names, {ids} has class ids"
    elif other.classes > train.classes:
        return (f"has {other.classes} classes (ids up to {other.classes - 1}) but 'train' "
                f"has {train.classes}")
    return None


def _inputs(info: DataInfo) -> str:
    return ", ".join(f"{i.name} ({i.kind} {list(i.shape)})" for i in info.inputs)


def _describe(info: DataInfo) -> str:
    target = f"{info.classes} classes" if info.target == "class" else "real targets"
    return f"features {list(info.features)} with {target}"


def typed_input_layers(layers: tuple, info: DataInfo, errors) -> tuple:
    """A v1 chain's layers on the data's single input, as `vocabulary_layers` gives them."""
    if len(info.inputs) != 1:
        return layers
    return vocabulary_layers(layers, info.inputs[0].name, info.inputs[0].vocab, errors)


def vocabulary_layers(layers: tuple, name: str, vocab: int | None, errors) -> tuple:
    """The layers that read the input `name`, whose ids are below `vocab` (None for an
    input of floats): an `embedding` or `one_hot` first takes that vocabulary (one given
    must hold it), also inside a composite run once; anything else is left as it is."""
    from mlspec.catalog.layers.core import Embedding, OneHot
    from mlspec.catalog.registry import name_span

    if vocab is None or not layers:
        return layers
    first = layers[0]
    if first.composite and getattr(first, "times", 1) == 1:
        body = vocabulary_layers(first.body, name, vocab, errors)
        return (first.model_copy(update={"body": body}), *layers[1:])
    if not isinstance(first, (Embedding, OneHot)):
        # ids are integers: any other layer fails jax's type promotion at the first step
        errors.add(name_span(first), f"'{name}' holds ids (0 to {vocab - 1}), not numbers: "
                                     f"{first.kind} cannot read them; start with "
                                     "embedding(N) or one_hot")
        return layers
    field = "vocab" if isinstance(first, Embedding) else "n"
    given = getattr(first, field)
    if given is None:
        return (first.model_copy(update={field: vocab}), *layers[1:])
    if given < vocab:
        errors.add(name_span(first), f"{first.kind} has {field}={given}, but the input "
                                     f"'{name}' takes {vocab} ids (0 to {vocab - 1}); leave "
                                     f"{field} out to take the input's")
    return layers


def vocabulary_graph(graph, inputs: tuple, errors):
    """A graph model's nodes that read a categorical or text input, as `vocabulary_layers`
    gives their layers; a shared `embedding` or `one_hot` first on such inputs takes the
    largest of their vocabularies."""
    from mlspec.catalog.layers.graph import SharedUse

    if graph is None:
        return None
    vocabs = {i.name: i.vocab for i in inputs if i.vocab is not None}
    nodes, shared = [], {}
    for node in graph.nodes:
        vocab = vocabs.get(node.inputs[0]) if node.merge is None else None
        if vocab is not None and node.layers and isinstance(node.layers[0], SharedUse):
            name = node.layers[0].name
            shared[name] = max(shared.get(name, 0), vocab)
        elif vocab is not None and not node.layers:  # a name for the input: its ids
            vocabs[node.name] = vocab
        elif vocab is not None:
            node = node.model_copy(update={"layers": vocabulary_layers(
                node.layers, node.inputs[0], vocab, errors)})
        nodes.append(node)
    shares = tuple(s.model_copy(update={"layer": vocabulary_layers(
        (s.layer,), s.name, shared[s.name], errors)[0]}) if s.name in shared else s
        for s in graph.shares)
    return graph.model_copy(update={"nodes": tuple(nodes), "shares": shares})
