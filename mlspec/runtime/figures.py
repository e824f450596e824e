"""What the figures of a run share: their size in pixels, colours and titles.

Every plot is a bare `matplotlib.figure.Figure` drawn by the Agg renderer: no pyplot (whose
import and global figure manager cost more than drawing), margins fixed in inches instead
of a tight layout (which draws the figure once more), images (`imshow`) rather than
contours.
"""

from __future__ import annotations

import numpy as np

GRID = 200
POINTS = 2000
"""At most this many training rows are drawn over the regions."""
DPI = 100

LINE_STYLES = {"train": "--", "valid": "-", "test": ":"}
STOP_COLOUR = "0.35"
BEST_COLOUR = "#2ca02c"
DIVERGED_COLOUR = "#d62728"
CLASS_COLOURS = ["#3b6fb6", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f",
                 "#2e4057", "#b5651d", "#e377c2", "#7f7f7f"]
"""One colour per class (cycled past ten): the points in it, the regions in a light tint."""
UNIT_COLOURS = {"on": "#f4a261", "off": "#c9d6e8"}


def figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def run_label(result) -> str:
    """The run's name for titles: the model's, with a sweep member's settings."""
    settings = " ".join(f"{k.rpartition('.')[2] if k != 'train.seed' else 'seed'}={v}"
                        for k, v in (result.settings or {}).items())
    if result.members:
        settings += f", best of {len(result.members)}"
    return f"{result.program.name} [{settings}]" if settings else result.program.name


def model_note(result) -> str:
    """Which model a picture of the trained model shows, when it is not the last one."""
    if result.best_step is not None:
        return f" (best evaluation's model, step {result.best_step:,})"
    return ""


def feature_names(result) -> tuple[str, str]:
    """The names of the two input features: a CSV's columns, else x0 and x1 (as the data
    sources describe their inputs)."""
    names = result.program.data.info.feature_names if result.program.data else None
    return tuple(names[:2]) if names and len(names) >= 2 else ("x0", "x1")


def tint(colour: str, amount: float = 0.7) -> np.ndarray:
    """`colour` mixed with white (amount 1: white), as RGB in [0, 1]."""
    from matplotlib.colors import to_rgb

    return 1 - (1 - np.asarray(to_rgb(colour))) * (1 - amount)
