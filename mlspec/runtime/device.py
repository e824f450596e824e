"""Where a training runs: JAX's persistent compilation cache, the mesh of devices that
`train { devices = N }` asks for, arrays put on the device, and the wait for a compiled
chunk that leaves the main thread free to run signal handlers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import numpy as np

from mlspec.semantics.program import Program
from mlspec.syntax.errors import SpecError

_CACHE_SET = False


def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache in the user's cache folder, so a second run of
    the same spec skips compiling. MLSPEC_COMPILATION_CACHE=0 turns it off."""
    global _CACHE_SET
    if _CACHE_SET or os.environ.get("MLSPEC_COMPILATION_CACHE", "1") == "0":
        return
    import jax

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        folder = os.path.join(base, "mlspec", "jax")
        os.makedirs(folder, exist_ok=True)
        if jax.config.jax_compilation_cache_dir is None:  # the user's own setting wins
            jax.config.update("jax_compilation_cache_dir", folder)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    except OSError:
        pass  # no writable cache folder: compile every time
    _CACHE_SET = True


def mesh(program: Program):
    """A one-axis mesh over the devices that `train { devices = N }` asks for: this
    machine's, or with `jax.distributed` started, every process's (see `choose`)."""
    import jax

    wanted = program.train.devices
    processes = jax.process_count()
    available = jax.devices()  # every process's: the local ones when there is one
    count = len(available) if wanted == "all" else wanted
    if count == 1 and processes == 1:
        return None
    chosen = choose(available, processes, count)
    if isinstance(chosen, str):
        from mlspec.semantics.data import setting_place

        raise SpecError.at(setting_place(program.spec.train.get("devices")),
                           f"devices = {count}, {chosen}")
    from jax.sharding import Mesh

    return Mesh(np.array(chosen), ("batch",))


def choose(available: list, processes: int, count: int) -> list | str:
    """The `count` devices of a mesh, or what is wrong with asking for them. With one
    process, the first `count` of its own; over several, `count / processes` of each
    process's devices (lowest ids first), the processes in order: every process takes
    part, with as many devices, so that each feeds the same share of the rows."""
    if processes == 1:
        if count <= len(available):
            return list(available[:count])
        return f"but this machine has {len(available)} local device(s)"
    if count > len(available):
        return f"but the {processes} processes have {len(available)} device(s) in all"
    if count % processes:
        return (f"but over {processes} processes it must be a multiple of {processes} "
                "(each process training on as many of its devices), or all")
    each = count // processes
    chosen = [d for p in range(processes)
              for d in sorted((d for d in available if d.process_index == p),
                              key=lambda d: d.id)[:each]]
    if len(chosen) < count:
        return f"but some of the {processes} processes have fewer than {each} device(s)"
    return chosen


def on_device(leaf):
    """`jnp.asarray(leaf)`; a NumPy array already of jax's dtype is put on the device as it
    is (jnp.asarray compiles a copy program for it, which a fresh process pays for)."""
    import jax
    import jax.numpy as jnp

    if isinstance(leaf, np.ndarray) and leaf.dtype == jax.dtypes.canonicalize_dtype(leaf.dtype):
        return jax.device_put(leaf)
    return jnp.asarray(leaf)


def computed(outputs, stop_now: Callable[[], bool], poll: float = 0.05) -> bool:
    """Waits for a chunk's outputs, asking `stop_now()` every `poll` seconds: False as
    soon as it says so. The wait is done by another thread, so that this one stays free
    to run signal handlers (during jax's own wait they would run only once it ends)."""
    import threading

    import jax

    done = threading.Event()

    def wait() -> None:
        try:
            with contextlib.suppress(Exception):  # raised again where the outputs are read
                jax.block_until_ready(outputs)
        finally:
            done.set()

    threading.Thread(target=wait, daemon=True, name="mlspec-chunk").start()
    while not stop_now():
        if done.wait(poll):
            return True
    return False
