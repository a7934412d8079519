"""Stopping a run's job, after a confirmation: the cluster's active jobs are listed (those that name
the run first); `y` stops the highlighted one through the job API and waits until it has ended."""

from __future__ import annotations

import time
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from amc_tui.jobs import Job, JobsClient, JobsError, jobs_of_run

WAIT_FOR_END = 30.0  # seconds to watch a stopped job reach a final status


class StopScreen(ModalScreen[tuple[str, str] | None]):
    """Dismissed with (submission id, final status) after a stop, None when cancelled."""

    BINDINGS: ClassVar = [
        Binding("y", "confirm", "Stop it"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    def __init__(self, client: JobsClient, run_id: str, run_dir: str) -> None:
        super().__init__()
        self.client, self.run_id, self.run_dir = client, run_id, run_dir
        self.jobs: list[Job] = []
        self.busy = True

    def compose(self) -> ComposeResult:
        with Vertical(id="stop-dialog"):
            yield Static(f"Stop the job of run [b]{self.run_id}[/b]?", id="stop-title")
            yield Static(f"asking {self.client.base} for its jobs…", id="stop-note")
            yield OptionList(id="stop-jobs")
            yield Static("[b]y[/b] stop the highlighted job   [b]n[/b]/[b]esc[/b] cancel", id="stop-keys")

    def on_mount(self) -> None:
        self.load_jobs()

    @work(thread=True, exclusive=True, group="jobs")
    def load_jobs(self) -> None:
        try:
            jobs = self.client.jobs()
        except JobsError as error:
            self.app.call_from_thread(self._note, f"[red]cannot list jobs: {error}[/red]")
            return
        self.app.call_from_thread(self._show_jobs, jobs)

    def _note(self, text: str) -> None:
        self.query_one("#stop-note", Static).update(text)

    def _show_jobs(self, jobs: list[Job]) -> None:
        mine = jobs_of_run(jobs, self.run_id, self.run_dir)
        others = [j for j in jobs if j.active and j.submission_id and j not in mine]
        self.jobs = [j for j in mine if j.submission_id] + others
        options = self.query_one("#stop-jobs", OptionList)
        options.clear_options()
        for job in self.jobs:
            tag = "this run" if job in mine else "other job"
            options.add_option(Option(f"{job.submission_id}  {job.status}  ({tag})  {job.entrypoint[:90]}"))
        if mine and not any(j.submission_id for j in mine):
            self._note("[yellow]this run's driver was not submitted as a job: stop it where it runs[/yellow]")
        elif not self.jobs:
            self._note("no active submitted job on this cluster")
        elif not mine:
            self._note("[yellow]no job names this run: all active jobs are listed; pick with care[/yellow]")
        else:
            self._note("stopping ends every step in progress; rerun with the same --run-id to resume")
        options.highlighted = 0 if self.jobs else None
        options.focus()
        self.busy = False

    def action_confirm(self) -> None:
        index = self.query_one("#stop-jobs", OptionList).highlighted
        if self.busy or index is None or index >= len(self.jobs):
            return
        self.busy = True
        job = self.jobs[index]
        self._note(f"stopping {job.submission_id}…")
        self.stop_job(job.submission_id)

    def on_option_list_option_selected(self, _: OptionList.OptionSelected) -> None:
        self.action_confirm()

    @work(thread=True, exclusive=True, group="jobs")
    def stop_job(self, submission_id: str) -> None:
        try:
            self.client.stop(submission_id)
            deadline = time.monotonic() + WAIT_FOR_END
            status = self.client.status(submission_id)
            while status in ("PENDING", "RUNNING") and time.monotonic() < deadline:
                time.sleep(0.5)
                status = self.client.status(submission_id)
        except JobsError as error:
            self.app.call_from_thread(self._failed, f"[red]stop failed: {error}[/red]")
            return
        self.app.call_from_thread(self.dismiss, (submission_id, status))

    def _failed(self, text: str) -> None:
        self._note(text)
        self.busy = False

    def action_cancel(self) -> None:
        self.dismiss(None)
