"""Writes the small data files of the v2 examples in specs/, with the rule that makes each
label. Deterministic: running it again writes the same bytes.

    python specs/data/make_data.py          # writes next to this script

- `reviews.csv`: short reviews whose label depends on word order. Each review holds one
  positive and one negative word, and `not` before exactly one of them; the label is the
  polarity of the word that is not negated (`good but not awful` is positive, `not good
  but awful` negative). Every review has the same bag of kinds of words (one positive, one
  negative, one `not`), so a model that ignores order cannot beat chance; one that reads
  order (an LSTM, attention with positions) can learn it exactly.
- `income.csv`: a tabular task with numeric and categorical columns. `high` is "yes" when
  0.06 * (age - 40) + 0.05 * (hours - 40) + CITY[city] + JOB[job] + noise > 0.
- `digits_parity.csv`: scikit-learn's bundled digits (8x8 pixels, 0..16) with two targets,
  the digit and its parity (`even`/`odd`).
- `digits_images.npz`: the same digits for an autoencoder: `x` the images, shape
  (1797, 8, 8, 1), and `y` the same pixels as the target, shape (1797, 64), both float32
  scaled to 0..1 (pixel / 16). The arrays are deterministic (the archive's zip timestamps
  are not, so compare arrays, not bytes).
- `digits_pairs.npz`: pairs of those digits for a siamese model: `a` and `b` two images,
  each shape (n, 64) float32 scaled to 0..1, and `label` 1 when they are the same digit,
  0 when not (int32; half the pairs each). Every image is drawn at random; an equal pair
  is two different images of one digit.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

POSITIVE = ["good", "great", "fine", "lovely", "superb", "pleasant", "fun", "nice"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "terrible", "weak", "grim"]
SUBJECTS = ["the film", "the plot", "the food", "the show", "the book", "the game",
            "the trip", "the hotel", "our visit", "the music"]
JOINERS = ["but", "and", "yet", "though", "while"]
FILLER = ["really", "quite", "very", "so", "rather"]


def reviews(rows: int = 4000, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rows):
        pos, neg = rng.choice(POSITIVE), rng.choice(NEGATIVE)
        negate_positive = bool(rng.integers(2))
        words = [[pos], [neg]]
        words[0 if negate_positive else 1].insert(0, "not")
        if rng.integers(2):  # which comes first carries no information either
            words.reverse()
        for clause in words:
            if rng.random() < 0.3:
                clause.insert(clause.index("not") + 1 if "not" in clause else 0,
                              rng.choice(FILLER))
        text = f"{rng.choice(SUBJECTS)} was {' '.join(words[0])} {rng.choice(JOINERS)} " \
               f"{' '.join(words[1])}"
        # the word not negated decides: a negated positive leaves the negative one
        out.append((text, "negative" if negate_positive else "positive"))
    return out


CITY = {"ashford": 0.8, "brill": -0.6, "corran": 0.2, "dunmore": -0.2, "elstow": 0.5,
        "fenwick": -0.9}
JOB = {"clerk": -0.5, "engineer": 0.7, "farmer": -0.3, "nurse": 0.2, "teacher": 0.0}


def income(rows: int = 3000, seed: int = 1) -> list[tuple]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rows):
        age = int(rng.integers(18, 70))
        hours = int(rng.integers(10, 70))
        city = str(rng.choice(list(CITY)))
        job = str(rng.choice(list(JOB)))
        score = 0.06 * (age - 40) + 0.05 * (hours - 40) + CITY[city] + JOB[job] \
            + rng.normal(0, 0.3)
        out.append((age, hours, city, job, "yes" if score > 0 else "no"))
    return out


def digits_parity() -> tuple[list[str], list[tuple]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    header = [f"p{i}" for i in range(64)] + ["digit", "parity"]
    rows = [(*(int(v) for v in image), int(label), "even" if label % 2 == 0 else "odd")
            for image, label in zip(digits.data, digits.target)]
    return header, rows


def digits_images():
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(np.float32) / 16.0
    return {"x": pixels.reshape(-1, 8, 8, 1), "y": pixels}


def digits_pairs(pairs: int = 3000, seed: int = 2):
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.data.astype(np.float32) / 16.0
    by_class = [np.flatnonzero(digits.target == k) for k in range(10)]
    rng = np.random.default_rng(seed)
    first, second = [], []
    label = np.arange(pairs, dtype=np.int32) % 2  # 1, 0 alternately: balanced
    for same in label:
        k = int(rng.integers(10))
        if same:
            i, j = rng.choice(by_class[k], size=2, replace=False)
        else:
            other = (k + int(rng.integers(1, 10))) % 10
            i, j = rng.choice(by_class[k]), rng.choice(by_class[other])
        first.append(i)
        second.append(j)
    return {"a": pixels[first], "b": pixels[second], "label": label}


def write(folder: Path, name: str, header, rows) -> None:
    with open(folder / name, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


FILES = ("reviews.csv", "income.csv", "digits_parity.csv")
ARRAYS = ("digits_images.npz", "digits_pairs.npz")


def main(folder: Path = HERE) -> None:
    write(folder, "reviews.csv", ["review", "label"], reviews())
    write(folder, "income.csv", ["age", "hours", "city", "job", "high"], income())
    write(folder, "digits_parity.csv", *digits_parity())
    np.savez_compressed(folder / "digits_images.npz", **digits_images())
    np.savez_compressed(folder / "digits_pairs.npz", **digits_pairs())


if __name__ == "__main__":
    main()
