"""`python -m amc_dist.launch` as a user runs it, on the embedded Ray, with its run on a real S3 server:
every connection it makes stays on loopback (strace), the run lands on S3 complete and without
credentials, a rerun with the same run id resumes (every step skipped), and the events read back in
order."""

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from netaudit import STRACE, launch_env, outside_connections, run_bounded

from amc_dist import storage
from amc_dist.eventlog import EventReader, read_events

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("clean", "whitebox", "blackbox", "squeezing", "leave_one_out", "strong_pgd", "smell_tests")


def test_the_audit_names_outside_and_dns_connections_only():
    lines = [
        '7 connect(3, {sa_family=AF_INET, sin_port=htons(8265), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        "7 connect(4, {sa_family=AF_INET6, sin6_port=htons(6379), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        "7 connect(5, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28 <unfinished ...>',
        '8 connect(6, {sa_family=AF_UNIX, sun_path="/tmp/ray/session/sockets/raylet"}, 110) = 0',
        '8 connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0',
        '8 connect(8, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("8.8.8.8")}, 16) = 0',
        "8 connect(9, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "fd00::2", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '8 connect(10, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
        "9 <... connect resumed>) = 0",
    ]
    assert outside_connections(lines) == [lines[4], lines[5], lines[6], lines[7]]


@pytest.mark.timeout(600)
@pytest.mark.skipif(not os.access(STRACE, os.X_OK), reason=f"no {STRACE}")
def test_tiny_launch_on_s3_stays_on_loopback_writes_everything_and_resumes(
    s3_server, s3_run, data_root, tmp_path
):
    command = [sys.executable, "-m", "amc_dist.launch", "--config", "tests/configs/tiny.yaml",
               "--storage", s3_run, "--run-id", "audited"]  # fmt: skip
    env = launch_env(AMC_DATA=data_root, **s3_server.env())
    trace = tmp_path / "connect.strace"
    first = run_bounded(
        [STRACE, "-f", "--seccomp-bpf", "-e", "trace=connect", "-o", str(trace), *command],
        env,
        str(REPO),
        420,
    )
    assert first.returncode == 0, first.output[-4000:]
    outside = outside_connections(trace.read_text(errors="replace").splitlines())
    assert not outside, "connections outside loopback:\n" + "\n".join(outside)
    assert "connect(" in trace.read_text(errors="replace")  # strace did see the launch's connections

    run_dir = storage.join(s3_run, "audited")
    results = json.loads(storage.read_bytes(storage.join(run_dir, "results.json")))
    assert set(SECTIONS) <= set(results)
    assert all(results[section] for section in SECTIONS), [s for s in SECTIONS if not results[s]]
    config_text = storage.read_bytes(storage.join(run_dir, "config.yaml")).decode()
    assert yaml.safe_load(config_text)["run"]["output"] == s3_run
    for credential in (s3_server.key, s3_server.secret):
        assert credential not in config_text and credential not in first.output

    reader = EventReader(run_dir)
    attempt1 = reader.poll()
    assert reader.corrupt == 0
    started = attempt1[0]
    assert started["kind"] == "run_started" and started["attempt"] == 1 and started["runner"] == "ray"
    steps = {step["name"] for step in started["graph"]}
    ran = {e["stage"]: e["skipped"] for e in attempt1 if e["kind"] == "step_finished"}
    assert ran == dict.fromkeys(steps, False)
    assert attempt1[-1]["kind"] == "run_finished" and attempt1[-1]["status"] == "done"

    second = run_bounded(command, env, str(REPO), 300)
    assert second.returncode == 0, second.output[-4000:]
    attempt2 = reader.poll()  # exactly the events written since: the reader keeps its place
    assert attempt2[0]["kind"] == "run_started" and attempt2[0]["attempt"] == 2
    assert {e["stage"]: e["skipped"] for e in attempt2 if e["kind"] == "step_finished"} == dict.fromkeys(
        steps, True
    )
    assert not any(e["kind"] == "stage_started" for e in attempt2)  # nothing trained again
    assert attempt2[-1]["kind"] == "run_finished" and attempt2[-1]["status"] == "done"
    every = attempt1 + attempt2
    assert len({e["id"] for e in every}) == len(every)  # no event stored twice
    assert [e for e in every if e["kind"] == "run_started"] == [started, attempt2[0]]
    print(f"launch under strace {first.seconds:.1f} s, resume {second.seconds:.1f} s")


@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.access(STRACE, os.X_OK), reason=f"no {STRACE}")
def test_an_endpoint_given_only_in_the_config_reaches_every_process(s3_server, s3_run, data_root, tmp_path):
    """`run.s3_endpoint` instead of AWS_ENDPOINT_URL_S3: the metrics hub too must write to that server,
    never ask a public DNS server for AWS's (seen before the fix: the launch failed doing so)."""
    env = {k: v for k, v in launch_env(AMC_DATA=data_root, **s3_server.env()).items() if "ENDPOINT" not in k}
    trace = tmp_path / "connect.strace"
    finished = run_bounded(
        [STRACE, "-f", "--seccomp-bpf", "-e", "trace=connect", "-o", str(trace),
         sys.executable, "-m", "amc_dist.launch", "--config", "tests/configs/tiny.yaml", "--storage", s3_run,
         "--run-id", "configured", "--only", "target", "--set", f"run.s3_endpoint={s3_server.endpoint_url}"],
        env, str(REPO), 240,
    )  # fmt: skip
    outside = outside_connections(trace.read_text(errors="replace").splitlines())
    assert not outside, "connections outside loopback:\n" + "\n".join(outside[:20])
    assert finished.returncode == 0, finished.output[-4000:]
    events = read_events(storage.join(s3_run, "configured"))  # written by the hub
    assert events[0]["kind"] == "run_started" and events[-1]["status"] == "done"
    assert any(e["kind"] == "step_finished" and e["stage"] == "target" for e in events)
