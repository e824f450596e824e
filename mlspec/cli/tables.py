"""Tables that commands print: final metrics by split, and the members of seeds or a
sweep."""

from __future__ import annotations


def metrics_table(grouped: dict[str, dict[str, float]]):
    """Metrics by split (`Result.metrics_by_split`), a column per split; the metrics of
    the training (no split) under the first."""
    from rich.table import Table

    splits = [s for s in grouped if s != "training"]
    table = Table()
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    names = list(dict.fromkeys(n for s in splits for n in grouped[s]))
    for name in names:
        table.add_row(name, *(f"{grouped[s][name]:.4f}" if name in grouped[s] else ""
                              for s in splits))
    for name, value in grouped.get("training", {}).items():
        table.add_row(name, f"{value:.4f}", *[""] * (len(splits) - 1))
    return table


def print_members(result) -> None:
    """The members of seeds or a sweep, best first, as tables that fit the terminal."""
    from rich.console import Console

    from mlspec.runtime.tables import members_tables

    console = Console()
    for table in members_tables(result, console.width):
        console.print(table)
