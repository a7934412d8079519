"""Widgets shared by the screens."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

if TYPE_CHECKING:
    from amc_tui.app import Dashboard


def clock(when: float | None) -> str:
    return "–" if when is None else time.strftime("%H:%M:%S", time.localtime(when))


class ConnectionBar(Static):
    """Always visible: where the data comes from, whether it answers, and what was skipped."""

    def show(self, app: Dashboard) -> None:
        link = app.connection
        line = Text()
        if link.state == "connected":
            line.append("● connected", style="bold green")
            line.append(f"  {app.source.describe()} · {len(app.models)} runs · updated {clock(link.last_ok)}")
        elif link.state == "connecting":
            line.append("◌ connecting", style="bold yellow")
            line.append(f"  {app.source.describe()}")
        else:
            wait = max(0.0, (link.retry_at or time.time()) - time.time())
            line.append("○ unreachable", style="bold red")
            line.append(f"  {link.message} · retry in {wait:.0f}s (attempt {link.failures})")
            line.append(f" · showing data from {clock(link.last_ok)}", style="italic")
        skipped = sum(sum(m.bad.values()) for m in app.models.values())
        if skipped:
            line.append(f" · {skipped} bad events skipped", style="bold yellow")
        self.update(line)


class LiveScreen(Screen):
    """A screen redrawn from the app's run models after every poll (and when it comes back on top).

    `ready` turns true at the end of the screen's own mount: a poll can land before the screen is
    composed, or while the app shuts it down, and then must not draw."""

    ready = False

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def refresh_view(self) -> None:
        self.query_one(ConnectionBar).show(self.dashboard)

    def on_screen_resume(self) -> None:
        if self.ready:  # not before the screen is set up (its own mount draws it)
            self.refresh_view()

    def on_unmount(self) -> None:
        self.ready = False
