"""amc-tui replaying recorded runs from storage (a local folder and the S3 test server), following a
file as it grows, surviving bad input and an unreachable source, and exiting non-zero on a real crash.
Assertions read the screen as text (see tui_pilot.py), at a fixed terminal size."""

import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from amc_tui import app as tui_app
from amc_tui.app import Dashboard
from amc_tui.source import RunFeed, Unreachable
from amc_tui.storage_source import StorageSource
from tui_pilot import SIZE, screen_text, wait_for, wait_for_text, widget_text

from amc_dist import storage
from amc_dist.eventlog import EventLog

RECORDED = Path(__file__).parent / "data" / "tui_run"
LINES = (RECORDED / "metrics.jsonl").read_bytes().splitlines(keepends=True)


def copy_run(folder: Path, lines=LINES, results=True) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_bytes(b"".join(lines))
    if results:
        shutil.copy(RECORDED / "results.md", folder / "results.md")
    return folder


def row_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(name + " "))


def test_a_recorded_run_replays_through_every_screen(tmp_path):
    copy_run(tmp_path / "runs" / "rec1")
    (tmp_path / "runs" / ".hub").mkdir()  # the hub's index folder is not a run

    async def scenario():
        app = Dashboard(StorageSource([str(tmp_path / "runs")]), interval=0.2)
        async with app.run_test(size=SIZE) as pilot:
            text = await wait_for_text(pilot, "rec1", "done")
            assert "● connected" in text and "1 runs" in text
            row = row_of(text, "rec1")
            assert "mnist" in row and "lenet" in row and "19/19" in row and "84.9" in row and "87.5" in row
            await pilot.press("enter")
            text = await wait_for_text(pilot, "Overview", "eval.amc_target")
            assert "steps 19/19" in text and "elapsed 50s" in text
            # the error matrix: clean, then F/E/P/V white-box ("wb") and black-box ("bb"), in %
            errors = widget_text(app, "#errors")
            assert errors.splitlines()[0].split() == ["wb"] * 4 + ["bb"] * 4
            assert errors.splitlines()[1].split() == ["step", "clean", *["FGSM", "EAP", "PGM", "VAP"] * 2]
            assert row_of(errors, "eval.amc_target").split() == ["eval.amc_target", "72.1", "87.5", "83.3",
                                                                 "85.4", "87.5"]  # fmt: skip
            assert row_of(errors, "blackbox.amc_proxy").split()[1:] == ["85.4", "79.2", "79.2", "81.2"]
            report = row_of(widget_text(app, "#steps"), "report").split()
            assert report == ["report", "report", "done", "████████", "100%", "–"]
            for _ in range(3):
                await pilot.press("down")
            await pilot.press("2")
            text = await wait_for_text(pilot, "amc_target.2: validation error % over training steps")
            assert "error % across stages up to amc_target.2" in text and "amc_target.1" in text
            assert "amc_target.2: training loss" in text and "proxy agreement % across (re-)fits" in text
            await pilot.press("]")
            await wait_for_text(pilot, "amc_proxy.1: validation error")
            for _ in range(5):
                await pilot.press("]")  # an evaluation step: its errors per attack, a bar per setting
            await wait_for_text(pilot, "eval.undefended: error % per attack")
            await pilot.press("3")
            text = await wait_for_text(pilot, "Table 3: white-box error", timeout=5)
            assert "Table 2: clean error" in text and "95.8 (paper 85.4)" in text
            await pilot.press("4")
            text = await wait_for_text(pilot, "run finished: done")
            assert "blackbox.amc_proxy: blackbox vat 81.2% (n=48)" in text and "report finished in" in text
            await pilot.press("m")
            text = await wait_for_text(pilot, "rec1: results.md", "Results: mnist")
            await pilot.press("escape")
            await wait_for_text(pilot, "Overview")
            await pilot.press("ctrl+p", *"open results")  # the same action from the command palette
            await wait_for_text(pilot, "Open results.md")
            await pilot.press("enter")
            await wait_for_text(pilot, "rec1: results.md", "Results: mnist")
            await pilot.press("escape")
            await wait_for_text(pilot, "Overview")
            theme = app.theme
            await pilot.press("t")
            assert app.theme != theme
            await pilot.press("escape")
            await wait_for_text(pilot, "filter runs")
            await pilot.press("slash", *"zzz")
            await wait_for(pilot, lambda: "rec1" not in screen_text(app), 5, "filtered-out run")

    asyncio.run(scenario())


def test_a_run_written_to_s3_replays_like_a_local_one(s3_run):
    run = storage.join(s3_run, "runs", "rec1")
    log = EventLog(run)
    events = [json.loads(line) for line in LINES]
    for start in range(0, len(events), 50):  # four segments, as a run on object storage writes them
        log.append(events[start : start + 50])
    with storage.atomic_write(storage.join(run, "results.md")) as handle:
        handle.write((RECORDED / "results.md").read_bytes())
    assert len(storage.listdir(storage.join(run, "metrics.jsonl.d"))) == 5

    async def scenario():
        source = StorageSource([run])
        app = Dashboard(source, interval=0.2, open_run=source.paths[0])
        async with app.run_test(size=SIZE) as pilot:
            text = await wait_for_text(pilot, "rec1 done", "eval.amc_proxy", timeout=20)
            assert "steps 19/19" in text and f"storage {run}" in text
            await pilot.press("3")
            await wait_for_text(pilot, "Table 4: black-box error", timeout=20)

    asyncio.run(scenario())


def test_a_growing_file_updates_rows_in_place_keeping_the_cursor(tmp_path):
    run = copy_run(tmp_path / "rec1", LINES[:1], results=False)  # run_started: every step pending

    async def scenario():
        app = Dashboard(StorageSource([str(run)]), interval=0.1, open_run=str(run))
        async with app.run_test(size=SIZE) as pilot:
            # recorded long ago and unfinished, so no heartbeat is recent: stale
            text = await wait_for_text(pilot, "rec1 stale", "amc_target.2")
            assert "pending" in row_of(text, "report") and "pending" in row_of(text, "target")
            steps = app.screen.query_one("#steps")
            for _ in range(5):
                await pilot.press("down")
            keys_before = [key.value for key in steps.rows]
            await pilot.press("3")
            await wait_for_text(pilot, "results appear when the run's report step finishes")
            await pilot.press("1")
            shutil.copy(RECORDED / "results.md", run / "results.md")  # the report step writes it last
            with (run / "metrics.jsonl").open("ab") as handle:
                handle.write(b"".join(LINES[1:]))
            await wait_for_text(pilot, "rec1 done")
            # cells that grew (an empty progress bar became a full one) widened their column
            report = row_of(widget_text(app, "#steps"), "report").split()
            assert report[2:5] == ["done", "████████", "100%"]
            assert steps.cursor_row == 5 and [key.value for key in steps.rows] == keys_before
            await pilot.press("3")
            await wait_for_text(pilot, "Table 3: white-box error", timeout=5)

    asyncio.run(scenario())


def test_bad_input_is_counted_on_screen_and_a_missing_run_is_picked_up(tmp_path):
    run = tmp_path / "later" / "rec1"
    bad = [
        b"[1, 2, 3]\n",  # JSON, not an object
        b"\xff\xfe not utf-8\n",
        b'{"kind": "eval", "stage": "target", "setting": "whitebox", "attack": "fgsm"}\n',  # no error_rate
        b'{"kind": "teleport", "stage": "target"}\n',
        b'{"schema": 7, "kind": "heartbeat", "running": []}\n',
        b"{not json\n",
    ]

    async def scenario():
        app = Dashboard(StorageSource([str(run)]), interval=0.1, open_run=str(run))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_text(pilot, "its directory does not exist yet")
            copy_run(run, LINES[:30] + bad + LINES[30:], results=False)
            with (run / "metrics.jsonl").open("ab") as handle:
                handle.write(b'{"kind": "eval", "stage": "targ')  # a writer cut off mid-line
            text = await wait_for_text(pilot, "rec1 done", "skipped events")
            summary = next(line for line in text.splitlines() if "skipped events" in line)
            for part in ("3 corrupt", "1 missing fields", "1 newer schema", "1 unknown kind"):
                assert part in summary
            assert "6 bad events skipped" in text
            await pilot.press("4", "home")  # the skipped lines were noted as they were read, early on
            await wait_for_text(pilot, "unknown event kind 'teleport'", "newer than this amc-tui knows")
            assert app.is_running

    asyncio.run(scenario())


class FlakySource:
    """Answers, then is unreachable for `down` polls, then answers again with more events."""

    def __init__(self, down: int) -> None:
        self.down, self.polls = down, 0
        self.times: list[float] = []
        events = [json.loads(line) for line in LINES]
        shift = time.time() - events[99]["time"]  # as if the run were live: its 100th event just now
        self.events = [{**e, "time": e["time"] + shift} for e in events]

    def poll(self):
        self.polls += 1
        self.times.append(time.monotonic())
        if self.polls == 1:
            return [RunFeed("/runs/rec1", "rec1", self.events[:100])]
        if self.polls <= 1 + self.down:
            raise Unreachable("ConnectionError: hub gone")
        if self.polls == 2 + self.down:
            return [RunFeed("/runs/rec1", "rec1", self.events[100:])]
        return []

    def describe(self):
        return "flaky test source"

    def dashboard_url(self):
        return None

    def close(self):
        pass


def test_an_unreachable_source_keeps_the_last_data_and_backs_off_until_it_answers():
    source = FlakySource(down=4)

    async def scenario():
        app = Dashboard(source, interval=0.05, max_backoff=0.3)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_text(pilot, "● connected", "rec1")
            await wait_for(pilot, lambda: app.connection.failures >= 2, 5, "two failed polls")
            text = screen_text(app)
            assert "○ unreachable  ConnectionError: hub gone" in text and "showing data from" in text
            assert "rec1" in text and "running" in row_of(text, "rec1")  # the last data stays
            text = await wait_for_text(pilot, "● connected", "done")
            assert source.polls >= 6 and app.connection.failures == 0

    asyncio.run(scenario())
    # after each failed poll the next waited longer: 0.05, 0.1, 0.2 s, then the cap of 0.3 s
    gaps = [b - a for a, b in itertools.pairwise(source.times[1:6])]
    assert all(gap >= delay * 0.95 for gap, delay in zip(gaps, [0.05, 0.1, 0.2, 0.3], strict=True)), gaps


class BrokenSource(FlakySource):
    def poll(self):
        raise ZeroDivisionError("a bug, not a connection problem")


def test_a_real_crash_exits_non_zero_with_the_message(monkeypatch, capsys):
    monkeypatch.setattr(tui_app, "open_source", lambda args: BrokenSource(0))
    run = Dashboard.run
    monkeypatch.setattr(Dashboard, "run", lambda self: run(self, headless=True, size=SIZE))
    assert tui_app.main([]) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err


def test_the_command_line_documents_its_sources(capsys):
    with pytest.raises(SystemExit):
        tui_app.main(["--help"])
    text = capsys.readouterr().out
    assert "RAY_ADDRESS" in text and "--address" in text and "s3://" in text and "--dashboard" in text


FALLBACK = """
import asyncio, sys
from tui_pilot import SIZE, wait_for_text
from amc_tui.app import Dashboard, build_parser, open_source

async def main():
    # The default poll interval: at 0.2 s a loaded machine kept the app from ever going idle, and a
    # DataTable measures new rows' widths only when idle (the run id showed as 'rec', cut to the header).
    app = Dashboard(open_source(build_parser().parse_args([])))
    async with app.run_test(size=SIZE) as pilot:
        text = await wait_for_text(pilot, "no local Ray cluster: storage", "rec1", timeout=60)
        print(next(line for line in text.splitlines() if "rec1" in line))

asyncio.run(main())
"""


def test_with_no_argument_and_no_cluster_it_follows_the_runs_folder(tmp_path):
    copy_run(tmp_path / "runs" / "rec1")
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # no cluster named anywhere
    env["RAY_TMPDIR"] = str(tmp_path / "ray")  # nor one recorded by a `ray start` on this machine
    env["PYTHONPATH"] = f"{repo / 'tests'}:{repo / 'tui'}:{repo}"
    done = subprocess.run([sys.executable, "-c", FALLBACK], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mnist" in done.stdout and "19/19" in done.stdout and "done" in done.stdout


CRASH = """
import os, sys
from amc_tui import app, storage_source

def poll(self):
    os.write(2, b"what Ray's C++ core writes straight to fd 2\\n")
    raise ZeroDivisionError("a bug in the dashboard")

storage_source.StorageSource.poll = poll
sys.exit(app.main(["runs"]))
"""


def test_a_crash_in_a_terminal_exits_non_zero_with_the_traceback_and_keeps_stray_output(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    repo = Path(__file__).resolve().parent.parent
    (tmp_path / "crash.py").write_text(CRASH)
    socket, status = tmp_path / "tmux.sock", tmp_path / "status"
    env = f"-u COLUMNS -u LINES PYTHONPATH={repo / 'tui'}:{repo}"
    command = f"env {env} {sys.executable} crash.py; echo $? > {status}; sleep 30"
    tmux = ["tmux", "-S", str(socket)]
    subprocess.run(
        [*tmux, "new-session", "-d", "-c", str(tmp_path), "-x", "120", "-y", "40", command], check=True
    )
    try:
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert status.read_text().strip() == "1", screen
    assert "ZeroDivisionError: a bug in the dashboard" in screen
    saved = re.search(r"what Ray printed meanwhile is in (\S+)", screen)
    assert saved, screen
    assert Path(saved[1]).read_text() == "what Ray's C++ core writes straight to fd 2\n"
    Path(saved[1]).unlink()


def trial_events(trial: str, alpha: float, errors: list[float], finished: bool) -> list[dict]:
    """What a Ray Tune trial of sweep s1 reports to the hub: a run `s1.<trial>` whose run_started names
    the sweep, the trial and the values it tries (amc_dist/distributed/tuning.py)."""
    now = time.time()
    graph = [{"name": f"amc_target.{i}", "needs": [], "kind": "train"} for i in (1, 2)]
    events = [{"kind": "run_started", "run_id": f"s1.{trial}", "time": now, "graph": graph,
               "dataset": "mnist", "model": "lenet", "runner": "tune", "sweep": "s1", "trial": trial,
               "values": {"training.alpha": alpha, "cascade.lambdas": [0.25, 0.75]}}]  # fmt: skip
    for stage, rate in zip(("amc_target.1", "amc_target.2"), errors, strict=False):
        events += [{"kind": "step_started", "stage": stage, "time": now},
                   {"kind": "eval", "stage": stage, "setting": "whitebox", "attack": "fgsm",
                    "error_rate": rate, "time": now},
                   {"kind": "step_finished", "stage": stage, "time": now}]  # fmt: skip
    return events + ([{"kind": "run_finished", "status": "done", "time": now}] if finished else [])


class SweepSource(FlakySource):
    def poll(self):
        if self.polls:
            return []
        self.polls += 1
        return [
            RunFeed("/runs/plain", "plain", [json.loads(line) for line in LINES]),
            RunFeed("/sweeps/s1/trials/t1", "s1.t1", trial_events("t1", 0.31, [0.5, 0.25], finished=True)),
            RunFeed("/sweeps/s1/trials/t2", "s1.t2", trial_events("t2", 0.05, [0.75], finished=False)),
        ]


def test_a_tune_sweep_appears_above_its_trials():
    async def scenario():
        app = Dashboard(SweepSource(0), interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            text = await wait_for_text(pilot, "s1 (sweep)", "s1.t2")
            rows = [line.split(maxsplit=1)[0] for line in widget_text(app, "#runs").splitlines()[1:] if line]
            assert rows == ["plain", "s1", "s1.t1", "s1.t2"]  # the sweep's row first, then its trials
            sweep = row_of(text, "s1")
            assert "2 trials" in sweep and "1/2 done" in sweep and "running" in sweep and "25.0" in sweep
            assert "trial: alpha=0.31, lamb…" in row_of(text, "s1.t1")  # the values it tries
            await pilot.press("down", "enter")  # on the sweep's row: just the sweep and its trials
            await wait_for(pilot, lambda: "plain" not in widget_text(app, "#runs"), 5, "the sweep's trials")
            assert "s1.t1" in widget_text(app, "#runs") and "s1.t2" in widget_text(app, "#runs")

    asyncio.run(scenario())


def test_a_late_column_takes_its_place_in_the_runs_order(tmp_path):
    """A figure for an attack that sorts before the columns already shown (VAP's arrives before FGSM's)
    rebuilds the matrix in the run's order, every cell under its own header."""
    run = copy_run(tmp_path / "rec1", LINES[:1], results=False)

    def figure(attack: str, value: float, step: int) -> bytes:
        event = {"attack": attack, "epoch": 1, "error_rate": value, "id": f"late-{step}", "kind": "eval",
                 "n": 32, "run_id": "rec1", "schema": 1, "setting": "whitebox", "stage": "eval.amc_target",
                 "step": step, "time": 1796002900.0 + step}  # fmt: skip
        return (json.dumps(event) + "\n").encode()

    async def scenario():
        app = Dashboard(StorageSource([str(run)]), interval=0.1, open_run=str(run))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_text(pilot, "amc_target.2")
            with (run / "metrics.jsonl").open("ab") as handle:
                handle.write(figure("vat", 0.25, 1))
            await wait_for(pilot, lambda: "VAP" in widget_text(app, "#errors"), 10, "the VAP column")
            with (run / "metrics.jsonl").open("ab") as handle:
                handle.write(figure("fgsm", 0.5, 2))
            await wait_for(pilot, lambda: "FGSM" in widget_text(app, "#errors"), 10, "the FGSM column")
            errors = widget_text(app, "#errors").splitlines()
            assert errors[1].split() == ["step", "clean", "FGSM", "VAP"]
            assert row_of("\n".join(errors), "eval.amc_target").split() == ["eval.amc_target", "50.0", "25.0"]

    asyncio.run(scenario())
