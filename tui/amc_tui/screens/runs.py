"""The first screen: every run the source knows, one row each, filterable. A Ray Tune sweep gets a row
of its own above its trials (each trial is a run); Enter on it shows just that sweep's trials."""

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

SWEEP = "sweep:"  # the row key prefix of a sweep's summary row (run keys are directories or URLs)

# mean and worst: the white-box error over the paper's attacks at the last stage that reported them
COLUMNS = ("run", "dataset", "model", "variants", "steps", "running", "status", "elapsed", "ETA",
           "mean %", "worst %", "bad")  # fmt: skip


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _trial_values(values: dict) -> str:
    """alpha=0.31, lambdas=[0.2, 0.8]: the searched keys without their section."""

    def short(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        if isinstance(value, list):
            return "[" + ", ".join(short(v) for v in value) + "]"
        return str(value)

    return ", ".join(f"{str(key).rsplit('.', 1)[-1]}={short(value)}" for key, value in values.items())


def run_row(model: RunModel, now: float) -> list:
    headline = model.headline()
    running = model.running_steps()
    what = f"trial: {_trial_values(model.values)}" if model.sweep else ", ".join(model.variants)
    return [
        model.run_id or "?",
        model.dataset or "–",
        model.model or "–",
        _clip(what, 24) or "–",
        f"{model.steps_done()}/{len(model.steps)}" if model.steps else "–",
        ", ".join(running[:2]) + (f" +{len(running) - 2}" if len(running) > 2 else ""),
        state(model.status(now)),
        duration(model.elapsed(now)),
        duration(model.eta(now)),
        percent(headline[0]) if headline else "–",
        percent(headline[1]) if headline else "–",
        str(sum(model.bad.values())) if model.bad else "",
    ]


def sweep_row(name: str, trials: list[RunModel], now: float) -> list:
    """A sweep at a glance: its trials, how many run and finished, and its best trial's errors."""
    statuses = [t.status(now) for t in trials]
    scored = [(h[0], h[1]) for t in trials if (h := t.headline())]
    best = min(scored, default=None)
    if "running" in statuses:
        status = "running"
    else:
        status = "done" if all(s == "done" for s in statuses) else "failed"
    elapsed = [e for t in trials if (e := t.elapsed(now)) is not None]
    return [
        f"{name} (sweep)",
        trials[0].dataset or "–",
        trials[0].model or "–",
        f"{len(trials)} trials",
        f"{statuses.count('done')}/{len(trials)} done",
        f"{statuses.count('running')} trials",
        state(status),
        duration(max(elapsed, default=None)),
        "–",
        percent(best[0]) if best else "–",  # the best trial's mean and worst
        percent(best[1]) if best else "–",
        str(bad) if (bad := sum(sum(t.bad.values()) for t in trials)) else "",
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
        self.ready = True
        self.refresh_view()

    def refresh_view(self) -> None:
        super().refresh_view()
        now = time.time()
        words = self.query_one("#filter", Input).value.lower().split()
        rows = {}
        models = self.dashboard.models
        for key, model in models.items():
            if model.sweep and SWEEP + model.sweep not in rows:  # the sweep's row comes before its trials
                trials = [m for m in models.values() if m.sweep == model.sweep]
                cells = sweep_row(model.sweep, trials, now)
                if all(word in " ".join(str(c) for c in cells).lower() for word in words):
                    rows[SWEEP + model.sweep] = cells
            cells = run_row(model, now)
            text = " ".join(str(c) for c in cells).lower() + " " + key.lower() + " " + model.sweep.lower()
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
            self._open(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self._open(message.row_key.value)

    def _open(self, key: str | None) -> None:
        if key is not None and key.startswith(SWEEP):
            self.query_one("#filter", Input).value = key.removeprefix(SWEEP)  # the sweep and its trials
        elif key is not None:
            self.dashboard.open_run(key)
