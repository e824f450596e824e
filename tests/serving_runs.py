"""The trained runs that the export and serving tests use: an iris chain (standardized
features, class names) and a typed table (numeric columns with missing cells filled, a
categorical and a text column, two outputs: a class with names and a real value)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlspec.cli import main

IRIS = """\
model net {
    dense(8) -> relu
    dense(classes)
}
data {
    source      = iris
    valid       = 0.3
    standardize = true
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.05)
    steps     = 40
    metrics   = [accuracy]
}
"""

TYPED = """\
model typed {
    c = city -> embedding(features=3)
    t = note -> embedding(features=4) -> global_avg_pool
    h = concat(x, c, t) -> dense(8) -> relu
    output label = h -> dense(classes)
    output score = h -> dense(1)
}
data {
    source      = csv("t.csv", target=["label", "score"], categorical=["city"],
                      text=["note"], seq_len=4, missing="fill")
    valid       = 0.25
    standardize = true
}
train {
    loss      = softmax_cross_entropy(label) + mse(score)
    optimizer = adam(learning_rate=0.05)
    steps     = 30
    metrics   = [label.accuracy]
}
"""

WORDS = ("good", "bad", "fine", "awful", "great", "the", "film", "not")
CITIES = ("ashford", "brill", "corran")


def typed_table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """Rows of the typed run: `a` has a few missing cells, `city` and `note` are text."""
    rng = np.random.default_rng(seed)
    city = np.array(CITIES)[rng.integers(0, len(CITIES), n)]
    a, b = rng.normal(size=n) * 10 + 50, rng.normal(size=n)
    note = [" ".join(rng.choice(WORDS, rng.integers(1, 6))) for _ in range(n)]
    label = np.where((a > 50) ^ (city == "brill"), "high", "low")
    frame = pd.DataFrame({"a": a, "b": b, "city": city, "note": note, "label": label,
                          "score": 0.1 * a + b})
    frame.loc[[3, 17], "a"] = np.nan
    return frame


def train(folder: Path, which: str, seeds: int = 1) -> Path:
    """Trains the run `which` ("iris" or "typed") in `folder`, of `seeds` members; its run
    folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if which == "typed":
        typed_table().to_csv(folder / "t.csv", index=False)
    spec = folder / f"{which}.mlspec"
    text = IRIS if which == "iris" else TYPED
    spec.write_text(text.replace("train {\n", f"train {{\n    seeds = {seeds}\n")
                    if seeds > 1 else text)
    run = folder / "run"
    assert main(["run", str(spec), "--out", str(run), "--quiet"]) == 0
    return run
