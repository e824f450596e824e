"""What `csv(...)` and `parquet(...)` share: a table read from a file becomes its numeric
feature columns (the input `x`), one input per categorical or text column (see
`typed`) and a target column; missing cells are refused, dropped or filled as `missing`
says. A file's rows are first read as a `Table` (cells as they are); the vocabularies
and fill values (`Encoding`) are fitted on the train split's table and applied to every
split's, and to new rows with the run's saved encoding."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import PositiveInt

from mlspec.catalog.sources.base import (
    DataError,
    DataInfo,
    InputInfo,
    Source,
    Task,
    encode_targets,
    feature_array,
    several_targets,
    short,
)
from mlspec.catalog.sources.typed import Encoding, fit_category, fit_tokens, input_name
from mlspec.syntax.errors import did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass
class Table:
    """A file's rows as read: numeric features (float64, NaN where missing; None without
    any), the cells of each categorical or text column (text, None where missing), and the
    encoded targets (None when not asked for)."""

    numeric: np.ndarray | None
    feature_names: tuple[str, ...]
    cells: dict[str, np.ndarray]
    y: np.ndarray | dict[str, np.ndarray] | None
    """One target's, or several's by output name."""
    class_names: tuple[str, ...] | dict[str, tuple[str, ...] | None] | None
    rows: int

    def take(self, index: np.ndarray) -> Table:
        y = self.y
        if y is not None:
            y = {k: v[index] for k, v in y.items()} if isinstance(y, dict) else y[index]
        return Table(None if self.numeric is None else self.numeric[index], self.feature_names,
                     {c: v[index] for c, v in self.cells.items()}, y, self.class_names,
                     len(index))


class Tabular(Source):
    """A table's numeric `features` (by default every column but the target and the
    typed ones), its `categorical` and `text` columns and its `target` column, or several
    target columns (`target=["price", "sold"]`), each the target of the output of its
    name."""

    path: str
    target: str | tuple[str, ...]
    features: tuple[str, ...] | None = None
    task: Task = "auto"
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    seq_len: PositiveInt = 64
    max_tokens: PositiveInt = 20000
    missing: Literal["error", "drop", "fill"] = "error"
    na_values: tuple[str, ...] = ()

    def _frame(self, base: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray], bool]:
        """The file's columns as read (numbers where they are), the typed columns' cells
        (text, None where missing) and whether its header names its columns (so an error
        may repeat them)."""
        raise NotImplementedError

    @property
    def target_columns(self) -> tuple[str, ...]:
        return (self.target,) if isinstance(self.target, str) else self.target

    @property
    def several_targets(self) -> bool:
        return not isinstance(self.target, str) and len(self.target) > 1

    @property
    def typed_columns(self) -> tuple[str, ...]:
        return (*self.categorical, *self.text)

    def _check_arguments(self) -> None:
        if not self.target_columns:
            raise DataError("target=[] names no target column", "target")
        seen: dict[str, str] = {}
        for i, column in enumerate(self.target_columns):
            if column in seen:
                raise DataError(f"the column '{column}' is twice in target=[...]", "target", i)
            seen[column] = "target"
        seen = {}
        for argument in ("categorical", "text"):
            for i, column in enumerate(getattr(self, argument)):
                if column in self.target_columns:
                    raise DataError(f"'{column}' is the target column; it cannot also be "
                                    f"a {argument} input", argument, i)
                if column in seen:
                    where = "twice in" if seen[column] == argument else \
                        f"in both {seen[column]}=[...] and"
                    raise DataError(f"the column '{column}' is {where} {argument}=[...]",
                                    argument, i)
                if self.features and column in self.features:
                    raise DataError(f"the column '{column}' is in both features=[...] and "
                                    f"{argument}=[...]", argument, i)
                seen[column] = argument

    def table(self, base: Path, fit: DataInfo | None = None, targets: bool = True,
              drop: bool = True) -> Table:
        """The file's rows (those with missing cells dropped, for `missing = "drop"`, unless
        not to `drop`: rows to predict, one prediction each); with `fit` (the training
        data's info) its feature columns and targets as the run's."""
        import numpy as np

        self._check_arguments()
        frame, cells, named = self._frame(base)
        columns = [str(c) for c in frame.columns]
        typed = self.typed_columns
        if self.features is not None:
            features = list(self.features)
        elif fit is not None and fit.feature_names is not None:
            features = list(fit.feature_names)
        else:
            features = [c for c in columns if c not in self.target_columns and c not in typed]
        for argument in ("categorical", "text"):
            for i, column in enumerate(getattr(self, argument)):
                if column not in columns:
                    raise DataError(f"'{self.path}' has no column '{column}'"
                                    f"{did_you_mean(column, columns)}", argument, i)
        wanted = [*features, *(self.target_columns if targets else ())]
        missing = [c for c in wanted if c not in columns]
        if missing and not named:  # its first line is no header: never repeat it
            raise self._no_header()
        if len(missing) == 1:
            raise DataError(f"'{self.path}' has no column '{missing[0]}'"
                            f"{did_you_mean(missing[0], columns)}")
        if missing:
            raise DataError(f"'{self.path}' lacks the columns "
                            + ", ".join(f"'{c}'" for c in missing[:10])
                            + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""))
        if not features and not typed:
            raise DataError(f"'{self.path}' has no feature columns besides "
                            + ", ".join(f"'{c}'" for c in self.target_columns))
        for i, name in enumerate(self.text):
            if frame[name].dtype.kind in "biuf":
                held = frame[name].dropna()
                raise DataError(f"column '{name}' of '{self.path}' holds numbers, not text"
                                + (f" (such as {short(held.iloc[0])})" if len(held) else "")
                                + "; a number column is a feature, or categorical=[...]",
                                "text", i)
        for name in features:
            column = frame[name]
            if column.dtype.kind not in "biuf":
                raise DataError(f"column '{name}' of '{self.path}' is not numeric "
                                f"(it holds values such as {short(column.dropna().iloc[0])}); "
                                "list the numeric columns in features=[...], or name it in "
                                "categorical=[...] or text=[...]")
        numeric = frame[features].to_numpy(np.float64, na_value=np.nan) if features else None
        gaps = {name: frame[name].isna().to_numpy() for name in features}
        gaps.update({name: np.array([c is None for c in cells[name]], bool) for name in typed})
        if targets:
            for column in self.target_columns:
                gaps[column] = frame[column].isna().to_numpy()
        keep = self._keep(gaps, drop)
        y = names = None
        if targets:
            y, names = {}, {}
            for column in self.target_columns:
                what = f"target column '{column}' of '{self.path}'"
                name = input_name(column)
                own = fit.target_info(name) if fit is not None and fit.outputs else fit
                y[name], names[name] = encode_targets(frame[column].to_numpy()[keep],
                                                      self.task, what, own)
            if not self.several_targets:
                y, names = next(iter(y.values())), next(iter(names.values()))
        if keep.all():
            return Table(numeric, tuple(features), {c: cells[c] for c in typed}, y, names,
                         len(frame))
        index = np.flatnonzero(keep)
        return Table(None if numeric is None else numeric[index], tuple(features),
                     {c: cells[c][index] for c in typed}, y, names, len(index))

    def _keep(self, gaps: dict[str, np.ndarray], drop: bool) -> np.ndarray:
        """The rows to keep: all of them, but with `missing = "drop"` those without a
        missing cell; a missing cell that may not be is an error naming it."""
        import numpy as np

        rows = len(next(iter(gaps.values()))) if gaps else 0
        if self.missing == "drop" and not drop:
            for name, gap in gaps.items():
                if gap.any():
                    raise DataError(f"column '{name}' of '{self.path}' has a missing value "
                                    f"at row {int(np.argmax(gap))}; the run drops such rows "
                                    "(missing = \"drop\"), so it has no prediction for it")
        elif self.missing == "drop":
            keep = ~np.logical_or.reduce([g for g in gaps.values()]) if gaps \
                else np.ones(rows, bool)
            if not keep.any():
                raise DataError(f"'{self.path}' has no rows without a missing value "
                                "(missing = \"drop\" drops every row)")
            return keep
        for name, gap in gaps.items():
            if not gap.any() or (self.missing == "fill" and name not in self.target_columns):
                continue
            first = int(np.argmax(gap))
            if name in self.target_columns:
                raise DataError(f"target column '{name}' of '{self.path}' has missing "
                                f"values (the first at row {first}); give missing=\"drop\" "
                                "to leave those rows out")
            raise DataError(f"column '{name}' of '{self.path}' has missing values (the first "
                            f"at row {first}); give missing=\"drop\" or \"fill\" to use the "
                            "file")
        return np.ones(rows, bool)

    def _no_header(self) -> DataError:
        return DataError(f"'{self.path}' has no header naming its columns")

    # ---- fitting and encoding

    def fit(self, table: Table, train: np.ndarray | None = None) -> Encoding:
        """Vocabularies and fill values from the train split: the rows `train` of the
        table (by default all), taken in the file's order, which breaks ties of words."""
        import numpy as np

        if train is not None:
            table = table.take(np.sort(train))

        vocabularies = {}
        for column in self.categorical:
            vocabularies[input_name(column)] = fit_category(column, table.cells[column])
        for column in self.text:
            vocabularies[input_name(column)] = fit_tokens(column, table.cells[column],
                                                          self.max_tokens, self.seq_len)
        fill = {}
        if self.missing == "fill" and table.numeric is not None:
            for j, name in enumerate(table.feature_names):
                values = table.numeric[:, j]
                known = values[~np.isnan(values)]
                if not len(known):
                    raise DataError(f"column '{name}' of '{self.path}' has no value in the "
                                    "train split to fill its missing ones with")
                fill[name] = float(known.mean())
        return Encoding(vocabularies=vocabularies, fill=fill)

    def encode(self, table: Table, encoding: Encoding):
        """(inputs, y): the single input's array, or a dict of them by input name."""
        import numpy as np

        inputs = {}
        if table.numeric is not None:
            x = table.numeric
            if encoding.fill:
                x = x.copy()
                for j, name in enumerate(table.feature_names):
                    gap = np.isnan(x[:, j])
                    if gap.any():
                        x[gap, j] = encoding.fill.get(name, np.nan)
            inputs["x"] = feature_array(x, f"the feature columns of '{self.path}'")
        for column in self.typed_columns:
            name = input_name(column)
            vocabulary = encoding.vocabularies.get(name)
            if vocabulary is None or vocabulary.column != column:
                raise DataError(f"the run has no vocabulary for the column '{column}' of "
                                f"'{self.path}'")
            inputs[name] = vocabulary.encode(table.cells[column])
        value = next(iter(inputs.values())) if len(inputs) == 1 else inputs
        return value, table.y

    def input_infos(self, table: Table, encoding: Encoding) -> tuple[InputInfo, ...]:
        """The inputs in order (`x`, categorical ones, text ones); a name that two columns
        give, or a typed column named `x` beside numeric features, is an error at it."""
        inputs = []
        if table.numeric is not None:
            inputs.append(InputInfo(name="x", shape=(len(table.feature_names),)))
        given = {"x": "the numeric features have"} if table.numeric is not None else {}
        for argument in ("categorical", "text"):
            for i, column in enumerate(getattr(self, argument)):
                name = input_name(column)
                if name in given:
                    raise DataError(f"the column '{column}' gives the input name '{name}', "
                                    f"which {given[name]} already; rename the column",
                                    argument, i)
                given[name] = f"the column '{column}' gives"
                vocabulary = encoding.vocabularies[name]
                inputs.append(InputInfo(name=name, shape=vocabulary.shape,
                                        kind=vocabulary.kind, vocab=vocabulary.size,
                                        column=column))
        return tuple(inputs)

    # ---- the Source interface

    def info(self, base, train: np.ndarray | None = None):
        """What it yields, its vocabularies fitted on the rows `train` (by default all)."""
        import numpy as np

        table = self.table(base)
        encoding = self.fit(table, train)
        inputs = self.input_infos(table, encoding)
        self.encode(table, encoding)  # its values checked, as training will take them
        features = inputs[0].shape
        y = table.y
        common = {"features": features, "feature_names": table.feature_names,
                  "rows": table.rows, "inputs": inputs}
        if isinstance(y, dict):
            return several_targets(y, table.class_names, {
                input_name(c): c for c in self.target_columns}, **common)
        if y.dtype == np.int32:
            classes = len(table.class_names) if table.class_names else int(y.max()) + 1
            return DataInfo(target="class", classes=max(classes, 2),
                            class_names=table.class_names, **common)
        return DataInfo(target="real", target_dim=y.shape[1], **common)

    def load(self, base):
        table = self.table(base)
        return self.encode(table, self.fit(table))

    def rows(self, base, fit, targets=True, encoding: Encoding | None = None):
        """Rows encoded as the training data `fit` with the run's `encoding` (None: a run
        whose rows need none, as a run of numeric features without filling)."""
        table = self.table(base, fit, targets, drop=targets)
        if encoding is None:
            if fit.typed or self.missing == "fill":
                raise DataError(f"the run saved no vocabularies to encode the rows of "
                                f"'{self.path}' with (its run folder lacks vocab.json)")
            encoding = Encoding()
        return self.encode(table, encoding)
