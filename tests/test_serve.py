"""`mlspec serve`: a real server process on a free port of 127.0.0.1, asked over HTTP
(httpx). Its answers equal `mlspec predict`'s, for rows and for named columns of raw
text and categorical values, for one row and for 10,000; every bad request gets a 4xx
with a JSON error, and the server keeps answering after it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from serving_runs import train

from mlspec.cli import main
from mlspec.runtime.predict import rows_for
from mlspec.runtime.reload import load_run

httpx = pytest.importorskip("httpx")  # the test extra's; fastapi and uvicorn too
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

START_WAIT_S = 180  # jax's import and the compilation of every bucket, on a loaded machine


class Server:
    """`mlspec serve RUN --port 0` in a process; its address, read from its first line."""

    def __init__(self, run, log):
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlspec", "serve", str(run), "--port", "0"],
            stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env, cwd=log.parent)
        deadline = time.monotonic() + START_WAIT_S
        while True:
            found = re.search(r"at (http://127\.0\.0\.1:\d+) ", log.read_text())
            if found:
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        self.client = httpx.Client(base_url=found.group(1), timeout=120)

    def predict(self, body=None, **kwargs):
        return self.client.post("/predict", json=body, **kwargs) if body is not None \
            else self.client.post("/predict", **kwargs)

    def stop(self):
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _served(tmp_path_factory, kind: str):
    """A trained run of `kind` and a server of it, stopped after the module's tests."""
    run = train(tmp_path_factory.mktemp(kind), kind)
    server = Server(run, run.parent / "serve.log")
    try:
        yield run, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    yield from _served(tmp_path_factory, "iris")


@pytest.fixture(scope="module")
def typed(tmp_path_factory):
    yield from _served(tmp_path_factory, "typed")


def _predicted(run, data, tmp_path, *extra) -> pd.DataFrame:
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(run), str(data), "--out", str(out), *extra]) == 0
    return pd.read_csv(out)


def _error(answer, status: int, message: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert message in answer.json()["error"], answer.json()
    assert list(answer.json()) == ["error"]


def test_rows_are_answered_as_mlspec_predict_answers_them(iris, tmp_path):
    run, server = iris
    assert server.client.get("/health").json() == {
        "status": "ok", "model": "net", "run": str(run), "columns": ["x"], "row_width": 4}
    x, _ = rows_for(load_run(run), "valid", need_targets=False)
    expected = _predicted(run, "valid", tmp_path, "--proba")
    answer = server.predict({"rows": x.tolist(), "proba": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == expected["prediction"].tolist()  # class names
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(body["probabilities"],
                               expected[[f"proba_{c}" for c in body["classes"]]],
                               rtol=1e-5, atol=1e-6)
    single = server.predict({"rows": x[:1].tolist()}).json()
    assert single == {"predictions": expected["prediction"].tolist()[:1]}


@pytest.mark.parametrize("body, status, message", [
    ({"rows": [[5.1, 3.5, 1.4]]}, 422, "takes rows of 4 features, but was given 3"),
    ({"rows": [[5.1, 3.5, 1.4, 0.2], [1.0, 2.0]]}, 422, "row 1 has 2"),
    ({"rows": [["5.1", 3.5, 1.4, 0.2]]}, 422, "rows[0][0]: Input should be a valid number"),
    ({"rows": [[True, 3.5, 1.4, 0.2]]}, 422, "rows[0][0]: Input should be a valid number"),
    ({"rows": 5}, 422, "rows: Input should be a valid array"),
    ({"rows": []}, 422, '"rows" holds no rows'),
    ({}, 422, 'give either "rows" or "columns"'),
    ({"rows": [[1, 2, 3, 4]], "columns": {"x": [[1, 2, 3, 4]]}}, 422, "not both"),
    ({"rows": [[1, 2, 3, 4]], "proba": "yes"}, 422, "proba: Input should be a valid boolean"),
    ({"rows": [[1, 2, 3, 4]], "extra": 1}, 422, "extra: Extra inputs are not permitted"),
    ({"columns": {"y": [[1, 2, 3, 4]]}}, 422,
     "unknown column 'y'; did you mean 'x'? (the run's model takes the columns 'x')"),
    ({"rows": [[1e300, 2, 3, 4]]}, 422, "the model takes finite numbers"),
    ([1, 2], 422, "should be a JSON object"),
    (None, 422, "the request has no body"),
    (b"{\"rows\": [[1, 2", 400, "the request body is not JSON"),
    (b"rows=1", 400, "the request body is not JSON"),
])
def test_bad_requests_get_a_json_error_and_the_server_keeps_answering(iris, body, status,
                                                                      message):
    _, server = iris
    if isinstance(body, bytes):
        answer = server.predict(content=body, headers={"content-type": "application/json"})
    else:
        answer = server.predict(body)
    _error(answer, status, message)
    assert server.predict({"rows": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200


def test_other_paths_and_methods_are_json_errors_too(iris):
    _, server = iris
    _error(server.client.get("/nothing"), 404, "Not Found")
    _error(server.client.get("/predict"), 405, "Method Not Allowed")
    schema = server.client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"rows", "columns", "proba"}


def test_a_batch_of_10_000_rows_is_answered_as_predict_answers_it(iris, tmp_path):
    run, server = iris
    result = load_run(run)
    x, _ = rows_for(result, "valid", need_targets=False)
    rows = np.tile(x, (10_000 // len(x) + 1, 1))[:10_000]
    rows = rows + np.random.default_rng(0).normal(0, 0.3, rows.shape).astype(np.float32)
    pd.DataFrame(rows, columns=result.program.data.info.feature_names
                 or [f"x{i}" for i in range(4)]).to_csv(tmp_path / "many.csv", index=False)
    expected = _predicted(run, tmp_path / "many.csv", tmp_path)["prediction"].tolist()
    answer = server.predict({"rows": rows.tolist()})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == expected
    assert len(set(expected)) == 3


@pytest.mark.slow  # a second server, for a typed run
def test_named_columns_take_raw_text_and_categorical_values(typed, tmp_path):
    run, server = typed
    assert server.client.get("/health").json()["columns"] == ["a", "b", "city", "note"]
    frame = pd.read_csv(run.parent / "t.csv")
    columns = {c: frame[c].astype(object).where(frame[c].notna(), None).tolist()
               for c in ("a", "b", "city", "note")}
    assert columns["a"].count(None) == 2  # missing cells: the run fills them
    expected = _predicted(run, run.parent / "t.csv", tmp_path, "--proba")
    answer = server.predict({"columns": columns, "proba": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"]["label"] == expected["label"].tolist()
    np.testing.assert_allclose(body["predictions"]["score"], expected["score_0"], rtol=1e-4,
                               atol=1e-4)
    # the probabilities of the output that has them, as predict --proba gives them
    assert list(body["probabilities"]) == ["label"] == list(body["classes"])
    assert body["classes"]["label"] == ["high", "low"]
    np.testing.assert_allclose(body["probabilities"]["label"],
                               expected[["proba_label_high", "proba_label_low"]],
                               rtol=1e-5, atol=1e-6)

    # a city the train split lacks and unknown words are ids 0 and 1, as in predict
    odd = {"a": [50.0], "b": [0.1], "city": ["atlantis"], "note": ["zzz qqq good"]}
    (tmp_path / "odd.csv").write_text("a,b,city,note,label,score\n50.0,0.1,atlantis,"
                                      "zzz qqq good,low,1.0\n")
    alone = server.predict({"columns": odd}).json()["predictions"]
    assert alone["label"] == _predicted(run, tmp_path / "odd.csv", tmp_path)["label"].tolist()
    _error(server.predict({"rows": [[1.0, 2.0]]}), 422, 'give them as named columns: '
           '{"columns": {"a": [...], "b": [...], "city": [...], "note": [...]}}')
    _error(server.predict({"columns": {**odd, "cty": ["x"]}}), 422,
           "unknown column 'cty'; did you mean 'city'?")
    _error(server.predict({"columns": {"a": [1.0], "b": [1.0], "city": ["x"]}}), 422,
           "the columns lack 'note'")
    _error(server.predict({"columns": {**odd, "a": ["fifty"]}}), 422,
           "column 'a' holds str 'fifty' at row 0; it is a numeric column")
    _error(server.predict({"columns": {**odd, "city": [{"x": 1}]}}), 422,
           "column 'city' holds dict")
    _error(server.predict({"columns": {**odd, "b": [1.0, 2.0]}}), 422,
           "the columns differ in length")
    assert server.predict({"columns": odd}).status_code == 200


def test_a_signal_stops_the_server_and_the_command_exits_0(iris):
    _, server = iris
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    assert server.log.read_text().rstrip().endswith("stopped")


def test_serve_errors_before_serving(tmp_path, capsys, monkeypatch):
    assert main(["serve", str(tmp_path / "none"), "--port", "0"]) == 2
    assert "none: error: " in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    assert "mlspec serve needs FastAPI and uvicorn (the `serve` extra" in \
        capsys.readouterr().err
