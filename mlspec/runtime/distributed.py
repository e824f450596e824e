"""Training over several processes (`mlspec run --distributed`, or `jax.distributed`
started by the user before `mlspec.run`): starting `jax.distributed` with a bounded wait,
putting host values on a global mesh, and reading global arrays back on the host.

Every process runs the same program on the same data file: each puts its own share of a
split array (`jax.make_array_from_process_local_data`), and every host read of an array
that spans processes is a collective (`process_allgather`), which every process makes at
the same point. With one process, each function here is what a single machine does."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

DEFAULT_TIMEOUT = 300.0
"""Seconds to wait for every process to reach the coordinator."""


class DistributedError(Exception):
    """`jax.distributed` could not start (said to the user as bad input: exit 2)."""


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Starts `jax.distributed`: with the three given, as they say; without them, from the
    cluster's environment (SLURM, Open MPI, TPU pods), as `jax.distributed.initialize()`
    finds it. Must come before any computation. If the processes have not all met within
    `timeout` seconds, this process says so on stderr and exits with status 2: jax's own
    timeout aborts the process with a C++ stack trace, so ours comes first."""
    import jax

    if jax.distributed.is_initialized():
        return
    where = f"the coordinator {coordinator}" if coordinator else \
        "the coordinator that the cluster's environment names"
    who = "" if process_id is None else f"process {process_id} of {num_processes}: "
    message = (f"error: {who}the distributed run did not start within {timeout:g} s: not "
               f"every process reached {where}\n(is every process started, with the same "
               "--coordinator and --num-processes, and is that address reachable from "
               "here? --distributed-timeout sets the wait)")
    watchdog = threading.Timer(timeout, _give_up, args=(message,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=int(timeout) + 60)
    except (ValueError, RuntimeError) as exc:
        text = str(exc)
        if coordinator is None and "coordinator_address" in text:
            text = ("no cluster found in the environment (SLURM, Open MPI, a TPU pod): "
                    "give --coordinator HOST:PORT --num-processes N --process-id I")
        raise DistributedError(f"could not start the distributed run: {text}") from None
    finally:
        watchdog.cancel()


def _give_up(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    finally:
        os._exit(2)


def processes() -> int:
    """How many processes train together (1 without `jax.distributed`)."""
    import jax

    return jax.process_count()


def is_main() -> bool:
    """Whether this process is the one that writes and prints (process 0)."""
    import jax

    return jax.process_index() == 0


def place(leaf, sharding):
    """`leaf` (a host value, the same on every process) on `sharding`: each process gives
    only the rows its own devices hold."""
    import jax

    if jax.process_count() == 1:
        return jax.device_put(leaf, sharding)
    whole = np.asarray(to_host(leaf))
    part = whole
    indices = list(sharding.addressable_devices_indices_map(whole.shape).values())
    if whole.ndim and indices:  # this process's devices hold rows [start, stop)
        rows = [index[0] for index in indices]
        start = min(r.start or 0 for r in rows)
        stop = max(len(whole) if r.stop is None else r.stop for r in rows)
        part = whole[start:stop]
    return jax.make_array_from_process_local_data(sharding, part, whole.shape)


def to_host(leaf):
    """A NumPy copy of an array: one that spans processes is gathered, a collective."""
    import jax

    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
        return np.asarray(leaf)
    if leaf.is_fully_replicated:
        return np.asarray(leaf.addressable_data(0))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))


def fetch(tree):
    """`jax.device_get(tree)`, gathering what spans processes."""
    import jax

    if jax.process_count() == 1:
        return jax.device_get(tree)
    return jax.tree.map(to_host, tree)


def local(tree):
    """The tree on this process's default device: the whole of every array (gathered
    where it spans processes); as is with one process."""
    import jax

    if jax.process_count() == 1:
        return tree

    def here(leaf):
        if isinstance(leaf, jax.Array) and leaf.is_fully_addressable:
            return leaf
        return jax.device_put(to_host(leaf))

    return jax.tree.map(here, tree)


def agree(flag: bool) -> bool:
    """Whether `flag` holds on every process: a collective, at the same point in each."""
    import jax

    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.array([flag]), tiled=True)
    return bool(np.asarray(flags).all())
