"""The GPU paths' scheduling on a Ray that declares 1 GPU this machine lacks (`fake_gpu_launch.py`, in a
process of its own): a launch whose shares cannot be held at once is refused at once with the numbers,
one whose shares fit completes, oracle and proxy actors live only while their step runs, every GPU step
gets a fresh worker process, and a step that reserved no GPU works on the CPU."""

import sys
from pathlib import Path

import pytest
from netaudit import launch_env, run_bounded

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def seen(data_root, short_tmp_module):
    env = launch_env(AMC_DATA=data_root, TMPDIR=str(short_tmp_module))
    script = str(REPO / "tests" / "fake_gpu_launch.py")
    finished = run_bounded([sys.executable, script, str(short_tmp_module)], env, str(REPO), 600)
    assert finished.returncode == 0, finished.output[-4000:]
    return finished.report()


@pytest.fixture(scope="module")
def short_tmp_module(tmp_path_factory):
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="amc-g-", dir="/tmp"))
    yield work
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_shares_that_cannot_be_held_at_once_are_refused_at_once_with_the_numbers(seen):
    refused = seen["refused"]
    assert refused["code"] == 2 and refused["seconds"] < 30, refused
    message = " ".join(refused["message"].split())
    assert "do not fit the cluster (1 node(s) with 1 GPUs)" in message, message
    assert "each holding 1 GPU (ray.gpus_per_worker) while its proxy actor asks 0.25" in message, message
    assert "need 3 whole cards, the cluster has 1" in message, message


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_shares_that_fit_complete_and_actors_live_only_while_their_step_runs(seen):
    launched = seen["launch"]
    assert launched["code"] == 0, launched["tail"]
    during = launched["alive_during"]
    fit, craft = during["p2.undefended"], during["blackbox.undefended"]
    assert "fits/oracle/target@p2.undefended" in fit and "fits/proxy/p2.undefended" in fit, fit
    # the fit's oracle actor ended with the fit; the evaluation crafts on a proxy actor of its own
    assert craft == ["fits/proxy/p2.undefended"], craft
    assert during["target"] == [], during
    assert seen["alive_after"] == []


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_every_gpu_step_gets_a_fresh_process_and_a_step_without_a_gpu_the_cpu(seen):
    steps = seen["steps"]
    assert steps["gpu1"]["pid"] != steps["gpu2"]["pid"]  # max_calls=1: no CUDA context carried over
    assert steps["gpu1"]["device"] == steps["gpu2"]["device"] == "cuda"  # the run's device, reserved
    assert steps["cpu"]["device"] == "cpu"  # run.device cuda, but no GPU reserved: never GPU 0 unasked
