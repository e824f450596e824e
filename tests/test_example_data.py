"""The example data in specs/data is what specs/data/make_data.py writes, and its labels
follow the rules the script states (checked with scikit-learn models that can and cannot
see what the rule needs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[1] / "specs" / "data"


@pytest.fixture(scope="module")
def make_data():
    spec = importlib.util.spec_from_file_location("make_data", DATA / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_writes_the_files_in_the_repo(make_data, tmp_path):
    make_data.main(tmp_path)
    for name in make_data.FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def _fit_score(features, labels) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x_train, x_valid, y_train, y_valid = train_test_split(features, labels, test_size=0.25,
                                                          random_state=0)
    model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    return model.score(x_valid, y_valid)


def test_reviews_need_word_order(make_data):
    from sklearn.feature_extraction.text import CountVectorizer

    table = pd.read_csv(DATA / "reviews.csv")
    # the rule, by hand: the polarity of the adjective that `not` does not precede
    for text, label in zip(table.review, table.label):
        words = text.split()
        adjectives = [(i, w) for i, w in enumerate(words)
                      if w in make_data.POSITIVE or w in make_data.NEGATIVE]
        assert len(adjectives) == 2
        negated = {i for i, _ in adjectives if "not" in words[max(0, i - 2):i]}
        (kept,) = [w for i, w in adjectives if i not in negated]
        assert label == ("positive" if kept in make_data.POSITIVE else "negative")
    bag = CountVectorizer(token_pattern=r"[a-z']+").fit_transform(table.review)
    pairs = CountVectorizer(token_pattern=r"[a-z']+", ngram_range=(1, 3)) \
        .fit_transform(table.review)
    assert _fit_score(bag, table.label) < 0.6  # order-blind: chance
    assert _fit_score(pairs, table.label) > 0.95  # word order (n-grams) tells


def test_income_follows_its_rule(make_data):
    table = pd.read_csv(DATA / "income.csv")
    score = 0.06 * (table.age - 40) + 0.05 * (table.hours - 40) \
        + table.city.map(make_data.CITY) + table.job.map(make_data.JOB)
    agree = np.mean((score > 0) == (table.high == "yes"))
    assert 0.85 < agree < 1.0  # the rule plus its noise
    numeric_only = _fit_score(table[["age", "hours"]], table.high)
    with_categories = _fit_score(pd.get_dummies(table.drop(columns="high")), table.high)
    assert with_categories > numeric_only + 0.05


def test_digits_parity_is_the_bundled_digits():
    from sklearn.datasets import load_digits

    table = pd.read_csv(DATA / "digits_parity.csv")
    digits = load_digits()
    np.testing.assert_array_equal(table.iloc[:, :64].to_numpy(), digits.data)
    np.testing.assert_array_equal(table.digit, digits.target)
    assert (table.parity == np.where(digits.target % 2 == 0, "even", "odd")).all()


def test_the_script_writes_the_arrays_in_the_repo(make_data, tmp_path):
    make_data.main(tmp_path)
    for name in make_data.ARRAYS:  # zip timestamps differ: compare the arrays
        with np.load(tmp_path / name) as written, np.load(DATA / name) as shipped:
            assert written.files == shipped.files, name
            for key in written.files:
                np.testing.assert_array_equal(written[key], shipped[key])
                assert written[key].dtype == shipped[key].dtype


def test_digits_images_are_the_digits_as_images_and_targets():
    from sklearn.datasets import load_digits

    with np.load(DATA / "digits_images.npz") as archive:
        x, y = archive["x"], archive["y"]
    pixels = load_digits().data / 16.0
    assert x.shape == (1797, 8, 8, 1) and y.shape == (1797, 64)
    assert x.dtype == y.dtype == np.float32
    np.testing.assert_allclose(x.reshape(-1, 64), pixels, rtol=1e-6)
    np.testing.assert_array_equal(x.reshape(-1, 64), y)  # the target is the image


def test_digits_pairs_are_balanced_pairs_of_digits_labelled_same_or_not():
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.data.astype(np.float32) / 16.0
    with np.load(DATA / "digits_pairs.npz") as archive:
        a, b, label = archive["a"], archive["b"], archive["label"]
    assert a.shape == b.shape == (3000, 64) and a.dtype == b.dtype == np.float32
    assert label.dtype == np.int32 and set(label) == {0, 1} and label.mean() == 0.5

    def classes(images):  # each image is one of the bundled digits: its class
        rows = {row.tobytes(): k for row, k in zip(pixels, digits.target)}
        return np.array([rows[image.tobytes()] for image in images])

    np.testing.assert_array_equal(classes(a) == classes(b), label == 1)
    same = label == 1
    assert not (a[same] == b[same]).all(axis=1).any()  # an equal pair: two images
