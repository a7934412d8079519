"""Updating a DataTable in place, row by row and cell by cell, so the cursor and the scroll position
stay where the user put them (clearing and refilling a table sends both back to the top)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.widgets import DataTable


def sync_rows(table: DataTable, rows: Mapping[str, Sequence[Any]]) -> None:
    """Make `table`'s rows equal `rows` (key -> cells, in column order): changed cells are updated,
    new keys appended, vanished keys removed; untouched rows are not redrawn."""
    columns = list(table.columns)
    present = {key.value for key in table.rows}
    for key in present - rows.keys():
        table.remove_row(key)
    for key, cells in rows.items():
        if key not in present:
            table.add_row(*cells, key=key)
            continue
        for column, value in zip(columns, cells, strict=False):
            if table.get_cell(key, column) != value:
                table.update_cell(key, column, value, update_width=True)
