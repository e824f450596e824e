"""A run as the experiment trackers see it: TensorBoard event files in every run folder
(`tensorboard/`, by tensorboardX, without TensorFlow) and, with `mlspec run --mlflow URI`,
an MLflow run (the optional extra `mlflow`).

TensorBoard gets, per evaluation (a history row), one event holding every recorded metric,
tagged by its history column with `/` for `.` (`valid/accuracy`), and the learning rate
(`learning_rate`) at that step; and the hyperparameters: the resolved settings (and for
seeds or a sweep, a subfolder per member, numbered as metrics.json's `members`, with its
swept settings) as TensorBoard's hparams, and the resolved spec as text."""

from __future__ import annotations

import shutil
import socket
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlspec.runtime.checkpoints import FOLDER as CHECKPOINTS

TENSORBOARD = "tensorboard"


def hyperparameters(program, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolved `data` and `train` settings by path (`train.steps`, numbers as
    numbers, anything else as the spec writes it), the swept `settings` first."""
    from mlspec.semantics.canonical import resolved_spec
    from mlspec.syntax import ir
    from mlspec.syntax.printer import format_expr

    values: dict[str, Any] = {key: _plain(value) for key, value in (settings or {}).items()}
    spec = resolved_spec(program)
    for name in ("data", "train"):
        section = getattr(spec, name)
        for setting in section.settings if section is not None else ():
            value = setting.value
            plain = value.value if isinstance(value, ir.Number | ir.Bool) \
                else format_expr(value)
            values.setdefault(f"{name}.{setting.path}", plain)
    return values


def _plain(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) else str(value)


def learning_rates(program, steps) -> np.ndarray | None:
    """The optimizer's learning rate at each of `steps` (a schedule evaluated there), or
    None where the optimizer has none."""
    rate = program.train.optimizer.arguments.get("learning_rate")
    if rate is None:
        return None
    if isinstance(rate, int | float):
        return np.full(len(steps), float(rate))
    import jax

    schedule = rate.build()
    with jax.numpy_dtype_promotion("standard"):  # as the trainer runs optax's code
        return np.asarray(jax.vmap(schedule)(np.asarray(steps, np.int32)), np.float64)


def _members(result) -> list[tuple[str, Any]]:
    """(subfolder, member result) of each member; ("", result) for a single run."""
    if not result.members:
        return [("", result)]
    return [(f"member-{i}", member) for i, member in enumerate(result.members)]


def write_tensorboard(result, out: Path) -> Path:
    """Writes `out`/tensorboard afresh from the result's history (a resumed run's earlier
    files are replaced), each member's event file at once."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.summary import hparams, text

    folder = Path(out) / TENSORBOARD
    shutil.rmtree(folder, ignore_errors=True)
    ended = time.time()
    for name, member in _members(result):
        history = member.history
        columns = [c for c in history.columns if c != "step"]
        steps = history["step"].to_numpy()
        values = history[columns].to_numpy(np.float64)
        rates = learning_rates(member.program, steps)
        tags = [c.replace(".", "/") for c in columns] + ["learning_rate"] * (rates is not None)
        if rates is not None:
            values = np.column_stack([values, rates])
        total = max(int(steps[-1]) if len(steps) else 0, 1)
        events = [Event(wall_time=ended, file_version="brain.Event:2")]
        for step, row in zip(steps.tolist(), values.tolist(), strict=True):
            # one event per evaluation; its time spread over the run's wall time
            events.append(Event(
                step=step, wall_time=ended - member.wall_time * (1 - step / total),
                summary=Summary(value=[Summary.Value(tag=t, simple_value=v)
                                       for t, v in zip(tags, row, strict=True)])))
        metrics = {k.replace(".", "/"): v for k, v in member.metrics.items()}
        final = [Summary.Value(tag=t, simple_value=v) for t, v in metrics.items()
                 if t.startswith("test/")]  # measured once, at the end
        summaries = [Summary(value=final)] if final else []
        summaries += hparams(hyperparameters(member.program, member.settings), metrics)
        summaries.append(text("spec", "```\n" + _resolved_text(member.program) + "\n```"))
        events += [Event(step=member.steps_done, wall_time=ended, summary=summary)
                   for summary in summaries]
        (folder / name).mkdir(parents=True, exist_ok=True)
        path = folder / name / f"events.out.tfevents.{int(ended)}.{socket.gethostname()}"
        path.write_bytes(records([e.SerializeToString() for e in events]))
    return folder


def records(data: list[bytes]) -> bytes:
    """`data` as the records of a TensorBoard event file (TFRecord framing: the length,
    its masked CRC-32C, the bytes, theirs). tensorboardX's writer checksums in pure
    Python, a byte at a time (half a second for 2,000 evaluations); here every record's
    checksum advances together, in NumPy."""
    lengths = np.array([len(d) for d in data], np.uint64)
    headers = [struct.pack("<Q", n) for n in lengths.tolist()]
    header_crcs, data_crcs = _masked_crc32c(headers), _masked_crc32c(data)
    return b"".join(b"".join((h, struct.pack("<I", hc), d, struct.pack("<I", dc)))
                    for h, hc, d, dc in zip(headers, header_crcs.tolist(), data,
                                            data_crcs.tolist(), strict=True))


def _crc32c_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):  # the reflected Castagnoli polynomial
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return table.astype(np.uint32)


def _masked_crc32c(data: list[bytes]) -> np.ndarray:
    """The CRC-32C of each of `data`, masked as TFRecord files hold it."""
    table = _crc32c_table()
    lengths = np.array([len(d) for d in data])
    order = np.argsort(-lengths, kind="stable")  # longest first: the live ones lead
    width = int(lengths.max(initial=0))
    grid = np.zeros((len(data), width), np.uint8)
    for row, i in enumerate(order.tolist()):
        grid[row, :lengths[i]] = np.frombuffer(data[i], np.uint8)
    # live[j]: how many records are longer than j bytes (the first ones, longest first)
    live = np.searchsorted(-lengths[order], -np.arange(width), side="left")
    crc = np.full(len(data), 0xFFFFFFFF, np.uint32)
    for j in range(width):
        n = live[j]
        head = crc[:n]
        crc[:n] = table[(head ^ grid[:n, j]) & 0xFF] ^ (head >> np.uint32(8))
    crc ^= np.uint32(0xFFFFFFFF)
    masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)
    out = np.empty_like(masked)
    out[order] = masked
    return out


def _resolved_text(program) -> str:
    from mlspec.semantics.canonical import resolved_spec

    return resolved_spec(program).to_text()



# ------------------------------------------------------------------------------ MLflow

MLFLOW_MISSING = ("--mlflow needs the optional extra 'mlflow' (mlflow is not installed):\n"
                  "pip install 'mlspec[mlflow]'")
_BATCH = 1000  # MLflow's most metrics in one log_batch


class TrackingError(Exception):
    """The tracking store could not be reached or written."""


def mlflow_client(uri: str):
    """An MLflow client of the store at `uri`, checked reachable; ImportError when mlflow
    is not installed, TrackingError when the store cannot be used."""
    import logging
    import os

    from mlflow.tracking import MlflowClient

    # a server that does not answer is said in seconds, not after minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its database set-up at INFO
    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # mlflow raises its own and the stores' errors
        raise TrackingError(_first_line(exc)) from None
    return client


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _param_text(value: Any) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text[:6000]  # MLflow's longest param value


_STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "interrupted": "KILLED",
           "diverged": "FAILED"}


def log_mlflow(client, result, out: Path) -> str:
    """Logs the run to MLflow under the experiment named by its model: the resolved
    settings as params, every history column (and the learning rate) per step as
    metrics, the final metrics, and the run folder as artifacts. Seeds or a sweep are a
    parent run holding the folder, with a nested run per member. The (parent) run's id."""
    from mlflow.entities import Metric, Param

    name = result.program.name
    try:
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else \
            client.create_experiment(name)
        parent = client.create_run(experiment_id, run_name=Path(out).name,
                                   tags={"mlspec.run_folder": str(Path(out).resolve())})
        parent_id = parent.info.run_id
        now = int(time.time() * 1000)
        for label, member in _members(result):
            run_id = parent_id
            if label:
                run_id = client.create_run(experiment_id, run_name=label, tags={
                    "mlflow.parentRunId": parent_id}).info.run_id
            params = [Param(k, _param_text(v)) for k, v in
                      hyperparameters(member.program, member.settings).items()]
            history = member.history
            steps = history["step"].to_numpy()
            series = {c: history[c].to_numpy(np.float64) for c in history.columns
                      if c != "step"}
            rates = learning_rates(member.program, steps)
            if rates is not None:
                series["learning_rate"] = rates
            metrics = [Metric(key, value, now, step) for key, values in series.items()
                       for step, value in zip(steps.tolist(), values.tolist(), strict=True)]
            metrics += [Metric(f"final.{k}", v, now, member.steps_done)
                        for k, v in member.metrics.items()]
            client.set_tag(run_id, "mlspec.status", member.status)
            for i in range(0, len(params), 100):  # MLflow takes 100 params a batch
                client.log_batch(run_id, params=params[i:i + 100])
            for i in range(0, len(metrics), _BATCH):
                client.log_batch(run_id, metrics=metrics[i:i + _BATCH])
            if label:
                client.set_terminated(run_id, _STATUS[member.status])
        for path in sorted(Path(out).iterdir()):  # not its lock, nor the checkpoints
            if path.name in (".lock", CHECKPOINTS):
                continue
            if path.is_dir():
                client.log_artifacts(parent_id, str(path), artifact_path=path.name)
            else:
                client.log_artifact(parent_id, str(path))
        client.set_terminated(parent_id, _STATUS[result.status])
    except Exception as exc:  # mlflow raises its own and the stores' errors
        raise TrackingError(_first_line(exc)) from None
    return parent_id
