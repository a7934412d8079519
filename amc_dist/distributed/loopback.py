"""Settings that keep an embedded Ray on this machine and silent; each was seen reaching outside without
it. Ray reads some of them when it is imported, so `apply()` must run before `import ray`."""

from __future__ import annotations

import os

ENV = {
    # no usage statistics, and their "disabled" ping goes to a dead local port
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
    # node IP detection answers 127.0.0.1 instead of probing a route towards a public DNS server
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # the dashboard's cloud-metadata probes go to a dead local proxy
    "http_proxy": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost,::1",
    # AWS clients never ask the EC2 metadata service for credentials
    "AWS_EC2_METADATA_DISABLED": "true",
    # torch's gloo (Ray Train's CPU process group) binds the loopback interface instead of resolving the
    # machine's hostname. (torch's TCPStore still reverse-resolves ::ffff:127.0.0.1 once per rank for a
    # log line, a PTR query to the system's DNS server, unless /etc/hosts names that address.)
    "GLOO_SOCKET_IFNAME": "lo",
}


def apply() -> None:
    """Set every loopback setting the user has not set; call before importing ray."""
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
