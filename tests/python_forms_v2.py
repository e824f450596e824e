"""The Python forms of the v2 examples in specs/ (tests/test_python_api.py checks that
each equals its parsed file and prints as it). The builder has no graph statements yet,
so the inception block's graph is written in the IR."""

from __future__ import annotations

import mlspec as m
from mlspec.semantics import builders
from mlspec.syntax import ir


def _reviews(name: str, *layers):
    source = m.csv("data/reviews.csv", target="label", text=["review"], seq_len=10)
    return m.spec(m.model(name, *layers), data=m.data(source=source, valid=0.25),
                  train=m.train(loss="softmax_cross_entropy",
                                optimizer=m.adam(learning_rate=0.01), epochs=4, batch=64,
                                eval_every=46, metrics=["accuracy"]))


def _bind(name: str, start, *layers) -> ir.Binding:
    start = ir.Name(name=start) if isinstance(start, str) else start
    return ir.Binding(name=name, value=ir.Chain(start=start, layers=builders.layers(layers)))


def digits_inception():
    f = m.arg("f")
    concat = ir.Call.of("concat", *(ir.Name(name=n) for n in ("a", "b", "c")))
    inception = ir.Block(name="inception", params=(ir.BlockParam(name="f"),), graph=(
        _bind("a", "in", m.conv(f, 1), "relu"),
        _bind("b", "in", m.conv(f, 1), "relu", m.conv(f, 3), "relu"),
        _bind("c", "in", m.max_pool(3, stride=1, padding="SAME"), m.conv(f, 1), "relu"),
        _bind("out", concat)))
    return m.spec(inception, m.model(
        "digits_inception", m.reshape([8, 8, 1]), m.layer(inception, 8), m.max_pool(2),
        m.layer(inception, 16), "global_avg_pool", m.dense(m.classes)),
        data=m.data(source="digits", valid=0.2, standardize=True),
        train=m.train(loss="softmax_cross_entropy", optimizer=m.adam(learning_rate=0.003),
                      epochs=20, batch=64, eval_every=45, metrics=["accuracy"]))


def digits_autoencoder():
    return m.spec(m.model(
        "digits_autoencoder", m.conv(16, 3), "relu", m.max_pool(2), m.conv(4, 3), "relu",
        m.upsample(2), m.conv_transpose(16, 3), "relu", m.conv_transpose(1, 3), "sigmoid",
        "flatten"),
        data=m.data(source=m.npz("data/digits_images.npz"), valid=0.2),
        train=m.train(loss="mse", optimizer=m.adam(learning_rate=0.003), epochs=20, batch=64,
                      eval_every=45, metrics=["mae"]))


def income():
    c = m.binding("c", "city", m.embedding(features=4))
    j = m.binding("j", "job", m.embedding(features=3))
    h = m.binding("h", m.concat("x", c, j), m.dense(16), "relu")
    source = m.csv("data/income.csv", target="high", categorical=["city", "job"])
    return m.spec(m.model("income", c, j, h, m.output("high", h, m.dense(m.classes))),
                  data=m.data(source=source, valid=0.25, standardize=True),
                  train=m.train(loss="softmax_cross_entropy",
                                optimizer=m.adam(learning_rate=0.01), epochs=10, batch=64,
                                eval_every=50, metrics=["accuracy"]))


def digits_two_outputs():
    h = m.binding("h", "x", m.dense(64), "relu")
    source = m.csv("data/digits_parity.csv", target=["digit", "parity"])
    loss = {m.softmax_cross_entropy(m.name(head)): 1 for head in ("digit", "parity")}
    return m.spec(m.model("digits_two_outputs", h, m.output("digit", h, m.dense(m.classes)),
                          m.output("parity", h, m.dense(m.classes))),
                  data=m.data(source=source, valid=0.2, standardize=True),
                  train=m.train(loss=loss, optimizer=m.adam(learning_rate=0.003), epochs=10,
                                batch=64, eval_every=45,
                                # a metric of one output is a path: the builder's metric
                                # strings name only the catalogue's metrics
                                metrics=["digit.accuracy", "parity.accuracy"]))


def digits_siamese():
    tower = m.share("tower", m.dense(32))
    ta = m.binding("ta", "a", tower, "relu")
    tb = m.binding("tb", "b", tower, "relu")
    p = m.binding("p", m.multiply(ta, tb))
    same = m.output("same", m.concat(ta, tb, p), m.dense(32), "relu", m.dense(m.classes))
    source = m.npz("data/digits_pairs.npz", inputs=["a", "b"], y="label")
    return m.spec(m.model("digits_siamese", tower, ta, tb, p, same),
                  data=m.data(source=source, valid=0.2),
                  train=m.train(loss="softmax_cross_entropy",
                                optimizer=m.adam(learning_rate=0.003), epochs=20, batch=64,
                                eval_every=75, metrics=["accuracy"]))


BUILT_V2 = {
    "reviews_lstm": lambda: _reviews("reviews_lstm", m.embedding(features=16), m.lstm(32),
                                     m.dense(m.classes)),
    "reviews_attention": lambda: _reviews(
        "reviews_attention", m.embedding(features=32), "position_embedding",
        m.attention(heads=2), "global_avg_pool", m.dense(m.classes)),
    "reviews_bag": lambda: _reviews("reviews_bag", m.embedding(features=32),
                                    "global_avg_pool", m.dense(32), "relu",
                                    m.dense(m.classes)),
    "digits_inception": digits_inception,
    "digits_autoencoder": digits_autoencoder,
    "income": income,
    "digits_two_outputs": digits_two_outputs,
    "digits_siamese": digits_siamese,
}
