"""The checks of cluster/gpu_smoke.sh: one line per check (`ok` or `FAIL` and the error, its seconds and
what it measured), then `smoke.json` in OUT. DEVICE=cpu runs every check with the CPU standing in for
the GPU: the rehearsal checks the flow, not the numbers.

Attacks are compared on the same weights and images, CUDA against CPU. cuDNN convolutions run in TF32
by default (10-bit mantissa), so logits differ by about 1e-3 and a few gradient signs flip: an attack
passes when its adversarial error rate on the 512 images differs by at most 3 points and, for the
single-step FGSM, at most 2% of pixels differ by more than 1e-3.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "configs" / "tiny.yaml"
MNIST = REPO / "configs" / "mnist.yaml"
ERROR_TOLERANCE = 0.03
FGSM_PIXEL_SHARE = 0.02


class Smoke:
    def __init__(self, device: str, out: Path) -> None:
        self.device, self.out, self.results = torch.device(device), out, []

    def check(self, name: str, run: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail, ok = run(), True
        except Exception as exc:  # a check that fails says why and the run goes on
            detail, ok = f"{type(exc).__name__}: {exc}".splitlines()[0][:300], False
            (self.out / f"{name}.traceback.txt").write_text(traceback.format_exc())
        seconds = time.monotonic() - started
        self.results.append({"check": name, "ok": ok, "seconds": round(seconds, 1), "detail": detail})
        print(f"{'ok  ' if ok else 'FAIL'} {name:<22} {seconds:6.1f}s  {detail}", flush=True)
        return ok


def _command(smoke: Smoke, label: str, argv: list[str], timeout: float) -> str:
    """Run a project command in a fresh process; its output goes to OUT/<label>.log."""
    log = smoke.out / f"{label}.log"
    with open(log, "w") as handle:
        done = subprocess.run(
            [sys.executable, *argv], cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout
        )
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"exit {done.returncode} ({log.name}): {' | '.join(tail)}")
    return log.name


def device_check(smoke: Smoke) -> str:
    if smoke.device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        name = torch.cuda.get_device_name(0)
        tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        return f"torch {torch.__version__}, {name}, TF32 conv/matmul {tf32[0]}/{tf32[1]}"
    return f"torch {torch.__version__}, cpu (rehearsal)"


def attack_checks(smoke: Smoke) -> None:
    from amc_dist.attacks import build_attacks
    from amc_dist.bench import mnist_lenet, mnist_test_images
    from amc_dist.config import load_config
    from amc_dist.evaluation.clean import error_rate

    config = load_config(MNIST)
    attacks = build_attacks(config.attacks.whitebox)
    attacks["apgd"] = build_attacks({"apgd": config.attacks.apgd})["apgd"]
    cpu_model = mnist_lenet(n_train=4000, epochs=1)
    gpu_model = mnist_lenet(n_train=4000, epochs=1).to(smoke.device)
    x, y = mnist_test_images(512)
    for name, attack in attacks.items():

        def compare(name=name, attack=attack) -> str:
            here = attack(cpu_model, x, y, generator=torch.Generator().manual_seed(0))
            there = attack(
                gpu_model, x.to(smoke.device), y.to(smoke.device), generator=torch.Generator().manual_seed(0)
            )
            if there.device.type != smoke.device.type:
                raise RuntimeError(f"the adversarial examples came back on {there.device}")
            there = there.cpu()
            errors = error_rate(cpu_model, here, y), error_rate(cpu_model, there, y)
            differ = ((here - there).abs() > 1e-3).float().mean().item()
            if abs(errors[0] - errors[1]) > ERROR_TOLERANCE:
                raise RuntimeError(f"error {errors[1]:.1%} here vs {errors[0]:.1%} on the CPU")
            if name == "fgsm" and differ > FGSM_PIXEL_SHARE:
                raise RuntimeError(f"{differ:.2%} of pixels differ by > 1e-3")
            return f"error {errors[1]:.1%} (CPU {errors[0]:.1%}), {differ:.2%} of pixels differ > 1e-3"

        smoke.check(f"attack.{name}", compare)


def fit_and_resume(smoke: Smoke) -> str:
    """Two epochs in one go against one epoch, a crash, and a resume from the stored state."""
    from amc_dist.bench import mnist_test_images
    from amc_dist.config import TrainingConfig
    from amc_dist.models import build_model
    from amc_dist.training.trainer import fit

    x, y = mnist_test_images(2048)
    settings = TrainingConfig(epochs=2, batch_size=128, learning_rate=2e-3)

    class Store:
        def __init__(self, crash_after: int | None) -> None:
            self.state, self.crash_after = None, crash_after

        def load(self):
            return self.state

        def save(self, state):
            self.state = {k: v for k, v in state.items()}
            if state["epoch"] == self.crash_after:
                raise KeyboardInterrupt  # the process dies right after storing its epoch

    def model():
        torch.manual_seed(0)
        return build_model("lenet").to(smoke.device)

    whole = fit(model(), x, y, settings, seed=1, store=Store(None))
    store = Store(1)
    try:
        fit(model(), x, y, settings, seed=1, store=store)
        raise RuntimeError("the crash did not happen")
    except KeyboardInterrupt:
        pass
    store.crash_after = None
    resumed = fit(model(), x, y, settings, seed=1, store=store)
    gap = max(
        (a - b).abs().max().item()
        for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True)
    )
    if next(resumed.parameters()).device.type != smoke.device.type or gap > 1e-3:
        raise RuntimeError(f"resumed weights differ from the uninterrupted fit's by {gap:.2g}")
    return f"2 epochs on {smoke.device.type}; resumed after epoch 1: weights within {gap:.1g} of one go"


def graph_in_process(smoke: Smoke) -> str:
    runs = smoke.out / "runs"
    argv = ["-m", "amc_dist.cli", "run", "--config", str(TINY), "--set", f"run.output={runs}"]
    log = _command(smoke, "amc-run", [*argv, "--set", f"run.device={smoke.device.type}"], 240)
    results = json.loads((runs / "tiny" / "results.json").read_text())
    return f"tiny graph, {len(results)} sections of results.json ({log})"


def union(smoke: Smoke) -> str:
    run = smoke.out / "runs" / "tiny"
    argv = [
        "-m",
        "amc_dist.cli",
        "union",
        "--run",
        str(run),
        "--out",
        str(smoke.out / "union"),
        "--images",
        "64",
    ]
    log = _command(smoke, "amc-union", [*argv, "--apgd-iter", "10", "--device", smoke.device.type], 180)
    rows = json.loads((smoke.out / "union" / "union.json").read_text())["rows"]
    return f"{len(rows)} rows ({log})"


def ray_launch(smoke: Smoke, trainer: str) -> str:
    """The tiny launch's target, a proxy fit and a black-box evaluation, with `use_gpu` on CUDA."""
    gpu = smoke.device.type == "cuda"
    sets = [
        f"ray.trainer={trainer}",
        f"ray.use_gpu={str(gpu).lower()}",
        f"run.device={'cuda' if gpu else 'cpu'}",
    ]
    sets += ["ray.gpus_per_worker=0.2", "ray.actor_gpus=0.05"] if gpu else []
    steps = ["blackbox.undefended"] if trainer == "task" else ["amc_target.1"]
    argv = ["-m", "amc_dist.launch", "--config", str(TINY), "--storage", str(smoke.out / "ray"),
            "--run-id", trainer, "--only", *steps]  # fmt: skip
    log = _command(smoke, f"launch-{trainer}", [*argv, *[a for s in sets for a in ("--set", s)]], 240)
    backend = "NCCL" if gpu else "gloo"
    how = "plain tasks" if trainer == "task" else f"TorchTrainer ({backend}, 1 worker: one card)"
    return f"{' '.join(steps)} through {how} ({log})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    smoke = Smoke(args.device, out)
    started = time.monotonic()
    if smoke.check("device", lambda: device_check(smoke)):
        attack_checks(smoke)
        smoke.check("fit+resume", lambda: fit_and_resume(smoke))
        if smoke.check("graph in-process", lambda: graph_in_process(smoke)):
            smoke.check("union", lambda: union(smoke))
        try:
            import ray  # noqa: F401

            has_ray = True
        except ImportError as exc:
            has_ray = False
            smoke.results.append(
                {"check": "ray", "ok": False, "seconds": 0, "detail": f"not importable: {exc}"}
            )
            print(f"FAIL ray                      0.0s  not importable: {exc}")
        if has_ray:
            smoke.check("launch task", lambda: ray_launch(smoke, "task"))
            smoke.check("launch TorchTrainer", lambda: ray_launch(smoke, "train"))
    total = time.monotonic() - started
    failed = [r["check"] for r in smoke.results if not r["ok"]]
    (out / "smoke.json").write_text(
        json.dumps({"device": args.device, "seconds": total, "checks": smoke.results})
    )
    print(f"{len(smoke.results) - len(failed)} of {len(smoke.results)} checks ok in {total:.0f}s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    warnings.filterwarnings("ignore", message=".*cannot reach the edge of its eps-ball")  # Table 1's PGD
    sys.exit(main())
