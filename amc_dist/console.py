"""Turn core events into a Rich progress display: one bar per training stage, eval lines printed above."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from amc_dist import storage
from amc_dist.config import ConfigError
from amc_dist.events import measured


def reporting_errors(work: Callable[[], int]) -> int:
    """Run a command; bad input says what is wrong in one line, never a traceback: a bad config or
    override (exit 2), a file or storage it cannot read or write (exit 1)."""
    try:
        return work()
    except ConfigError as exc:
        say_error("config error", exc)
        return 2
    except storage.access_errors() as exc:
        say_error("error", os_error_text(exc))
        return 1


def say_error(label: str, text: object) -> None:
    """One red line on stderr: `label: text`, the text (often the user's own, e.g. `--set a=[b,c]`) printed
    as it is, not read as Rich markup, and its line breaks folded so the message stays one line."""
    line = " ".join(str(text).split())
    Console(stderr=True, soft_wrap=True).print(f"[red]{escape(label)}:[/] {escape(line)}", highlight=False)


def os_error_text(exc: Exception) -> str:
    """`path: reason` for a file the command could not read or write (no traceback: the path is the news),
    else the error's type and message."""
    if getattr(exc, "filename", None) is None:
        return f"{type(exc).__name__}: {exc}"
    return f"{exc.filename}: {getattr(exc, 'strerror', None) or type(exc).__name__}"


class ProgressSink:
    """An EventSink; use as a context manager around the work that emits."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressSink:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def __call__(self, payload: dict[str, Any]) -> None:
        kind, stage = payload["kind"], payload.get("stage", "")
        if kind == "run_started":
            self.tasks["run"] = self.progress.add_task("steps", total=payload.get("steps"), status="")
        elif kind == "step_finished" and "run" in self.tasks:
            self.progress.advance(self.tasks["run"])
        elif kind == "step_failed":
            self.progress.console.print(f"[red]{stage} failed: {payload.get('message')}[/]", highlight=False)
        elif kind == "stage_started":
            self.tasks[stage] = self.progress.add_task(stage, total=payload.get("total_steps"), status="")
        elif kind == "progress" and stage in self.tasks:
            status = f"epoch {payload.get('epoch')}"
            if "loss" in payload:
                status += f" loss {payload['loss']:.3f}"
            self.progress.update(self.tasks[stage], completed=payload["step"], status=status)
        elif kind == "eval":
            self.progress.console.print(escape(eval_line(payload)), highlight=False)
        elif kind == "stage_finished" and stage in self.tasks:
            task = self.tasks[stage]
            self.progress.update(task, completed=self.progress.tasks[task].total)


def eval_line(payload: dict[str, Any]) -> str:
    """One eval event as a console line that says what was measured, on which row, and the figure."""
    when = f" epoch {payload['epoch']}" if payload.get("epoch") else ""
    name = payload.get("metric", "error_rate")
    value = payload["error_rate"] if name == "error_rate" else payload["value"]
    figure = f"error {100 * value:.2f}%" if name == "error_rate" else f"{value:.4g}"
    return f"{payload.get('stage', '')}{when}: {measured(payload)} {figure} (n={payload['n']})"
