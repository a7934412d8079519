"""One run: its step graph with states and progress, the error per attack of every step, live charts,
the result tables once it finished, and its event log."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, RichLog, Static, TabbedContent, TabPane, Tabs

from amc_tui.charts import (
    Chart,
    ErrorAcrossStages,
    ErrorOverSteps,
    LossOverSteps,
    ProxyAgreement,
    attack_label,
)
from amc_tui.display import bar, duration, percent, state
from amc_tui.results import parse_tables
from amc_tui.run_model import RunModel
from amc_tui.table_sync import sync_rows
from amc_tui.widgets import ConnectionBar, LiveScreen, clock

STEP_COLUMNS = ("step", "kind", "state", "progress", "ETA")
KIND_NAMES = {"fit_proxy": "proxy", "evaluate": "eval"}
LOG_STYLES = {"info": "", "good": "green", "warn": "bold yellow", "error": "bold red"}


class RunScreen(LiveScreen):
    BINDINGS: ClassVar = [
        Binding("escape", "app.pop_screen", "Runs"),
        Binding("1", "tab('overview')", "Overview"),
        Binding("2", "tab('charts')", "Charts"),
        Binding("3", "tab('results')", "Results"),
        Binding("4", "tab('log-tab')", "Log"),
        Binding("s", "stop", "Stop job"),
        Binding("m", "results_md", "results.md"),
        Binding("left_square_bracket", "cycle_step(-1)", "Prev step"),
        Binding("right_square_bracket", "cycle_step(1)", "Next step"),
    ]

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.selected: str | None = None
        self._logged = 0
        self._results_shown: str | None = None

    @property
    def model(self) -> RunModel:
        return self.dashboard.models[self.key]

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnectionBar(id="connection")
        yield Static(id="summary")
        with TabbedContent(id="tabs"):
            with TabPane("Overview", id="overview"), Horizontal():
                yield DataTable(id="steps", cursor_type="row")
                yield DataTable(id="errors", cursor_type="row", zebra_stripes=True, header_height=2)
            with TabPane("Charts", id="charts"):
                yield Static(id="chart-step")
                with Grid(id="chart-grid"):
                    yield ErrorOverSteps(id="chart-steps")
                    yield ErrorAcrossStages(id="chart-stages")
                    yield LossOverSteps(id="chart-loss")
                    yield ProxyAgreement(id="chart-agreement")
            with TabPane("Results", id="results"):
                yield VerticalScroll(Static("results appear when the run's report step finishes",
                                            id="results-note"), id="results-body")  # fmt: skip
            with TabPane("Log", id="log-tab"):
                yield RichLog(id="log", wrap=True, markup=False, auto_scroll=False)
        yield Footer()

    def on_mount(self) -> None:
        steps = self.query_one("#steps", DataTable)
        for name in STEP_COLUMNS:
            steps.add_column(name, key=name)
        steps.focus()
        self.ready = True
        self.refresh_view()

    # ---- drawing -------------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        super().refresh_view()
        model, now = self.model, time.time()
        self.title = f"run {model.run_id or '?'}"
        self.sub_title = model.key
        self.query_one("#summary", Static).update(self._summary(model, now))
        sync_rows(self.query_one("#steps", DataTable), self._step_rows(model, now))
        self._sync_error_columns(model)
        sync_rows(self.query_one("#errors", DataTable), self._error_rows(model))
        if self.selected is None and model.steps:
            self.selected = next(iter(model.steps))
        self._fit_overview()
        self._draw_charts()
        self._draw_log(model)
        self._draw_results(model)

    def on_resize(self) -> None:
        self._fit_overview()

    def _fit_overview(self) -> None:
        """Steps and errors side by side when both fit the terminal's width, else one above the other."""
        steps, errors = self.query_one("#steps", DataTable), self.query_one("#errors", DataTable)
        needed = steps.virtual_size.width + errors.virtual_size.width + 3
        self.set_class(needed > self.size.width, "narrow")

    def _summary(self, model: RunModel, now: float) -> Text:
        line = Text()
        line.append(f"{model.run_id or '?'} ", style="bold")
        line.append_text(state(model.status(now)))
        line.append(f"  {model.dataset or '?'} / {model.model or '?'}  attempt {model.attempt or '?'}")
        line.append(f"  steps {model.steps_done()}/{len(model.steps)}")
        line.append(f"  elapsed {duration(model.elapsed(now))}  ETA {duration(model.eta(now))}")
        if model.missing:
            line.append("  (its directory does not exist yet: waiting for it)", style="yellow")
        if model.stopped_job:
            line.append(f"  job {model.stopped_job} stopped from here", style="magenta")
        if model.bad:
            detail = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sorted(model.bad.items()))
            line.append(f"  skipped events: {detail}", style="bold yellow")
        return line

    def _step_rows(self, model: RunModel, now: float) -> dict[str, list]:
        rows = {}
        for step in model.steps.values():
            progress = bar(step.fraction())
            if step.state == "running" and step.fraction() is None and step.started is not None:
                progress = f"{duration(now - step.started)} so far"
            cells: list = [
                step.name,
                KIND_NAMES.get(step.kind, step.kind),
                state(step.state),
                progress,
                duration(step.eta()),
            ]
            if step.state == "failed":
                cells[3] = Text(step.message[:30], style="red")  # in full in the Log tab
            rows[step.name] = cells
        return rows

    def _sync_error_columns(self, model: RunModel) -> None:
        """The matrix's columns are the run's own (its attacks, its threat models), always in the run's
        order: a column appears when its first figure arrives, so a new attack or a union row shows up
        live; one that belongs between columns already shown rebuilds the header (rows refill next)."""
        errors = self.query_one("#errors", DataTable)
        wanted = ["step", *(f"{setting}/{attack}" for setting, attack in model.error_columns())]
        shown = [str(key.value) for key in errors.columns]
        if shown == wanted:
            return
        if wanted[: len(shown)] != shown:
            errors.clear(columns=True)
            shown = []
        if not shown:
            errors.add_column("\nstep", key="step")
        for key in wanted[max(len(shown), 1) :]:  # "wb" over "FGSM": two short lines keep it narrow
            setting, attack = key.split("/", 1)
            label = "\n".join(attack_label(setting, attack).rpartition(" ")[::2])
            errors.add_column(label, key=key, default="")

    def _error_rows(self, model: RunModel) -> dict[str, list]:
        keys = self.query_one("#errors", DataTable).columns
        columns = [tuple(str(key.value).split("/", 1)) for key in keys]
        index = {column: i for i, column in enumerate(columns)}
        rows: dict[str, list] = {}
        for (row, setting, attack), m in model.latest().items():
            if m.metric != "error_rate" or row != m.stage or (setting, attack) not in index:
                continue
            cells = rows.setdefault(row, [row] + ["" for _ in columns[1:]])
            cells[index[(setting, attack)]] = percent(m.value)
        return rows

    def _draw_charts(self) -> None:
        model, step = self.model, self.selected
        self.query_one("#chart-step", Static).update(
            Text.assemble("charts for step ", (step or "–", "bold"), "  (pick it in Overview; [ ] cycle)")
        )
        for chart in self.query(Chart):
            chart.show(model, step)

    def _draw_log(self, model: RunModel) -> None:
        log = self.query_one("#log", RichLog)
        new = min(model.logged - self._logged, len(model.log))
        if new <= 0:
            return
        at_end = log.is_vertical_scroll_end
        for line in list(model.log)[-new:]:
            text = Text(f"{clock(line.time)}  {line.text}", style=LOG_STYLES[line.level])
            log.write(text, scroll_end=at_end)
        self._logged = model.logged

    def _draw_results(self, model: RunModel) -> None:
        if model.results_md is None or model.results_md == self._results_shown:
            return
        self._results_shown = model.results_md
        body = self.query_one("#results-body", VerticalScroll)
        body.remove_children()
        tables = parse_tables(model.results_md)
        if not tables:
            body.mount(Static("results.md holds no tables"))
        for number, table in enumerate(tables):
            widget = DataTable(id=f"result-{number}", cursor_type="row", zebra_stripes=True, classes="result")
            body.mount(Label(Text(table.title, style="bold"), classes="result-title"))
            body.mount(widget)
            widget.add_columns(*table.header)
            widget.add_rows(table.rows)

    # ---- input ---------------------------------------------------------------------------------------

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        if message.data_table.id == "steps" and message.row_key.value is not None:
            self.selected = message.row_key.value
            self._draw_charts()

    def action_cycle_step(self, offset: int) -> None:
        names = list(self.model.steps)
        if not names:
            return
        index = names.index(self.selected) if self.selected in names else -offset
        self.selected = names[(index + offset) % len(names)]
        steps = self.query_one("#steps", DataTable)
        steps.move_cursor(row=steps.get_row_index(self.selected))
        self._draw_charts()

    def action_tab(self, pane: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = pane
        # focus moves into the pane: a focused widget left in a hidden pane would switch it back
        target = {"overview": "#steps", "results": "#results-body", "log-tab": "#log"}.get(pane)
        (self.query_one(target) if target else tabs.query_one(Tabs)).focus()

    def action_stop(self) -> None:
        self.dashboard.stop_run(self.key)

    def action_results_md(self) -> None:
        self.dashboard.show_results_md(self.key)
