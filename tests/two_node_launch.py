"""A tiny launch on a two-node local Ray cluster whose second node is removed while it runs steps: run as
`python tests/two_node_launch.py STORAGE`, it prints what it saw as JSON on its last line."""

import json
import sys
import threading
import time

from amc_dist.distributed import loopback

loopback.apply()

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.state import list_tasks  # noqa: E402

from amc_dist import launch  # noqa: E402
from amc_dist.distributed.cluster import NAMESPACE, free_port  # noqa: E402


def main(storage: str, config: str) -> int:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "dashboard_port": free_port()})
    try:
        doomed = cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
        seen: dict = {}

        def remove_when_busy() -> None:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                running = list_tasks(
                    address=cluster.address,
                    filters=[("node_id", "=", doomed.node_id), ("state", "=", "RUNNING")],
                )
                steps = [t.name for t in running if "_run_step" in t.name or "fit" in t.name]
                if steps:
                    seen["running_on_removed_node"] = steps
                    seen["removed_at"] = time.time()
                    cluster.remove_node(doomed)
                    return
                time.sleep(0.2)

        remover = threading.Thread(target=remove_when_busy, daemon=True)
        remover.start()
        code = launch.main(["--config", config, "--storage", storage, "--run-id", "n"])
        remover.join(5)
        seen["exit_code"] = code
        seen["nodes_alive"] = sum(node["Alive"] for node in ray.nodes())
        print(json.dumps(seen))
        return 0
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
