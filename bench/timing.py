"""Compile and execution time inside one run, without changing the code being timed.

- Compile time comes from jax's own monitoring events: tracing to a jaxpr, lowering to
  MLIR and the XLA backend compile (`/jax/core/compile/*_duration`), for every jit in the
  run (the small eager-op compiles of `init` included). Events nest (a jit traced inside
  another's trace reports its own duration), so the time counted is the length of the
  union of the events' intervals, not their sum.
- Execution time: while a `JitTimer` is active, `jax.jit` is replaced by a wrapper whose
  functions block on their results (`jax.block_until_ready`) and record the wall time of
  each call; a call's execution time is its wall time less the compile intervals inside
  it. mlspec's runner and the hand-written code both look `jax.jit` up when they run, so
  both are timed the same way; mlspec fetches each call's result at once anyway, so the
  blocking changes nothing there.
"""

from __future__ import annotations

import functools
import time

COMPILE_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "xla",
}

_active: list[JitTimer] = []
_registered = False


def _listener(event: str, duration: float, **_kwargs) -> None:
    kind = COMPILE_EVENTS.get(event)
    if kind is None or not _active:
        return
    end = time.perf_counter()
    for timer in _active:
        timer.events.append((end - duration, end, kind))


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


class JitTimer:
    """with JitTimer(patch_jit=True) as t: ...; then t.compile_s, t.exec_s, t.breakdown()."""

    def __init__(self, patch_jit: bool = True):
        self.patch_jit = patch_jit
        self.events: list[tuple[float, float, str]] = []
        self.calls: list[tuple[float, float]] = []
        self._original = None

    def __enter__(self) -> JitTimer:
        global _registered
        import jax

        if not _registered:
            jax.monitoring.register_event_duration_secs_listener(_listener)
            _registered = True
        _active.append(self)
        if self.patch_jit:
            self._original = jax.jit
            jax.jit = self._jit
        return self

    def __exit__(self, *exc) -> None:
        import jax

        _active.remove(self)
        if self._original is not None:
            jax.jit = self._original
            self._original = None

    def _jit(self, fun=None, *args, **kwargs):
        import jax

        if fun is None:  # used as @jax.jit(static_argnames=...)
            return lambda f: self._jit(f, *args, **kwargs)
        jitted = self._original(fun, *args, **kwargs)

        @functools.wraps(fun)
        def timed(*call_args, **call_kwargs):
            start = time.perf_counter()
            out = jax.block_until_ready(jitted(*call_args, **call_kwargs))
            self.calls.append((start, time.perf_counter()))
            return out

        timed.lower = jitted.lower
        timed.trace = getattr(jitted, "trace", None)
        return timed

    # ---- results

    @property
    def compile_s(self) -> float:
        return union_length([(a, b) for a, b, _ in self.events])

    @property
    def exec_s(self) -> float:
        """Wall time in timed calls less the compile time inside them."""
        total = 0.0
        for a, b in self.calls:
            inside = [(max(s, a), min(e, b)) for s, e, _ in self.events if e > a and s < b]
            total += (b - a) - union_length(inside)
        return total

    def breakdown(self) -> dict[str, float]:
        """Compile time by kind (trace, lower, xla), each the union of its own events;
        trace includes nested traces only once. Also the number of XLA compiles."""
        out = {kind: union_length([(a, b) for a, b, k in self.events if k == kind])
               for kind in ("trace", "lower", "xla")}
        out["n_xla"] = sum(1 for *_, k in self.events if k == "xla")
        return out
