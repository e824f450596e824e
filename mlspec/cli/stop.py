"""Signals during `mlspec run`: what each one stops, and what the run says of it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

from mlspec.cli.errors import EXIT_INTERRUPTED, err

PAUSE_VARIABLE = "MLSPEC_TEST_PAUSE_AT"
"""For tests: `MLSPEC_TEST_PAUSE_AT=MOMENT` makes `mlspec run` say `paused at MOMENT` on
stderr there and wait (up to a minute) for a signal, so that a test can send one at a
known moment: start, loaded, training (after a chunk), trained, plots; first_chunk and
chunk (while the first chunk, or a later one, computes) wait for a second signal. With
`import`, `python -m mlspec` says `importing` before its imports and goes on."""


class Interrupted(Exception):
    """A signal arrived before anything trained."""


class Stop:
    """The signals (Ctrl-C, SIGTERM) that `mlspec run` has seen. The first asks the run to
    stop where nothing is lost: before training (nothing is written), at the end of a
    training chunk (the folder is written, `interrupted`), or after the last step, before
    the next plot (`completed`; the plots are left for `mlspec plot`). A second one before
    training stops at once; during training it stops without finishing the chunk in
    progress, and the folder is written with the chunks done (`now`); with none done (the
    first chunk computes), nothing is written. Each notice is lines under 100 characters."""

    MESSAGES = {
        "starting": "stopping before training; nothing will be written",
        "training": "stopping at the end of this chunk; the run folder will be written\n"
                    "(press Ctrl-C again to stop now, keeping the chunks done)",
        "first_chunk": "stopping at the end of this chunk; the run folder will be written\n"
                       "(press Ctrl-C again to stop now: no chunk has finished, so nothing "
                       "would be written)",
        "saving": "training has finished: writing the run folder, then stopping before "
                  "the plots",
        "writing": "writing the run folder of the steps done, then stopping",
        "stopping": "stopping; nothing will be written",
        "now": "stopping now, without the chunk in progress;\n"
               "the run folder will be written with the steps done so far",
        "now_nothing": "stopping now, without the chunk in progress;\n"
                       "nothing will be written, since no chunk of training has finished",
        "again": "already stopping; the run folder will be written",
        "again_nothing": "already stopping; nothing will be written",
    }

    def __init__(self, quiet: bool):
        self.signals: list[int] = []
        self.quiet = quiet
        self.phase = "starting"
        self.now = False
        """A second signal during training: drop the chunk in progress."""
        self.left_running = False
        """A chunk was dropped while computing: the process may not wait for it at exit."""
        self.kept: Callable[[], bool] = lambda: False
        """Whether some chunk of training has finished (is kept if the run stops now)."""
        self._paused: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.signals)

    def handle(self, signum, frame) -> None:
        again = bool(self.signals)
        self.signals.append(signum)
        if again and self.phase == "starting":  # a second signal while loading: stop now
            self.phase = "stopping"
            raise Interrupted
        nothing = "" if self.kept() else "_nothing"
        if again and self.phase == "training":
            message = self.MESSAGES[("again" if self.now else "now") + nothing]
            self.now = True
        elif self.phase == "training" and nothing:
            message = self.MESSAGES["first_chunk"]
        else:
            message = self.MESSAGES[self.phase]
        if not self.quiet:
            err(message)

    def check(self) -> None:
        if self.signals and self.phase == "starting":
            raise Interrupted

    def pause(self, moment: str, until=None) -> None:
        if os.environ.get(PAUSE_VARIABLE) != moment:
            return
        err(f"paused at {moment}")
        deadline = time.monotonic() + 60
        until = until or (lambda: bool(self.signals))
        while not until() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop_now(self, training) -> bool:
        """Asked while a chunk of `training` computes."""
        moment = "chunk" if training.blocks_done else "first_chunk"
        if moment not in self._paused:
            self._paused.add(moment)
            self.pause(moment, until=lambda: self.now)
        if self.now:
            self.left_running = True
        return self.now

    def plots_stop(self) -> Callable[[], bool]:
        """`should_stop` for the plots: asked before each one."""
        checks = 0

        def should_stop() -> bool:
            nonlocal checks
            checks += 1
            if checks == 2:
                self.pause("plots")
            return bool(self)

        return should_stop


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_caught(quiet: bool):
    stop = Stop(quiet)
    previous = {s: signal.signal(s, stop.handle) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop_at_once(signum, frame) -> None:
    """Ctrl-C or SIGTERM outside a training run: nothing is worth finishing, so stop at
    once (a KeyboardInterrupt raised inside jax's start-up is swallowed, or crashes it)."""
    err("interrupted")
    os._exit(EXIT_INTERRUPTED)


_left_running = False


def mark_left_running() -> None:
    global _left_running
    _left_running = True


def left_running() -> bool:
    """Whether a run stopped without waiting for the chunk in progress: the process then
    ends at once, instead of waiting at exit for the device to finish a chunk nobody
    reads."""
    return _left_running
