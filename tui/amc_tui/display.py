"""How figures look on screen: durations, percentages, progress bars, state colours."""

from __future__ import annotations

from rich.text import Text

STATE_STYLES = {
    "pending": "dim",
    "running": "bold yellow",
    "done": "green",
    "skipped": "green dim",
    "failed": "bold red",
    "stopped": "magenta",
    "stale": "bold magenta",
    "waiting": "dim",
    "missing": "yellow",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def bar(fraction: float | None, width: int = 8) -> str:
    """A text progress bar with the percentage, or nothing when the progress is unknown."""
    if fraction is None:
        return ""
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {100 * fraction:3.0f}%"


def state(name: str) -> Text:
    """A state ("running", "failed", ...) in its colour; final statuses other than done are red."""
    style = STATE_STYLES.get(name, "bold red")
    return Text(name, style=style)
