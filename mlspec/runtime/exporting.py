"""`mlspec export RUN_DIR`: a trained run's model, with its preprocessing, as a portable
file that maps a batch of raw rows (any number of them) to the model's outputs.

- `stablehlo`: serialized by `jax.export` (lowered for CPU and CUDA) with a symbolic batch
  size; `jax.export.deserialize(bytearray(data)).call(*inputs)` runs it, without mlspec.
- `onnx` is not available (`ONNX_UNAVAILABLE` says why).

The function takes one argument per model input, in the model's order: the numeric
features as float32 rows in the data's units (the run's standardization, and the train
means that fill missing cells where the data said `missing = "fill"`, are inside), and
int32 ids for a categorical or text input. It answers the model's outputs: logits (or the
values, for real targets) whose argmax (or rule, `prediction` below) is `mlspec predict`'s;
a tuple of them, in the model's order, for several outputs. Beside the file, FILE.json
describes the arguments, the outputs and the vocabularies that turn raw cells into ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlspec.catalog.sources.typed import FIRST_WORD, PAD, UNKNOWN, WORD

FORMATS = {"stablehlo": ".stablehlo"}
ONNX_UNAVAILABLE = (
    "--format onnx is not available: jax2onnx, the maintained JAX-to-ONNX converter, "
    "requires (from 0.13.1 to the newest, 0.17.1) an orbax-checkpoint older than the one "
    "mlspec's checkpoints need, and the releases tried (0.12.5, which installs beside "
    "mlspec, and 0.17.1) turn mlspec's dense layers into wrong numbers; export StableHLO "
    "instead (--format stablehlo), which jax.export.deserialize runs without mlspec "
    "(docs/serving.md says more)")
PLATFORMS = ("cpu", "cuda")
"""What the StableHLO file is lowered for: it runs on either, as the loader's is."""
BATCH = "batch"


@dataclass(frozen=True)
class Argument:
    """One argument of the exported function: a model input."""

    name: str
    shape: tuple[int, ...]
    """Per row."""
    dtype: str
    kind: str
    """`float`, `category` or `tokens`."""


def arguments(result) -> list[Argument]:
    """The model's inputs in its order (a graph's `inputs`; a chain's single input)."""
    program = result.program
    infos = {i.name: i for i in program.data.info.inputs}
    model = program.model
    if model.graph is not None and model.inputs:
        return [Argument(i.name, tuple(i.shape), i.dtype, infos[i.name].kind
                         if i.name in infos else _kind(i.dtype, i.shape))
                for i in model.inputs]
    info = program.data.info.inputs[0]
    return [Argument(info.name, tuple(model.input_shape),
                     "float32" if info.kind == "float" else "int32", info.kind)]


def _kind(dtype: str, shape: tuple[int, ...]) -> str:
    """An input's kind from its type alone, as the compiler reads it (`token_inputs`)."""
    if dtype == "float32":
        return "float"
    return "tokens" if len(shape) == 1 else "category"


def output_names(result) -> list[str]:
    model = result.program.model
    if model.output_shapes:
        return [name for name, _ in model.output_shapes]
    return [model.name]


def _preprocessing(result, args: list[Argument]) -> dict[str, tuple]:
    """For each float input that the run preprocesses: (fill, mean, std), float32 arrays
    or None. Only the numeric features (`x`, or the single input) are standardized and
    filled, as `predict` does."""
    info = result.program.data.info
    steps = {}
    for arg in args:
        if arg.kind != "float" or not (arg.name == "x" or len(args) == 1):
            continue
        fill = None
        encoding = result.encoding
        if encoding is not None and encoding.fill and info.feature_names:
            fill = np.array([encoding.fill.get(n, np.nan) for n in info.feature_names],
                            np.float32)
        mean = std = None
        if result.normalizer is not None:
            mean, std = (np.asarray(a, np.float32) for a in result.normalizer)
        if fill is not None or mean is not None:
            steps[arg.name] = (fill, mean, std)
    return steps


def portable_function(result):
    """(fn, args, outputs): the model with its preprocessing as a function of one array
    per argument, answering one array, or a tuple of them for several outputs."""
    import jax.numpy as jnp

    args = arguments(result)
    steps = _preprocessing(result, args)
    names = output_names(result)
    params, model_state = result.params, result.state["model_state"]
    trainer = result.trainer

    def fn(*arrays):
        feed = {}
        for arg, array in zip(args, arrays, strict=True):
            if arg.name in steps:
                fill, mean, std = steps[arg.name]
                if fill is not None:  # (1, features): ranks match, as strict jax wants
                    array = jnp.where(jnp.isnan(array), fill[None], array)
                if mean is not None:
                    array = (array - mean[None]) / std[None]
            feed[arg.name] = array
        x = feed[args[0].name] if len(args) == 1 else feed
        out, _ = trainer.apply(params, model_state, x)
        if isinstance(out, dict):
            return tuple(out[name] for name in names)
        return out

    return fn, args, names


def stablehlo_bytes(result) -> bytes:
    import jax
    from jax import export

    fn, args, _ = portable_function(result)
    batch, = export.symbolic_shape(BATCH)
    specs = [jax.ShapeDtypeStruct((batch, *a.shape), a.dtype) for a in args]
    exported = export.export(jax.jit(fn), platforms=PLATFORMS)(*specs)
    return bytes(exported.serialize())


def _prediction_rule(loss) -> str:
    """How `predict` reads an output: `loss.predict`'s rule, in words."""
    if loss.target == "binary":
        return "class 1 where output[:, 0] >= 0, else class 0"
    if loss.target == "class":
        return "argmax over the last axis (the first of equal ones)"
    return "the values themselves"


def description(result, file_name: str) -> dict[str, Any]:
    """FILE.json: what the exported function takes and answers, and how raw cells become
    the ids of its categorical and text arguments."""
    info = result.program.data.info
    vocabularies = result.encoding.vocabularies if result.encoding is not None else {}
    steps = _preprocessing(result, arguments(result))
    described = []
    for arg in arguments(result):
        entry: dict[str, Any] = {"name": arg.name, "dtype": arg.dtype,
                                 "shape": [BATCH, *arg.shape], "kind": arg.kind}
        if arg.kind == "float" and arg.name in steps:
            fill, mean, _ = steps[arg.name]
            entry["preprocessing"] = [*(["missing (NaN) cells filled with the train "
                                         "means"] if fill is not None else []),
                                      *(["standardized with the train split's mean and "
                                         "std"] if mean is not None else [])]
        if arg.kind == "float" and arg.name in ("x", info.inputs[0].name) and \
                info.feature_names:
            entry["columns"] = list(info.feature_names)
        vocabulary = vocabularies.get(arg.name)
        if vocabulary is not None:
            entry["column"] = vocabulary.column
            if vocabulary.kind == "category":
                entry["ids"] = ("0 for a value the train split lacks (or a missing one), "
                                "then 1, 2, ... for the entries in order")
            else:
                entry["ids"] = (f"lower-cased words (the regex {WORD.pattern!r}), each "
                                f"{FIRST_WORD}, {FIRST_WORD + 1}, ... for the entries in "
                                f"order, {UNKNOWN} for another word; truncated or padded "
                                f"with {PAD} at the end to {vocabulary.seq_len} ids")
            entry["vocabulary"] = list(vocabulary.entries)
        described.append(entry)
    heads = result.trainer.heads
    outputs = []
    for name in output_names(result):
        loss = result.trainer.outputs.losses[name] if heads else result.trainer.data_loss
        own = info.target_info(name) if heads else info
        outputs.append({"name": name, "kind": "logits" if loss.has_probabilities else
                        "values" if own.target == "real" else "scores",
                        "loss": loss.kind, "prediction": _prediction_rule(loss),
                        **({"classes": list(own.class_names)} if own.class_names else {})})
    return {"file": file_name, "format": "stablehlo", "model": result.program.name,
            "platforms": list(PLATFORMS),
            "arguments": described, "outputs": outputs,
            "returns": "a tuple of the outputs, in order" if len(outputs) > 1
            else "the output's array"}


def default_out(run_dir: Path, fmt: str, member: int) -> Path:
    """In the run folder: model.stablehlo (model-member-K.stablehlo for a member K > 0)."""
    suffix = f"-member-{member}" if member else ""
    return run_dir / f"model{suffix}{FORMATS[fmt]}"


def describe_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def export_run(result, out: Path) -> list[Path]:
    """Writes the exported file and its description beside it; the paths written."""
    from mlspec.files import atomic_write

    data = stablehlo_bytes(result)
    described = json.dumps(description(result, out.name), indent=2) + "\n"
    atomic_write(out, data)
    atomic_write(describe_path(out), described)
    return [out, describe_path(out)]
