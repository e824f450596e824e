"""The table of a run's members (seeds or a sweep) that `mlspec run` prints: best first,
saying which metric ranks them, its columns named as in history.csv, readable in the
terminal's width. A table too wide gets its headers wrapped after `.` and `_`; one still too
wide is split into several, each repeating the member column (and the swept settings, where
they leave room). No name or value is ever cut."""

from __future__ import annotations

import re

from rich.table import Table

Column = tuple[str, list[str]]  # header, one value per member


def wrap_name(name: str, width: int) -> str:
    """`name` in lines of at most `width` characters, broken only after a `.` or `_`;
    a piece longer than `width` stays whole on its line."""
    lines = [""]
    for piece in re.findall(r"[^._]*[._]|[^._]+$", name):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def _wrapped(column: Column) -> Column:
    header, values = column
    pieces = re.findall(r"[^._]*[._]|[^._]+$", header)
    width = max([len(v) for v in values] + [len(p) for p in pieces])
    return wrap_name(header, width), values


def _table(columns: list[Column], title: str | None = None) -> Table:
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header, justify="right", overflow="fold")
    for row in zip(*(values for _, values in columns)):
        table.add_row(*row)
    return table


def _width(columns: list[Column]) -> int:
    """The width of `_table(columns)`: each column its widest line and a space either side,
    the lines between columns and at both edges."""
    return 1 + sum(3 + max(len(line) for text in (header, *values)
                           for line in text.split("\n")) for header, values in columns)


def _value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _drawn_float(text: str) -> bool:
    try:
        return not float(text).is_integer()
    except ValueError:
        return False


def members_tables(result, width: int) -> list[Table]:
    """The tables of `result.members` (best first) for a terminal `width` wide."""
    from mlspec.runtime.results import rank_metric
    from mlspec.semantics.sweep import setting_column

    members = result.members
    trials = getattr(result, "trials", None)  # a search's: its metric ranks the trials
    key, higher_is_better = rank_metric(members[0].metrics) if trials is None \
        else (trials.attrs["metric"], trials.attrs["higher"])
    metric_keys = [k for k in members[0].metrics if "." in k]
    metric_keys.sort(key=lambda k: k != key)  # the ranking metric first, the rest in order
    member: Column = ("member", [str(i) for i in range(len(members))])
    settings: list[Column] = [(setting_column(k), [_value(m.settings[k]) for m in members])
                              for k in members[0].settings]
    metrics: list[Column] = [(k, [f"{m.metrics[k]:.4f}" if k in m.metrics else ""
                                  for m in members]) for k in metric_keys]
    if trials is not None:  # drawn values to 4 digits (trials.csv keeps them whole)
        settings = [(name, [f"{float(v):.4g}" if _drawn_float(v) else v for v in values])
                    for name, values in settings]
        settings[:0] = [("trial", [str(n) for n in trials["trial"]])]
        metrics.append(("status", [m.status for m in members]))
    programs = len({id(m.trainer) for m in members})
    trained = f"{len(members)} trials" if trials is not None else \
        f"{len(members)} runs in {programs} compiled program{'s' if programs != 1 else ''}"
    title = (f"{trained}, best first by {key} "
             f"({'higher' if higher_is_better else 'lower'} is better); --member K of "
             "predict, evaluate and plot picks row K")

    def fits(columns: list[Column]) -> bool:
        return _width(columns) <= width

    everything = [member, *settings, *metrics]
    if fits(everything):
        return [_table(everything, title)]
    member, settings, metrics = (_wrapped(member), [_wrapped(c) for c in settings],
                                 [_wrapped(c) for c in metrics])
    everything = [member, *settings, *metrics]
    if fits(everything):
        return [_table(everything, title)]
    # Split: each table repeats the member column, and the settings if they take at most
    # half the width (else they get tables of their own, like the metrics).
    repeated = [member, *settings]
    if _width(repeated) > width // 2:
        repeated, rest = [member], [*settings, *metrics]
    else:
        rest = metrics
    blocks: list[list[Column]] = [[]]
    for column in rest:
        if blocks[-1] and not fits([*repeated, *blocks[-1], column]):
            blocks.append([])
        blocks[-1].append(column)
    return [_table([*repeated, *block], title if i == 0 else None)
            for i, block in enumerate(blocks)]
