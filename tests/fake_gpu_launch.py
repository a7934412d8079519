"""On an embedded Ray that declares 1 GPU this CPU machine does not have (Ray schedules its shares all the
same), print one JSON line of what the GPU paths did:

- `refused`: the tiny launch with `use_gpu` at the default shares (1.0 per step, 0.25 per actor): its exit
  code, seconds and message (it must be refused at once, not wait for ever);
- `launch`: the tiny launch's black-box evaluation of the undefended model (target, P'' fit, crafting)
  with shares that fit: its exit code, and the oracle and proxy actors seen alive while each step ran;
- `steps`: two GPU steps and one CPU step through the runner: the process and the device each ran on.

Run by tests/test_fake_gpus.py in a process of its own (the session's Ray declares no GPU).
"""

import contextlib
import io
import json
import os
import sys
import threading
import time
from pathlib import Path

from amc_dist.distributed import loopback

loopback.apply()

import ray  # noqa: E402
from ray.util.state import list_actors  # noqa: E402

from amc_dist import launch  # noqa: E402
from amc_dist.config import load_config  # noqa: E402
from amc_dist.distributed.cluster import connect  # noqa: E402
from amc_dist.distributed.hub import hub  # noqa: E402
from amc_dist.distributed.runner import StepSubmitter  # noqa: E402
from amc_dist.eventlog import read_events  # noqa: E402
from amc_dist.experiment.graph import Graph, Resources, Step  # noqa: E402
from amc_dist.experiment.workspace import Workspace  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
TINY = str(Path(__file__).parent / "configs" / "tiny.yaml")


def _launch(args: list[str]) -> tuple[int, float, str]:
    err = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(err):
        code = launch.main(args)
    return code, round(time.monotonic() - started, 1), err.getvalue()


def _alive_actors() -> set[str]:
    actors = list_actors(address=ray.get_runtime_context().gcs_address, filters=[("state", "=", "ALIVE")])
    return {a.name for a in actors if a.class_name in ("OracleHost", "ProxyHost")}


def _watch(stop: threading.Event, seen: list) -> None:
    while not stop.is_set():
        seen.append((time.time(), sorted(_alive_actors())))
        stop.wait(0.2)


def _where(path: str):
    def run(ctx) -> None:
        Path(path).write_text(json.dumps({"pid": os.getpid(), "device": str(ctx.device)}))

    return run


def main(work: str, parts: list[str]) -> None:
    out: dict = {}
    storage = str(Path(work) / "runs")
    with connect(num_cpus=2, num_gpus=1):
        gpu = ["--set", "ray.use_gpu=true", "--set", "ray.trainer=task"]
        base = ["--config", TINY, "--storage", storage, *gpu]
        if "refused" in parts:
            code, seconds, message = _launch([*base, "--run-id", "refused"])
            out["refused"] = {"code": code, "seconds": seconds, "message": message}
        if "launch" in parts:
            out |= _fitting_launch(base, storage)
        if "steps" in parts:
            out["steps"] = _steps(work, storage)
    print(json.dumps(out))


def _fitting_launch(base: list[str], storage: str) -> dict:
    fitting = ["--set", "ray.gpus_per_worker=0.2", "--set", "ray.actor_gpus=0.05"]
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(stop, seen), daemon=True)
    watcher.start()
    only = ["--only", "blackbox.undefended", "eval.undefended"]
    code, seconds, message = _launch([*base, *fitting, "--run-id", "fits", *only])
    stop.set()
    watcher.join()
    events = read_events(str(Path(storage) / "fits"))
    spans = {}
    for e in events:
        if e["kind"] == "step_started":
            spans[e["stage"]] = [e["time"], None]
        elif e["kind"] == "step_finished" and e["stage"] in spans:
            spans[e["stage"]][1] = e["time"]
    during = {
        name: sorted({a for t, names in seen if start <= t <= (end or t) for a in names})
        for name, (start, end) in spans.items()
    }
    launched = {"code": code, "seconds": seconds, "tail": message[-2000:], "alive_during": during}
    return {"launch": launched, "alive_after": sorted(_alive_actors())}


def _steps(work: str, storage: str) -> dict:
    config = load_config(
        TINY, [f"run.output={storage}", "ray.use_gpu=true", "ray.gpus_per_worker=0.5", "run.device=cuda"]
    )
    cpu_config = config.model_copy(update={"ray": config.ray.model_copy(update={"use_gpu": False})})
    cpu_config = cpu_config.model_copy(update={"run": config.run.model_copy(update={"device": "cuda"})})
    hub(str(Path(storage) / "hub.json"))  # the steps' events go to the metrics hub
    steps = {}
    for name, cfg, gpus in (("gpu1", config, 0.5), ("gpu2", config, 0.5), ("cpu", cpu_config, 0.0)):
        path = str(Path(work) / f"{name}.json")
        step = Step(name, _where(path), resources=Resources(cpus=1, gpus=gpus))
        submit = StepSubmitter("s", Workspace(str(Path(storage) / "s"), cfg), Graph([step]))
        ray.get(submit(step))
        steps[name] = json.loads(Path(path).read_text())
    return steps


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["refused", "launch", "steps"])
