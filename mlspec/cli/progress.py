"""How a training goes, as `mlspec run` shows it between compiled chunks."""

from __future__ import annotations


class Progress:
    """How a training goes, fed between compiled chunks: on a terminal a rich bar; in a
    log or a pipe a plain line at every tenth of the run and one at its end, each short
    enough not to wrap. Both show the latest evaluation: its step and its values."""

    SHOWN = ("train.loss", "valid.loss", "valid.accuracy")
    WIDTH = 99  # characters of a plain line at most
    BAR = 20  # characters of the bar; the bar's other columns take about 40 more

    def __init__(self, console, training, name: str):
        self.console, self.name = console, name
        self.total = training.schedule.total
        self.tenths_shown = 10 * training.steps_done // self.total  # steps >= 1
        self.progress = None
        if console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self.progress = Bar(
                TextColumn("{task.description}"), BarColumn(bar_width=self.BAR),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]}"), TimeElapsedColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                console=console, transient=False)
            self.task = self.progress.add_task(f"{name} (compiling)", total=self.total,
                                               speed="", metrics="")
        else:
            start = f" from step {training.steps_done}" if training.steps_done else ""
            line = f"{name}: compiling, then training{start} to {self.total} steps"
            if len(line) > self.WIDTH:  # a long name: the rest of this line goes
                line = name if len(name) <= self.WIDTH else name[:self.WIDTH - 1] + "…"
            self._line(line)

    def __enter__(self):
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            return self.progress.__exit__(*exc)
        return None

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def update(self, training) -> None:
        if not training.rows:
            return
        step, values = training.last_evaluation()
        speed = training.steps_done / training.wall_time if training.wall_time else 0
        metrics = [f"{k} {_number(values[k])}" for k in self.SHOWN if k in values]
        status = training.status
        if status == "early_stopped":
            where = f"stopped early at step {step} of {self.total}"
        elif status == "diverged":
            where = f"diverged at step {step} of {self.total}"
        else:
            where = f"step {step}/{self.total}"
        if self.progress is not None:
            description = self.name if status in (None, "completed") \
                else f"{self.name} ({status.replace('_', ' ')})"
            room = self.console.width - len(description) - self.BAR - 42
            while len("  ".join(metrics)) > room and metrics:  # whole values, not cut
                metrics.pop()
            done = {"total": step} if status == "early_stopped" else {}  # a full bar
            self.progress.update(self.task, completed=step, **done, description=description,
                                 speed=f"{speed:,.0f} steps/s", metrics="  ".join(metrics))
            return
        tenths = 10 * step // self.total
        if status is None and tenths <= self.tenths_shown:
            return
        self.tenths_shown = tenths
        head = f"  {where} ({100 * step // self.total}%)" if status is None \
            else f"  {'done, ' if status == 'completed' else ''}{where}"  # under the name
        parts = [head, *metrics, f"{speed:,.0f} steps/s"]
        while len("  ".join(parts)) > self.WIDTH and len(parts) > 1:
            parts.pop()  # the speed first, then the values from the last
        self._line("  ".join(parts))


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
