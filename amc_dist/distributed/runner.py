"""Run the experiment graph on Ray: every step whose inputs are complete starts as soon as the cap on
concurrent steps allows (Ray then places it where its resources are). A failed step stops only the steps
that depend on it; the others finish, and the run ends with an error naming each failed step and its
cause. Completion markers are written here, by the driver, after a step's outputs: a rerun with the same
run id resumes after the last completed step, exactly as in-process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import ray

from amc_dist.config import Config
from amc_dist.distributed.actors import end_actor, proxy_actor
from amc_dist.distributed.cluster import worker_env
from amc_dist.distributed.context import ray_context
from amc_dist.distributed.stage import train_on_ray_train
from amc_dist.events import EventSink, event
from amc_dist.experiment.graph import Graph, Step
from amc_dist.experiment.runner import describe_failure
from amc_dist.experiment.steps import FitProxy
from amc_dist.experiment.workspace import Workspace


class StepsFailed(RuntimeError):
    """Some steps failed; `failed` maps each to its cause, `stopped` lists the dependants not run."""

    def __init__(self, failed: dict[str, str], stopped: Iterable[str]) -> None:
        self.failed, self.stopped = failed, sorted(stopped)
        causes = "; ".join(f"{name}: {cause}" for name, cause in failed.items())
        tail = f" (not run, they depend on it: {', '.join(self.stopped)})" if self.stopped else ""
        super().__init__(f"{len(failed)} step(s) failed: {causes}{tail}")


def _cause(exc: BaseException) -> BaseException:
    """The exception a step raised, unwrapped from Ray's task error."""
    return getattr(exc, "cause", None) or exc


def _step(run_id: str, run_dir: str, config: Config, run: Callable) -> None:
    ctx = ray_context(run_dir, config, run_id)
    try:
        run(ctx)
    finally:
        ctx.flush()
        ctx.close()  # the proxy actor a black-box evaluation crafted on: no other step needs it


_run_step = ray.remote(_step)
# On a GPU, a fresh worker process per step (Ray's default for GPU functions, which `.options` can neither
# give nor take): no step inherits another's CUDA context and cached memory.
_run_gpu_step = ray.remote(max_calls=1)(_step)


@ray.remote(num_cpus=0)
def _fit_proxy(run_id: str, run_dir: str, config: Config, fit: FitProxy) -> None:
    """The attacker fits in its proxy actor, through oracle actors only; the defender then scores the
    stored proxy against its own model here, where the target's weights may be read (on the CPU: this
    task reserves no GPU). The actor ends with the fit: a step that crafts on the proxy later starts its
    own from the stored weights."""
    actor = proxy_actor(run_id, run_dir, config, fit.name)
    try:
        ray.get(actor.fit.remote(fit))
    finally:
        end_actor(actor)
    ctx = ray_context(run_dir, config, run_id)
    try:
        fit.finish(ctx, ctx.proxy_model(fit.name))
    finally:
        ctx.flush()


@ray.remote(num_cpus=0)
def _drive_training(run_id: str, run_dir: str, config: Config, training) -> None:
    train_on_ray_train(run_id, run_dir, config, training)


def uses_ray_train(config: Config) -> bool:
    """Ray Train for several workers or GPUs (or when asked); a plain task runs one CPU worker's fit
    without Train's fixed start-up cost (`ray.trainer: auto`)."""
    r = config.ray
    return r.trainer == "train" or (r.trainer == "auto" and (r.num_workers > 1 or r.use_gpu))


class StepSubmitter:
    """Starts one step on Ray by its kind and returns the reference to wait on. It holds no actor: each
    oracle and proxy actor is started by the step that needs it and ends with that step."""

    def __init__(self, run_id: str, workspace: Workspace, graph: Graph) -> None:
        self.run_id, self.workspace, self.graph = run_id, workspace, graph
        self.config = workspace.config

    def __call__(self, step: Step):
        args = (self.run_id, self.workspace.run_dir, self.config)
        env = {"runtime_env": {"env_vars": worker_env()}}
        if step.kind == "fit_proxy":
            return _fit_proxy.options(**env).remote(*args, step.run)
        if step.kind == "train" and uses_ray_train(self.config):
            return _drive_training.options(**env).remote(*args, step.run)
        r = step.resources
        task = _run_gpu_step if r.gpus > 0 else _run_step
        return task.options(num_cpus=r.cpus, num_gpus=r.gpus, **env).remote(*args, step.run)


def run_graph(
    graph: Graph,
    names: list[str],
    workspace: Workspace,
    submit: Callable[[Step], ray.ObjectRef],
    *,
    on_event: EventSink,
    max_concurrent: int,
) -> None:
    """Run the steps `names` of `graph`; raise StepsFailed at the end if any failed."""
    selected = set(names)
    done = {name for name in names if workspace.is_done(name)} | (set(graph.steps) - selected)
    for name in names:
        if name in done:
            on_event(event("step_finished", name, 0, skipped=True, seconds=0.0))
    failed: dict[str, str] = {}
    stopped: set[str] = set()
    running: dict[ray.ObjectRef, tuple[str, float]] = {}
    while True:
        busy = {name for name, _ in running.values()}
        for step in graph.ready(done):
            if len(running) >= max_concurrent:
                break
            if step.name in busy or step.name in failed or step.name in stopped:
                continue
            on_event(event("step_started", step.name, 0, step_kind=step.kind))
            running[submit(step)] = (step.name, time.monotonic())
        if not running:
            break
        finished, _ = ray.wait(list(running), num_returns=1)
        for ref in finished:
            name, started = running.pop(ref)
            try:
                ray.get(ref)
            except Exception as exc:
                failed[name] = describe_failure(_cause(exc))
                lost = graph.dependants(name) & selected
                stopped |= lost
                on_event(event("step_failed", name, 0, message=failed[name], stopped=sorted(lost)))
                continue
            workspace.mark_done(name, graph.steps[name].outputs)
            done.add(name)
            on_event(event("step_finished", name, 0, skipped=False, seconds=time.monotonic() - started))
    if failed:
        raise StepsFailed(failed, stopped)
