"""Sweeps: the sweep file is validated before any work, and a sweep killed mid-way resumes with
`--resume` (Tuner.restore) where its trials stood, ending with the best trials and a runnable config."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from netaudit import launch_env, run_bounded

from amc_dist.config import ConfigError, load_config
from amc_dist.experiment.sweep import load_sweep

REPO = Path(__file__).resolve().parent.parent
TINY_SWEEP = REPO / "tests" / "configs" / "tune" / "tiny.yaml"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bogus=1", "bogus: unknown key"),
        ("search={}", "search is empty"),
        ("search={training.epochs: {choice: [1, 2]}}", "only training.alpha, cascade.* and attacks.*"),
        ("search={attacks.whitebox.pgd.bogus: {uniform: [0, 1]}}", "search.attacks.whitebox.pgd.bogus"),
        ("search={training.alpha: {uniform: [0.7, 0.3]}}", "lower bound must be below the upper"),
        ("search={training.alpha: simplex}", "'simplex' is the search space of cascade.lambdas"),
        ("search={training.alpha: {uniform: [0.2, 0.4], choice: [0.1]}}", "exactly one of"),
    ],
)
def test_a_bad_sweep_file_is_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace(".", r"\.")):
        load_sweep(TINY_SWEEP, [override])


@pytest.mark.parametrize("dataset", ["mnist", "svhn", "cifar10"])
def test_the_shipped_sweeps_validate(dataset):
    sweep = load_sweep(REPO / "configs" / "tune" / f"{dataset}.yaml")
    assert sweep.base.data.name == dataset and sweep.settings.search


def _trial_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((sweep_dir / "trials").glob("*")) if (sweep_dir / "trials").exists() else []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_sweep_resumes_where_its_trials_stood(data_root, short_tmp):
    work = short_tmp
    env = launch_env(AMC_DATA=data_root, TMPDIR=str(work))
    command = [sys.executable, "-m", "amc_dist.tune", "--config", str(TINY_SWEEP), "--set",
               f"storage={work / 'sweeps'}"]  # fmt: skip
    sweep_dir = work / "sweeps" / "tiny-sweep"
    first_stage = None
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first_stage is None:
        done = [d for d in _trial_dirs(sweep_dir) if (d / "steps" / "amc_target.1.done").exists()]
        first_stage = done[0] if done else None
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep's driver and its embedded Ray, at once
    process.wait()
    assert first_stage is not None, "no trial finished a stage in time"
    assert not (sweep_dir / "best.yaml").exists()

    resumed = run_bounded([*command, "--resume"], env, str(REPO), 400)
    assert resumed.returncode == 0, resumed.output[-4000:]
    best = json.loads((sweep_dir / "best_trials.json").read_text())
    assert len(best) == 2 and all(0 <= row["objective"] <= 1 for row in best)
    config = load_config(sweep_dir / "best.yaml")  # a ready-to-run experiment
    assert config.training.alpha == pytest.approx(best[0]["values"]["training.alpha"])
    assert sum(config.cascade.lambdas) == pytest.approx(1)
    # the interrupted trial's first stage was not trained again
    events = [json.loads(line) for line in (first_stage / "metrics.jsonl").read_text().splitlines()]
    fits = [e for e in events if e["kind"] == "stage_started" and e["stage"] == "amc_target.1"]
    assert len(fits) == 1
    assert yaml.safe_load((sweep_dir / "best.yaml").read_text())["cascade"]["order"] == ["fgsm", "pgd"]
