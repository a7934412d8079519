"""Helpers for the dashboard's pilot tests: the screen as plain text (what a person would read, without
colours), and waiting for it to show something, with the screen in the failure message.

Text rather than SVG snapshots (pytest-textual-snapshot): that plugin pins syrupy 4.8, which needs
pytest < 9 (this project runs pytest 9), and an SVG snapshot fails on any theme or Textual upgrade
without saying which figure was wrong; a text assertion names the value that matters."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App
from textual.pilot import Pilot

SIZE = (160, 50)


def screen_text(app: App) -> str:
    """The current screen as the terminal shows it, one line per row, trailing blanks stripped."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text.rstrip() for strip in strips)


def widget_text(app: App, selector: str) -> str:
    """The part of the screen a widget covers, as text."""
    region = app.screen.query_one(selector).region
    lines = screen_text(app).splitlines() + [""] * region.bottom
    return "\n".join(line[region.x : region.right].rstrip() for line in lines[region.y : region.bottom])


async def wait_for(pilot: Pilot, ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s; the screen:\n{screen_text(pilot.app)}")
        await pilot.pause(0.1)


async def wait_for_text(pilot: Pilot, *needles: str, timeout: float = 10.0) -> str:
    """Wait until every needle is on screen; return the screen."""
    await wait_for(pilot, lambda: all(n in screen_text(pilot.app) for n in needles), timeout, repr(needles))
    return screen_text(pilot.app)
