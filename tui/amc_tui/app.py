"""`amc-tui RUN`: a Textual dashboard following a run's stages and per-attack error rates live."""

from __future__ import annotations

import argparse
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from amc_tui.client import MetricsClient, MetricsFileClient
from amc_tui.state import RunState


class Dashboard(App):
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar = [("q", "quit", "Quit")]

    def __init__(self, client: MetricsClient, interval: float = 1.0) -> None:
        super().__init__()
        self.client = client
        self.interval = interval
        self.state = RunState()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("waiting for events…", id="status")
        yield DataTable(id="stages")
        yield DataTable(id="errors")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stages", DataTable).add_columns("stage", "progress", "epoch", "loss")
        self.query_one("#errors", DataTable).add_columns(
            "stage", "setting", "attack", "error %", "n", "epoch"
        )
        self.refresh_events()
        self.set_interval(self.interval, self.refresh_events)

    def refresh_events(self) -> None:
        events = self.client.poll()
        if not events:
            return
        for event in events:
            self.state.apply(event)
        self.render_state()

    def render_state(self) -> None:
        state = self.state
        self.title = f"amc-tui — run {state.run_id or '?'}"
        self.query_one("#status", Static).update(f"error: {state.last_error}" if state.last_error else "live")
        stages = self.query_one("#stages", DataTable)
        stages.clear()
        for name, p in state.stages.items():
            done = "done" if p.finished else f"{p.step}/{p.total or '?'}"
            stages.add_row(name, done, str(p.epoch or ""), "" if p.loss is None else f"{p.loss:.3f}")
        errors = self.query_one("#errors", DataTable)
        errors.clear()
        for (stage, setting, attack), (rate, n, epoch) in sorted(state.errors.items()):
            errors.add_row(stage, setting, attack, f"{100 * rate:.2f}", str(n), str(epoch or ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="amc-tui", description="Follow an amc-dist run live")
    parser.add_argument("run", help="a run directory (runs/<run_id>) or its metrics.jsonl")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    args = parser.parse_args(argv)
    Dashboard(MetricsFileClient(args.run), args.interval).run()
