"""amc-tui on a real, live tiny launch (one for the whole module, on the test session's Ray): a pilot
follows it through the metrics hub while it runs; `amc-tui` in tmux follows the same run from storage
as a person would and shows the four attacks with their error rates; the view survives the hub being
killed and restarted."""

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from amc_tui.app import Dashboard
from amc_tui.hub_source import HUB_NAME, NAMESPACE, HubSource
from tui_pilot import SIZE, screen_text, wait_for, wait_for_text, widget_text

from amc_dist import launch

REPO = Path(__file__).resolve().parent.parent
TINY = str(REPO / "tests" / "configs" / "tiny.yaml")
AMC_TUI = str(Path(sys.executable).parent / "amc-tui")
PAPER = {"fgsm": "FGSM", "ead": "EAP", "pgd": "PGM", "vat": "VAP"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@dataclass
class Live:
    run_dir: Path
    thread: threading.Thread
    tmux: Path | None  # the socket of the tmux server running amc-tui on the run, when tmux is installed
    exit_file: Path
    result: dict = field(default_factory=dict)

    def finish(self, timeout: float = 300) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the launch did not finish"
        assert self.result.get("rc") == 0, self.result


def tmux(socket: Path, *args: str) -> str:
    """tmux on a server of our own (its socket in the test's folder): the user's sessions stay untouched."""
    done = subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory, ray_cluster, data_root):
    work = tmp_path_factory.mktemp("tui-live")
    storage, run_dir = work / "runs", work / "runs" / "live"
    exit_file = work / "amc-tui.exit"
    session = None
    if shutil.which("tmux"):
        # started before the run exists: amc-tui waits for the directory, then follows it
        session = work / "tmux.sock"
        # the pane's COLUMNS/LINES (80x24, from before the window took its size) would override the real size
        env = f"-u COLUMNS -u LINES PYTHONPATH={REPO / 'tui'}:{REPO} TERM=xterm-256color"
        command = f"env {env} {AMC_TUI} {run_dir}; echo $? > {exit_file}"
        tmux(session, "new-session", "-d", "-x", str(SIZE[0]), "-y", str(SIZE[1]), command)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AMC_DATA", data_root)  # for the launch thread, which outlives each test's own patch
        live = Live(run_dir, threading.Thread(target=lambda: None), session, exit_file)

        def run() -> None:
            args = ["--config", TINY, "--storage", str(storage), "--run-id", "live"]
            live.result["rc"] = launch.main(args)

        live.thread = threading.Thread(target=run, name="tiny-launch", daemon=True)
        live.thread.start()
        try:
            yield live
        finally:
            live.thread.join(300)
            if session is not None:
                subprocess.run(["tmux", "-S", str(session), "kill-server"], capture_output=True)


def test_a_pilot_follows_a_live_launch_through_the_hub(live):
    key = str(live.run_dir)

    async def scenario():
        app = Dashboard(HubSource(timeout=10), interval=0.5, max_backoff=2.0)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: key in app.models, 120, "the live run on the hub")
            text = await wait_for_text(pilot, "● connected", "metrics hub on the local Ray cluster")
            app.open_run(key)
            await wait_for_text(pilot, "Overview", "report")
            model = app.models[key]
            seen: dict[str, list[str]] = {}  # step -> the states the screen showed, in order
            delays: list[float] = []  # seconds from an eval event's time to the dashboard having it
            known = len(model.measures)
            counts: dict[str, list[int]] = {a: [] for a in PAPER}  # white-box figures per attack over time

            def look() -> None:
                nonlocal known
                delays.extend(time.time() - m.time for m in model.measures[known:])
                known = len(model.measures)
                for line in widget_text(app, "#steps").splitlines()[1:]:
                    if len(line.split()) >= 3:
                        name, _, state = line.split()[:3]
                        if not seen.get(name) or seen[name][-1] != state:
                            seen.setdefault(name, []).append(state)
                for attack in PAPER:
                    counts[attack].append(
                        sum(m.setting == "whitebox" and m.attack == attack for m in model.measures)
                    )

            deadline = time.monotonic() + 300
            while model.status() != "done" and time.monotonic() < deadline:
                look()
                await pilot.pause(0.5)
            assert model.status() == "done", screen_text(app)
            await wait_for_text(pilot, "live done", "steps 19/19")
            look()
            delays.sort()
            print(f"eval events reached the dashboard after {delays[len(delays) // 2]:.2f} s (median), "
                  f"{delays[-1]:.2f} s (max) of {len(delays)}")  # fmt: skip
            assert delays[len(delays) // 2] < 2.0  # polled every 0.5 s here, sampled every 0.5 s
            assert len(seen) == 19 and all(states[-1] == "done" for states in seen.values()), seen
            assert sum("running" in states for states in seen.values()) >= 3, seen
            assert any(states[:2] == ["pending", "running"] for states in seen.values()), seen
            for attack, series in counts.items():  # every attack's series grew while we watched
                assert series[0] < series[-1] and series == sorted(series), (attack, series)
            errors = widget_text(app, "#errors")
            results = json.loads((live.run_dir / "results.json").read_text())
            row = next(line.split() for line in errors.splitlines() if line.startswith(" eval.amc_target "))
            shown = [a for setting, a in model.error_columns() if setting == "whitebox"]  # the run's order
            assert sorted(shown) == sorted(PAPER), shown
            assert row[2:6] == [f"{100 * results['whitebox']['amc_target'][a]:.1f}" for a in shown]
            await pilot.press("3")
            text = await wait_for_text(
                pilot, "Table 3: white-box error", "Table 4: black-box error", timeout=30
            )
            assert "amc_target" in text

    asyncio.run(scenario())


def test_amc_tui_in_tmux_shows_the_four_attacks_and_their_error_rates(live):
    if live.tmux is None:
        pytest.skip("tmux is not installed")
    live.finish()
    results = json.loads((live.run_dir / "results.json").read_text())

    def screen() -> str:
        return tmux(live.tmux, "capture-pane", "-p")

    def shows(text: str, seconds: float = 20) -> bool:
        """Whether the pane shows `text` within `seconds` (a tab draws in a frame or two, but a loaded
        machine can take seconds)."""
        deadline = time.monotonic() + seconds
        while text not in screen():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)
        return True

    shows("report  done", 60)  # the run's last step, or the checks below say what the pane holds
    text = screen()
    print(text)
    lines = text.splitlines()

    def is_header(words: list[str]) -> bool:  # clean, the four attacks white-box, the same four black-box
        return len(words) >= 9 and words[-9] == "clean" and sorted(words[-8:-4]) == sorted(PAPER.values())

    header = next(i for i, line in enumerate(lines) if is_header(line.split()))
    names = lines[header].split()[-8:-4]  # in the run's own order (its cascade first)
    assert lines[header].split()[-4:] == names
    order = [next(a for a, shown in PAPER.items() if shown == name) for name in names]
    assert lines[header - 1].split()[-8:] == ["wb"] * 4 + ["bb"] * 4  # white-box, then black-box
    assert "live done" in text and "steps 19/19" in text
    number = r"\s+(\d+\.\d)"
    for model in ("amc_target", "amc_proxy"):  # the error matrix: clean, then white-box in the run's order
        found = re.search(rf"eval\.{model}{number * 5}", text)
        assert found, text
        assert list(found.groups()[1:]) == [f"{100 * results['whitebox'][model][a]:.1f}" for a in order]
    found = re.search(rf"blackbox\.amc_proxy{number * 4}\s*$", text, re.MULTILINE)  # black-box, same order
    assert found, text
    assert list(found.groups()) == [f"{100 * results['blackbox']['amc_proxy'][a]:.1f}" for a in order]

    tmux(live.tmux, "send-keys", "2")  # the charts, as a person would look at them
    assert shows("validation error % over training steps"), screen()
    tmux(live.tmux, "send-keys", "3")
    assert shows("Table 3: white-box error"), screen()
    tmux(live.tmux, "send-keys", "q")
    deadline = time.monotonic() + 20
    while not live.exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live.exit_file.read_text().strip() == "0"


def test_the_view_recovers_when_the_hub_is_killed_and_restarted(live):
    import ray

    from amc_dist.distributed.hub import hub

    live.finish()
    key = str(live.run_dir)

    async def scenario():
        app = Dashboard(HubSource(timeout=3), interval=0.2, max_backoff=1.0)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: key in app.models and app.models[key].status() == "done", 60, "run")
            model = app.models[key]
            measures = len(model.measures)
            handle = ray.get_actor(HUB_NAME, namespace=NAMESPACE)
            started = ray.get(handle.ping.remote())

            # Ray restarts a killed hub by itself; it reloads every run from storage
            ray.kill(handle, no_restart=False)
            while await asyncio.to_thread(lambda: ray.get(handle.ping.remote(), timeout=30)) == started:
                await pilot.pause(0.2)
            await wait_for_text(pilot, "● connected")
            await pilot.pause(1.0)
            assert app.models[key] is model and len(model.measures) == measures and not model.bad

            # a hub that is gone for a while: the last data stays on screen, retries back off
            index_url = ray.get(handle.__ray_call__.remote(lambda hub: hub.index_url))
            ray.kill(handle, no_restart=True)
            await wait_for(pilot, lambda: app.connection.failures >= 3, 30, "three failed polls")
            text = screen_text(app)
            assert "○ unreachable" in text and "retry in" in text and "showing data from" in text
            assert any(line.split()[:1] == ["live"] and " done " in line for line in text.splitlines())
            hub(index_url)  # a new hub actor under the same name, loading the same runs
            await wait_for_text(pilot, "● connected", timeout=60)
            await pilot.pause(1.0)
            assert len(model.measures) == measures and app.models[key].status() == "done"

    asyncio.run(scenario())
