"""`amc-tui`: a live dashboard of amc-dist runs, from the cluster's metrics hub or from storage.

The app owns the run models and one poll loop: a thread worker asks the source for what is new, the
main thread folds it in and redraws, and only then is the next poll scheduled, so polls never overlap
and never block input. While the source is unreachable the last data stays on screen and the next try
backs off exponentially.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

from amc_tui.connection import Connection
from amc_tui.jobs import JobsClient, find_token
from amc_tui.results import read_text
from amc_tui.run_model import RunModel
from amc_tui.screens.markdown import MarkdownScreen
from amc_tui.screens.run import RunScreen
from amc_tui.screens.runs import RunsScreen
from amc_tui.screens.stop import StopScreen
from amc_tui.source import EventSource, RunFeed, Unreachable
from amc_tui.terminal import stray_output_captured
from amc_tui.widgets import LiveScreen

THEMES = ("textual-dark", "textual-light", "nord", "gruvbox", "tokyo-night")
RESULTS_RETRY = 10.0  # seconds between looks for a finished run's results.md


class Polled(Message):
    def __init__(self, feeds: list[RunFeed], results: dict[str, str]) -> None:
        super().__init__()
        self.feeds, self.results = feeds, results


class PollFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class Dashboard(App):
    CSS_PATH = "app.tcss"
    TITLE = "amc-tui"
    BINDINGS: ClassVar = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh", "Refresh"),
        Binding("t", "next_theme", "Theme"),
    ]

    def __init__(
        self,
        source: EventSource,
        interval: float = 1.0,
        max_backoff: float = 30.0,
        dashboard: str | None = None,
        open_run: str | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.connection = Connection(interval, max_backoff)
        self.models: dict[str, RunModel] = {}
        self.dashboard_url = dashboard
        self._open_first = open_run
        self._timer: Timer | None = None
        self._polling = False
        self._results_tried: dict[str, float] = {}

    def on_mount(self) -> None:
        self.push_screen(RunsScreen())
        self._start_poll()

    def on_unmount(self) -> None:
        self.source.close()

    # ---- the poll loop -------------------------------------------------------------------------------

    def _start_poll(self) -> None:
        if self._polling:
            return
        self._polling = True
        now = time.time()
        wanted = [
            key
            for key, model in self.models.items()
            if model.outcome is not None
            and model.results_md is None
            and now - self._results_tried.get(key, 0.0) >= RESULTS_RETRY
        ]
        for key in wanted:
            self._results_tried[key] = now
        self._poll(wanted)

    @work(thread=True, exclusive=True, group="poll")
    def _poll(self, want_results: list[str]) -> None:
        try:
            feeds = self.source.poll()
        except Unreachable as error:
            self.post_message(PollFailed(str(error)))
            return
        results = {}
        for key in want_results:
            try:
                text = read_text(key, "results.md")
            except (OSError, ValueError):
                text = None  # not reachable from here (another machine's disk): try again later
            if text is not None:
                results[key] = text
        self.post_message(Polled(feeds, results))

    def on_polled(self, message: Polled) -> None:
        for feed in message.feeds:
            if feed.dropped:
                self._drop(feed.key)
                continue
            model = self.models.get(feed.key)
            if model is None or feed.reset:
                model = self.models[feed.key] = RunModel(feed.key, run_id=feed.run_id)
            model.missing = feed.missing
            model.note_bad("corrupt", "lines that are not JSON objects in UTF-8", feed.corrupt)
            model.apply_all(feed.events)
        for key, text in message.results.items():
            if key in self.models:
                self.models[key].results_md = text
        self._schedule(self.connection.succeeded())

    def on_poll_failed(self, message: PollFailed) -> None:
        self._schedule(self.connection.failed(message.reason))

    def _drop(self, key: str) -> None:
        self.models.pop(key, None)
        if self._open_first == key:
            self._open_first = None
        while self.screen_stack and isinstance(self.screen, RunScreen) and self.screen.key == key:
            self.pop_screen()

    def _schedule(self, delay: float) -> None:
        self._polling = False
        self.refresh_screens()
        if self._open_first and self._open_first in self.models:
            self.open_run(self._open_first)
            self._open_first = None
        self._timer = self.set_timer(delay, self._start_poll)

    def refresh_screens(self) -> None:
        top = self.screen_stack[-1] if self.screen_stack else None  # none while the app shuts down
        if isinstance(top, LiveScreen) and top.ready:  # not while it is composed or shut down
            top.refresh_view()

    # ---- actions -------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if self._polling:
            return
        if self._timer is not None:
            self._timer.stop()
        self._start_poll()

    def action_next_theme(self) -> None:
        index = THEMES.index(self.theme) if self.theme in THEMES else -1
        self.theme = THEMES[(index + 1) % len(THEMES)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def open_run(self, key: str) -> None:
        if key in self.models:
            self.push_screen(RunScreen(key))

    def stop_run(self, key: str) -> None:
        model = self.models[key]
        if model.outcome is not None:
            self.notify(f"run {model.run_id} already finished ({model.outcome})", severity="warning")
            return
        address = self.dashboard_url or self.source.dashboard_url()
        if address is None and os.environ.get("RAY_ADDRESS", "").startswith("http"):
            address = os.environ["RAY_ADDRESS"]
        if address is None:
            self.notify("no Ray dashboard known for these runs: start amc-tui with --dashboard URL",
                        severity="error")  # fmt: skip
            return

        def stopped(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            job, status = result
            if status in ("PENDING", "RUNNING"):
                self.notify(f"job {job} is still {status} after the stop request", severity="warning")
                return
            model.stopped_job = job
            model.revision += 1
            self.notify(f"job {job} stopped: {status}")
            self.refresh_screens()

        self.push_screen(StopScreen(JobsClient(address, find_token()), model.run_id, key), stopped)

    def show_results_md(self, key: str) -> None:
        model = self.models[key]
        if model.results_md is None:
            self.notify("results.md is not written yet (the report step writes it at the end)",
                        severity="warning")  # fmt: skip
            return
        self.push_screen(MarkdownScreen(f"{model.run_id}: results.md", model.results_md))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh now", "Ask the source for new events at once", self.action_refresh)
        yield SystemCommand("Next theme", "Cycle through the dashboard's themes", self.action_next_theme)
        if isinstance(screen, RunScreen):
            yield SystemCommand("Stop this run's job", "Through Ray's job API, after a confirmation",
                                screen.action_stop)  # fmt: skip
            yield SystemCommand("Open results.md", "The tables, rendered", screen.action_results_md)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amc-tui",
        description="Live dashboard of amc-dist runs. With no RUN it follows every run on the metrics hub "
        "of the Ray cluster it finds (--address, RAY_ADDRESS, else a local one) and falls back to ./runs.",
    )
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="run folders, folders of runs or s3:// URLs to follow or replay")  # fmt: skip
    parser.add_argument("--address", help="the Ray cluster whose metrics hub to follow")
    parser.add_argument("--dashboard", metavar="URL", help="Ray dashboard for stopping jobs "
                        "(default: the cluster's own)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    return parser


def open_source(args: argparse.Namespace) -> EventSource:
    from amc_tui.hub_source import HubSource
    from amc_tui.local_source import DEFAULT_RUNS, HubOrRuns
    from amc_tui.storage_source import StorageSource

    if args.runs:
        return StorageSource(args.runs, dashboard=args.dashboard)
    if args.address or os.environ.get("RAY_ADDRESS"):
        return HubSource(args.address)
    return HubOrRuns(HubSource(), StorageSource([DEFAULT_RUNS], dashboard=args.dashboard))


def main(argv: list[str] | None = None) -> int:
    from amc_tui.storage_source import StorageSource

    args = build_parser().parse_args(argv)
    source = open_source(args)
    # one run given: open it at once (a folder of runs shows the runs list instead)
    single = source.paths[0] if isinstance(source, StorageSource) and len(source.paths) == 1 else None
    with stray_output_captured() as stray:
        app = Dashboard(source, interval=args.interval, dashboard=args.dashboard, open_run=single)
        app.run()
        saved = stray.keep() if app.return_code else None
    if saved:
        print(f"amc-tui: what Ray printed meanwhile is in {saved}", file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
