"""What the dashboard shows, folded from events: per-stage progress and the latest error per attack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageProgress:
    step: int = 0
    total: int | None = None
    epoch: int | None = None
    loss: float | None = None
    finished: bool = False


@dataclass
class RunState:
    run_id: str | None = None
    stages: dict[str, StageProgress] = field(default_factory=dict)
    # (stage, setting, attack) -> (error_rate, n, epoch)
    errors: dict[tuple[str, str, str], tuple[float, int, int | None]] = field(default_factory=dict)
    last_error: str | None = None

    def apply(self, event: dict[str, Any]) -> None:
        self.run_id = event.get("run_id", self.run_id)
        kind, stage = event.get("kind"), event.get("stage", "")
        progress = self.stages.setdefault(stage, StageProgress()) if stage else None
        if kind == "stage_started" and progress is not None:
            progress.total = event.get("total_steps")
        elif kind == "progress" and progress is not None:
            progress.step = event.get("step", progress.step)
            progress.total = event.get("total_steps", progress.total)
            progress.epoch = event.get("epoch", progress.epoch)
            progress.loss = event.get("loss", progress.loss)
        elif kind == "eval" and "error_rate" in event:
            key = (stage, event.get("setting", "?"), event.get("attack", "?"))
            self.errors[key] = (event["error_rate"], event.get("n", 0), event.get("epoch"))
        elif kind == "stage_finished" and progress is not None:
            progress.finished = True
            progress.step = progress.total or progress.step
        elif kind == "step_failed":
            self.last_error = f"{stage}: {event.get('message', event)}"
