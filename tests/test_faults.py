"""Faults cost at most the work since the last checkpoint and never leave a result that looks complete
but is not: a killed Ray Train worker, a killed launch driver, a killed metrics hub."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from netaudit import launch_env, run_bounded
from ray.util.state import list_actors

from amc_dist import launch, storage
from amc_dist.bench import latency_storage
from amc_dist.bench.hub_actor import BenchHub
from amc_dist.distributed.hub import ACTOR_OPTIONS, hub
from amc_dist.eventlog import read_events

REPO = Path(__file__).resolve().parent.parent
TINY = str(REPO / "tests" / "configs" / "tiny.yaml")
SECTIONS = {"clean", "whitebox", "blackbox", "squeezing", "leave_one_out", "strong_pgd", "smell_tests"}


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _launch_in_thread(args: list[str]) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(launch.main(args)), daemon=True)
    thread.start()
    return thread, codes


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_train_worker_restarts_from_its_last_checkpoint(tmp_path, ray_cluster):
    args = ["--config", TINY, "--storage", str(tmp_path), "--run-id", "w", "--only", "target", "--set",
            "ray.trainer=train", "--set", "training.epochs=6", "--set", "data.train_subset=2000"]  # fmt: skip
    metrics = tmp_path / "w" / "metrics.jsonl"
    thread, codes = _launch_in_thread(args)
    # once the second epoch has ended, kill the worker's process: the first epoch's checkpoint report has
    # returned by then (the second epoch's own may still be in flight)
    _wait_for(
        lambda: any(e.get("epoch", 0) >= 2 and "epoch_loss" in e for e in _events(metrics)), 200, "two epochs"
    )
    workers = _wait_for(
        lambda: list_actors(
            address=ray.get_runtime_context().gcs_address,
            filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")],
        ),
        30,
        "the Train worker",
    )
    killed = time.time()
    os.kill(workers[0].pid, signal.SIGKILL)
    thread.join(300)
    assert codes == [0]
    events = _events(metrics)
    starts = [e for e in events if e["kind"] == "stage_started" and e["stage"] == "target"]
    assert len(starts) == 2 and starts[0]["step"] == 0
    assert starts[1]["step"] > 0  # the restarted worker resumed after a completed epoch, not from scratch
    assert (tmp_path / "w" / "models" / "target.pt").exists()
    print(f"Train worker recovery: {starts[1]['time'] - killed:.1f} s from the kill to the resumed fit")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_metrics_hub_killed_mid_run_loses_and_doubles_no_event(tmp_path, ray_cluster):
    args = ["--config", TINY, "--storage", str(tmp_path), "--run-id", "h"]
    metrics = tmp_path / "h" / "metrics.jsonl"
    thread, codes = _launch_in_thread(args)
    _wait_for(lambda: sum(e["kind"] == "step_finished" for e in _events(metrics)) >= 3, 200, "three steps")
    killed = time.time()
    ray.kill(hub(), no_restart=False)
    _wait_for(lambda: ray.get(hub().ping.remote()) > killed, 60, "the hub's restart")
    thread.join(300)
    assert codes == [0]
    events = _events(metrics)
    assert len({e["id"] for e in events}) == len(events)  # nothing doubled
    started = next(e for e in events if e["kind"] == "run_started")
    finished = {e["stage"] for e in events if e["kind"] == "step_finished"}
    assert finished == {s["name"] for s in started["graph"]}  # nothing lost
    assert events[-1]["kind"] == "run_finished" and events[-1]["status"] == "done"
    print(f"hub recovery: {ray.get(hub().ping.remote()) - killed:.1f} s")


@pytest.mark.timeout(120)
def test_a_hub_killed_during_a_group_write_loses_doubles_and_reorders_nothing(tmp_path, ray_cluster):
    """8 publishers call back to back while every write takes 50 ms (so the hub is almost always in
    the middle of one, its group's callers waiting): the hub is killed, restarts, the unacknowledged
    calls are retried, and the log holds each publisher's events once, in its order."""
    work = latency_storage.url(50, str(tmp_path))
    handle = ray.remote(BenchHub).options(**ACTOR_OPTIONS).remote(storage.join(work, "index.json"))
    run_dir = storage.join(work, "run")
    killed = threading.Event()

    def publisher(p):
        n = 0
        while not killed.is_set() or n < 40:  # keep calling until well after the restart
            ray.get(handle.publish.remote("r", run_dir, [{"id": f"p{p}-{n}-{k}"} for k in range(3)]))
            n += 1
        return n

    threads = [threading.Thread(target=lambda p=p: sent.append((p, publisher(p)))) for p in range(8)]
    sent: list[tuple[int, int]] = []
    for thread in threads:
        thread.start()
    _wait_for(lambda: len(read_events(run_dir)) >= 48, 60, "a few groups stored")
    started = ray.get(handle.ping.remote())
    ray.kill(handle, no_restart=False)
    killed.set()
    for thread in threads:
        thread.join(90)
    assert ray.get(handle.ping.remote()) > started  # it was restarted
    ids = [e["id"] for e in read_events(run_dir)]
    assert len(sent) == 8 and len(ids) == len(set(ids)) == 3 * sum(n for _, n in sent)
    for p, n in sent:
        assert [i for i in ids if i.startswith(f"p{p}-")] == [
            f"p{p}-{m}-{k}" for m in range(n) for k in range(3)
        ]
    assert [e["id"] for e in ray.get(handle.events.remote("r"))] == ids
    ray.kill(handle, no_restart=True)


@pytest.mark.slow
@pytest.mark.timeout(500)
def test_a_killed_driver_is_resumed_by_a_rerun_with_the_same_run_id(data_root, short_tmp):
    work = short_tmp
    env = launch_env(AMC_DATA=data_root, TMPDIR=str(work))
    command = [sys.executable, "-m", "amc_dist.launch", "--config", TINY, "--storage", str(work / "runs"),
               "--run-id", "k"]  # fmt: skip
    metrics = work / "runs" / "k" / "metrics.jsonl"
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    _wait_for(lambda: sum(e["kind"] == "step_finished" for e in _events(metrics)) >= 4, 300, "four steps")
    os.killpg(process.pid, signal.SIGKILL)  # the driver and its embedded Ray, at once
    process.wait()
    killed = time.time()
    done_before = {p.name.removesuffix(".done") for p in (work / "runs" / "k" / "steps").iterdir()}
    assert not (work / "runs" / "k" / "results.json").exists()
    resumed = run_bounded(command, env, str(REPO), 400)
    assert resumed.returncode == 0, resumed.output[-4000:]
    results = json.loads((work / "runs" / "k" / "results.json").read_text())
    assert set(results) >= SECTIONS
    events = _events(metrics)
    second = next(i for i, e in enumerate(events) if e["kind"] == "run_started" and e["attempt"] == 2)
    skipped = {e["stage"] for e in events[second:] if e["kind"] == "step_finished" and e["skipped"]}
    assert skipped == done_before  # exactly the completed steps were skipped, the rest ran
    resumed_at = next(e["time"] for e in events[second:] if e["kind"] == "step_started")
    print(f"driver kill: rerun reached its first incomplete step {resumed_at - killed:.1f} s later")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_s3_outage_stops_the_run_clearly_and_the_same_run_id_completes_after(
    data_root, monkeypatch, short_tmp
):
    from s3server import run_s3_server, weed_binary

    from amc_dist import storage

    binary = weed_binary()
    if binary is None:
        pytest.skip("no SeaweedFS `weed` binary")
    work = short_tmp
    with run_s3_server(binary) as server:
        env = launch_env(AMC_DATA=data_root, TMPDIR=str(work), **server.env())
        url = f"s3://{server.bucket}/outage"
        command = [sys.executable, "-m", "amc_dist.launch", "--config", TINY, "--storage", url,
                   "--run-id", "o"]  # fmt: skip
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        for name, value in server.env().items():  # this test reads the run's storage too
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(storage, "_endpoint_url", None)
        markers = storage.join(url, "o", "steps")
        _wait_for(lambda: len(storage.listdir(markers)) >= 3, 300, "three completed steps")
        os.kill(server.pid, signal.SIGKILL)  # the storage goes away mid-run
        try:
            output, _ = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        assert process.returncode == 1, output[-3000:]
        assert f"storage {url}/o is unreachable" in output, output[-3000:]
        with run_s3_server(binary, again=server):
            for marker in storage.listdir(markers):  # nothing marked complete that was not written
                done = json.loads(storage.read_bytes(storage.join(markers, marker)))
                for output_file in done["outputs"]:
                    assert storage.exists(storage.join(url, "o", output_file)), (marker, output_file)
            resumed = run_bounded(command, env, str(REPO), 400)
            assert resumed.returncode == 0, resumed.output[-4000:]
            results = json.loads(storage.read_bytes(storage.join(url, "o", "results.json")))
            assert set(results) >= SECTIONS


@pytest.mark.slow
@pytest.mark.timeout(500)
def test_a_node_removed_mid_run_has_its_steps_rescheduled(data_root, short_tmp):
    work = short_tmp
    env = launch_env(AMC_DATA=data_root, TMPDIR=str(work), RAY_TMPDIR=str(work))
    script = str(REPO / "tests" / "two_node_launch.py")
    finished = run_bounded([sys.executable, script, str(work / "runs"), TINY], env, str(REPO), 450)
    assert finished.returncode == 0, finished.output[-4000:]
    seen = finished.report()
    assert seen["running_on_removed_node"], seen  # the node was doing work when it went
    assert seen["exit_code"] == 0 and seen["nodes_alive"] == 1
    results = json.loads((work / "runs" / "n" / "results.json").read_text())
    assert set(results) >= SECTIONS
    events = _events(work / "runs" / "n" / "metrics.jsonl")
    after = [e for e in events if e["kind"] == "step_finished" and e["time"] > seen["removed_at"]]
    print(f"node removed; {len(after)} steps finished after, the run completed")
