"""Typed columns: how categorical and text cells become integer ids, by vocabularies
fitted on the train split and saved with a run, so that new rows are encoded as the
training rows were.

- A categorical column: id 0 for a value the train split does not hold (or a missing
  one), ids 1..K for its K values there in sorted order (numerically where every value
  is a number, else as text); vocabulary K + 1.
- A text column: lower-cased, split into words (runs of letters, digits and
  apostrophes); the `max_tokens` most frequent words of the train split are ids 2..
  (ties by first appearance in the file), 0 is padding, 1 an unknown word; each row
  truncated or padded at the end to `seq_len` ids.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from mlspec.syntax.limits import NAME

if TYPE_CHECKING:
    import numpy as np

WORD = re.compile(r"(?:[^\W_]|')+")
"""A word: a run of letters, digits and apostrophes (`_` and other marks split words)."""
PAD, UNKNOWN = 0, 1
FIRST_WORD = 2
"""The id of the most frequent word; 0 pads a row, 1 stands for a word not in the vocabulary."""


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def input_name(column: str) -> str:
    """The input a column gives: its name with each character that cannot stand in a name
    replaced by `_` (`native-country` -> `native_country`), `_` before a leading digit."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", column)
    return name if NAME.fullmatch(name) else "_" + name


def _sort_key(values: list[str]):
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return sorted(values)
    return [v for _, v in sorted(zip(numbers, values, strict=True))]


class Vocabulary(BaseModel):
    """The ids of one categorical or text column, fitted on the train split."""

    model_config = ConfigDict(frozen=True)

    column: str
    kind: Literal["category", "tokens"]
    entries: tuple[str, ...]
    """A category's values (ids 1..K) or a text column's words (ids 2..), in id order."""
    seq_len: int | None = None
    """Ids per row of a text column."""

    @property
    def size(self) -> int:
        """Ids the input takes: the entries and 0 (and 1 for text)."""
        return len(self.entries) + (FIRST_WORD if self.kind == "tokens" else 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.seq_len,) if self.kind == "tokens" else ()

    def encode(self, cells: np.ndarray) -> np.ndarray:
        """int32 ids of `cells` (an object array of text, None where missing)."""
        import numpy as np

        if self.kind == "category":
            lookup = {v: i for i, v in enumerate(self.entries, 1)}
            return np.array([lookup.get(c, 0) for c in cells], np.int32)
        lookup = {w: i for i, w in enumerate(self.entries, FIRST_WORD)}
        ids = np.full((len(cells), self.seq_len), PAD, np.int32)
        for row, cell in enumerate(cells):
            found = [lookup.get(w, UNKNOWN) for w in words(cell)[:self.seq_len]] \
                if cell is not None else []
            ids[row, :len(found)] = found
        return ids


def fit_category(column: str, cells: np.ndarray) -> Vocabulary:
    return Vocabulary(column=column, kind="category",
                      entries=tuple(_sort_key(list({c for c in cells if c is not None}))))


def fit_tokens(column: str, cells: np.ndarray, max_tokens: int, seq_len: int) -> Vocabulary:
    counts: Counter[str] = Counter()
    for cell in cells:
        if cell is not None:
            counts.update(words(cell))
    # Counter keeps first appearance; a stable sort by count keeps it among ties
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:max_tokens]
    return Vocabulary(column=column, kind="tokens", entries=tuple(w for w, _ in ranked),
                      seq_len=seq_len)


class Encoding(BaseModel):
    """What a tabular source's rows need beyond standardization to be encoded as the
    training rows were: each typed input's vocabulary (by input name) and, for
    `missing = "fill"`, the train mean of each numeric feature column."""

    model_config = ConfigDict(frozen=True)

    vocabularies: dict[str, Vocabulary] = {}
    fill: dict[str, float] = {}

    @property
    def trivial(self) -> bool:
        return not self.vocabularies and not self.fill

