"""`mlspec export RUN_DIR --format stablehlo`: a file that a process without mlspec loads
with `jax.export.deserialize` and runs on raw rows of any batch size, giving the run's
outputs (and so `mlspec predict`'s predictions); its description beside it is enough to
encode raw categorical and text cells; bad arguments are clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from serving_runs import train

from mlspec.cli import main
from mlspec.runtime.predict import rows_for
from mlspec.runtime.reload import load_run

# Run where mlspec cannot be imported: the file and its description are all it has.
LOADER = r"""
import json, re, sys
sys.modules["mlspec"] = None  # any import of mlspec fails
import numpy as np
from jax import export

path, rows_path, out_path = sys.argv[1:]
exported = export.deserialize(bytearray(open(path, "rb").read()))
described = json.load(open(path + ".json"))
rows = np.load(rows_path, allow_pickle=True)
args = []
for arg in described["arguments"]:
    if arg["kind"] == "float":
        args.append(np.stack([rows[c].astype(np.float32) for c in arg["columns"]], axis=1)
                    if "columns" in arg else rows[arg["name"]].astype(np.float32))
    elif arg["kind"] == "category":
        ids = {v: i for i, v in enumerate(arg["vocabulary"], 1)}
        args.append(np.array([ids.get(v, 0) for v in rows[arg["column"]]], np.int32))
    else:  # the text ids as the description says: words, ids from 2, 1 unknown, 0 pads
        ids = {w: i for i, w in enumerate(arg["vocabulary"], 2)}
        length = arg["shape"][1]
        encoded = np.zeros((len(rows[arg["column"]]), length), np.int32)
        for r, text in enumerate(rows[arg["column"]]):
            found = [ids.get(w, 1) for w in re.findall(r"(?:[^\W_]|')+", text.lower())]
            encoded[r, :len(found[:length])] = found[:length]
        args.append(encoded)
outputs = exported.call(*args)
outputs = outputs if isinstance(outputs, tuple) else (outputs,)
np.savez(out_path, *[np.asarray(o) for o in outputs], one_row=np.asarray(
    exported.call(*[a[:1] for a in args])[0] if len(outputs) > 1 else
    exported.call(*[a[:1] for a in args])))
assert "jax" in sys.modules and sys.modules["mlspec"] is None
"""


def _load_elsewhere(tmp_path, exported, rows: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """The exported function's outputs for `rows` (columns by name), and its first output
    for their first row alone, computed in a fresh process without mlspec."""
    np.savez(tmp_path / "rows.npz", **{k: np.asarray(v) for k, v in rows.items()})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", LOADER, str(exported),
                           str(tmp_path / "rows.npz"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    out = np.load(tmp_path / "out.npz")
    return [out[f"arr_{i}"] for i in range(len(out.files) - 1)], out["one_row"]


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("iris"), "iris", seeds=2)


@pytest.fixture(scope="module")
def typed_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("typed"), "typed")


def test_the_stablehlo_file_gives_the_run_s_outputs_without_mlspec(iris_run, tmp_path,
                                                                   capsys):
    assert main(["export", str(iris_run), "--format", "stablehlo"]) == 0
    exported = iris_run / "model.stablehlo"  # the default: in the run folder
    assert capsys.readouterr().out.split() == ["wrote", str(exported), "wrote",
                                               f"{exported}.json"]
    described = json.loads((iris_run / "model.stablehlo.json").read_text())
    assert described["arguments"][0]["shape"] == ["batch", 4]
    assert described["outputs"][0]["classes"] == ["setosa", "versicolor", "virginica"]
    assert described["platforms"] == ["cpu", "cuda"]

    result = load_run(iris_run)
    x, _ = rows_for(result, "valid", need_targets=False)  # raw rows: not standardized
    assert result.normalizer is not None and abs(x.mean()) > 1  # so the file standardizes
    (out,), one_row = _load_elsewhere(tmp_path, exported, {"x": x})
    np.testing.assert_allclose(out, result.outputs(x), rtol=1e-5, atol=1e-5)
    assert (out.argmax(-1) == result.predict(x)).all()
    assert one_row.shape == (1, 3)  # any batch size: the same file for one row
    np.testing.assert_allclose(one_row, out[:1], rtol=1e-5, atol=1e-5)


def test_typed_inputs_take_ids_from_the_vocabularies_and_outputs_are_a_tuple(typed_run,
                                                                             tmp_path):
    out_file = tmp_path / "typed.shlo"
    assert main(["export", str(typed_run), "--out", str(out_file)]) == 0
    described = json.loads((tmp_path / "typed.shlo.json").read_text())
    assert [a["name"] for a in described["arguments"]] == ["x", "city", "note"]
    assert [a["kind"] for a in described["arguments"]] == ["float", "category", "tokens"]
    assert [o["name"] for o in described["outputs"]] == ["label", "score"]
    assert described["outputs"][1]["kind"] == "values"
    assert "missing (NaN) cells filled with the train means" in \
        described["arguments"][0]["preprocessing"]

    # raw cells of the whole file, missing ones (NaN) too: the file fills them
    frame = pd.read_csv(typed_run.parent / "t.csv")
    assert frame["a"].isna().sum() == 2
    rows = {c: frame[c].to_numpy(object if c in ("city", "note") else np.float64)
            for c in ("a", "b", "city", "note")}
    (label, score), _ = _load_elsewhere(tmp_path, out_file, rows)
    predicted = pd.read_csv(_predict(typed_run, typed_run.parent / "t.csv", tmp_path))
    names = np.array(described["outputs"][0]["classes"])
    assert (names[label.argmax(-1)] == predicted["label"].to_numpy()).all()
    np.testing.assert_allclose(score[:, 0], predicted["score_0"], rtol=1e-4, atol=1e-4)


def test_a_member_is_exported_beside_the_best(iris_run, capsys):
    from jax import export

    assert main(["export", str(iris_run), "--member", "1"]) == 0
    path = iris_run / "model-member-1.stablehlo"
    assert capsys.readouterr().out.split() == ["wrote", str(path), "wrote", f"{path}.json"]
    member, best = load_run(iris_run, member=1), load_run(iris_run)
    x, _ = rows_for(member, "valid", need_targets=False)
    out = np.asarray(export.deserialize(bytearray(path.read_bytes())).call(x))
    np.testing.assert_allclose(out, member.outputs(x), rtol=1e-5, atol=1e-5)
    assert np.abs(out - best.outputs(x)).max() > 1e-2  # the member's, not the best's


def _predict(run, data, tmp_path):
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(run), str(data), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("args, code, message", [
    (["{tmp}"], 2, "it is not a run folder (no manifest.json)"),
    (["{tmp}/none", "--format", "stablehlo"], 2, "no such run folder"),
    (["{run}", "--format", "onnx"], 2, "--format onnx is not available"),
    (["{run}", "--out", "{tmp}/no/m.stablehlo"], 1, "there is no folder"),
    (["{run}", "--out", "{run}/state.msgpack"], 1, "a file of the run folder itself"),
    (["{run}", "--out", "{tmp}"], 1, "a folder is in its place"),
    (["{run}", "--member", "2"], 2, "it has members 0 to 1 (0 the best); there is no "
                                    "member 2"),
    (["{run}", "--program"], 2, "a run folder is exported with --format stablehlo"),
])
def test_bad_arguments_are_clear_errors(iris_run, tmp_path, capsys, args, code, message):
    args = [a.format(tmp=tmp_path, run=iris_run) for a in args]
    assert main(["export", *args]) == code
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert not list(tmp_path.glob("**/*.stablehlo"))


def test_an_unknown_format_is_a_usage_error(iris_run, capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", str(iris_run), "--format", "tflite"])
    assert info.value.code == 2
    assert "invalid choice: 'tflite' (choose from 'stablehlo', 'onnx')" in \
        capsys.readouterr().err
