"""The first screen: every run the source knows, one row each, filterable."""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input

from amc_tui.display import duration, percent, state
from amc_tui.run_model import RunModel
from amc_tui.table_sync import sync_rows
from amc_tui.widgets import ConnectionBar, LiveScreen

# mean and worst: the white-box error over the paper's attacks at the last stage that reported them
COLUMNS = ("run", "dataset", "model", "variants", "steps", "running", "status", "elapsed", "ETA",
           "mean %", "worst %", "bad")  # fmt: skip


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run_row(model: RunModel, now: float) -> list:
    headline = model.headline()
    running = model.running_steps()
    return [
        model.run_id or "?",
        model.dataset or "–",
        model.model or "–",
        _clip(", ".join(model.variants), 24) or "–",
        f"{model.steps_done()}/{len(model.steps)}" if model.steps else "–",
        ", ".join(running[:2]) + (f" +{len(running) - 2}" if len(running) > 2 else ""),
        state(model.status(now)),
        duration(model.elapsed(now)),
        duration(model.eta(now)),
        percent(headline[0]) if headline else "–",
        percent(headline[1]) if headline else "–",
        str(sum(model.bad.values())) if model.bad else "",
    ]


class RunsScreen(LiveScreen):
    BINDINGS: ClassVar = [
        Binding("enter", "open", "Open run"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnectionBar(id="connection")
        yield Input(placeholder="filter runs: id, dataset, model, status… (press /)", id="filter")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        table.focus()
        self.refresh_view()

    def refresh_view(self) -> None:
        super().refresh_view()
        now = time.time()
        words = self.query_one("#filter", Input).value.lower().split()
        rows = {}
        for key, model in self.dashboard.models.items():
            cells = run_row(model, now)
            text = " ".join(str(c) for c in cells).lower() + " " + key.lower()
            if all(word in text for word in words):
                rows[key] = cells
        sync_rows(self.query_one("#runs", DataTable), rows)
        self.sub_title = f"{len(rows)} of {len(self.dashboard.models)} runs" if words else ""

    def on_input_changed(self, _: Input.Changed) -> None:
        self.refresh_view()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.query_one("#runs", DataTable).focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one("#runs", DataTable).focus()

    def action_open(self) -> None:
        table = self.query_one("#runs", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            if key is not None:
                self.dashboard.open_run(key)

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        if message.row_key.value is not None:
            self.dashboard.open_run(message.row_key.value)
